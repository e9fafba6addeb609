//! Publishers that mean harm, or whose client does what lapin never would:
//! each message costs only itself. The messages are sent by Python's pika
//! (`tests/it/hostile.py`), the way another team's system would send them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{gridhub, tempdir};
use crate::helpers::{AMQP, OPS_TOKEN, TestEnv, outgoing, ticket_12345, wait_until};

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

/// `gridhub serve` as a child process, killed if the test ends first.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(env: &TestEnv) -> Serve {
    let config = tempdir().join("gridhub.toml");
    std::fs::write(
        &config,
        format!(
            "namespace = \"{}\"\nhttp_listen = \"\"\n",
            env.settings.namespace
        ),
    )
    .unwrap();
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
    let routing_key = format!("{HOTLINE}.ticket");
    let deep = |message_id: &str, depth: &str| {
        hostile(
            &env,
            &[
                "--routing-key",
                &routing_key,
                "--user-id",
                "guest",
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
        .map(|n| {
            outgoing(
                HOTLINE,
                "ticket",
                ticket_12345(&format!("BJ12345-20261202-{n:06}")),
            )
        })
        .collect();
    let started = Instant::now();
    env.publish(&tickets).await;
    wait_until(Duration::from_secs(30), "21 cases", || async {
        env.count("SELECT count(*) FROM cases").await == 21
    })
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
    wait_until(Duration::from_secs(20), "refused", || async {
        env.depth(&dlq).await == 1
    })
    .await;
    let (status, letters) = hub
        .call(
            "GET",
            "/api/dlq?connector=hotline-12345",
            Some(OPS_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{letters}");
    let letter = &letters["letters"][0];
    assert_eq!(letter["stage"], "identity", "{letters}");
    assert_eq!(letter["replays"], 0, "the forged replay count is not taken");
    // Replayed by ops: it is still judged as a publisher with no user_id,
    // never as the hub that republishes it.
    let (status, report) = hub
        .call(
            "POST",
            "/api/dlq/replay",
            Some(OPS_TOKEN),
            Some(&json!({"connector": HOTLINE})),
        )
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
    hub.stop().await;
}
