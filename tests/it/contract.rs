//! A department reads its own connector's contract over the API, as the CLI
//! prints it, and no other department's.

use std::collections::BTreeMap;
use std::time::Duration;

use gridhub::check::{Expectation, Sample};
use gridhub::pipeline::Stage;
use gridhub::settings::Role;
use serde_json::{Value, json};

use crate::cli::gridhub;
use crate::helpers::{OPS_TOKEN, TestEnv, http_bytes};

const HOUSING: &str = "housing-commission-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_reads_its_own_contract_and_no_other() {
    let env = TestEnv::new().await;
    let unit = "dept-housing";
    let settings = env.settings_with_token(unit, HOUSING, Role::Viewer, &[unit]);
    let hub = env.start_hub(settings).await;

    // The centre lists every connector; the department only its own.
    let (status, all) = hub.get("/api/connectors", OPS_TOKEN).await;
    assert_eq!(status, 200, "{all}");
    assert!(all.as_array().unwrap().len() >= 10, "{all}");
    let (status, own) = hub.get("/api/connectors", HOUSING).await;
    assert_eq!(status, 200, "{own}");
    let ids: Vec<&str> = own
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [unit]);
    let (status, other) = hub.get("/api/connectors/hotline-12345", HOUSING).await;
    assert_eq!(status, 404, "{other}");

    let (status, contract) = hub.get("/api/connectors/dept-housing", HOUSING).await;
    assert_eq!(status, 200, "{contract}");
    let feedback = &contract["publish"]["messages"][0];
    assert_eq!(feedback["routing_key"], "dept-housing.feedback");
    assert_eq!(
        feedback["schema"]["$id"],
        "https://gridhub.example/schemas/dept-housing/feedback.v1.json"
    );
    assert_eq!(contract["publish"]["user_id_required"], true);
    // Two versions of feedback are live: v1, deprecated, and v2, chosen by
    // the AMQP type property.
    assert_eq!(feedback["version"], "v1");
    assert_eq!(feedback["deprecated"], "2027-06-30");
    assert!(feedback["amqp_type"].is_null());
    let v2 = &contract["publish"]["messages"][1];
    assert_eq!(
        (&v2["type"], &v2["version"]),
        (&"feedback".into(), &"v2".into())
    );
    assert_eq!(v2["amqp_type"], "v2");
    assert_eq!(v2["routing_key"], "dept-housing.feedback");
    assert!(
        v2["samples"]["valid"].as_array().unwrap().len() >= 3,
        "{v2}"
    );
    // Every sample, the valid with the intent it becomes, the invalid with
    // where and why it is refused.
    let samples = |kind: &str| feedback["samples"][kind].as_array().unwrap().clone();
    let sample_files = |kind: &str| {
        std::fs::read_dir(
            crate::helpers::root()
                .join("connectors/dept-housing/samples/feedback")
                .join(kind),
        )
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".expect.json")
        })
        .count()
    };
    assert_eq!(samples("valid").len(), sample_files("valid"));
    assert_eq!(samples("invalid").len(), sample_files("invalid"));
    assert!(
        samples("valid")
            .iter()
            .all(|s| s["intent"]["kind"] == "update_case" && s["body"].is_string())
    );
    assert!(
        samples("invalid")
            .iter()
            .all(|s| s["refused_at"].is_string() && s["path"].is_string() && s["why"].is_string())
    );
    // What it receives back, with the events' schema; what it may see of
    // personal data.
    assert_eq!(contract["receive"]["queue"], "gridhub.out.dept-housing");
    assert!(
        contract["receive"]["routing_keys"]
            .as_array()
            .unwrap()
            .contains(&Value::from("dept-housing.case.dispatched"))
    );
    assert!(contract["receive"]["event_schema"]["$id"].is_string());
    assert_eq!(contract["personal_data_received"]["reporter"], "masked");

    // The CLI prints the same contract.
    let output = gridhub()
        .args(["connector", "show", unit, "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, contract);
    let output = gridhub()
        .args(["connector", "show", unit])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("dept-housing.feedback"), "{text}");
    assert!(text.contains("gridhub.out.dept-housing"), "{text}");
}

