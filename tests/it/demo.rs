//! `gridhub demo`, the one command a newcomer runs: no broker, no database,
//! calls become cases and refusals land in their DLQs, the demo's units take
//! cases round the closed loop, the console and the API answer, and SIGTERM
//! stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::cli::gridhub;
use crate::helpers::{http, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_alone_and_serves_the_console() {
    let mut demo = KillOnDrop(
        gridhub()
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--rate",
                "200",
                "--messages",
                "400",
                "--invalid",
                "0.1",
            ])
            // Nothing from the environment may point it at a broker or a database.
            .env("GRIDHUB_AMQP_URL", "amqp://nobody:nothing@127.0.0.1:1/%2f")
            .env("GRIDHUB_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let first = {
        let mut line = String::new();
        BufReader::new(demo.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        line
    };
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no console address in {first:?}"));
    let (address, token) = url
        .trim_start_matches("http://")
        .split_once("/#token=")
        .unwrap();
    let address: std::net::SocketAddr = address.parse().unwrap();
    let token = token.to_owned();

    let (status, page) = http(address, "GET", "/", None, None).await;
    assert_eq!(status, 200);
    assert!(page.contains("gridhub"));
    let (status, _) = http(address, "GET", "/api/overview", None, None).await;
    assert_eq!(status, 401, "the API wants a token in the demo too");

    let overview = || async {
        let (status, body) = http(address, "GET", "/api/overview", Some(&token), None).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    wait_until(
        Duration::from_secs(60),
        "cases opened and refusals dead-lettered",
        || async {
            let now = overview().await;
            let cases: i64 = now["cases_by_status"]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_i64).sum())
                .unwrap_or(0);
            cases >= 100 && now["dlq_total"].as_u64().unwrap_or(0) >= 10
        },
    )
    .await;
    let now = overview().await;
    assert!(
        now["cases_by_status"]["dispatched"].as_i64().unwrap_or(0) > 0,
        "{now}"
    );
    let (status, ready) = http(address, "GET", "/readyz", None, None).await;
    assert_eq!(status, 200, "{ready}");
    let (_, body) = http(address, "GET", "/api/cases?limit=100", Some(&token), None).await;
    let cases: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(cases.len(), 100);
    let placed = cases.iter().filter(|c| c["grid_id"].is_string()).count();
    assert!(
        placed > 20,
        "{placed} of 100 cases placed in the district's grids"
    );
    let (_, body) = http(address, "GET", "/api/dlq/groups", Some(&token), None).await;
    let groups: Value = serde_json::from_str(&body).unwrap();
    assert!(!groups["groups"].as_array().unwrap().is_empty());
    // The demo's units answer: cases are signed for, handled, verified,
    // called back and closed.
    wait_until(
        Duration::from_secs(90),
        "cases round the closed loop",
        || async {
            let now = overview().await;
            ["accepted", "closed"]
                .iter()
                .all(|s| now["cases_by_status"][s].as_i64().unwrap_or(0) > 0)
        },
    )
    .await;
    // Cases led inside the grid system finish too: the grid platform
    // reports progress and responds for its levels.
    wait_until(
        Duration::from_secs(90),
        "a case led by a level of the grid system responded",
        || async {
            let (_, body) = http(address, "GET", "/api/cases?limit=1000", Some(&token), None).await;
            let cases: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
            cases.iter().any(|c| {
                ["grid", "community", "street", "district-centre"]
                    .contains(&c["lead_unit"].as_str().unwrap_or_default())
                    && ["responded", "verifying", "callback", "closed"]
                        .contains(&c["status"].as_str().unwrap_or_default())
            })
        },
    )
    .await;

    // SIGTERM: it stops and exits 0.
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &demo.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// The demo process, killed if the test ends before it stopped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
