//! TLS on both links: the hub runs the sample round trip over `amqps://`
//! and PostgreSQL with `sslmode=verify-full`; a wrong CA, a missing client
//! certificate and a plaintext link under `require_tls` are refused.
//! `deploy/dev/services.sh` makes the certificates (deploy/dev/tls.sh) and
//! opens RabbitMQ's TLS listeners (5671; 5674 asks for a client
//! certificate).

use std::path::PathBuf;
use std::time::Duration;

use gridhub::amqp::{self, Tls};
use gridhub::settings::Settings;

use crate::helpers::{TestEnv, hotline_ticket, wait_until};

const TLS_DIR: &str = "/var/lib/gridhub-dev-tls";
const BROKER: &str = "amqps://guest:guest@localhost:5671/%2f";
const BROKER_ASKING: &str = "amqps://guest:guest@localhost:5674/%2f";

fn file(name: &str) -> PathBuf {
    let path = PathBuf::from(TLS_DIR).join(name);
    assert!(
        path.exists(),
        "{} is missing: run deploy/dev/services.sh, which makes it",
        path.display()
    );
    path
}

fn verified(database_url: &str, ca: &str) -> String {
    format!(
        "{database_url}?sslmode=verify-full&sslrootcert={}",
        file(ca).display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_runs_over_tls_on_both_links() {
    let env = TestEnv::new().await;
    let settings = Settings {
        amqp_url: BROKER.to_owned(),
        amqp_tls_ca_file: Some(file("ca.pem")),
        database_url: verified(&env.database_url, "ca.pem"),
        require_tls: true,
        ..env.settings.clone()
    };
    settings.validate().unwrap();
    let hub = env.start_hub(settings).await;
    env.publish(&[hotline_ticket("BJ12345-20261206-000301")])
        .await;
    let centre = env.names.outbound_queue(&env.settings.centre_destination);
    wait_until(
        Duration::from_secs(30),
        "case recorded, events relayed",
        || async {
            env.count("SELECT count(*) FROM cases").await == 1 && env.depth(&centre).await > 0
        },
    )
    .await;
    // The hub's database sessions are encrypted (the test's own are not).
    let encrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
         WHERE a.datname = current_database() AND s.ssl",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(encrypted > 0, "the hub's sessions use TLS");
    // And its broker connections: one per connector and the relay's, on
    // the TLS port (other tests' hubs run beside it on 5672).
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "name", "ssl", "client_properties"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let ours: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("-> 127.0.0.1:5671") && l.contains("gridhub hub"))
        .collect();
    assert!(ours.len() >= 2, "{listed}");
    assert!(
        ours.iter().all(|l| l.split('\t').nth(1) == Some("true")),
        "every hub connection over TLS: {ours:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_a_missing_client_certificate_and_plaintext_are_refused() {
    let env = TestEnv::new().await;
    // The broker's certificate is not signed by the CA the hub trusts.
    let other = Tls::load(Some(&file("other-ca.pem")), None, None).unwrap();
    let error = amqp::connect_with(BROKER, "test", other.as_ref())
        .await
        .expect_err("refused");
    eprintln!("broker, wrong CA: {error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    // PostgreSQL, likewise.
    let error = gridhub::store::Store::connect(&verified(&env.database_url, "other-ca.pem"), 1)
        .await
        .err()
        .expect("refused");
    eprintln!("database, wrong CA: {error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    // A broker that asks for a client certificate: refused without, taken with.
    let ca = Tls::load(Some(&file("ca.pem")), None, None).unwrap();
    assert!(
        amqp::connect_with(BROKER_ASKING, "test", ca.as_ref())
            .await
            .is_err()
    );
    let with_cert = Tls::load(
        Some(&file("ca.pem")),
        Some(&file("client.pem")),
        Some(&file("client.key")),
    )
    .unwrap();
    let connection = amqp::connect_with(BROKER_ASKING, "test", with_cert.as_ref())
        .await
        .expect("a client with its certificate connects");
    let _ = connection.close(200, "done".into()).await;
    // require_tls refuses plaintext links before anything connects.
    let plaintext = Settings {
        require_tls: true,
        ..env.settings.clone()
    };
    let error = plaintext.validate().unwrap_err().to_string();
    assert!(error.contains("amqps"), "{error}");
    let database_plain = Settings {
        require_tls: true,
        amqp_url: BROKER.to_owned(),
        ..env.settings.clone()
    };
    let error = database_plain.validate().unwrap_err().to_string();
    assert!(error.contains("verify-full"), "{error}");
}
