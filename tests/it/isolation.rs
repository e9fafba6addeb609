//! Departments are isolated on the broker: the users `gridhub topology`
//! generates, loaded with `rabbitmqctl import_definitions` into a virtual
//! host of the test's own, each publish and read only what is theirs.

use std::process::Command;
use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::{BasicProperties, Connection};
use serde_json::Value;

use crate::helpers::{TestEnv, root, sample};

/// A virtual host with the definitions `gridhub topology --passwords`
/// printed for it, deleted when dropped.
struct Vhost {
    name: String,
    passwords: std::collections::HashMap<String, String>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .output();
    }
}

impl Vhost {
    /// Generates the definitions with the CLI, as an operator does, and
    /// imports them.
    fn provision(env: &TestEnv, hub_user: &str) -> Vhost {
        let id = &env.settings.namespace;
        let name = format!("gridhub-iso-{id}");
        let dir = std::env::temp_dir().join(format!("gridhub-iso-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("gridhub.toml");
        std::fs::write(
            &config,
            format!(
                "amqp_url = \"amqp://{hub_user}@127.0.0.1:5672/{name}\"\n\
                 namespace = \"{id}\"\n\
                 connectors_dir = \"{}\"\n",
                root().join("connectors").display()
            ),
        )
        .unwrap();
        let passwords = dir.join("broker-passwords");
        let output = Command::new(env!("CARGO_BIN_EXE_gridhub"))
            .args(["topology", "--config"])
            .arg(&config)
            .arg("--passwords")
            .arg(&passwords)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let definitions = dir.join("definitions.json");
        std::fs::write(&definitions, &output.stdout).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&passwords).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o600,
            "the passwords file is its owner's only"
        );
        let imported = Command::new("rabbitmqctl")
            .args(["-q", "import_definitions"])
            .arg(&definitions)
            .output()
            .unwrap();
        assert!(imported.status.success(), "{imported:?}");
        let passwords = std::fs::read_to_string(&passwords)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .map(|(u, p)| (u.to_owned(), p.to_owned()))
            .collect();
        Vhost {
            name,
            passwords,
            _dir: TempDir(dir),
        }
    }

    fn url(&self, user: &str) -> String {
        let password = &self.passwords[user];
        format!("amqp://{user}:{password}@127.0.0.1:5672/{}", self.name)
    }

    async fn connect(&self, user: &str) -> Connection {
        gridhub::amqp::connect(&self.url(user), "isolation test")
            .await
            .unwrap_or_else(|e| panic!("{user} connects: {e}"))
    }
}

/// Publishes one message with a confirm; `Err` with the broker's reason
/// when it refuses.
async fn publish(
    connection: &Connection,
    exchange: &str,
    routing_key: &str,
    user: &str,
    body: &[u8],
) -> Result<(), String> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    gridhub::amqp::publish::confirming(&channel)
        .await
        .map_err(|e| e.to_string())?;
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default()
                .with_user_id(user.into())
                .with_message_id(uuid::Uuid::new_v4().to_string().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2),
        )
        .await
        .map_err(|e| e.to_string())?;
    match confirm.await {
        Ok(confirmation) if confirmation.is_ack() => Ok(()),
        Ok(other) => Err(format!("{other:?}")),
        Err(error) => Err(error.to_string()),
    }
}

/// Takes one message from a queue (`None`: empty); `Err` with the broker's
/// reason when it refuses.
async fn get(connection: &Connection, queue: &str) -> Result<Option<Value>, String> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .map_err(|e| e.to_string())?;
    Ok(message.map(|m| serde_json::from_slice(&m.delivery.data).unwrap_or(Value::Null)))
}

