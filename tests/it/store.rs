//! The case store on both backends: every test body here runs against
//! PostgreSQL (a fresh database) and against SQLite (in memory), through
//! `Store`'s public API only, and expects the same results.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gridhub::connector::Registry;
use gridhub::intent::Intent;
use gridhub::pipeline::{Refusal, Stage};
use gridhub::routing::Routing;
use gridhub::store::audit::AuditRecord;
use gridhub::store::duplicates::LockPlan;
use gridhub::store::{Applied, Item, Rules, Store, Work};
use serde_json::{Value, json};

use crate::helpers::root;

/// `name` runs as `name::postgres` and `name::sqlite`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres() {
                let db = crate::helpers::TestDb::new().await;
                super::$name(&db.store).await;
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name(&super::sqlite().await).await;
            }
        }
    )*};
}

on_both!(
    tickets_open_merge_and_are_recognised_again,
    lifecycle_updates_move_refuse_and_note,
    shared_records_reach_the_outbox_masked,
    grid_data_is_stored_and_loaded,
    refusals_are_recorded_and_settled,
    overdue_cases_are_escalated_once,
    the_outbox_is_claimed_and_marked_sent,
    sent_events_past_their_retention_are_pruned,
    personal_data_past_its_retention_expires,
    dead_letter_operations_are_audited,
    dead_letters_are_sealed_at_rest,
    a_confidential_complainants_words_are_sealed_at_rest,
    cases_are_found_by_filters_ticket_and_phone,
    a_corrupt_status_is_refused_naming_its_row,
    the_callback_loop_holds_lists_and_presses,
    tickets_placed_by_address_merge_by_grid_and_caller,
    requests_for_time_are_kept_granted_and_the_clock_stops,
    the_centre_merges_and_splits_by_hand,
    two_cases_merged_into_each_other_at_once_end_as_one,
    the_assessment_reads_events_and_an_earlier_cut_reads_the_same,
);

const CENTRE: &str = "command-centre";
const URBAN: &str = "dept-urban-management";

/// Personal data sealed at rest, on both backends.
pub(crate) async fn sqlite() -> Store {
    Store::connect("sqlite::memory:", 1)
        .await
        .expect("in-memory SQLite store")
        .sealed(gridhub::store::seal::Seal::parse(crate::helpers::TEST_KEY).unwrap())
}

/// The bundled connectors and routing, with the places the store holds now.
async fn rules(store: &Store) -> Rules {
    let registry = Registry::load(&root().join("connectors"), &root().join("schemas"))
        .expect("connectors load");
    let routing = Routing::load(&root().join("deploy/routing.toml")).expect("routing loads");
    let (_, places) = gridhub::places::load(store).await.expect("grid data");
    Rules {
        centre: CENTRE.to_owned(),
        registry: Arc::new(registry),
        routing: Arc::new(routing),
        places,
    }
}

fn intent(value: Value) -> Intent {
    serde_json::from_value(value).expect("a valid intent")
}

/// Applies one message as a batch of one.
async fn apply(
    store: &Store,
    rules: &Rules,
    connector: &str,
    message_id: &str,
    intent: &Intent,
) -> Applied {
    let item = Item {
        connector,
        message_id: Some(message_id),
        message_type: "test",
        replays: 0,
        work: Work::Apply(intent),
    };
    let mut results = store.apply(&[item], rules).await.expect("store applies");
    results.remove(0)
}

fn case_no(applied: &Applied) -> String {
    match applied {
        Applied::CaseOpened { case_no } => case_no.clone(),
        other => panic!("expected a case opened, got {other:?}"),
    }
}

/// One grid around 116.6762, 39.8935 and one known address in it.
fn grids(retired: bool) -> Intent {
    intent(json!({
        "kind": "update_grids",
        "grids": [{
            "grid_id": "YQ-001-01", "community": "玉桥东里社区", "community_kind": "community",
            "street": "玉桥街道", "retired": retired,
            "polygon": [[116.67, 39.89], [116.68, 39.89], [116.68, 39.90], [116.67, 39.90], [116.67, 39.89]]
        }],
        "addresses": [{"address": "玉桥东里1号楼", "grid_id": "YQ-001-01"}]
    }))
}

/// Rules with the test grid stored and loaded.
pub(crate) async fn located(store: &Store) -> Rules {
    let applied = apply(
        store,
        &rules(store).await,
        "dept-planning",
        "grids-1",
        &grids(false),
    )
    .await;
    assert_eq!(applied, Applied::GridsUpdated { grids: 1 });
    rules(store).await
}

/// A 12345 construction-noise ticket whose caller agreed to a callback.
fn ticket(source_ref: &str, lon: f64, lat: f64) -> Intent {
    intent(json!({
        "kind": "open_case",
        "source_ref": source_ref,
        "channel": "12345",
        "nature": "complaint",
        "category": "noise.construction",
        "priority": "general",
        "title": "夜间施工噪声扰民",
        "description": "工地夜间施工",
        "received_at": "2026-11-28T10:00:00+08:00",
        "reporter": {"name": "测试某", "phone": "13900005678", "anonymous": false,
                     "confidential": false, "callback_consent": true},
        "attributes": {"source_category_code": "0301"},
        "place": {"address": "玉桥中路附近在建工地", "street": "玉桥街道", "lon": lon, "lat": lat},
        "media": [{"url": "https://files.12345.example/att/1.mp3", "kind": "audio"}]
    }))
}

/// Opens ticket T-1 (message m-1) from 12345 at the test grid; its case number.
pub(crate) async fn open_ticket(store: &Store, rules: &Rules) -> String {
    let applied = apply(
        store,
        rules,
        "hotline-12345",
        "m-1",
        &ticket("T-1", 116.6762, 39.8935),
    )
    .await;
    case_no(&applied)
}

fn update(case_no: &str, action: &str, extra: Value) -> Intent {
    let mut value = json!({
        "kind": "update_case",
        "case": {"case_no": case_no},
        "action": action,
        "occurred_at": "2026-11-28T11:00:00+08:00",
    });
    if let (Value::Object(map), Value::Object(extra)) = (&mut value, extra) {
        map.extend(extra);
    }
    intent(value)
}

/// Runs one query that reads the same on both backends.
async fn strings(store: &Store, sql: &'static str, bind: &str) -> Vec<String> {
    if let Some(pool) = store.pg_pool() {
        sqlx::query_scalar(sql).bind(bind).fetch_all(pool).await
    } else {
        let pool = store.sqlite_pool().expect("one of the two");
        sqlx::query_scalar(sql).bind(bind).fetch_all(pool).await
    }
    .expect("query")
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    if let Some(pool) = store.pg_pool() {
        sqlx::query_scalar(sql).fetch_one(pool).await
    } else {
        let pool = store.sqlite_pool().expect("one of the two");
        sqlx::query_scalar(sql).fetch_one(pool).await
    }
    .expect("query")
}

/// Applies `action` from `connector` (as message `message_id`) to case
/// `no`, expects it to update the case, and returns the status it is in now.
async fn step(
    store: &Store,
    rules: &Rules,
    connector: &str,
    message_id: &str,
    no: &str,
    action: &str,
    extra: Value,
) -> Value {
    let applied = apply(
        store,
        rules,
        connector,
        message_id,
        &update(no, action, extra),
    )
    .await;
    let updated = Applied::CaseUpdated {
        case_no: no.to_owned(),
    };
    assert_eq!(applied, updated, "{action} on {no}");
    case(store, no).await["status"].clone()
}

/// A callback's details: the caller reached, the matter solved, satisfied.
fn satisfied() -> Value {
    json!({"contacted": true, "solved": true, "satisfaction": "satisfied"})
}

async fn assert_closed_satisfied(store: &Store, case_no: &str) {
    let closed = case(store, case_no).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["satisfaction"], "satisfied");
}

/// The routing keys of the outbox's events for `destination` that end
/// with `ending`, oldest first.
async fn outbox_keys(store: &Store, destination: &str, ending: &str) -> Vec<String> {
    let sql = "SELECT routing_key FROM outbox WHERE destination = $1 ORDER BY id";
    let mut keys = strings(store, sql, destination).await;
    keys.retain(|k| k.ends_with(ending));
    keys
}

