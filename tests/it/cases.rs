//! Finding and reading cases: by filters, by a source's ticket id, by a
//! caller's phone through its keyed hash, and one case whole with its
//! timeline; in the API and the CLI, within a token's scope, audited.

use std::time::Duration;

use gridhub::settings::Role;
use serde_json::{Value, json};

use crate::cli::gridhub;
use crate::helpers::{OPS_TOKEN, TestEnv, outgoing};

const URBAN: &str = "urban-management-token-0123456789";

/// A 12345 ticket from a caller who gives their name and phone.
fn ticket(ticket_no: &str, category: &str, phone: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&crate::helpers::ticket_12345(ticket_no)).unwrap();
    body["category"] = json!({"code": category, "name": "test"});
    body["callerPhone"] = json!(phone);
    body["anonymous"] = json!(false);
    serde_json::to_vec(&body).unwrap()
}

fn numbers(cases: &Value) -> Vec<String> {
    let mut numbers: Vec<String> = cases
        .as_array()
        .unwrap_or_else(|| panic!("a list: {cases}"))
        .iter()
        .map(|c| c["case_no"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_found_by_ticket_and_by_phone_and_read_whole() {
    let env = TestEnv::new().await;
    let unit = "dept-urban-management";
    let settings = env.settings_with_token(unit, URBAN, Role::Viewer, &[unit]);
    let hub = env.start_hub(settings).await;
    // The same caller twice (construction noise, then water), another once.
    let (noise, water, other) = (
        "BJ12345-20261206-000301",
        "BJ12345-20261206-000302",
        "BJ12345-20261206-000303",
    );
    env.publish(&[
        outgoing(
            "hotline-12345",
            "ticket",
            ticket(noise, "0301", "13911112222"),
        ),
        outgoing(
            "hotline-12345",
            "ticket",
            ticket(water, "0501", "13911112222"),
        ),
        outgoing(
            "hotline-12345",
            "ticket",
            ticket(other, "0502", "13733334444"),
        ),
    ])
    .await;
    env.wait_count("SELECT count(*) FROM cases", 3, Duration::from_secs(20))
        .await;

    // By ticket id.
    let (status, found) = hub
        .get(&format!("/api/cases?ticket={noise}"), OPS_TOKEN)
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["sources"][0]["ref"], noise);
    let noise_case = found[0]["case_no"].as_str().unwrap().to_owned();

    // By phone, in a body: the same digits however written.
    let (status, by_phone) = hub
        .post(
            "/api/cases/find",
            OPS_TOKEN,
            &json!({"phone": "139 1111 2222"}),
        )
        .await;
    assert_eq!(status, 200, "{by_phone}");
    assert_eq!(by_phone.as_array().unwrap().len(), 2, "{by_phone}");
    assert!(numbers(&by_phone).contains(&noise_case));
    let (_, narrowed) = hub
        .post(
            "/api/cases/find",
            OPS_TOKEN,
            &json!({"phone": "13911112222", "category": "utility.water"}),
        )
        .await;
    let (_, water_found) = hub
        .get(&format!("/api/cases?ticket={water}"), OPS_TOKEN)
        .await;
    assert_eq!(narrowed.as_array().unwrap().len(), 1, "{narrowed}");
    assert_eq!(
        narrowed[0]["category"], water_found[0]["category"],
        "{narrowed}"
    );
    // Never in an address, which is logged; unknown filters are refused.
    let (status, _) = hub.get("/api/cases?phone=13911112222", OPS_TOKEN).await;
    assert_eq!(status, 400);
    let (status, _) = hub.get("/api/cases?colour=red", OPS_TOKEN).await;
    assert_eq!(status, 400);

    // Filters and paging.
    let (_, all) = hub.get("/api/cases?channel=12345&limit=2", OPS_TOKEN).await;
    let (_, rest) = hub
        .get("/api/cases?channel=12345&limit=2&offset=2", OPS_TOKEN)
        .await;
    assert_eq!(
        (
            all.as_array().unwrap().len(),
            rest.as_array().unwrap().len()
        ),
        (2, 1)
    );
    let (_, words) = hub
        .get(
            &format!("/api/cases?text={}", "%E5%99%AA%E5%A3%B0"),
            OPS_TOKEN,
        )
        .await;
    assert_eq!(
        words.as_array().unwrap().len(),
        3,
        "噪声 is in every title: {words}"
    );
    let (_, none) = hub
        .get("/api/cases?received_from=2030-01-01T00:00:00Z", OPS_TOKEN)
        .await;
    assert_eq!(none, json!([]));

    // One case whole: sources, deadlines, the timeline.
    let (status, case) = hub
        .get(&format!("/api/cases/{noise_case}"), OPS_TOKEN)
        .await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["sources"][0]["ref"], noise);
    assert_eq!(case["lead_unit"], "dept-urban-management");
    assert!(case["deadlines"]["due_at"].is_string(), "{case}");
    assert!(case["deadlines"]["sign_for_due_at"].is_string(), "{case}");
    let kinds: Vec<&str> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.starts_with(&["opened"]), "{kinds:?}");
    assert!(kinds.contains(&"dispatched"), "{kinds:?}");
    assert!(
        case.get("reporter").is_none(),
        "no reporter in a case: {case}"
    );
    let (status, _) = hub.get("/api/cases/TZ0000000000000", OPS_TOKEN).await;
    assert_eq!(status, 404);

    // A department reads only the cases that concern it.
    let (status, _) = hub.get(&format!("/api/cases/{noise_case}"), URBAN).await;
    assert_eq!(status, 200);
    let (_, other_found) = hub
        .get(&format!("/api/cases?ticket={other}"), OPS_TOKEN)
        .await;
    let other_case = other_found[0]["case_no"].as_str().unwrap();
    assert_ne!(other_found[0]["lead_unit"], "dept-urban-management");
    let (status, _) = hub.get(&format!("/api/cases/{other_case}"), URBAN).await;
    assert_eq!(status, 404, "outside its scope");
    let (_, scoped) = hub
        .post("/api/cases/find", URBAN, &json!({"phone": "13911112222"}))
        .await;
    assert_eq!(numbers(&scoped), vec![noise_case.clone()]);

    // Audited, and the phone is nowhere in the trail.
    let trail: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor FROM dlq_audit ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert!(
        trail.contains(&("find-by-phone".into(), "token:tester".into())),
        "{trail:?}"
    );
    assert!(
        trail.contains(&("read-case".into(), "token:tester".into())),
        "{trail:?}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dlq_audit WHERE filter::text LIKE '%1111%'")
            .await,
        0
    );

    // The CLI: find by ticket, by phone from standard input, show whole.
    let config = env.config_file("");
    let run = |args: &[&str], input: &str| {
        let output = crate::cli::output_with_input(
            gridhub()
                .args(args)
                .arg("--config")
                .arg(&config)
                .env("GRIDHUB_DATABASE_URL", &env.database_url),
            input,
        );
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = run(&["case", "find", "--ticket", noise], "");
    assert!(printed.contains(&noise_case), "{printed}");
    let printed = run(&["cases", "--phone", "-", "--json"], "13911112222\n");
    let listed: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(numbers(&listed), numbers(&by_phone));
    let printed = run(&["case", "show", &noise_case], "");
    assert!(printed.contains("timeline"), "{printed}");
    assert!(printed.contains("dispatched"), "{printed}");
    assert!(!printed.contains("13911112222"), "{printed}");
    let shown: Value =
        serde_json::from_str(&run(&["case", "show", &noise_case, "--json"], "")).unwrap();
    assert_eq!(shown["timeline"], case["timeline"]);
    hub.stop().await;
}
