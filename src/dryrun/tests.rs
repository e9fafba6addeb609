use std::path::Path;

use super::*;
use crate::places::NoGrids;

fn registry() -> Registry {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Registry::load(&root.join("connectors"), &root.join("schemas")).expect("connectors")
}

fn routing() -> Routing {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Routing::load(&root.join("deploy/routing.toml")).expect("routing rules")
}

/// A judge that knows no grids: nothing can be placed.
fn unplaced<'a>(registry: &'a Registry, routing: &'a Routing) -> Judge<'a> {
    Judge {
        registry,
        routing,
        places: &NoGrids,
    }
}

fn sample(connector: &str, path: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read(
        root.join("connectors")
            .join(connector)
            .join("samples")
            .join(path),
    )
    .unwrap()
}

fn trial<'a>(connector: &'a str, message_type: &'a str, body: Vec<u8>) -> Trial<'a> {
    Trial {
        connector,
        message_type,
        version: None,
        content_type: None,
        body,
    }
}

fn now() -> DateTime<Utc> {
    "2026-12-07T02:00:00Z".parse().unwrap()
}

#[test]
fn a_ticket_becomes_a_routed_case_with_its_deadline() {
    let (registry, routing) = (registry(), routing());
    let judge = unplaced(&registry, &routing);
    let body = sample(
        "hotline-12345",
        "ticket/valid/construction-noise-yuqiao-night.json",
    );
    let verdict = judge.judge(trial("hotline-12345", "ticket", body), now());
    assert_eq!(verdict["accepted"], true, "{verdict:#}");
    assert_eq!(verdict["version"], "v1");
    let expected: Value = serde_json::from_slice(&sample(
        "hotline-12345",
        "ticket/valid/construction-noise-yuqiao-night.expect.json",
    ))
    .unwrap();
    assert_eq!(verdict["intent"], expected);
    let case = &verdict["becomes"];
    assert_eq!(case["kind"], "case");
    assert_eq!(case["status"], "dispatched");
    assert_eq!(case["category"], expected["category"]);
    assert!(case["category_name"].is_string(), "{case:#}");
    // No grids known: a level of the grid system cannot be followed down.
    assert_eq!(case["place"]["located_by"], "unplaced");
    assert!(case["lead_unit"]["id"].is_string(), "{case:#}");
    assert!(case["deadline"]["handling"].is_string(), "{case:#}");
    assert!(case["deadline"]["due_at_if_now"].is_string(), "{case:#}");
    let timeless = timeless(verdict.clone());
    assert!(timeless["becomes"]["deadline"]["due_at_if_now"].is_null());
    assert_eq!(timeless["becomes"]["lead_unit"], case["lead_unit"]);
}

#[test]
fn a_refusal_names_every_violation_and_its_path() {
    let (registry, routing) = (registry(), routing());
    let judge = unplaced(&registry, &routing);
    let body = sample("hotline-12345", "ticket/invalid/additional-property.json");
    let verdict = judge.judge(trial("hotline-12345", "ticket", body), now());
    assert_eq!(verdict["accepted"], false, "{verdict:#}");
    assert_eq!(verdict["refused_at"], "schema");
    let expected: Value = serde_json::from_slice(&sample(
        "hotline-12345",
        "ticket/invalid/additional-property.expect.json",
    ))
    .unwrap();
    let paths: Vec<&Value> = verdict["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["path"])
        .collect();
    assert!(paths.contains(&&expected["instance_path"]), "{verdict:#}");
    assert!(verdict["intent"].is_null() && verdict["becomes"].is_null());
}

#[test]
fn a_version_not_live_is_refused_naming_those_that_are() {
    let (registry, routing) = (registry(), routing());
    let judge = unplaced(&registry, &routing);
    let body = sample(
        "hotline-12345",
        "ticket/valid/construction-noise-yuqiao-night.json",
    );
    let verdict = judge.judge(
        Trial {
            version: Some("v9"),
            ..trial("hotline-12345", "ticket", body)
        },
        now(),
    );
    assert_eq!(verdict["refused_at"], "decode", "{verdict:#}");
    let reason = verdict["reason"].as_str().unwrap();
    assert!(
        reason.contains("no version v9") && reason.contains("live: v1"),
        "{reason}"
    );
}

#[test]
fn shared_records_say_with_whom_and_how_much_of_them() {
    let (registry, routing) = (registry(), routing());
    let judge = unplaced(&registry, &routing);
    let body = sample(
        "dept-health",
        "resident-population/valid/single-page-run.json",
    );
    let verdict = judge.judge(trial("dept-health", "resident-population", body), now());
    assert_eq!(verdict["accepted"], true, "{verdict:#}");
    let records = &verdict["becomes"];
    assert_eq!(records["kind"], "records");
    assert_eq!(records["dataset"], "resident-population");
    assert!(records["records"].as_u64().unwrap() > 0);
    assert_eq!(records["to"][0]["connector"], "grid-platform");
    assert!(records["to"][0]["personal_data"].is_string(), "{records:#}");
}