/// The body of the hotline's first waiting dead letter, as `store` opens it.
async fn first_letter_body(store: &Store) -> Result<Vec<u8>, gridhub::store::seal::SealError> {
    let waiting = store.waiting_dead_letters("hotline-12345", 10).await;
    waiting.unwrap().remove(0).body
}

async fn case(store: &Store, case_no: &str) -> Value {
    store
        .cases(100, None)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c["case_no"] == case_no)
        .expect("case listed")
}

async fn trail(store: &Store, case_no: &str) -> Vec<String> {
    strings(
        store,
        "SELECT e.kind || ':' || e.to_status FROM case_events e JOIN cases c ON c.id = e.case_id
         WHERE c.case_no = $1 ORDER BY e.id",
        case_no,
    )
    .await
}

async fn tickets_open_merge_and_are_recognised_again(store: &Store) {
    let rules = located(store).await;
    let first = open_ticket(store, &rules).await;
    assert_eq!(first, "TZ2611280000001");

    // The same ticket under a new message_id opens no second case, and a
    // redelivered message_id is recognised.
    let t1 = ticket("T-1", 116.6762, 39.8935);
    let again = apply(store, &rules, "hotline-12345", "m-2", &t1).await;
    assert_eq!(again, Applied::DuplicateSource);
    let redelivered = apply(store, &rules, "hotline-12345", "m-1", &t1).await;
    assert_eq!(redelivered, Applied::AlreadyProcessed);
    // So is a message_id repeated inside one batch.
    let t9 = ticket("T-9", 116.6, 39.8);
    let item = |id| Item {
        connector: "hotline-12345",
        message_id: Some(id),
        message_type: "ticket",
        replays: 0,
        work: Work::Apply(&t9),
    };
    let batch = store
        .apply(&[item("m-9"), item("m-9")], &rules)
        .await
        .unwrap();
    assert!(matches!(batch[0], Applied::CaseOpened { .. }));
    assert_eq!(batch[1], Applied::AlreadyProcessed);

    // A ticket 20 m away of the same category is merged into the first.
    let second = apply(
        store,
        &rules,
        "hotline-96126",
        "m-3",
        &ticket("T-2", 116.6764, 39.8936),
    )
    .await;
    let second = case_no(&second);
    let opened = case(store, &first).await;
    assert_eq!(opened["status"], "dispatched");
    assert_eq!(opened["grid_id"], "YQ-001-01");
    assert_eq!(opened["lead_unit"], URBAN);
    assert!(opened["due_at"].is_string());
    assert_eq!(
        opened["sources"],
        json!([{"connector": "hotline-12345", "ref": "T-1", "message_id": "m-1"}])
    );
    let merged = case(store, &second).await;
    assert_eq!(merged["status"], "merged");
    assert_eq!(merged["parent_case_no"], first.as_str());
    assert_eq!(
        trail(store, &second).await,
        ["opened:registered", "merged:merged"]
    );
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM inbox WHERE outcome = 'duplicate_source'"
        )
        .await,
        1
    );
    assert_eq!(count(store, "SELECT count(*) FROM reporters").await, 3);
    let by_status = store.cases_by_status().await.unwrap();
    assert_eq!(
        by_status,
        [("dispatched".to_owned(), 2), ("merged".to_owned(), 1)]
    );
    store.ping().await.unwrap();
}

async fn lifecycle_updates_move_refuse_and_note(store: &Store) {
    let rules = located(store).await;
    let no = open_ticket(store, &rules).await;

    // Verification before the unit even signed for it: refused, nothing kept.
    let early = update(&no, "verify", json!({"passed": true}));
    let refused = apply(store, &rules, "grid-platform", "v-0", &early).await;
    assert_eq!(
        refused,
        Applied::Refused(Refusal::new(
            Stage::Apply,
            format!("case {no}: verify not allowed in status dispatched")
        ))
    );
    assert_eq!(
        count(store, "SELECT count(*) FROM inbox WHERE message_id = 'v-0'").await,
        0
    );
    // An unknown case is refused too.
    let unknown = apply(
        store,
        &rules,
        URBAN,
        "u-0",
        &update("TZ2001010000001", "accept", json!({})),
    )
    .await;
    assert_eq!(
        unknown,
        Applied::Refused(Refusal::new(
            Stage::Apply,
            "unknown case: no case TZ2001010000001"
        ))
    );

    let step = |connector, message_id, action, extra| {
        step(store, &rules, connector, message_id, &no, action, extra)
    };
    assert_eq!(step(URBAN, "u-1", "accept", json!({})).await, "accepted");
    let respond = json!({"note": "已处理"});
    assert_eq!(step(URBAN, "u-2", "respond", respond).await, "verifying");
    // A progress report arriving after the response is recorded as late.
    assert_eq!(step(URBAN, "u-3", "progress", json!({})).await, "verifying");
    let passed = json!({"passed": true});
    assert_eq!(
        step("grid-platform", "v-1", "verify", passed).await,
        "callback"
    );
    assert_eq!(
        step("hotline-12345", "c-1", "callback", satisfied()).await,
        "closed"
    );
    assert_closed_satisfied(store, &no).await;
    assert_eq!(
        trail(store, &no).await,
        [
            "opened:registered",
            "dispatched:dispatched",
            "accept:accepted",
            "respond:responded",
            "verifying:verifying",
            "late_progress:verifying",
            "verify:callback",
            "callback:closed"
        ]
    );
    // The grid platform was asked to verify, once.
    let verify = outbox_keys(store, "grid-platform", "verify_requested").await;
    assert_eq!(verify, ["grid-platform.case.verify_requested"]);
}

async fn shared_records_reach_the_outbox_masked(store: &Store) {
    let rules = rules(store).await;
    let dir = root().join("connectors/dept-police/samples/floating-population/valid");
    let mut expects: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expect.json"))
        .collect();
    expects.sort();
    let shared: Intent =
        serde_json::from_slice(&std::fs::read(&expects[0]).unwrap()).expect("sample intent");
    let Intent::ShareRecords(records) = &shared else {
        panic!("a share_records sample");
    };
    let applied = apply(store, &rules, "dept-police", "s-1", &shared).await;
    assert_eq!(
        applied,
        Applied::RecordsShared {
            records: records.records.len(),
            destinations: 1
        }
    );
    let claim = store.claim_outbox(100, 1 << 22).await.unwrap();
    assert_eq!(claim.events.len(), 1);
    let event = &claim.events[0];
    let payload = event.json().unwrap();
    assert_eq!(event.routing_key, "grid-platform.records.shared");
    assert_eq!(payload["disclosure"], "masked");
    assert_eq!(payload["event_id"], json!(event.event_id));
    for record in payload["records"].as_array().unwrap() {
        if let Some(id) = record["id_number"].as_str() {
            assert!(id.contains("****"), "id number not masked");
        }
    }
    drop(claim);

    let unshared =
        intent(json!({"kind": "share_records", "dataset": "tax-records", "records": []}));
    let refused = apply(store, &rules, "dept-police", "s-2", &unshared).await;
    assert_eq!(
        refused,
        Applied::Refused(Refusal::new(
            Stage::Apply,
            "connector dept-police does not share dataset tax-records"
        ))
    );
}

