//! Cases led inside the grid system finish: the grid platform reports
//! progress and responds for its levels, and the district centre's desk
//! records a response for a department whose system is not connected.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{OPS_TOKEN, TestEnv, VIEWER_TOKEN, outgoing, root, wait_until};

/// A 12345 ticket of the given category code (see the 12345 mapping's
/// catalogue), by an anonymous caller who wants no callback.
fn ticket(ticket_no: &str, category: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&crate::helpers::ticket_12345(ticket_no)).unwrap();
    body["category"] = json!({"code": category, "name": "test"});
    serde_json::to_vec(&body).unwrap()
}

/// A grid-platform sample with its case number replaced.
fn grid_sample(message_type: &str, name: &str, case_no: &str) -> Vec<u8> {
    let path = root().join(format!(
        "connectors/grid-platform/samples/{message_type}/valid/{name}.json"
    ));
    let mut body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    body["CASE_NO"] = json!(case_no);
    serde_json::to_vec(&body).unwrap()
}

async fn case_of(env: &TestEnv, ticket_no: &str) -> (String, String, String) {
    find_case(env, ticket_no).await.expect("case opened")
}

async fn find_case(env: &TestEnv, ticket_no: &str) -> Option<(String, String, String)> {
    sqlx::query_as(
        "SELECT c.case_no, c.status, coalesce(c.lead_unit, '') FROM cases c
         JOIN case_sources s ON s.case_id = c.id WHERE s.source_ref = $1",
    )
    .bind(ticket_no)
    .fetch_optional(&env.pool)
    .await
    .unwrap()
}

async fn wait_status(env: &TestEnv, ticket_no: &str, status: &str) {
    wait_until(
        Duration::from_secs(15),
        &format!("{ticket_no} {status}"),
        || async {
            find_case(env, ticket_no)
                .await
                .is_some_and(|c| c.1 == status)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_led_inside_the_grid_system_finish() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    // Water and power: departments not connected, led by the district centre.
    // Construction noise: 城管, which reports on its own queue.
    let (water, power, noise) = (
        "BJ12345-20261201-000101",
        "BJ12345-20261201-000102",
        "BJ12345-20261201-000103",
    );
    env.publish(&[
        outgoing("hotline-12345", "ticket", ticket(water, "0501")),
        outgoing("hotline-12345", "ticket", ticket(power, "0502")),
        outgoing("hotline-12345", "ticket", ticket(noise, "0301")),
    ])
    .await;
    for ticket_no in [water, power, noise] {
        wait_status(&env, ticket_no, "dispatched").await;
    }
    let (water_case, _, lead) = case_of(&env, water).await;
    assert_eq!(lead, "district-centre");

    // The grid platform signs for the case, reports progress and responds,
    // with photos, for the level that leads it.
    for (message_type, sample, status) in [
        ("acceptance", "community-majuqiao-minimal", "accepted"),
        ("progress", "mediating-dispute-yuqiao", "in_progress"),
        // Not placed in a grid and no callback wanted: a response closes it.
        ("response", "solved-dispute-yuqiao", "closed"),
    ] {
        let body = grid_sample(message_type, sample, &water_case);
        env.publish(&[outgoing("grid-platform", message_type, body)])
            .await;
        wait_status(&env, water, status).await;
    }
    let photos: Option<Value> = sqlx::query_scalar(
        "SELECT e.media FROM case_events e JOIN cases c ON c.id = e.case_id
         WHERE c.case_no = $1 AND e.kind = 'respond'",
    )
    .bind(&water_case)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let expect: Value = serde_json::from_slice(
        &std::fs::read(root().join(
            "connectors/grid-platform/samples/response/valid/solved-dispute-yuqiao.expect.json",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        photos.as_ref(),
        expect.get("media"),
        "the response's photos are kept"
    );

    // The desk records the power company's response for it: the unit is
    // named and the token's owner is the actor.
    let (power_case, _, _) = case_of(&env, power).await;
    let path = format!("/api/cases/{power_case}/respond");
    let response = json!({
        "unit": "国网北京通州供电公司",
        "note": "抢修班组已更换损坏的电缆分支箱，小区恢复供电。",
        "photos": ["https://grid.tz.example/photo/desk/1.jpg"]
    });
    let (status, body) = hub.post(&path, VIEWER_TOKEN, &response).await;
    assert_eq!(status, 403, "a viewer cannot act: {body}");
    let (status, body) = hub.call("POST", &path, None, Some(&response)).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = hub
        .post(&path, OPS_TOKEN, &json!({"unit": "", "note": "x"}))
        .await;
    assert_eq!(status, 422, "a response names its unit: {body}");
    let (status, body) = hub.post(&path, OPS_TOKEN, &response).await;
    assert_eq!(status, 200, "{body}");
    wait_status(&env, power, "closed").await;
    let (actor, on_behalf_of, connector): (String, Option<String>, Option<String>) =
        sqlx::query_as(
            "SELECT e.actor, e.on_behalf_of, e.connector FROM case_events e
             JOIN cases c ON c.id = e.case_id WHERE c.case_no = $1 AND e.kind = 'respond'",
        )
        .bind(&power_case)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(actor, "token:tester");
    assert_eq!(on_behalf_of.as_deref(), Some("国网北京通州供电公司"));
    assert_eq!(connector, None, "no connector sent it");
    // Again: a closed case takes no second response.
    let (status, body) = hub.post(&path, OPS_TOKEN, &response).await;
    assert_eq!(
        status, 200,
        "a response behind the case is recorded as late: {body}"
    );
    assert_eq!(case_of(&env, power).await.1, "closed");

    // A connected department answers on its own queue: the desk refuses.
    let (noise_case, _, lead) = case_of(&env, noise).await;
    assert_eq!(lead, "dept-urban-management");
    let (status, body) = hub
        .post(
            &format!("/api/cases/{noise_case}/respond"),
            OPS_TOKEN,
            &response,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("led inside the grid system"),
        "{body}"
    );
    assert_eq!(case_of(&env, noise).await.1, "dispatched");
    hub.stop().await;
}
