//! `gridhub bench` as CI runs it: a small run that checks counts, never speed.

use std::process::Command;

use crate::helpers::root;

/// Runs `gridhub bench` with `args` against the machine's broker and
/// database; its JSON report, once it has exited 0.
fn bench(args: &[&str]) -> serde_json::Value {
    let json = std::env::temp_dir().join(format!(
        "gridhub-bench-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_gridhub"))
        .current_dir(root())
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json)
        .env_remove("GRIDHUB_AMQP_URL")
        .env_remove("GRIDHUB_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    report
}

#[test]
fn bench_smoke_run_loses_and_doubles_nothing() {
    let report = bench(&[
        "--messages",
        "2000",
        "--latency-messages",
        "500",
        "--rate",
        "500",
        "--invalid",
        "0.05",
    ]);
    let checks = &report["checks"];
    assert_eq!(checks["ok"], true, "{checks}");
    assert_eq!(checks["sent"], 2500);
    assert_eq!(checks["duplicate_message_ids"], 0);
    let refused = checks["expected_refused"].as_u64().unwrap();
    assert!(refused > 0, "the mix has invalid messages");
    assert_eq!(checks["inbox"]["refused"].as_u64().unwrap(), refused);
    assert_eq!(checks["dlq_messages"].as_u64().unwrap(), refused);
    assert_eq!(checks["cases"], checks["expected_cases"]);
    let inbox: u64 = checks["inbox"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(inbox, 2500, "inbox rows per outcome = messages sent");
    // Every figure is there, whatever it is.
    for key in [
        "ceiling",
        "throughput",
        "latency",
        "latency_load_of_full_speed",
        "ratio",
        "hub_peak_rss_bytes",
    ] {
        assert!(!report[key].is_null(), "{key} missing");
    }
    let cpu = report["throughput"]["hub_cpu_seconds"].as_f64().unwrap();
    assert!(cpu > 0.0, "the hub's CPU for the run is measured");
    // RabbitMQ and PostgreSQL run on this machine: their CPU is told apart.
    let ms = |run: &str, part: &str| report[run]["cpu"]["ms_per_message"][part].as_f64();
    for run in ["ceiling", "throughput", "latency"] {
        assert!(ms(run, "broker").unwrap() > 0.0, "{run}: the broker's CPU");
        assert!(ms(run, "bench").is_some(), "{run}: the bench's CPU");
    }
    assert!(ms("throughput", "database").unwrap() > 0.0);
    assert!(ms("throughput", "hub").unwrap() > 0.0);
    assert_eq!(ms("ceiling", "hub"), None, "no hub runs during the ceiling");
    assert!(report["cpu_bound"]["ratio"].as_f64().unwrap() > 0.0);
}

/// A population sync in pages: every record reaches the grid platform's
/// events, counted once per page.
#[test]
fn bench_pages_of_records_forward_every_record() {
    let report = bench(&[
        "--messages",
        "60",
        "--latency-messages",
        "0",
        "--no-ceiling",
        "--page-rows",
        "500",
        "--invalid",
        "0.1",
        "--mix",
        "dept-health.resident-population=1,dept-police.floating-population=1",
    ]);
    let checks = &report["checks"];
    assert_eq!(checks["ok"], true, "{checks}");
    let refused = checks["expected_refused"].as_u64().unwrap();
    let valid = 60 - refused;
    assert_eq!(checks["records_sent"].as_u64().unwrap(), valid * 500);
    assert_eq!(checks["records_forwarded"], checks["records_sent"]);
    assert_eq!(checks["inbox"]["records_shared"].as_u64().unwrap(), valid);
    let throughput = &report["throughput"];
    assert_eq!(throughput["population_only"], true);
    assert_eq!(throughput["records"].as_u64().unwrap(), valid * 500);
}