async fn grid_data_is_stored_and_loaded(store: &Store) {
    assert_eq!(store.grid_version().await.unwrap(), 0);
    assert!(store.load_grids().await.unwrap().grids.is_empty());
    let rules = located(store).await;
    let data = store.load_grids().await.unwrap();
    assert_eq!(data.version, 1);
    assert_eq!(data.grids.len(), 1);
    assert_eq!(data.grids[0].grid_id, "YQ-001-01");
    assert_eq!(data.grids[0].community_kind, "community");
    assert_eq!(data.grids[0].polygon.len(), 5);
    // A case's map: the grids of its community, or of its street.
    let ids = |grids: Vec<gridhub::district::GridShape>| {
        grids.into_iter().map(|g| g.grid_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store
            .grids_of("玉桥街道", Some("玉桥东里社区"))
            .await
            .unwrap()),
        ["YQ-001-01"]
    );
    assert_eq!(
        ids(store.grids_of("玉桥街道", None).await.unwrap()),
        ["YQ-001-01"]
    );
    assert!(ids(store.grids_of("玉桥街道", Some("别的社区")).await.unwrap()).is_empty());
    assert!(ids(store.grids_of("梨园镇", None).await.unwrap()).is_empty());
    assert_eq!(
        data.addresses,
        [("玉桥东里1号楼".to_owned(), "YQ-001-01".to_owned())]
    );
    // The places built from it locate a point.
    let no = open_ticket(store, &rules).await;
    assert_eq!(case(store, &no).await["community"], "玉桥东里社区");

    // Retiring the grid: a new version, no live grid.
    let applied = apply(store, &rules, "dept-planning", "grids-2", &grids(true)).await;
    assert_eq!(applied, Applied::GridsUpdated { grids: 1 });
    assert_eq!(store.grid_version().await.unwrap(), 2);
    assert!(store.load_grids().await.unwrap().grids.is_empty());
}

async fn refusals_are_recorded_and_settled(store: &Store) {
    let rules = rules(store).await;
    let refusal = Refusal::new(Stage::Schema, "/title: required");
    let refused = |id, replays| Item {
        connector: "hotline-12345",
        message_id: Some(id),
        message_type: "ticket",
        replays,
        work: Work::Refused {
            refusal: &refusal,
            routing_key: "hotline-12345.ticket",
        },
    };
    let results = store.apply(&[refused("bad-1", 0)], &rules).await.unwrap();
    assert_eq!(results, [Applied::RefusalRecorded]);
    let settled = store
        .settled("hotline-12345", &[("bad-1", 0), ("bad-2", 0)])
        .await
        .unwrap();
    assert_eq!(settled.into_iter().collect::<Vec<_>>(), ["bad-1"]);
    // A replay (one more than the refused copy) is not settled, and may be redone.
    assert!(
        store
            .settled("hotline-12345", &[("bad-1", 1)])
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.apply(&[refused("bad-1", 0)], &rules).await.unwrap();
    assert_eq!(again, [Applied::AlreadyProcessed]);
    let replay = store.apply(&[refused("bad-1", 1)], &rules).await.unwrap();
    assert_eq!(replay, [Applied::RefusalRecorded]);
    let reasons = strings(
        store,
        "SELECT stage || ' ' || reason FROM dead_letters WHERE connector = $1 ORDER BY id",
        "hotline-12345",
    )
    .await;
    assert_eq!(
        reasons,
        ["schema /title: required", "schema /title: required"]
    );
}

/// What `escalate` raises at `at`: the escalations' kinds, in its order.
async fn escalation_kinds(store: &Store, rules: &Rules, at: DateTime<Utc>) -> Vec<&'static str> {
    let escalations = store.escalate(at, rules).await.unwrap();
    escalations.iter().map(|e| e.kind).collect()
}

async fn overdue_cases_are_escalated_once(store: &Store) {
    let rules = located(store).await;
    let no = open_ticket(store, &rules).await;
    assert!(store.escalate(Utc::now(), &rules).await.unwrap().is_empty());
    // Past the sign-for deadline only.
    let later = Utc::now() + Duration::hours(3);
    assert_eq!(
        escalation_kinds(store, &rules, later).await,
        ["sign_for_overdue"]
    );
    // Short of 80% of its handling time (7 working days), nothing; past
    // it, the unit is warned, once.
    let dispatched = Utc::now();
    let due: chrono::DateTime<Utc> = case(store, &no).await["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let share = |s: f64| {
        dispatched + Duration::seconds(((due - dispatched).num_seconds() as f64 * s) as i64)
    };
    assert!(store.escalate(share(0.7), &rules).await.unwrap().is_empty());
    let warned = share(0.9);
    assert_eq!(
        escalation_kinds(store, &rules, warned).await,
        ["deadline_warning"]
    );
    assert!(store.escalate(warned, &rules).await.unwrap().is_empty());
    // Long past the handling deadline: reminder and supervision, once.
    let much_later = Utc::now() + Duration::days(60);
    let mut kinds: Vec<&str> = store
        .escalate(much_later, &rules)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.case_no, no);
            e.kind
        })
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["reminder", "supervision"]);
    assert!(store.escalate(much_later, &rules).await.unwrap().is_empty());
    let escalated = case(store, &no).await;
    assert_eq!(escalated["escalation_level"], 2);
    assert_eq!(escalated["overdue"], true);
    assert_eq!(
        store.overdue_cases().await.unwrap(),
        [
            (URBAN.to_owned(), "sign_for".to_owned(), 1),
            (URBAN.to_owned(), "supervision".to_owned(), 1)
        ]
    );
    assert_eq!(
        trail(store, &no).await[2..],
        [
            "sign_for_overdue:dispatched",
            "deadline_warning:dispatched",
            "reminder:dispatched",
            "supervision:dispatched"
        ]
    );
    let to_unit = outbox_keys(store, URBAN, "").await;
    assert_eq!(
        to_unit,
        [
            "dept-urban-management.case.dispatched",
            "dept-urban-management.case.sign_for_overdue",
            "dept-urban-management.case.deadline_warning",
            "dept-urban-management.case.reminder",
            "dept-urban-management.case.supervision"
        ]
    );
}

async fn the_outbox_is_claimed_and_marked_sent(store: &Store) {
    let rules = located(store).await;
    open_ticket(store, &rules).await;
    let backlog = store.outbox_backlog().await.unwrap();
    assert!(backlog >= 3, "opened, dispatched and the unit's dispatch");

    // A byte bound below one event still gives one, and says more wait.
    let claim = store.claim_outbox(1000, 1).await.unwrap();
    assert_eq!(claim.events.len(), 1);
    assert!(claim.more);
    claim.mark_sent(&[]).await.unwrap();
    let claim = store.claim_outbox(1000, 1 << 22).await.unwrap();
    assert_eq!(claim.events.len() as i64, backlog);
    assert!(!claim.more, "the whole backlog fits");
    claim.mark_sent(&[]).await.unwrap();

    let claim = store.claim_outbox(2, 1 << 22).await.unwrap();
    assert_eq!(claim.events.len(), 2);
    assert!(claim.more, "cut at two rows");
    assert!(claim.events[0].id < claim.events[1].id, "oldest first");
    for event in &claim.events {
        let (destination, name) = event.routing_key.split_once('.').unwrap();
        assert_eq!(event.json().unwrap()["event"], name);
        assert!(!destination.is_empty());
        assert!(event.created_at <= Utc::now());
    }
    // Only the first is confirmed by the broker.
    let first = claim.events[0].id;
    claim.mark_sent(&[first]).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), backlog - 1);
    // A claim released with nothing confirmed marks nothing. (Dropping it
    // does too, but on PostgreSQL its row locks go only when the pool gets
    // round to the rollback.)
    let claim = store.claim_outbox(1000, 1 << 22).await.unwrap();
    assert_eq!(claim.events.len() as i64, backlog - 1);
    assert!(claim.events.iter().all(|e| e.id != first));
    claim.mark_sent(&[]).await.unwrap();
    let claim = store.claim_outbox(1000, 1 << 22).await.unwrap();
    let ids: Vec<i64> = claim.events.iter().map(|e| e.id).collect();
    claim.mark_sent(&ids).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert!(
        store
            .claim_outbox(10, 1 << 22)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

async fn sent_events_past_their_retention_are_pruned(store: &Store) {
    let rules = located(store).await;
    open_ticket(store, &rules).await;
    let claim = store.claim_outbox(1000, 1 << 22).await.unwrap();
    let sent: Vec<i64> = claim.events.iter().map(|e| e.id).collect();
    claim.mark_sent(&sent).await.unwrap();
    // Another case's events, not sent yet.
    apply(
        store,
        &rules,
        "hotline-12345",
        "m-2",
        &ticket("T-2", 116.70, 39.91),
    )
    .await;
    let unsent = store.outbox_backlog().await.unwrap();
    assert!(unsent > 0);
    let total = count(store, "SELECT count(*) FROM outbox").await;

    // Within the retention: nothing goes.
    let hour_ago = Utc::now() - Duration::hours(1);
    assert_eq!(store.prune_outbox(hour_ago).await.unwrap(), 0);
    assert_eq!(count(store, "SELECT count(*) FROM outbox").await, total);
    // Past it: the sent ones go, the unsent stay whatever their age.
    let later = Utc::now() + Duration::seconds(1);
    assert_eq!(store.prune_outbox(later).await.unwrap(), sent.len() as u64);
    assert_eq!(count(store, "SELECT count(*) FROM outbox").await, unsent);
    assert_eq!(store.outbox_backlog().await.unwrap(), unsent);
}

async fn execute(store: &Store, sql: &'static str) {
    if let Some(pool) = store.pg_pool() {
        sqlx::query(sql).execute(pool).await.map(drop)
    } else {
        let pool = store.sqlite_pool().expect("one of the two");
        sqlx::query(sql).execute(pool).await.map(drop)
    }
    .expect("statement")
}

/// A 12345 ticket refused with `body`, as dead letter letter-1.
fn ticket_letter(body: &[u8]) -> gridhub::store::dead_letters::NewDeadLetter<'_> {
    gridhub::store::dead_letters::NewDeadLetter {
        letter_id: "letter-1".into(),
        connector: "hotline-12345",
        routing_key: "hotline-12345.ticket".into(),
        properties: Vec::new(),
        body,
    }
}

