//! Publishers that mean harm, or whose client does what lapin never would:
//! each message costs only itself. The messages are sent by Python's pika
//! (`tests/it/hostile.py`), the way another team's system would send them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::gridhub;
use crate::helpers::{
    AMQP, OPS_TOKEN, TestEnv, empty_ticket, hotline_ticket, outgoing, ticket_12345, wait_until,
};

const HOTLINE: &str = "hotline-12345";

/// Runs `tests/it/hostile.py` against the test's inbound exchange; its
/// summary line and whether every message was confirmed.
fn hostile(env: &TestEnv, args: &[&str]) -> (Value, bool) {
    let output = Command::new("python3")
        .arg(crate::helpers::root().join("tests/it/hostile.py"))
        .args(["--url", AMQP, "--exchange"])
        .arg(env.names.inbound_exchange())
        .args(args)
        .output()
        .expect("python3 runs");
    let summary = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (summary, output.status.success())
}

/// [`hostile`] publishing to the hotline's ticket routing key as the
/// broker's test user, `guest`, with `args` after.
fn hostile_ticket(env: &TestEnv, args: &[&str]) -> (Value, bool) {
    let routing_key = format!("{HOTLINE}.ticket");
    let mut all = vec!["--routing-key", &routing_key, "--user-id", "guest"];
    all.extend_from_slice(args);
    hostile(env, &all)
}