fn refused(result: &Result<impl std::fmt::Debug, String>) -> bool {
    matches!(result, Err(reason) if reason.contains("ACCESS_REFUSED"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connector_publishes_and_reads_only_as_itself() {
    let env = TestEnv::new().await;
    let hub_user = format!("hub-{}", env.settings.namespace);
    let vhost = Vhost::provision(&env, &hub_user);
    let names = &env.names;
    // The hub runs as its own user in the provisioned virtual host.
    let hub = env
        .start_hub(gridhub::settings::Settings {
            amqp_url: vhost.url(&hub_user),
            ..env.settings.clone()
        })
        .await;
    let health = vhost.connect("dept-health").await;
    let page = sample(
        "dept-health",
        "resident-population/valid/household-of-three-zhongcang.json",
    );

    // Its own routing key, as itself: taken, and shared with the grid platform.
    publish(
        &health,
        &names.inbound_exchange(),
        "dept-health.resident-population",
        "dept-health",
        &page,
    )
    .await
    .expect("dept-health publishes its own records");
    let grid = vhost.connect("grid-platform").await;
    let out = names.outbound_queue("grid-platform");
    let start = std::time::Instant::now();
    let shared = loop {
        if let Some(event) = get(&grid, &out)
            .await
            .expect("the grid platform reads its queue")
        {
            break event;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "records shared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "gridhub.out.grid-platform, read as grid-platform:\n{}",
        serde_json::to_string_pretty(&shared).unwrap()
    );
    let text = shared.to_string();
    assert!(
        !text.contains("110112196804153017"),
        "ID numbers go out masked"
    );
    assert!(!text.contains("13601234567"), "phone numbers go out masked");
    // Declared personal fields too: the door and the household number.
    assert!(
        !text.contains("3号楼1单元502"),
        "addresses down to the community"
    );
    assert!(text.contains("中仓街道中山街社区***"), "{text}");
    assert!(!text.contains("HH0001203456"), "household numbers masked");
    // Nothing gives the masked ID back: the birth date is its year only.
    assert!(!text.contains("1968-04-15") && !text.contains("19680415"));

    // Another connector's routing key: the broker stops it (topic permission).
    let forged = publish(
        &health,
        &names.inbound_exchange(),
        "hotline-12345.ticket",
        "dept-health",
        b"{}",
    )
    .await;
    assert!(refused(&forged), "{forged:?}");
    // The hub's exchanges: refused.
    for exchange in [names.outbound_exchange(), names.dead_letter_exchange()] {
        let written = publish(
            &health,
            &exchange,
            "grid-platform.records.shared",
            "dept-health",
            b"{}",
        )
        .await;
        assert!(refused(&written), "{exchange}: {written:?}");
    }
    // Another department's out queue, any DLQ, any inbound queue: refused.
    for queue in [
        names.outbound_queue("dept-urban-management"),
        names.outbound_queue("grid-platform"),
        names.dead_letter_queue("dept-health"),
        names.dead_letter_queue("hotline-12345"),
        names.inbound_queue("hotline-12345"),
        names.inbound_queue("dept-health"),
    ] {
        let read = get(&health, &queue).await;
        assert!(refused(&read), "{queue}: {read:?}");
    }
    // A department reads its own out queue (empty: no case dispatched yet).
    let urban = vhost.connect("dept-urban-management").await;
    assert_eq!(
        get(&urban, &names.outbound_queue("dept-urban-management")).await,
        Ok(None)
    );
    // A third-party client (pika) under another connector's key: stopped too.
    let pika = Command::new("python3")
        .arg(root().join("tests/it/hostile.py"))
        .args(["--url", &vhost.url("dept-health"), "--exchange"])
        .arg(names.inbound_exchange())
        .args([
            "--routing-key",
            "dept-police.floating-population",
            "--user-id",
            "dept-health",
        ])
        .output()
        .unwrap();
    assert!(!pika.status.success(), "pika's publish is refused");
    let said =
        String::from_utf8_lossy(&pika.stdout).to_string() + &String::from_utf8_lossy(&pika.stderr);
    assert!(said.contains("ACCESS_REFUSED"), "{said}");
    // Nothing reached the hub but the one page.
    assert_eq!(
        env.count("SELECT count(*) FROM inbox").await,
        1,
        "one message recorded"
    );
    hub.stop().await;
}

/// A department's token sees its own dead letters and cases, and nothing
/// else of the district's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departments_token_sees_only_its_own() {
    use crate::helpers::{
        OPS_TOKEN, empty_ticket, hotline_ticket, outgoing, wait_until, with_message_id,
    };
    use gridhub::settings::Role;
    const URBAN: &str = "urban-management-token-0123456789";
    let env = TestEnv::new().await;
    let unit = "dept-urban-management";
    let hub = env
        .start_hub(env.settings_with_token(unit, URBAN, Role::Ops, &[unit]))
        .await;
    // A 12345 ticket about a matter urban management leads; a refusal each
    // for the hotline and for urban management.
    let refused_hotline = empty_ticket("hotline-refused");
    let refused_urban = outgoing("dept-urban-management", "progress", b"{}".to_vec());
    let refused_urban = with_message_id(refused_urban, "urban-refused");
    env.publish(&[
        hotline_ticket("BJ12345-20261206-000001"),
        refused_hotline,
        refused_urban,
    ])
    .await;
    wait_until(Duration::from_secs(30), "recorded", || async {
        env.count("SELECT count(*) FROM dlq_messages").await == 2
            && env.count("SELECT count(*) FROM cases").await == 1
    })
    .await;
    let get = |path: &'static str, token: &'static str| hub.get(path, token);

    // Its dead letters only, whatever it asks.
    let (status, listing) = get("/api/dlq", URBAN).await;
    assert_eq!(status, 200);
    let letters = listing["letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listing}");
    assert_eq!(letters[0]["connector"], "dept-urban-management");
    let (status, _) = get("/api/dlq?connector=hotline-12345", URBAN).await;
    assert_eq!(status, 403);
    let (_, all) = get("/api/dlq?connector=hotline-12345", OPS_TOKEN).await;
    let hotline_letter = all["letters"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = hub
        .get(&format!("/api/dlq/hotline-12345/{hotline_letter}"), URBAN)
        .await;
    assert_eq!(status, 403, "another connector's dead letter");
    // Replay is the centre's, even for a department's ops token: it fixes
    // what it sends (GET /api/connectors/{id}/refusals).
    let (status, said) = hub
        .post(
            "/api/dlq/replay",
            URBAN,
            &serde_json::json!({"stage": "schema"}),
        )
        .await;
    assert_eq!(status, 403, "{said}");
    assert_eq!(env.dead_letters("dept-urban-management").await.len(), 1);
    // The case it leads, and no other; none of the district's totals.
    let (_, cases) = get("/api/cases", URBAN).await;
    assert_eq!(cases.as_array().unwrap().len(), 1, "{cases}");
    assert_eq!(cases[0]["lead_unit"], "dept-urban-management");
    let (_, overview) = get("/api/overview", URBAN).await;
    let connectors = overview["connectors"].as_array().unwrap();
    assert_eq!(connectors.len(), 1);
    assert!(overview["cases_by_status"].is_null());
    let (status, _) = get("/api/audit", URBAN).await;
    assert_eq!(status, 403);
    hub.stop().await;
}