async fn personal_data_past_its_retention_expires(store: &Store) {
    let rules = located(store).await;
    open_ticket(store, &rules).await;
    store
        .record_dead_letters(&[ticket_letter(b"{\"phone\": \"13900005678\"}")])
        .await
        .unwrap();
    let hour = Some(Duration::hours(1));
    let later = Utc::now() + Duration::hours(2);
    // An open case keeps its reporter, however old.
    let expired = store.expire(later, hour, None).await.unwrap();
    assert_eq!(expired.reporters, 0);
    execute(
        store,
        "UPDATE cases SET status = 'closed', closed_at = updated_at",
    )
    .await;
    let expired = store.expire(later, hour, hour).await.unwrap();
    assert_eq!((expired.reporters, expired.dead_letters), (1, 1));
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM reporters WHERE name IS NULL AND phone IS NULL \
             AND id_number IS NULL AND erased_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(count(store, "SELECT count(*) FROM dlq_messages").await, 0);
    assert_eq!(
        store.expire(later, hour, hour).await.unwrap(),
        Default::default(),
        "nothing twice"
    );
}

async fn dead_letter_operations_are_audited(store: &Store) {
    let actor = gridhub::store::audit::Actor {
        name: "token:tester".to_owned(),
        origin: Some("10.0.0.7".to_owned()),
    };
    let record = AuditRecord {
        actor: &actor,
        action: "replay",
        filter: json!({"connector": "hotline-12345"}),
        affected: 2,
        failed: 1,
        message_ids: vec!["a".to_owned(), "b".to_owned()],
        note: Some("after the schema fix".to_owned()),
    };
    store.audit(&record).await.unwrap();
    let trail = store.audit_trail(10).await.unwrap();
    assert_eq!(trail.len(), 1);
    let entry = &trail[0];
    assert_eq!(entry.actor, "token:tester");
    assert_eq!(entry.origin.as_deref(), Some("10.0.0.7"));
    assert_eq!(entry.action, "replay");
    assert_eq!(entry.filter, json!({"connector": "hotline-12345"}));
    assert_eq!((entry.affected, entry.failed), (2, 1));
    assert_eq!(entry.message_ids, ["a", "b"]);
    assert_eq!(entry.note.as_deref(), Some("after the schema fix"));
    assert!(entry.at <= Utc::now());
}

/// The read side gives the same JSON on both backends: the same keys, the
/// same values, times as RFC 3339 strings.
#[tokio::test]
async fn cases_read_the_same_on_both_backends() {
    let db = crate::helpers::TestDb::new().await;
    let lite = sqlite().await;
    let mut listed = Vec::new();
    for store in [&db.store, &lite] {
        let rules = located(store).await;
        open_ticket(store, &rules).await;
        apply(
            store,
            &rules,
            "hotline-96126",
            "m-2",
            &ticket("T-2", 116.6764, 39.8936),
        )
        .await;
        let answered = intent(json!({
            "kind": "open_case", "source_ref": "T-3", "channel": "12345", "nature": "consultation",
            "priority": "general", "title": "咨询", "received_at": "2026-11-28T10:05:00+08:00"
        }));
        apply(store, &rules, "hotline-12345", "m-3", &answered).await;
        listed.push(normalised(store.cases(10, None).await.unwrap()));
    }
    assert_eq!(listed[0].len(), 3);
    assert_eq!(listed[0], listed[1]);
}

/// Volatile values (ids, clocks) replaced by their kind; times compared as instants.
fn normalised(cases: Vec<Value>) -> Vec<Value> {
    cases
        .into_iter()
        .map(|mut case| {
            let map = case.as_object_mut().unwrap();
            for key in ["id", "created_at", "updated_at", "due_at"] {
                let kind = match &map[key] {
                    Value::String(_) => "string",
                    Value::Null => "null",
                    _ => "other",
                };
                map.insert(key.to_owned(), json!(kind));
            }
            let received =
                chrono::DateTime::parse_from_rfc3339(map["received_at"].as_str().unwrap())
                    .unwrap()
                    .to_utc();
            map.insert("received_at".to_owned(), json!(received.to_rfc3339()));
            case
        })
        .collect()
}

/// The duplicate locks a batch takes, as a hub of this version or of the
/// version before the cell locks (category only).
enum Locks {
    Plan(LockPlan),
    CategoryOnly(&'static str),
}

impl Locks {
    fn near(cases: &[(&'static str, f64, f64)]) -> Locks {
        Locks::Plan(LockPlan::new(cases.iter().copied(), 50.0))
    }

    fn whole(category: &str) -> Locks {
        Locks::Plan(LockPlan {
            categories: vec![category.to_owned()],
            whole: vec![category.to_owned()],
            ..LockPlan::default()
        })
    }

    async fn take(&self, tx: &mut sqlx::PgConnection) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
        let since = Utc::now() - Duration::hours(1);
        match self {
            Locks::Plan(plan) => sqlx::query_scalar(
                "SELECT id FROM gridhub_duplicate_candidates($1, $2, $3, $4, $5)",
            )
            .bind(&plan.categories)
            .bind(&plan.whole)
            .bind(&plan.cell_categories)
            .bind(&plan.cells)
            .bind(since),
            Locks::CategoryOnly(category) => {
                sqlx::query_scalar("SELECT id FROM gridhub_duplicate_candidates($1, $2)")
                    .bind([*category])
                    .bind(since)
            }
        }
        .fetch_all(tx)
        .await
    }
}

/// Opens a dispatched noise.construction case in a transaction; its id.
async fn open_noise_case(tx: &mut sqlx::PgConnection) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO cases (id, case_no, status, channel, nature, category, priority, title, lon, lat, received_at)
         VALUES ($1, $2, 'dispatched', '12345', 'complaint', 'noise.construction', 'general', 't',
                 116.6762, 39.8935, now())",
    )
    .bind(id)
    .bind(format!("TZ261128{:07}", id.as_u128() % 10_000_000))
    .execute(tx)
    .await
    .unwrap();
    id
}

