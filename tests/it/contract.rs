//! A department reads its own connector's contract over the API, as the CLI
//! prints it, and no other department's.

use gridhub::settings::Role;
use serde_json::Value;

use crate::cli::gridhub;
use crate::helpers::{OPS_TOKEN, TestEnv};

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
