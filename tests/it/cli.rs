//! The binary as operators run it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestEnv, root};

const SECRET_TOKEN: &str = "never-logged-token-5f2a9c";

/// The binary, run from the checkout with the test data key (as a
/// district runs every part with its keys).
pub fn gridhub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gridhub"));
    command
        .current_dir(root())
        .env("GRIDHUB_DATA_KEYS", crate::helpers::TEST_KEY);
    command
}

#[test]
fn check_passes_on_the_bundled_connectors() {
    let output = gridhub().arg("check").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn check_refuses_an_event_the_hub_never_publishes() {
    let dir = bundled_copy();
    copy_dir(&root().join("deploy"), &dir.join("deploy"));
    let toml = dir.join("connectors/hotline-12345/connector.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("\"case.responded\"", "\"case.respnded\"");
    std::fs::write(&toml, text).unwrap();
    let output = check(&dir);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{all}");
    assert!(
        all.contains("receives \"case.respnded\", which the hub never publishes"),
        "{all}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_names_the_file_of_every_problem() {
    let dir = bundled_copy();
    std::fs::create_dir_all(dir.join("deploy")).unwrap();
    for file in ["routing.toml", "calendar.toml", "assessment.toml"] {
        std::fs::copy(
            root().join("deploy").join(file),
            dir.join("deploy").join(file),
        )
        .unwrap();
    }
    let expect = dir.join(
        "connectors/hotline-12345/samples/ticket/valid/construction-noise-yuqiao-night.expect.json",
    );
    let text = std::fs::read_to_string(&expect)
        .unwrap()
        .replace("noise.construction", "noise.commercial");
    std::fs::write(&expect, text).unwrap();
    std::fs::write(
        dir.join("connectors/hotline-12345/mappings/ticket.jq"),
        "{kind: ",
    )
    .unwrap();
    let output = check(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        stdout.contains("mappings/ticket.jq: cannot parse jq program"),
        "{stdout}"
    );
    std::fs::write(
        dir.join("connectors/hotline-12345/mappings/ticket.jq"),
        std::fs::read(root().join("connectors/hotline-12345/mappings/ticket.jq")).unwrap(),
    )
    .unwrap();
    let output = check(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    let problems = stdout.lines().filter(|l| !l.contains(": warning: "));
    assert_eq!(problems.count(), 1, "{stdout}");
    assert!(
        stdout.contains(
            "construction-noise-yuqiao-night.json: intent differs from expectation: keys category"
        ),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn definitions_file_matches_the_declared_topology() {
    let output = gridhub().arg("topology").output().unwrap();
    assert!(output.status.success());
    let generated: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/rabbitmq/definitions.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        generated, committed,
        "run `gridhub topology > deploy/rabbitmq/definitions.json`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publish_cases_dlq_and_sigterm() {
    let env = TestEnv::new().await;
    let config = env.config_file("shutdown_grace_secs = 5\nhttp_listen = \"127.0.0.1:0\"\n");
    let mut serve = gridhub()
        .args(["serve", "--config"])
        .arg(&config)
        .env("GRIDHUB_DATABASE_URL", &env.database_url)
        .env("GRIDHUB_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,gridhub=debug")
        .env("GRIDHUB_OPS_TOKEN", SECRET_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let samples = root().join("connectors/hotline-96156/samples/ticket");
    let valid: Vec<_> = std::fs::read_dir(samples.join("valid"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".expect.json"))
        .collect();
    // `gridhub publish` of 96156 tickets, as their files.
    let publish = |files: &[std::path::PathBuf]| {
        gridhub()
            .args([
                "publish",
                "--connector",
                "hotline-96156",
                "--type",
                "ticket",
            ])
            .arg("--config")
            .arg(&config)
            .args(files)
            .output()
            .unwrap()
    };
    let output = publish(&valid);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches("confirmed ")
            .count(),
        valid.len()
    );
    let bad = samples.join("invalid/not-json.json");
    let bad = if bad.exists() {
        bad
    } else {
        first_invalid(&samples)
    };
    let output = publish(&[bad]);
    assert!(output.status.success());

    env.wait_count(
        "SELECT count(*) FROM inbox",
        valid.len() as i64 + 1,
        Duration::from_secs(20),
    )
    .await;
    let output = gridhub()
        .args(["cases", "--json", "--limit", "100"])
        .env("GRIDHUB_DATABASE_URL", &env.database_url)
        .output()
        .unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cases.len(), valid.len());
    for case in &cases {
        for field in [
            "case_no",
            "status",
            "channel",
            "nature",
            "received_at",
            "sources",
        ] {
            assert!(!case[field].is_null(), "{field} missing in {case}");
        }
        assert_eq!(case["channel"], "96156");
        assert_eq!(case["sources"][0]["connector"], "hotline-96156");
    }
    // The assessment and hot spots of today: every case received.
    let today = chrono::Utc::now()
        .with_timezone(&gridhub::assessment::beijing())
        .date_naive()
        .to_string();
    let query = |args: &[&str]| {
        let output = gridhub()
            .args(args)
            .args(["--from", &today, "--to", &today, "--config"])
            .arg(&config)
            .env("GRIDHUB_DATABASE_URL", &env.database_url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let assessment: serde_json::Value =
        serde_json::from_str(&query(&["assess", "--json", "--by", "unit"])).unwrap();
    assert_eq!(assessment["total"]["current"]["received"], valid.len());
    let csv = query(&["assess", "--csv"]);
    assert!(csv.starts_with("rank,street,name,received,"), "{csv}");
    // A line a street and one for the district, after the header.
    assert!(csv.lines().count() >= 3, "{csv}");
    assert!(query(&["assess"]).contains("全区 (district)"));
    let spots: serde_json::Value =
        serde_json::from_str(&query(&["hotspots", "--json", "--by", "street"])).unwrap();
    let counted: u64 = spots["top_categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert!(counted > 0 && counted <= valid.len() as u64, "{spots}");
    let output = gridhub()
        .args([
            "dlq",
            "list",
            "--json",
            "--connector",
            "hotline-96156",
            "--config",
        ])
        .arg(&config)
        .env("GRIDHUB_DATABASE_URL", &env.database_url)
        .output()
        .unwrap();
    let letters: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(letters.len(), 1);
    for field in ["connector", "stage", "reason", "message_id"] {
        assert!(!letters[0][field].is_null(), "{field} missing");
    }

    // SIGTERM: stop consuming, finish, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_for_exit(&mut serve, Duration::from_secs(20));
    let mut logs = String::new();
    std::io::Read::read_to_string(serve.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert_eq!(exit, Some(0), "{logs}");
    // Structured logs, and no personal data from the samples in them.
    assert!(logs.lines().all(|l| l.starts_with('{')), "{logs}");
    assert!(logs.contains("ops console and API listening"), "{logs}");
    assert!(!logs.contains(SECRET_TOKEN), "a token in the logs");
    // A message's lines carry connector, message_id and case number as span fields.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let in_consumer = |line: &serde_json::Value| {
        line["spans"].as_array().is_some_and(|spans| {
            spans
                .iter()
                .any(|s| s["name"] == "consumer" && s["connector"] == "hotline-96156")
        })
    };
    let opened = lines
        .iter()
        .find(|l| l["message"] == "case opened")
        .expect("a case-opened line");
    assert!(in_consumer(opened), "{opened}");
    assert_eq!(opened["span"]["name"], "message");
    assert!(
        opened["span"]["message_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        opened["span"]["case_no"]
            .as_str()
            .is_some_and(|no| no.starts_with("TZ"))
    );
    let refused = lines
        .iter()
        .find(|l| l["message"] == "refused")
        .expect("a refusal line");
    assert!(in_consumer(refused), "{refused}");
    assert!(refused["span"]["message_id"].as_str().is_some());
    for sample in &valid {
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sample).unwrap()).unwrap();
        for pointer in ["/lxr/dh", "/lxr/xm", "/lxr/sfzh"] {
            if let Some(value) = body.pointer(pointer).and_then(|v| v.as_str()) {
                assert!(!logs.contains(value), "personal data {pointer} in logs");
            }
        }
    }
}

fn first_invalid(samples: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(samples.join("invalid"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| !p.to_string_lossy().ends_with(".expect.json"))
        .unwrap()
}

fn wait_for_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

/// Runs `command` with `input` on its standard input, to the end.
pub fn output_with_input(command: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gridhub-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh directory holding a copy of the bundled connectors and schemas.
pub fn bundled_copy() -> std::path::PathBuf {
    let dir = tempdir();
    copy_dir(&root().join("connectors"), &dir.join("connectors"));
    copy_dir(&root().join("schemas"), &dir.join("schemas"));
    dir
}

/// [`bundled_copy`] with `connector`'s ticket mapping failing every
/// message ("mapping under repair").
pub fn broken_ticket_mapping(connector: &str) -> std::path::PathBuf {
    let dir = bundled_copy();
    std::fs::write(
        dir.join(format!("connectors/{connector}/mappings/ticket.jq")),
        "error(\"mapping under repair\")",
    )
    .unwrap();
    dir
}

/// `gridhub check` of the connectors in `dir`.
fn check(dir: &std::path::Path) -> std::process::Output {
    gridhub()
        .arg("check")
        .arg("--connectors")
        .arg(dir.join("connectors"))
        .output()
        .unwrap()
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_is_kept_as_its_hash_and_opens_the_api() {
    let output = gridhub()
        .args(["token", "new", "night-shift", "--role", "ops"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let secret = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let entry = String::from_utf8(output.stderr).unwrap();
    let start = entry.find("[[tokens]]").expect("an entry for the settings");
    assert!(!entry.contains(&secret), "the entry holds no secret");
    let settings: gridhub::settings::Settings = toml::from_str(&entry[start..]).unwrap();
    let env = TestEnv::new().await;
    let hub = env
        .start_hub(gridhub::settings::Settings {
            tokens: settings.tokens.clone(),
            ..env.settings.clone()
        })
        .await;
    let (status, _) = hub.get("/api/overview", &secret).await;
    assert_eq!(status, 200);
    let stored = settings.tokens[0].token.clone();
    let (status, _) = hub.get("/api/overview", &stored).await;
    assert_eq!(status, 401, "the stored hash is no token");
    hub.stop().await;
}

#[test]
fn check_warns_of_a_field_that_unmasks_what_is_masked() {
    let dir = bundled_copy();
    // A record that carries the resident's mobile again, undeclared, to the
    // grid platform (entitled to masked records only).
    let expect = dir.join(
        "connectors/dept-health/samples/resident-population/valid/single-page-run.expect.json",
    );
    let text = std::fs::read_to_string(&expect).unwrap().replacen(
        "\"attributes\": {",
        "\"attributes\": {\"contact\": \"13601234567\",",
        1,
    );
    std::fs::write(&expect, text).unwrap();
    let output = check(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "warning: dept-health resident-population: records field attributes.contact \
             looks like a mobile phone number and reaches grid-platform"
        ),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