/// Whether a transaction taking `second` has to wait for one holding
/// `first`: asked with a lock timeout, so that a slow machine cannot pass
/// for a wait, nor a wait for a slow machine. If it has to, it then waits
/// for real and must see the case the first committed.
async fn second_waits(pool: &sqlx::PgPool, first: Locks, second: Locks) -> bool {
    let mut holder = pool.begin().await.unwrap();
    first.take(&mut holder).await.unwrap();

    let mut probe = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '200ms'")
        .execute(&mut *probe)
        .await
        .unwrap();
    let waits = match second.take(&mut probe).await {
        Ok(_) => false,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => true,
        Err(e) => panic!("{e}"),
    };
    probe.rollback().await.unwrap();
    if !waits {
        holder.rollback().await.unwrap();
        return false;
    }

    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let seen = second.take(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            seen
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let id = open_noise_case(&mut holder).await;
    holder.commit().await.unwrap();
    assert!(
        waiter.await.unwrap().contains(&id),
        "the waiter read before the commit"
    );
    true
}

/// Duplicate locks are per category and place: a batch near another's cases
/// waits for it (across a cell boundary too), one elsewhere does not; a
/// category locked whole, or by a hub that locks only categories, holds
/// every batch of that category.
#[tokio::test]
async fn duplicate_locks_hold_batches_nearby_and_let_others_through() {
    let db = crate::helpers::TestDb::new().await;
    let pool = db.store.pg_pool().expect("PostgreSQL").clone();
    const NOISE: &str = "noise.construction";
    let metres = |m: f64| m / (6_371_000.0 * std::f64::consts::PI / 180.0);
    // A latitude on a boundary of the grid.
    let side = metres(gridhub::store::duplicates::CELL_SIDE_M);
    let boundary = (39.9 / side).round() * side;
    let south = (NOISE, 116.6762, boundary - metres(10.0));
    let north = (NOISE, 116.6762, boundary + metres(20.0));
    let far = (NOISE, 116.7262, boundary + metres(20.0));
    let row = |lat: f64| (lat / side).floor();
    assert_ne!(row(south.2), row(north.2), "the two lie across a boundary");

    assert!(second_waits(&pool, Locks::near(&[south]), Locks::near(&[north])).await);
    assert!(second_waits(&pool, Locks::near(&[north]), Locks::near(&[south])).await);
    assert!(!second_waits(&pool, Locks::near(&[south]), Locks::near(&[far])).await);
    assert!(
        !second_waits(
            &pool,
            Locks::near(&[south]),
            Locks::near(&[("road.damage", south.1, south.2)])
        )
        .await
    );
    assert!(second_waits(&pool, Locks::whole(NOISE), Locks::near(&[far])).await);
    assert!(second_waits(&pool, Locks::near(&[far]), Locks::whole(NOISE)).await);
    // A rolling upgrade: hubs of both kinds exclude each other.
    assert!(second_waits(&pool, Locks::CategoryOnly(NOISE), Locks::near(&[far])).await);
    assert!(second_waits(&pool, Locks::near(&[far]), Locks::CategoryOnly(NOISE)).await);
}

/// Two hubs opening cases of one category at once: the second waits for the
/// first's lock, and its read then sees the case the first committed (a read
/// with a snapshot from before the wait would miss it and open a duplicate).
#[tokio::test]
async fn duplicate_detection_waits_and_then_sees_what_the_lock_holder_committed() {
    let db = crate::helpers::TestDb::new().await;
    let pool = db.store.pg_pool().expect("PostgreSQL").clone();

    let category_lock = || Locks::CategoryOnly("noise.construction");
    let mut first = pool.begin().await.unwrap();
    assert!(category_lock().take(&mut first).await.unwrap().is_empty());

    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let seen = category_lock().take(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            seen
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second waits for the category's lock"
    );

    let id = open_noise_case(&mut first).await;
    first.commit().await.unwrap();

    assert_eq!(second.await.unwrap(), [id]);
}

/// A dead letter's body is stored sealed, bound to its letter; it opens
/// with the key it was sealed with, `reseal_dead_letters` moves it to the
/// current key, and a store without that key skips nothing silently: it
/// says the body does not open.
async fn dead_letters_are_sealed_at_rest(store: &Store) {
    use gridhub::store::seal::{Seal, SealError};
    const OLD: &str = "old 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
    let body = br#"{"phone": "13900005678"}"#;
    let store = store.clone().sealed(Seal::parse(OLD).unwrap());
    store
        .record_dead_letters(&[ticket_letter(body)])
        .await
        .unwrap();
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM dlq_messages WHERE sealed_with = 'old'"
        )
        .await,
        1
    );
    let stored = raw_body(&store).await;
    assert!(!String::from_utf8_lossy(&stored).contains("13900005678"));
    assert_eq!(first_letter_body(&store).await.as_deref(), Ok(&body[..]));

    let rotated = store
        .clone()
        .sealed(Seal::parse(&format!("{}\n{OLD}", crate::helpers::TEST_KEY)).unwrap());
    assert_eq!(rotated.reseal_dead_letters().await.unwrap(), 1);
    assert_eq!(rotated.reseal_dead_letters().await.unwrap(), 0);
    let without_old = store
        .clone()
        .sealed(Seal::parse(crate::helpers::TEST_KEY).unwrap());
    assert_eq!(
        first_letter_body(&without_old).await.as_deref(),
        Ok(&body[..])
    );
    assert_eq!(
        first_letter_body(&store).await,
        Err(SealError::UnknownKey("test1".into()))
    );
}

async fn raw_body(store: &Store) -> Vec<u8> {
    let sql = "SELECT body FROM dlq_messages";
    if let Some(pool) = store.pg_pool() {
        sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
    } else {
        let pool = store.sqlite_pool().expect("one of the two");
        sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
    }
}

/// A confidential complainant's description is their own words: stored
/// sealed, read opened, moved to a new key by a rotation and erased with
/// the reporter once the case is over.
async fn a_confidential_complainants_words_are_sealed_at_rest(store: &Store) {
    use gridhub::store::seal::Seal;
    let rules = located(store).await;
    let words = "我是13812345678的机主，请保密";
    let mut confidential = ticket("T-9", 116.6762, 39.8935);
    if let Intent::OpenCase(open) = &mut confidential {
        open.description = words.to_owned();
        open.reporter.as_mut().unwrap().confidential = true;
    }
    let case_no = case_no(&apply(store, &rules, "hotline-12345", "m-9", &confidential).await);
    open_ticket(store, &rules).await;
    let stored = strings(
        store,
        "SELECT description FROM cases WHERE case_no = $1",
        &case_no,
    )
    .await;
    assert!(stored[0].starts_with("gh1:test1:"), "{stored:?}");
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM cases WHERE description = '工地夜间施工'"
        )
        .await,
        1,
        "an ordinary description is stored as it came"
    );
    assert_eq!(case(store, &case_no).await["description"], words);
    // The events bound for the units are sealed too until the relay takes
    // them, and open when it does.
    let events = count(store, "SELECT count(*) FROM outbox").await;
    assert!(events > 0);
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM outbox WHERE CAST(payload AS text) LIKE '\"gh1:test1:%' \
             AND CAST(payload AS text) NOT LIKE '%13900005678%'"
        )
        .await,
        events
    );
    let claim = store.claim_outbox(1000, 1 << 22).await.unwrap();
    assert_eq!(claim.events.len() as i64, events);
    assert!(claim.events.iter().all(|e| e.json().is_ok()));
    drop(claim);

    // An update loads the case: its description opens, and stays sealed.
    let accepted = apply(
        store,
        &rules,
        "dept-urban-management",
        "m-10",
        &update(&case_no, "accept", json!({})),
    )
    .await;
    assert!(!matches!(accepted, Applied::Refused(_)), "{accepted:?}");
    assert!(
        strings(
            store,
            "SELECT description FROM cases WHERE case_no = $1",
            &case_no
        )
        .await[0]
            .starts_with("gh1:test1:")
    );

    // A rotation seals it with the new key.
    const NEW: &str = "test2 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
    let rotated = store
        .clone()
        .sealed(Seal::parse(&format!("{NEW}\n{}", crate::helpers::TEST_KEY)).unwrap());
    assert_eq!(rotated.reseal_descriptions().await.unwrap(), 1);
    assert_eq!(rotated.reseal_descriptions().await.unwrap(), 0);
    let only_new = store.clone().sealed(Seal::parse(NEW).unwrap());
    assert_eq!(case(&only_new, &case_no).await["description"], words);

    // Erased with the reporter once the case has been over long enough.
    execute(
        store,
        "UPDATE cases SET status = 'closed', closed_at = updated_at",
    )
    .await;
    let later = Utc::now() + Duration::hours(2);
    store
        .expire(later, Some(Duration::hours(1)), None)
        .await
        .unwrap();
    assert_eq!(case(&only_new, &case_no).await["description"], "");
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM cases WHERE description = '工地夜间施工'"
        )
        .await,
        1,
        "an ordinary description is kept"
    );
}

