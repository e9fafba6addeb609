//! The binary run from a directory with no connectors: `check`, `validate`
//! and `demo` use the connectors, schemas and rules built into it, and
//! leave no temporary folder behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{http, root, wait_until};

/// The binary, run from a fresh empty directory.
fn elsewhere() -> (Command, std::path::PathBuf) {
    let dir = crate::cli::tempdir();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gridhub"));
    command
        .current_dir(&dir)
        .env("GRIDHUB_DATA_KEYS", crate::helpers::TEST_KEY)
        // Nothing from the environment may point it at a broker or a database.
        .env("GRIDHUB_AMQP_URL", "amqp://nobody:nothing@127.0.0.1:1/%2f")
        .env("GRIDHUB_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    (command, dir)
}

/// The folders a process of this id wrote its built-in files into.
fn left_behind(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("gridhub-bundled-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn check_and_validate_run_from_any_directory() {
    let (mut command, dir) = elsewhere();
    let child = command
        .arg("check")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("built into gridhub"), "{stderr}");
    assert!(left_behind(pid).is_empty(), "{:?}", left_behind(pid));

    // A district's own message, dry-run against the built-in contract.
    let sample = root()
        .join("connectors/hotline-12345/samples/ticket/valid/construction-noise-yuqiao-night.json");
    let (mut command, _) = elsewhere();
    let output = command
        .args([
            "validate",
            "--connector",
            "hotline-12345",
            "--type",
            "ticket",
        ])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    // Named connectors that are not there are an error, not a fallback.
    let (mut command, _) = elsewhere();
    let output = command
        .args(["check", "--connectors", "nowhere"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_from_any_directory() {
    let (mut command, dir) = elsewhere();
    let mut demo = KillOnDrop(
        command
            .args(["demo", "--listen", "127.0.0.1:0", "--rate", "100"])
            .args(["--messages", "60", "--invalid", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = demo.0.id();
    let mut first = String::new();
    BufReader::new(demo.0.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no console address in {first:?}"));
    let (address, token) = url
        .trim_start_matches("http://")
        .split_once("/#token=")
        .unwrap();
    let address: std::net::SocketAddr = address.parse().unwrap();
    assert_eq!(left_behind(pid).len(), 1, "its files, while it runs");
    wait_until(Duration::from_secs(60), "calls become cases", || async {
        let (status, body) = http(address, "GET", "/api/overview", Some(token), None).await;
        assert_eq!(status, 200, "{body}");
        let now: Value = serde_json::from_str(&body).unwrap();
        let cases: i64 = now["cases_by_status"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_i64).sum())
            .unwrap_or(0);
        cases >= 20
    })
    .await;
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
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
    assert!(left_behind(pid).is_empty(), "{:?}", left_behind(pid));
    std::fs::remove_dir_all(dir).unwrap();
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