/// The dry run of one sample over the API: its verdict.
async fn dry_run(hub: &crate::helpers::RunningHub, token: &str, sample: &Sample) -> (u16, Value) {
    let inbound = sample.inbound("dry-run").unwrap();
    let mut path = format!(
        "/api/connectors/{}/{}/validate?content_type={}",
        sample.connector,
        sample.message_type,
        inbound
            .content_type
            .as_deref()
            .unwrap_or_default()
            .replace('/', "%2F")
            .replace(';', "%3B")
            .replace(' ', "%20")
            .replace('=', "%3D")
    );
    if let Some(version) = &inbound.amqp_type {
        path.push_str(&format!("&version={version}"));
    }
    let addr = hub.http.unwrap();
    let (status, text) = http_bytes(
        addr,
        "POST",
        &path,
        Some(token),
        Some(("application/octet-stream", inbound.body)),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every sample of every connector, dry-run over the API on a hub holding
/// the bundled district: each gives what its expectation file says, and
/// `gridhub validate`, offline, gives the same verdict file for file. A
/// department's token tries its own connector only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_of_every_sample_matches_its_expectation_online_and_offline() {
    let env = TestEnv::new().await;
    let unit = "dept-housing";
    let settings = env.settings_with_token(unit, HOUSING, Role::Viewer, &[unit]);
    let hub = env.start_hub(settings).await;
    let district = gridhub::district::generate(gridhub::district::DEFAULT_SEED);
    let planning: Vec<_> =
        gridhub::district::planning_messages(&district, gridhub::district::DEFAULT_PER_MESSAGE)
            .into_iter()
            .map(|m| {
                crate::helpers::outgoing(
                    "dept-planning",
                    "grid-boundaries",
                    serde_json::to_vec(&m).unwrap(),
                )
            })
            .collect();
    env.publish(&planning).await;
    env.wait_count("SELECT count(*) FROM grids", 1809, Duration::from_secs(60))
        .await;
    let registry = &hub.rules.registry;
    let mut samples = Vec::new();
    for connector in registry.connectors.values() {
        let (found, problems) = gridhub::check::samples(connector);
        assert!(problems.is_empty(), "{problems:?}");
        samples.extend(found);
    }
    assert!(samples.len() > 400, "{}", samples.len());
    // Offline, one run per connector, type, version and content type.
    // (connector, type, AMQP type, content type) → files.
    type Run = (String, String, Option<String>, Option<String>);
    let mut runs: BTreeMap<Run, Vec<String>> = BTreeMap::new();
    for sample in &samples {
        let inbound = sample.inbound("dry-run").unwrap();
        runs.entry((
            sample.connector.clone(),
            sample.message_type.clone(),
            inbound.amqp_type,
            inbound.content_type,
        ))
        .or_default()
        .push(sample.path.display().to_string());
    }
    let mut offline = BTreeMap::new();
    for ((connector, message_type, version, content_type), files) in runs {
        let mut command = gridhub();
        command.args([
            "validate",
            "--json",
            "--connector",
            &connector,
            "--type",
            &message_type,
        ]);
        if let Some(version) = &version {
            command.args(["--amqp-type", version]);
        }
        if let Some(content_type) = &content_type {
            command.args(["--content-type", content_type]);
        }
        let output = command.args(&files).output().unwrap();
        let verdicts: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{connector} {message_type}: {e}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        let refused = verdicts.iter().any(|v| v["accepted"] != true);
        assert_eq!(
            output.status.success(),
            !refused,
            "{connector} {message_type}"
        );
        for mut verdict in verdicts {
            let file = verdict.as_object_mut().unwrap().remove("file").unwrap();
            offline.insert(
                file.as_str().unwrap().to_owned(),
                gridhub::dryrun::timeless(verdict),
            );
        }
    }
    assert_eq!(offline.len(), samples.len());

    // Online: the hub reloads its places a moment after the last grids are
    // in (places_refresh_ms); until then a case may be placed on fewer.
    let mut attempts = 0;
    let online = loop {
        attempts += 1;
        let mut online = BTreeMap::new();
        for sample in &samples {
            let (status, verdict) = dry_run(&hub, OPS_TOKEN, sample).await;
            assert_eq!(status, 200, "{}: {verdict}", sample.path.display());
            online.insert(
                sample.path.display().to_string(),
                gridhub::dryrun::timeless(verdict),
            );
        }
        if online == offline || attempts == 20 {
            break online;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (file, verdict) in &online {
        assert_eq!(Some(verdict), offline.get(file), "{file}");
    }
    for sample in &samples {
        let file = sample.path.display().to_string();
        let verdict = &online[&file];
        match &sample.expect {
            Expectation::Intent(intent) => {
                assert_eq!(verdict["accepted"], true, "{file}: {verdict:#}");
                assert_eq!(&verdict["intent"], intent, "{file}");
                assert!(
                    verdict["becomes"]["kind"].is_string(),
                    "{file}: {verdict:#}"
                );
            }
            // What only the case store refuses passes the dry run's stages.
            Expectation::Refusal(expected) if expected.stage == Stage::Apply => {
                assert_eq!(verdict["accepted"], true, "{file}: {verdict:#}");
            }
            Expectation::Refusal(expected) => {
                assert_eq!(verdict["accepted"], false, "{file}: {verdict:#}");
                assert_eq!(
                    verdict["refused_at"],
                    expected.stage.as_str(),
                    "{file}: {verdict:#}"
                );
                let paths: Vec<&str> = verdict["violations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|v| v["path"].as_str())
                    .collect();
                assert!(
                    paths.contains(&expected.instance_path.as_str()),
                    "{file}: {verdict:#}"
                );
            }
        }
    }
    // The bundled district places by coordinates, by address and by name.
    let located: std::collections::BTreeSet<&str> = online
        .values()
        .filter_map(|v| v["becomes"]["place"]["located_by"].as_str())
        .collect();
    for how in ["coordinates", "street", "unplaced"] {
        assert!(located.contains(how), "{located:?}");
    }

    // A department's token tries its own connector, and no other.
    let own = samples.iter().find(|s| s.connector == unit).unwrap();
    let (status, verdict) = dry_run(&hub, HOUSING, own).await;
    assert_eq!(status, 200, "{verdict}");
    let other = samples
        .iter()
        .find(|s| s.connector == "hotline-12345")
        .unwrap();
    let (status, verdict) = dry_run(&hub, HOUSING, other).await;
    assert_eq!(status, 404, "{verdict}");
    // A version that is not live, and nothing stored or sent by any of it.
    let (status, verdict) = hub
        .call(
            "POST",
            "/api/connectors/dept-housing/feedback/validate?version=v9",
            Some(HOUSING),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["refused_at"], "decode", "{verdict}");
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 0);
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 0);
    hub.stop().await;
}