/// Every filter of `find_cases`, paging, and one case whole with its
/// timeline, the same on both backends.
async fn cases_are_found_by_filters_ticket_and_phone(store: &Store) {
    use gridhub::store::query::CaseQuery;
    let rules = located(store).await;
    let first = open_ticket(store, &rules).await;
    let mut other = ticket("T-2", 116.6764, 39.8936);
    if let Intent::OpenCase(open) = &mut other {
        open.category = Some("utility.water".to_owned());
        open.title = "停水".to_owned();
        open.channel = gridhub::intent::Channel::Hotline96126;
        open.reporter.as_mut().unwrap().phone = Some("13733334444".to_owned());
    }
    let second = case_no(&apply(store, &rules, "hotline-96126", "m-2", &other).await);
    // A query as the API takes it; an unknown field fails to parse.
    let find = |query: Value| async move {
        let query: CaseQuery = serde_json::from_value(query).unwrap();
        let found = store.find_cases(&query, None).await.unwrap();
        found
            .iter()
            .map(|c| c["case_no"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    for (query, expected) in [
        (json!({}), vec![second.as_str(), first.as_str()]),
        (json!({"ticket": "T-1"}), vec![first.as_str()]),
        (json!({"phone": "137 3333 4444"}), vec![second.as_str()]),
        (json!({"phone": "1"}), vec![]),
        (json!({"channel": "12345"}), vec![first.as_str()]),
        (json!({"category": "utility.water"}), vec![second.as_str()]),
        (json!({"text": "停水"}), vec![second.as_str()]),
        (json!({"limit": 1, "offset": 1}), vec![first.as_str()]),
    ] {
        assert_eq!(find(query.clone()).await, expected, "{query}");
    }
    let future = Utc::now() + Duration::days(1);
    let status = case(store, &first).await["status"].clone();
    for (query, count) in [
        (json!({"street": "玉桥街道"}), 2),
        (json!({"grid": "YQ-001-01"}), 2),
        (json!({"overdue": true}), 0),
        (json!({"overdue": false}), 2),
        (json!({"received_from": future}), 0),
        (json!({"received_to": future}), 2),
        (json!({"status": status}), 2),
    ] {
        assert_eq!(find(query.clone()).await.len(), count, "{query}");
    }
    let scope = ["hotline-96126".to_owned()];
    assert_eq!(
        store
            .find_cases(&CaseQuery::default(), Some(&scope))
            .await
            .unwrap()
            .len(),
        1
    );

    let whole = store.case_detail(&first, None).await.unwrap().unwrap();
    assert_eq!(whole["timeline"][0]["kind"], "opened");
    assert_eq!(whole["timeline"][0]["actor"], "hotline-12345");
    assert!(whole["deadlines"]["due_at"].is_string(), "{whole}");
    assert!(
        store
            .case_detail(&first, Some(&scope))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.case_detail("TZ-none", None).await.unwrap().is_none());
}

/// A status the lifecycle does not know is a corrupt row: an update about
/// that case is refused with the case and the value named, never applied
/// as if the case were newly registered.
async fn a_corrupt_status_is_refused_naming_its_row(store: &Store) {
    let rules = located(store).await;
    let case_no = open_ticket(store, &rules).await;
    execute(store, "UPDATE cases SET status = 'lost'").await;
    let applied = apply(
        store,
        &rules,
        URBAN,
        "u-corrupt",
        &update(&case_no, "accept", json!({})),
    )
    .await;
    let Applied::Refused(refusal) = applied else {
        panic!("expected a refusal, got {applied:?}");
    };
    assert!(
        refusal.reason.contains(&case_no) && refusal.reason.contains("\"lost\""),
        "{}",
        refusal.reason
    );
    assert_eq!(
        strings(
            store,
            "SELECT status FROM cases WHERE case_no = $1",
            &case_no
        )
        .await,
        ["lost"]
    );
}

/// The callback loop on both backends: a callback during verification is
/// held and applied after it; a case waiting for its callback is listed,
/// with the request in the outbox, and flagged once past its deadline.
async fn the_callback_loop_holds_lists_and_presses(store: &Store) {
    let rules = located(store).await;
    let no = open_ticket(store, &rules).await;
    let step = |connector, message_id, action, extra| {
        step(store, &rules, connector, message_id, &no, action, extra)
    };
    let respond = json!({"note": "已处理"});
    assert_eq!(step(URBAN, "u-1", "respond", respond).await, "verifying");
    let held = step("hotline-12345", "c-1", "callback", satisfied()).await;
    assert_eq!(held, "verifying");
    assert!(store.callbacks_owed(None, 10).await.unwrap().is_empty());
    let passed = json!({"passed": true});
    assert_eq!(
        step("grid-platform", "v-1", "verify", passed).await,
        "closed"
    );
    assert_closed_satisfied(store, &no).await;
    let trail = trail(store, &no).await;
    assert_eq!(
        trail[trail.len() - 3..],
        [
            "callback_held:verifying",
            "verify:callback",
            "callback:closed"
        ]
    );
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM cases WHERE held_callback IS NOT NULL"
        )
        .await,
        0
    );
    let requested = outbox_keys(store, "hotline-12345", "callback_requested").await;
    assert_eq!(requested, ["hotline-12345.case.callback_requested"]);

    // Another ticket, left waiting for its callback.
    let second = case_no(
        &apply(
            store,
            &rules,
            "hotline-12345",
            "m-2",
            &ticket("T-2", 116.6762, 39.8935),
        )
        .await,
    );
    assert_ne!(second, no, "the first is closed: no merge");
    let respond = update(&second, "respond", json!({"note": "已处理"}));
    apply(store, &rules, URBAN, "u-2", &respond).await;
    let passed = update(&second, "verify", json!({"passed": true}));
    apply(store, &rules, "grid-platform", "v-2", &passed).await;
    let owed = store
        .callbacks_owed(Some("hotline-12345"), 10)
        .await
        .unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].case_no, second);
    assert_eq!(owed[0].ticket_id, "T-2");
    assert!(!owed[0].overdue);
    let due = owed[0].callback_due_at.expect("a callback deadline");
    assert!(
        store
            .callbacks_owed(Some("hotline-96156"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let later = due + chrono::Duration::seconds(1);
    let pressed: Vec<_> = store
        .escalate(later, &rules)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "callback_overdue")
        .collect();
    assert_eq!(pressed.len(), 1);
    assert_eq!(pressed[0].case_no, second);
    assert!(
        store
            .escalate(later, &rules)
            .await
            .unwrap()
            .iter()
            .all(|e| e.kind != "callback_overdue")
    );
    assert!(store.callbacks_owed(None, 10).await.unwrap()[0].overdue);
    let overdue = store.overdue_cases().await.unwrap();
    assert!(
        overdue.contains(&("hotline-12345".to_owned(), "callback".to_owned(), 1)),
        "{overdue:?}"
    );
    let callback = update(&second, "callback", satisfied());
    apply(store, &rules, "hotline-12345", "c-2", &callback).await;
    assert_eq!(case(store, &second).await["status"], "closed");
    assert!(store.callbacks_owed(None, 10).await.unwrap().is_empty());
}

/// A 12345 ticket at a place, from a caller's phone, of a category.
fn ticket_at(source_ref: &str, place: Value, phone: &str, category: &str) -> Intent {
    let mut value = match ticket(source_ref, 0.0, 0.0) {
        Intent::OpenCase(open) => serde_json::to_value(&open).unwrap(),
        other => panic!("{other:?}"),
    };
    value["kind"] = json!("open_case");
    value["place"] = place;
    value["reporter"]["phone"] = json!(phone);
    value["category"] = json!(category);
    intent(value)
}

/// Duplicates beyond coordinates: tickets placed by address alone merge by
/// grid, same category, within the window; the same caller comes first.
async fn tickets_placed_by_address_merge_by_grid_and_caller(store: &Store) {
    let rules = located(store).await;
    let address = json!({"address": "玉桥东里1号楼"});
    let noise = "noise.construction";
    // Ticket T-n (message m-n) opens a case: its number.
    let open = |n: &'static str, place: Value, phone: &'static str, category: &'static str| {
        let rules = &rules;
        async move {
            let ticket = ticket_at(&format!("T-{n}"), place, phone, category);
            case_no(&apply(store, rules, "hotline-12345", &format!("m-{n}"), &ticket).await)
        }
    };
    let first = open("1", address.clone(), "13900000001", noise).await;
    let listed = case(store, &first).await;
    assert_eq!(
        listed["grid_id"], "YQ-001-01",
        "placed by the known address"
    );
    assert!(listed["place"]["lon"].is_null());
    // The same matter by address again: merged.
    let again = open("2", address.clone(), "13900000002", noise).await;
    assert_eq!(case(store, &again).await["status"], "merged");
    assert_eq!(case(store, &again).await["parent_case_no"], first.as_str());
    // Another category at the same address: a case of its own.
    let road = open("3", address.clone(), "13900000001", "road.pothole").await;
    assert_ne!(case(store, &road).await["status"], "merged");
    // A point in the same grid, with no case within the radius: merged into
    // the one placed by address.
    let point = json!({"lon": 116.6712, "lat": 39.8912});
    let pointed = open("4", point, "13900000004", noise).await;
    assert_eq!(
        case(store, &pointed).await["parent_case_no"],
        first.as_str()
    );

    // Two open cases with points far apart (no merge), callers Y then X;
    // a ticket by address from Y goes to Y's case, though X's is later.
    let garbage = "sanitation.garbage";
    let (y_at, x_at) = (
        json!({"lon": 116.6710, "lat": 39.8910}),
        json!({"lon": 116.6790, "lat": 39.8990}),
    );
    let y = open("5", y_at, "13900000055", garbage).await;
    let x = open("6", x_at, "13900000066", garbage).await;
    assert_ne!(case(store, &x).await["status"], "merged", "far apart");
    let from_y = open("7", address.clone(), "13900000055", garbage).await;
    assert_eq!(case(store, &from_y).await["parent_case_no"], y.as_str());
    let from_z = open("8", address, "13900000099", garbage).await;
    assert_eq!(
        case(store, &from_z).await["parent_case_no"],
        x.as_str(),
        "no caller in common: the latest"
    );
}