/// `gridhub serve` as a child process, killed if the test ends first.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(env: &TestEnv) -> Serve {
    let config = env.config_file("http_listen = \"\"\n");
    Serve(
        gridhub()
            .args(["serve", "--config"])
            .arg(&config)
            .env("GRIDHUB_DATABASE_URL", &env.database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_nested_as_deep_as_a_frame_allows_costs_only_itself() {
    let env = TestEnv::new().await;
    let mut hub = serve(&env);
    let body = String::from_utf8(ticket_12345("BJ12345-20261202-000001")).unwrap();
    let deep = |message_id: &str, depth: &str| {
        hostile_ticket(
            &env,
            &[
                "--message-id",
                message_id,
                "--body",
                &body,
                "--nested-depth",
                depth,
            ],
        )
    };
    // 10,000 levels do not fit the broker's frame (deploy/rabbitmq): it
    // refuses them at the door.
    let (_, confirmed) = deep("deep-10000", "10000");
    assert!(
        !confirmed,
        "the broker refuses a header larger than its frame"
    );
    // As deep as fits in one frame: the broker takes it and delivers it.
    let (summary, confirmed) = deep("deep-1100", "1100");
    assert!(confirmed, "{summary}");
    // Tickets published after it.
    let tickets: Vec<_> = (2..=21)
        .map(|n| hotline_ticket(&format!("BJ12345-20261202-{n:06}")))
        .collect();
    let started = Instant::now();
    env.publish(&tickets).await;
    env.wait_count("SELECT count(*) FROM cases", 21, Duration::from_secs(30))
        .await;
    let delay = started.elapsed();
    assert!(
        hub.0.try_wait().unwrap().is_none(),
        "the hub is still running"
    );
    // Lost: none (21 cases); doubled: none; wrongly dead-lettered: none.
    assert_eq!(env.count("SELECT count(*) FROM case_sources").await, 21);
    assert_eq!(env.depth(&env.names.dead_letter_queue(HOTLINE)).await, 0);
    assert!(delay < Duration::from_secs(30), "others delayed {delay:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_cannot_forge_the_hubs_headers() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let body = String::from_utf8(ticket_12345("BJ12345-20261202-000100")).unwrap();
    // No user_id (so refused at identity), yet it claims to be a replay of
    // the hotline's own message.
    let (summary, confirmed) = hostile(
        &env,
        &[
            "--routing-key",
            &format!("{HOTLINE}.ticket"),
            "--message-id",
            "forged-1",
            "--body",
            &body,
            "--header",
            "x-gridhub-replays=2147483647",
            "--header",
            "x-gridhub-original-user-id=hotline-12345",
        ],
    );
    assert!(confirmed, "{summary}");
    let dlq = env.names.dead_letter_queue(HOTLINE);
    env.wait_depth(&dlq, 1, Duration::from_secs(20)).await;
    let (status, letters) = hub.get("/api/dlq?connector=hotline-12345", OPS_TOKEN).await;
    assert_eq!(status, 200, "{letters}");
    let letter = &letters["letters"][0];
    assert_eq!(letter["stage"], "identity", "{letters}");
    assert_eq!(letter["replays"], 0, "the forged replay count is not taken");
    // Replayed by ops: it is still judged as a publisher with no user_id,
    // never as the hub that republishes it.
    let (status, report) = hub
        .post("/api/dlq/replay", OPS_TOKEN, &json!({"connector": HOTLINE}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"], 1, "{report}");
    wait_until(Duration::from_secs(20), "refused again", || async {
        env.count("SELECT count(*) FROM inbox WHERE outcome = 'refused' AND replays = 1")
            .await
            == 1
    })
    .await;
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 0);
    assert_eq!(env.depth(&dlq).await, 1);
    // Nor does an edit pass as the hub: the fixed body is checked as its
    // original publisher's, and would be refused at identity.
    let (_, letters) = hub.get("/api/dlq?connector=hotline-12345", OPS_TOKEN).await;
    let id = letters["letters"][0]["id"].as_str().unwrap().to_owned();
    let fixed: Value = serde_json::from_str(&body).unwrap();
    let (status, answer) = hub
        .post(
            &format!("/api/dlq/{HOTLINE}/{id}/edit"),
            OPS_TOKEN,
            &json!({ "body": fixed }),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("identity"), "{answer}");
    hub.stop().await;
}

/// A counter's value on the hub's `/metrics` page (0 when absent).
async fn counter(hub: &crate::helpers::RunningHub, line_start: &str) -> u64 {
    let (_, metrics) = hub.call("GET", "/metrics", None, None).await;
    metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn delete_queue(env: &TestEnv, queue: &str) {
    let channel = env.broker.create_channel().await.unwrap();
    channel
        .queue_delete(queue.into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_and_key_names_cost_one_message_and_quote_nothing() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    // A NUL in the routing key's message type, and one in a message_id.
    let (summary, confirmed) = hostile(
        &env,
        &[
            "--routing-key-hex",
            &hex(b"hotline-12345.tic\0ket\x1b[31m"),
            "--user-id",
            "guest",
            "--message-id",
            "nul-in-key",
            "--body",
            "{}",
        ],
    );
    assert!(confirmed, "{summary}");
    let body = String::from_utf8(ticket_12345("BJ12345-20261203-000001")).unwrap();
    let (summary, confirmed) = hostile_ticket(
        &env,
        &["--message-id-hex", &hex(b"nul\0id"), "--body", &body],
    );
    assert!(confirmed, "{summary}");
    // A key that is a phone number.
    let mut keyed: Value =
        serde_json::from_slice(&ticket_12345("BJ12345-20261203-000002")).unwrap();
    keyed["13800138000"] = json!("x");
    let mut tickets = vec![outgoing(
        HOTLINE,
        "ticket",
        serde_json::to_vec(&keyed).unwrap(),
    )];
    tickets.extend((3..=12).map(|n| hotline_ticket(&format!("BJ12345-20261203-{n:06}"))));
    env.publish(&tickets).await;
    wait_until(Duration::from_secs(20), "10 cases, 3 refusals", || async {
        env.count("SELECT count(*) FROM cases").await == 10
            && env.count("SELECT count(*) FROM dead_letters").await == 3
    })
    .await;
    let dlq = env.names.dead_letter_queue(HOTLINE);
    env.wait_depth(&dlq, 3, Duration::from_secs(10)).await;
    let reasons: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT routing_key, reason, violations::text FROM dead_letters ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for (routing_key, reason, violations) in &reasons {
        for text in [routing_key, reason, violations] {
            assert!(!text.contains('\0') && !text.contains('\u{1b}'), "{text:?}");
            assert!(!text.contains("13800138000"), "a key is quoted: {text}");
        }
    }
    assert!(
        reasons.iter().any(|(_, r, _)| r.contains("tic\\u{0}ket")),
        "{reasons:?}"
    );
    hub.stop().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_queue_is_declared_again_not_written_into_the_void() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    // The hub is up and has declared its topology.
    env.open_case(hotline_ticket("BJ12345-20261204-000002"))
        .await;
    // A refusal that no queue takes: the DLQ's binding is gone.
    let dlq = env.names.dead_letter_queue(HOTLINE);
    let channel = env.broker.create_channel().await.unwrap();
    channel
        .queue_unbind(
            dlq.as_str().into(),
            env.names.dead_letter_exchange().as_str().into(),
            format!("{HOTLINE}.#").as_str().into(),
            Default::default(),
        )
        .await
        .unwrap();
    env.publish(&[empty_ticket("refused-into-no-queue")]).await;
    wait_until(
        Duration::from_secs(20),
        "the dead letter in its DLQ",
        || async { env.dead_letters(HOTLINE).await.len() == 1 },
    )
    .await;
    assert!(
        counter(
            &hub,
            "gridhub_unroutable_total{connector=\"hotline-12345\"} "
        )
        .await
            >= 1,
        "the returned dead letter is counted"
    );
    // A refusal into a deleted DLQ: the publish comes back, or the
    // recorder, whose consumer went with the queue, reconnects first and
    // declares it again. Either way the dead letter is kept.
    delete_queue(&env, &dlq).await;
    env.publish(&[empty_ticket("refused-into-a-deleted-dlq")])
        .await;
    wait_until(
        Duration::from_secs(20),
        "the dead letter in its DLQ",
        || async {
            env.depth_if_any(&dlq).await.is_some() && env.dead_letters(HOTLINE).await.len() == 2
        },
    )
    .await;
    // Events into a deleted out queue.
    let centre = env.names.outbound_queue(&env.settings.centre_destination);
    delete_queue(&env, &centre).await;
    env.publish(&[hotline_ticket("BJ12345-20261204-000001")])
        .await;
    wait_until(Duration::from_secs(20), "every event sent", || async {
        env.count("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .await
            == 0
            && env.depth_if_any(&centre).await.unwrap_or(0) > 0
    })
    .await;
    let centre_label = format!(
        "gridhub_unroutable_total{{connector=\"{}\"}} ",
        env.settings.centre_destination
    );
    assert!(
        counter(&hub, &centre_label).await >= 1,
        "the returned event is counted"
    );
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 2);
    hub.stop().await;
}

/// Sets the test database's `statement_timeout` ("'1ms'": every statement
/// of every new session fails with SQLSTATE 57014; "0": none) and ends its
/// sessions, which take the setting when they start again.
async fn statement_timeout(env: &TestEnv, value: &str) {
    let database = env.database_url.rsplit('/').next().unwrap().to_owned();
    // Statements about the test's database, from another one.
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{database}\" SET statement_timeout = {value}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&database)
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_keeps_timing_out_releases_the_batch() {
    let env = TestEnv::new().await;
    let hub = env
        .start_hub(gridhub::settings::Settings {
            store_hold_secs: 2,
            ..env.settings.clone()
        })
        .await;
    // Every statement of every new session times out (SQLSTATE 57014).
    statement_timeout(&env, "'1ms'").await;
    env.publish(&[hotline_ticket("BJ12345-20261205-000001")])
        .await;
    // Two holds' worth of failing statements: the batch is given back at
    // least once (counted below, once the database answers /metrics again).
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The database recovers: the released message is recorded once.
    statement_timeout(&env, "0").await;
    env.wait_count("SELECT count(*) FROM cases", 1, Duration::from_secs(60))
        .await;
    assert_eq!(env.count("SELECT count(*) FROM case_sources").await, 1);
    assert_eq!(env.depth(&env.names.dead_letter_queue(HOTLINE)).await, 0);
    assert!(
        counter(
            &hub,
            "gridhub_store_stalls_total{connector=\"hotline-12345\"} "
        )
        .await
            >= 1,
        "the stall is counted"
    );
    hub.stop().await;
}

/// A 96156 ticket with its own ticket number.
fn ticket_96156(n: u32) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&crate::helpers::sample(
        "hotline-96156",
        "ticket/valid/elderly-unreachable-yuqiao-emergency.json",
    ))
    .unwrap();
    body["gdbh"] = json!(format!("GD20261206{n:06}"));
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_costs_only_itself() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let other = "hotline-96156";
    let tickets = |from: u32| -> Vec<_> {
        (from..from + 10)
            .map(|n| hotline_ticket(&format!("BJ12345-20261206-{n:06}")))
            .chain((from..from + 10).map(|n| outgoing(other, "ticket", ticket_96156(n))))
            .collect()
    };
    let started = Instant::now();
    env.publish(&tickets(1)).await;
    // What another team's client may send: a message_id, a type and a
    // header key that are not UTF-8 (legal octets in AMQP 0-9-1).
    let body = String::from_utf8(ticket_12345("BJ12345-20261206-900001")).unwrap();
    for culprit in [
        ["--message-id-hex", "fffe"],
        ["--type-hex", "c328"],
        ["--header-key-hex", "fffe80"],
    ] {
        let (summary, confirmed) = hostile_ticket(&env, &["--body", &body, culprit[0], culprit[1]]);
        assert!(confirmed, "{summary}");
    }
    env.publish(&tickets(11)).await;
    // The other connector does not notice.
    wait_until(
        Duration::from_secs(15),
        "the other hotline's 20 cases",
        || async {
            env.count("SELECT count(*) FROM case_sources WHERE connector = 'hotline-96156'")
                .await
                == 20
        },
    )
    .await;
    let others_done = started.elapsed();
    // The culprits' connector resumes: its 20 tickets, and the three
    // culprits dead-lettered with their reason.
    wait_until(Duration::from_secs(60), "20 cases, 3 unreadable refused", || async {
        env.count("SELECT count(*) FROM case_sources WHERE connector = 'hotline-12345'")
            .await
            == 20
            && env
                .count("SELECT count(*) FROM dead_letters WHERE reason LIKE 'unreadable properties%'")
                .await
                == 3
    })
    .await;
    let own_done = started.elapsed();
    let dlq = env.names.dead_letter_queue(HOTLINE);
    env.wait_depth(&dlq, 3, Duration::from_secs(10)).await;
    // Lost: none. Doubled: none. Wrongly dead-lettered: none.
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 40);
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 3);
    assert_eq!(env.depth(&env.names.dead_letter_queue(other)).await, 0);
    // Ops read them, with their stage and reason, and the tools survive it.
    let (status, listing) = hub.get("/api/dlq?connector=hotline-12345", OPS_TOKEN).await;
    assert_eq!(status, 200, "{listing}");
    let letters = listing["letters"].as_array().unwrap();
    assert_eq!(letters.len(), 3, "{listing}");
    assert!(letters.iter().all(|l| {
        l["stage"] == "decode"
            && l["reason"]
                .as_str()
                .unwrap()
                .starts_with("unreadable properties")
    }));
    assert!(
        counter(
            &hub,
            "gridhub_unreadable_deliveries_total{connector=\"hotline-12345\"} "
        )
        .await
            >= 1
    );
    eprintln!("other connector done after {others_done:?}, the culprits' after {own_done:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_at_the_door_or_kept_as_a_prefix() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let publish =
        |size: &str, id: &str| hostile_ticket(&env, &["--message-id", id, "--body-size", size]);
    // 32 MiB: over the broker's max_message_size (deploy/rabbitmq).
    let (_, confirmed) = publish("33554432", "huge");
    assert!(!confirmed, "the broker refuses it at the door");
    // 600 KiB: the broker takes it, the hub refuses it, and its dead
    // letter keeps the first 4 KiB with the size and the SHA-256.
    let (summary, confirmed) = publish("614400", "large");
    assert!(confirmed, "{summary}");
    env.publish(&[hotline_ticket("BJ12345-20261207-000001")])
        .await;
    let dlq = env.names.dead_letter_queue(HOTLINE);
    wait_until(Duration::from_secs(20), "refused and recorded", || async {
        env.depth(&dlq).await == 1 && env.count("SELECT count(*) FROM cases").await == 1
    })
    .await;
    let stored = env.store().waiting_dead_letters(HOTLINE, 10).await.unwrap();
    let letter = stored.first().expect("the dead letter");
    assert_eq!(
        letter.body.as_ref().map(Vec::len),
        Ok(gridhub::dlq::KEPT_PREFIX)
    );
    let properties = gridhub::dlq::decode_properties(&letter.properties).unwrap();
    let headers = properties.headers().clone().unwrap();
    let header = |key: &str| headers.inner().get(key).cloned();
    assert_eq!(
        header(gridhub::dlq::BODY_SIZE),
        Some(lapin::types::AMQPValue::LongLongInt(614400))
    );
    assert!(matches!(
        header(gridhub::dlq::BODY_SHA256),
        Some(lapin::types::AMQPValue::LongString(s)) if s.as_bytes().len() == 64
    ));
    assert!(gridhub::dlq::truncated(&properties));
    hub.stop().await;
}

/// The broker pushes up to the prefetch whatever the bodies weigh: the hub
/// sizes each connector's prefetch so that, at the broker's largest
/// message, what it holds fits in `held_bytes`. Forty bodies of almost
/// 1 MiB wait while the store is locked; the hub holds seven of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_connector_holds_is_bounded_in_bytes() {
    let env = TestEnv::new().await;
    let settings = gridhub::settings::Settings {
        // 8 MiB of 1 MiB messages: 7 for the consumer, 1 for the recorder.
        held_bytes: 8 * 1024 * 1024,
        ..env.settings.clone()
    };
    assert_eq!(settings.holding(settings.prefetch).prefetch, 7);
    let hub = env.start_hub(settings).await;
    // The store waits on a lock: the hub records nothing and holds what it
    // was pushed.
    let mut lock = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE inbox, dead_letters IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let (summary, confirmed) = hostile_ticket(&env, &["--body-size", "1000000", "--count", "40"]);
    assert!(confirmed, "{summary}");
    let inbound = env.names.inbound_queue(HOTLINE);
    env.wait_depth(&inbound, 33, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.depth(&inbound).await,
        33,
        "40 published, 7 in the hub (7 MB), never more"
    );
    // The store answers again: each is refused once (over the body
    // limit), none lost.
    lock.rollback().await.unwrap();
    let dlq = env.names.dead_letter_queue(HOTLINE);
    env.wait_depth(&dlq, 40, Duration::from_secs(60)).await;
    assert_eq!(env.depth(&inbound).await, 0);
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters").await,
        40,
        "each refused once"
    );
    hub.stop().await;
}