/// The centre's step on a case, as the desk takes it.
async fn centre(
    store: &Store,
    rules: &Rules,
    case_no: &str,
    action: &str,
    extra: Value,
) -> Applied {
    let Intent::UpdateCase(update) = update(case_no, action, extra) else {
        unreachable!()
    };
    store.centre_update(&update, "desk-1", rules).await.unwrap()
}

/// A lead unit's extension request kept and granted (the deadline moved by
/// its days), a suspension that takes the case out of the overdue scan and
/// a resumption that moves the deadline by the time it stood.
async fn requests_for_time_are_kept_granted_and_the_clock_stops(store: &Store) {
    let rules = located(store).await;
    let no = open_ticket(store, &rules).await;
    let updated = Applied::CaseUpdated {
        case_no: no.clone(),
    };
    let due = |case: &Value| -> chrono::DateTime<Utc> {
        case["due_at"].as_str().unwrap().parse().unwrap()
    };
    let before = due(&case(store, &no).await);
    let ask = update(
        &no,
        "request_extension",
        json!({"days": 3, "reason": "等待鉴定"}),
    );
    assert_eq!(apply(store, &rules, URBAN, "u-1", &ask).await, updated);
    let detail = store.case_detail(&no, None).await.unwrap().unwrap();
    assert_eq!(detail["deadlines"]["pending_request"]["days"], 3);
    assert_eq!(detail["deadlines"]["pending_request"]["unit"], URBAN);
    // Only the lead unit asks.
    let refused = apply(store, &rules, "dept-housing", "h-1", &ask).await;
    assert!(matches!(refused, Applied::Refused(_)), "{refused:?}");

    assert_eq!(
        centre(store, &rules, &no, "extend", json!({})).await,
        updated
    );
    let extended = due(&case(store, &no).await);
    assert_eq!(extended, rules.routing.extend(before, 3));
    let detail = store.case_detail(&no, None).await.unwrap().unwrap();
    assert!(detail["deadlines"]["pending_request"].is_null());

    let suspend = json!({"reason": "行政复议"});
    assert_eq!(
        centre(store, &rules, &no, "suspend", suspend).await,
        updated
    );
    assert_eq!(case(store, &no).await["status"], "suspended");
    let past = extended + Duration::days(2);
    assert!(store.escalate(past, &rules).await.unwrap().is_empty());
    assert!(store.overdue_cases().await.unwrap().is_empty());
    assert_eq!(
        centre(store, &rules, &no, "resume", json!({})).await,
        updated
    );
    let resumed = case(store, &no).await;
    assert_eq!(resumed["status"], "dispatched");
    assert!(due(&resumed) >= extended, "moved by the time it stood");
    assert!(due(&resumed) < extended + Duration::minutes(1));
    assert_eq!(
        trail(store, &no).await[2..],
        [
            "extension_requested:dispatched",
            "extended:dispatched",
            "suspend:suspended",
            "resume:dispatched"
        ]
    );
    let heard = strings(
        store,
        "SELECT routing_key FROM outbox WHERE destination = $1 ORDER BY routing_key",
        URBAN,
    )
    .await;
    for event in ["extended", "suspended", "resumed"] {
        let key = format!("{URBAN}.case.{event}");
        assert!(heard.contains(&key), "{key} in {heard:?}");
    }
}

/// Two open cases at one place, of two categories (not duplicates).
async fn two_cases(store: &Store, rules: &Rules) -> (String, String) {
    let first = open_ticket(store, rules).await;
    let other = ticket_at(
        "T-2",
        json!({"lon": 116.6762, "lat": 39.8935}),
        "13900001111",
        "environment.garbage",
    );
    let second = case_no(&apply(store, rules, "hotline-12345", "m-2", &other).await);
    (first, second)
}

/// 并单 and 拆单 at the desk: a case merged by hand into another, with its
/// hotline told; split back out to its unit; a duplicate merged at intake
/// split out and routed as the rules say.
async fn the_centre_merges_and_splits_by_hand(store: &Store) {
    let rules = located(store).await;
    let (first, second) = two_cases(store, &rules).await;
    assert_ne!(first, second, "another category: not a duplicate");
    let reason = |into: &str| json!({"into": into, "reason": "同一工地"});

    // Refused: into itself, into an unknown case, without a reason at the desk's door.
    for into in [second.as_str(), "TZ2601010000001"] {
        let refused = centre(store, &rules, &second, "merge", reason(into)).await;
        assert!(matches!(refused, Applied::Refused(_)), "{refused:?}");
    }
    let updated = |no: &str| Applied::CaseUpdated {
        case_no: no.to_owned(),
    };
    assert_eq!(
        centre(store, &rules, &second, "merge", reason(&first)).await,
        updated(&second)
    );
    let merged = case(store, &second).await;
    assert_eq!(merged["status"], "merged");
    assert_eq!(merged["parent_case_no"], first.as_str());
    assert_eq!(
        trail(store, &first).await.last().unwrap(),
        "merged_in:dispatched"
    );
    let told = strings(
        store,
        "SELECT routing_key FROM outbox WHERE destination = $1 AND routing_key LIKE '%.merged'",
        "hotline-12345",
    )
    .await;
    assert_eq!(told, ["hotline-12345.case.merged"]);
    // Into a merged case: refused (it is not open).
    let refused = centre(store, &rules, &first, "merge", reason(&second)).await;
    assert!(matches!(refused, Applied::Refused(_)), "{refused:?}");

    // A split to a unit the rules do not know is refused and changes nothing.
    let nowhere = json!({"reason": "并错了", "unit": "no-such-unit"});
    let refused = centre(store, &rules, &second, "split", nowhere).await;
    assert!(matches!(refused, Applied::Refused(_)), "{refused:?}");
    assert_eq!(case(store, &second).await["parent_case_no"], first.as_str());

    // Split back out: dispatched again to the unit it had.
    let lead = merged["lead_unit"].clone();
    assert_eq!(
        centre(store, &rules, &second, "split", json!({"reason": "并错了"})).await,
        updated(&second)
    );
    let split = case(store, &second).await;
    assert_eq!(split["status"], "dispatched");
    assert!(split["parent_case_no"].is_null());
    assert_eq!(split["lead_unit"], lead);

    // A duplicate merged at intake was never routed: split, the rules route it.
    let duplicate = ticket("T-3", 116.6762, 39.8935);
    let third = case_no(&apply(store, &rules, "hotline-12345", "m-3", &duplicate).await);
    assert_eq!(case(store, &third).await["status"], "merged");
    assert!(case(store, &third).await["lead_unit"].is_null());
    let split = json!({"reason": "不是同一件事"});
    assert_eq!(
        centre(store, &rules, &third, "split", split).await,
        updated(&third)
    );
    let routed = case(store, &third).await;
    assert_eq!(routed["status"], "dispatched");
    assert_eq!(routed["lead_unit"], case(store, &first).await["lead_unit"]);
    assert!(routed["routing_rule"].is_string(), "{routed}");
}

/// Two dispatchers merge two cases into each other at the same moment: one
/// merge is done, the other refused (its target is merged now), neither
/// fails (on PostgreSQL the loser of the deadlock runs again).
async fn two_cases_merged_into_each_other_at_once_end_as_one(store: &Store) {
    let rules = located(store).await;
    let (first, second) = two_cases(store, &rules).await;
    for _ in 0..5 {
        let into = |no: &str| json!({"into": no, "reason": "同一件事"});
        let (a, b) = tokio::join!(
            centre(store, &rules, &first, "merge", into(&second)),
            centre(store, &rules, &second, "merge", into(&first)),
        );
        let done = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Applied::CaseUpdated { .. }))
            .count();
        assert_eq!(done, 1, "{a:?} {b:?}");
        // Undo it for the next round.
        let merged = if matches!(a, Applied::CaseUpdated { .. }) {
            &first
        } else {
            &second
        };
        let split = json!({"reason": "再试"});
        assert!(matches!(
            centre(store, &rules, merged, "split", split).await,
            Applied::CaseUpdated { .. }
        ));
    }
}

/// The assessment (docs/ASSESSMENT.md) of two cases computed by hand from
/// their events, and the same figures computed again, after the cases
/// moved on, as of the same cut-off.
async fn the_assessment_reads_events_and_an_earlier_cut_reads_the_same(store: &Store) {
    use gridhub::assessment::{By, Config, Period};
    let rules = located(store).await;
    let config = Config::load(&root().join("deploy/assessment.toml")).expect("assessment loads");
    // Received today, in this period.
    let today = Utc::now()
        .with_timezone(&gridhub::assessment::beijing())
        .date_naive();
    let period = Period::new(today.pred_opt().unwrap(), today.succ_opt().unwrap()).unwrap();
    let (a, b) = two_cases(store, &rules).await;
    let lead = |no: &str| {
        let no = no.to_owned();
        async move {
            case(store, &no).await["lead_unit"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let unit_a = lead(&a).await;
    let connector_a = rules.routing.unit(&unit_a).unwrap().connector.clone();
    // A: signed for, the caller contacted, answered, verified, called back
    // satisfied: closed.
    let steps = [
        (connector_a.as_str(), "accept", json!({})),
        (&connector_a, "contact", json!({"note": "电话联系"})),
        (&connector_a, "respond", json!({"note": "已处理"})),
        ("grid-platform", "verify", json!({"passed": true})),
        ("hotline-12345", "callback", satisfied()),
    ];
    for (n, (connector, action, extra)) in steps.into_iter().enumerate() {
        step(
            store,
            &rules,
            connector,
            &format!("a-{n}"),
            &a,
            action,
            extra,
        )
        .await;
    }
    assert_eq!(case(store, &a).await["status"], "closed");
    // B: reminded and supervised by hand, never signed for: the scanner
    // finds its sign-for deadline (2 h) passed.
    for action in ["remind", "supervise"] {
        let done = centre(store, &rules, &b, action, json!({"reason": "尽快"})).await;
        assert!(matches!(done, Applied::CaseUpdated { .. }), "{done:?}");
    }
    let later = Utc::now() + Duration::hours(3);
    assert_eq!(
        escalation_kinds(store, &rules, later).await,
        ["sign_for_overdue"]
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cut = Utc::now();

    let assess = |by: By, now: DateTime<Utc>| {
        let (config, routing) = (&config, rules.routing.clone());
        async move {
            gridhub::assess::assess(store, config, &routing, period, by, now)
                .await
                .expect("assessment")
        }
    };
    let first = assess(By::Street, cut).await;
    assert_eq!(first.rows.len(), 1, "{:?}", first.rows);
    let row = &first.rows[0];
    assert_eq!(row.key, "玉桥街道");
    let f = &row.current;
    // Received 2, both dispatched. Signed for on time: A (B's deadline
    // passed) of 2. Contacted in time: A; B's 24 h have not run out: 1 of
    // 1. Solved: A; B is open within its deadline: 1 of 1. Rated: A,
    // satisfied. Closed on time: A. B's reminder and supervision.
    assert_eq!((f.received, f.assessable), (2, 2));
    assert_eq!((f.signed_on_time, f.sign_for_settled), (1, 2));
    assert_eq!((f.contacted_in_time, f.contact_settled), (1, 1));
    assert_eq!((f.solved, f.solve_settled), (1, 1));
    assert_eq!((f.satisfied, f.rated), (1, 1));
    assert_eq!((f.closed, f.closed_on_time, f.overdue), (1, 1, 0));
    assert_eq!((f.reminders, f.supervisions, f.returns), (1, 1, 0));
    // Score: (20 + 30 + 30 + 10 x 1/2 + 10) / 100 x 100 = 95, less 1 for
    // the supervision.
    assert_eq!(f.score, Some(94.0));
    assert!(f.handling_hours_avg.is_some());
    assert_eq!(row.rank, None, "fewer cases than ranking.min_cases");
    let by_unit = assess(By::Unit, cut).await;
    assert!(
        by_unit
            .rows
            .iter()
            .any(|r| r.key == unit_a && r.current.closed == 1)
    );

    // B is closed by the centre; a third case comes in.
    let closed = centre(store, &rules, &b, "close", json!({"reason": "已协调"})).await;
    assert!(matches!(closed, Applied::CaseUpdated { .. }), "{closed:?}");
    apply(
        store,
        &rules,
        "hotline-12345",
        "m-3",
        &ticket("T-3", 116.6762, 39.8935),
    )
    .await;

    // As of the same cut-off: the same figures, to the last digit.
    let again = assess(By::Street, cut).await;
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&first).unwrap()
    );
    // As of now: B closed, the third case received (merged into A's? no:
    // A is closed, so it is a case of its own).
    let now = assess(By::Street, Utc::now()).await;
    let f = &now.rows[0].current;
    assert_eq!((f.received, f.closed), (3, 2));
    // The report files carry the same figures.
    let csv = String::from_utf8(first.to_csv().unwrap()).unwrap();
    assert!(csv.starts_with("rank,street,name,received,"), "{csv}");
    assert!(csv.contains("玉桥街道"));
    assert!(first.to_html().contains("<td>玉桥街道</td>"));
}
