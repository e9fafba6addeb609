//! The ops console in a real browser: Debian's chromium, headless, driven
//! through chromedriver (W3C WebDriver) by the test.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, FixedOffset, Utc};
use gridhub::amqp::publish::Outgoing;
use serde_json::{Value, json};

use crate::cli::tempdir;
use crate::helpers::{
    OPS_TOKEN, TestEnv, VIEWER_TOKEN, hotline_ticket, http, one_grid, outgoing, sample,
    ticket_12345, wait_until,
};

const HOTLINE: &str = "hotline-12345";
const URBAN: &str = "dept-urban-management";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process of this test's own, on a free port.
pub(crate) struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian packages chromium and chromium-driver; .ci/run installs them)");
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let start = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(driver.addr).await.is_ok() {
                let (status, _) = http(driver.addr, "GET", "/status", None, None).await;
                if status == 200 {
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = http(self.addr, method, path, None, body.as_ref()).await;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "webdriver {method} {path}: {text}");
        value["value"].clone()
    }

    pub(crate) async fn session(&self, profile: &std::path::Path) -> Session<'_> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1400,1100",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let value = self
            .call(
                "POST",
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": args,
                        // Files the page saves land in the profile's downloads.
                        "prefs": {
                            "download.default_directory": profile.join("downloads"),
                            "download.prompt_for_download": false,
                        },
                    },
                }}})),
            )
            .await;
        Session {
            driver: self,
            id: value["sessionId"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    pub(crate) async fn go(&self, url: &str) {
        self.driver
            .call(
                "POST",
                &format!("/session/{}/url", self.id),
                Some(json!({"url": url})),
            )
            .await;
    }

    /// The element, if the page has it now.
    pub(crate) async fn find(&self, css: &str) -> Option<String> {
        let (status, text) = http(
            self.driver.addr,
            "POST",
            &format!("/session/{}/element", self.id),
            None,
            Some(&json!({"using": "css selector", "value": css})),
        )
        .await;
        if status != 200 {
            return None;
        }
        let value: Value = serde_json::from_str(&text).ok()?;
        value["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// The element's text; none when there is no such element, or it was
    /// redrawn between finding and reading it (a stale element).
    pub(crate) async fn text(&self, css: &str) -> Option<String> {
        let element = self.find(css).await?;
        let path = format!("/session/{}/element/{element}/text", self.id);
        let (status, text) = http(self.driver.addr, "GET", &path, None, None).await;
        if status == 404 && text.contains("stale element reference") {
            return None;
        }
        assert_eq!(status, 200, "webdriver GET {path}: {text}");
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        value["value"].as_str().map(str::to_owned)
    }

    /// Clicks the element once it is shown: a view is drawn when its data
    /// has come, not at once.
    pub(crate) async fn click(&self, css: &str) {
        let start = Instant::now();
        let element = loop {
            if let Some(element) = self.find(css).await {
                let shown = self
                    .driver
                    .call(
                        "GET",
                        &format!("/session/{}/element/{element}/displayed", self.id),
                        None,
                    )
                    .await;
                if shown == Value::Bool(true) {
                    break element;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{css} is not shown to click"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.driver
            .call(
                "POST",
                &format!("/session/{}/element/{element}/click", self.id),
                Some(json!({})),
            )
            .await;
    }

    /// Types `text` into the element, as a user would.
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await.unwrap_or_else(|| panic!("no {css}"));
        self.driver
            .call(
                "POST",
                &format!("/session/{}/element/{element}/value", self.id),
                Some(json!({"text": text})),
            )
            .await;
    }

    /// Runs `script` in the page with `args`; what it returns.
    pub(crate) async fn execute(&self, script: &str, args: Value) -> Value {
        self.driver
            .call(
                "POST",
                &format!("/session/{}/execute/sync", self.id),
                Some(json!({"script": script, "args": args})),
            )
            .await
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let value = self
            .driver
            .call("GET", &format!("/session/{}/screenshot", self.id), None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).unwrap();
    }

    pub(crate) async fn wait_for_text(&self, css: &str, want: &str) {
        let start = Instant::now();
        loop {
            let text = self.text(css).await;
            if text.as_deref() == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{css} shows {text:?}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn close(self) {
        self.driver
            .call("DELETE", &format!("/session/{}", self.id), None)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_replays_a_group_and_the_dlq_count_falls() {
    let env = TestEnv::new().await;
    // A broken mapping refuses three good tickets; one bad ticket is refused too.
    let (broken, hub) = env.start_hub_with_broken_mapping(HOTLINE).await;
    let mut messages: Vec<Outgoing> = (1..=3)
        .map(|n| hotline_ticket(&format!("BJ12345-20261128-90020{n}")))
        .collect();
    messages.push(outgoing(
        HOTLINE,
        "ticket",
        sample(HOTLINE, "ticket/invalid/invalid-phone.json"),
    ));
    env.publish(&messages).await;
    let queue = env.names.dead_letter_queue(HOTLINE);
    env.wait_depth(&queue, 4, Duration::from_secs(20)).await;
    hub.stop().await;

    // The fix is deployed; ops open the console.
    let hub = env.start_hub(env.settings.clone()).await;
    let (_, groups) = hub.get("/api/dlq/groups", VIEWER_TOKEN).await;
    let mapping = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["stage"] == "mapping")
        .expect("the mapping group")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let driver = Driver::start().await;
    let profile = tempdir();
    let session = driver.session(&profile).await;
    let console = format!("http://{}/", hub.http.unwrap());
    session.go(&format!("{console}#token={OPS_TOKEN}")).await;
    session.wait_for_text("#dlq-total", "4").await;
    let button = format!("tr[data-group=\"{mapping}\"] button[data-action=\"replay-group\"]");
    assert!(
        session.find(&button).await.is_some(),
        "replay button for the group"
    );
    session
        .click(&format!(
            "tr[data-group=\"{mapping}\"] button[data-action=\"show-group\"]"
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    session.screenshot("console-before-replay.png").await;
    // One message in full, with its payload in an editor.
    session.click("#letters tbody tr a").await;
    let start = Instant::now();
    while session.find("#edit-body").await.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no payload editor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    session.screenshot("console-detail.png").await;

    session.click(&button).await;
    session.wait_for_text("#dlq-total", "1").await;
    env.wait_count("SELECT count(*) FROM cases", 3, Duration::from_secs(20))
        .await;
    let oldest: String =
        sqlx::query_scalar("SELECT status FROM cases ORDER BY created_at, case_no LIMIT 1")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    session
        .wait_for_text("#cases tbody tr:nth-child(3) td:nth-child(2)", &oldest)
        .await;
    let notice = session.text("#notice").await.unwrap_or_default();
    assert!(notice.contains("Replayed 3 of 3"), "{notice}");
    session.screenshot("console-after-replay.png").await;

    // A viewer sees the console but cannot replay.
    session.go(&format!("{console}#token={VIEWER_TOKEN}")).await;
    session.wait_for_text("#who", "watcher (viewer)").await;
    let button = "button[data-action=\"replay-group\"]";
    let element = session.find(button).await.expect("a group remains");
    let enabled = driver
        .call(
            "GET",
            &format!("/session/{}/element/{element}/enabled", session.id),
            None,
        )
        .await;
    assert_eq!(enabled, false, "viewers cannot replay");

    // The case view: a ticket found by its id, opened with its timeline
    // and its place among the grids.
    env.load_one_grid().await;
    let ticket_no = "BJ12345-20261128-900299";
    let mut water: Value = serde_json::from_slice(&ticket_12345(ticket_no)).unwrap();
    water["category"] = json!({"code": "0501", "name": "停水"});
    env.publish(&[outgoing(
        HOTLINE,
        "ticket",
        serde_json::to_vec(&water).unwrap(),
    )])
    .await;
    wait_until(Duration::from_secs(20), "the water case placed", || async {
        env.count(
            "SELECT count(*) FROM cases c JOIN case_sources s ON s.case_id = c.id
             WHERE s.source_ref = 'BJ12345-20261128-900299' AND c.grid_id = 'YQ-001-01'",
        )
        .await
            == 1
    })
    .await;
    let case_no: String = sqlx::query_scalar(
        "SELECT c.case_no FROM cases c JOIN case_sources s ON s.case_id = c.id
         WHERE s.source_ref = $1",
    )
    .bind(ticket_no)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    session.type_into("#case-search", ticket_no).await;
    session.click("#case-search-go").await;
    session.wait_for_text("#case-no", &case_no).await;
    session
        .wait_for_text(
            "#case-timeline tbody tr:nth-child(1) td:nth-child(2)",
            "opened",
        )
        .await;
    session
        .wait_for_text(
            "#case-timeline tbody tr:nth-child(2) td:nth-child(2)",
            "dispatched",
        )
        .await;
    assert!(
        session.find("#case-map polygon.here").await.is_some(),
        "the case's grid drawn and marked"
    );
    assert!(
        session.find("#case-map circle").await.is_some(),
        "its point"
    );
    session.screenshot("console-case.png").await;

    // The desk: a viewer cannot act; a dispatcher (here ops) dispatches the
    // case by hand to another unit, with a reason, and the timeline shows
    // it, naming the token.
    assert!(
        session.find("#act-go[disabled]").await.is_some(),
        "a viewer's desk is disabled"
    );
    session.go(&format!("{console}#token={OPS_TOKEN}")).await;
    session.wait_for_text("#who", "tester (ops)").await;
    session.click("#case-search-go").await;
    let started = std::time::Instant::now();
    while session.find("#act-go:not([disabled])").await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the desk opens for ops"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    session.type_into("#act-unit", "dept-housing").await;
    session.type_into("#act-reason", "住建牵头").await;
    session.click("#act-go").await;
    session
        .wait_for_text(
            "#case-timeline tbody tr:last-child td:nth-child(2)",
            "dispatch",
        )
        .await;
    let who = session
        .text("#case-timeline tbody tr:last-child td:nth-child(4)")
        .await
        .unwrap_or_default();
    assert!(who.starts_with("token:"), "{who}");
    let lead: String = sqlx::query_scalar("SELECT lead_unit FROM cases WHERE case_no = $1")
        .bind(&case_no)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(lead, "dept-housing");
    // Three days more (延期), as a unit might ask: the timeline says so.
    session.click("#act-action option[value=extend]").await;
    session.type_into("#act-days", "3").await;
    session.click("#act-go").await;
    session
        .wait_for_text(
            "#case-timeline tbody tr:last-child td:nth-child(2)",
            "extended",
        )
        .await;

    session.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(profile);
    let _ = std::fs::remove_dir_all(broken);
    hub.stop().await;
}

/// Now in Beijing time, as the district's systems write it.
fn beijing_now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

/// RFC 3339 in whole seconds, as the hotlines write times.
fn rfc3339(at: DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Two grids in two streets/townships: the test grid in 玉桥街道, and one
/// east of it in 潞城镇's 胡各庄村.
fn two_streets() -> Vec<u8> {
    let mut grids: Value = serde_json::from_slice(&one_grid()).unwrap();
    let mut east = grids["features"][0].clone();
    east["id"] = json!("LC-001-01");
    east["geometry"]["coordinates"] = json!([[
        [116.70, 39.89],
        [116.71, 39.89],
        [116.71, 39.90],
        [116.70, 39.90],
        [116.70, 39.89]
    ]]);
    east["properties"] = json!({"grid_id": "LC-001-01", "community": "胡各庄村",
        "community_kind": "village", "street": "潞城镇", "retired": false});
    grids["features"].as_array_mut().unwrap().push(east);
    serde_json::to_vec(&grids).unwrap()
}

/// A 12345 ticket about construction noise received now at a point in
/// `street`, whose caller asked to be called back.
fn ticket_now(ticket_no: &str, street: &str, lon: f64, lat: f64) -> Outgoing {
    let mut body: Value = serde_json::from_slice(&ticket_12345(ticket_no)).unwrap();
    body["acceptTime"] = json!(rfc3339(beijing_now()));
    body["anonymous"] = json!(false);
    body["callbackRequired"] = json!(true);
    body["street"] = json!(street);
    body["address"] = json!(format!("北京市通州区{street}某在建工地"));
    body["location"] = json!({"lng": lon, "lat": lat});
    outgoing(HOTLINE, "ticket", serde_json::to_vec(&body).unwrap())
}

/// A bundled sample (`connector`, `path` under its samples) about
/// `case_no` and `ticket`, done now.
fn step_now(connector: &str, path: &str, case_no: &str, ticket: &str) -> Outgoing {
    let now = beijing_now();
    let mut body: Value = serde_json::from_slice(&sample(connector, path)).unwrap();
    for (key, value) in body.as_object_mut().unwrap() {
        let time = |at: DateTime<FixedOffset>, format: &str| json!(at.format(format).to_string());
        match key.as_str() {
            "CaseNo" | "CASE_NO" => *value = json!(case_no),
            "ticketNo" => *value = json!(ticket),
            "SignTime" | "FinishTime" => *value = time(now, "%Y-%m-%dT%H:%M:%S"),
            "PlannedFinishTime" => {
                *value = time(now + chrono::Duration::days(1), "%Y-%m-%dT%H:%M:%S")
            }
            "VERIFY_TIME" => *value = time(now, "%Y/%m/%d %H:%M:%S"),
            "callbackTime" => *value = json!(rfc3339(now)),
            _ => {}
        }
    }
    let message_type = path.split('/').next().unwrap();
    outgoing(connector, message_type, serde_json::to_vec(&body).unwrap())
}

async fn wait_status(env: &TestEnv, case_no: &str, status: &str) {
    wait_until(
        Duration::from_secs(20),
        &format!("{case_no} {status}"),
        || async {
            let now: String = sqlx::query_scalar("SELECT status FROM cases WHERE case_no = $1")
                .bind(case_no)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            now == status
        },
    )
    .await;
}

/// A count as the console shows it.
fn shown(count: &Value) -> String {
    if count.is_null() {
        "–".to_owned()
    } else {
        count.to_string()
    }
}

/// A rate as the console shows it.
fn percent(rate: &Value) -> String {
    rate.as_f64()
        .map_or("–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// The assessment page: calls in two streets/townships, one carried round
/// the whole loop (signed for, solved, verified, called back satisfied), one
/// signed for, the others waiting; the page's ranking, charts and hot spots
/// show what the API gives, and the monthly report is saved with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_assesses_streets_on_the_three_rates() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    env.publish(&[outgoing("dept-planning", "grid-boundaries", two_streets())])
        .await;
    env.wait_count("SELECT count(*) FROM grids", 2, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Five calls in 玉桥街道, enough to be ranked (deploy/assessment.toml,
    // min_cases), one in 潞城镇; over 50 m apart, so none is merged.
    let mut tickets: Vec<(String, &str, f64)> = (1..=5)
        .map(|n| {
            let lon = 116.6690 + 0.002 * f64::from(n);
            (format!("BJ12345-20261206-93000{n}"), "玉桥街道", lon)
        })
        .collect();
    tickets.push(("BJ12345-20261206-930006".to_owned(), "潞城镇", 116.7050));
    let calls: Vec<Outgoing> = tickets
        .iter()
        .map(|(no, street, lon)| ticket_now(no, street, *lon, 39.8935))
        .collect();
    env.publish(&calls).await;
    env.wait_count(
        "SELECT count(*) FROM cases WHERE status = 'dispatched'",
        6,
        Duration::from_secs(20),
    )
    .await;
    let mut cases = Vec::new();
    for (ticket, ..) in &tickets {
        let case_no: String = sqlx::query_scalar(
            "SELECT c.case_no FROM cases c JOIN case_sources s ON s.case_id = c.id
             WHERE s.source_ref = $1",
        )
        .bind(ticket)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        cases.push((case_no, ticket));
    }

    let (closed, ticket) = &cases[0];
    let loop_steps = [
        (
            URBAN,
            "sign-for/valid/yuqiao-with-plan-and-remark.json",
            "accepted",
        ),
        (
            URBAN,
            "result/valid/solved-garbage-yuqiao.json",
            "verifying",
        ),
        (
            "grid-platform",
            "verification/valid/passed-garbage-cleared-yuqiao.json",
            "callback",
        ),
        (
            HOTLINE,
            "callback/valid/reached-solved-satisfied-pothole.json",
            "closed",
        ),
    ];
    for (connector, path, status) in loop_steps {
        env.publish(&[step_now(connector, path, closed, ticket)])
            .await;
        wait_status(&env, closed, status).await;
    }
    let (signed, ticket) = &cases[1];
    env.publish(&[step_now(
        URBAN,
        "sign-for/valid/lucheng-night-duty.json",
        signed,
        ticket,
    )])
    .await;
    wait_status(&env, signed, "accepted").await;

    // The period includes today, in Beijing time.
    let today = beijing_now().date_naive();
    let from = today - chrono::Duration::days(1);
    let query = format!("from={from}&to={today}");
    let (status, assessment) = hub
        .get(&format!("/api/assessment?{query}&by=street"), VIEWER_TOKEN)
        .await;
    assert_eq!(status, 200, "{assessment}");
    let rows = assessment["rows"].as_array().unwrap();
    let named = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {assessment}"))
    };
    assert_eq!(rows.len(), 2, "{assessment}");
    assert_eq!(named("玉桥街道")["rank"], 1, "{assessment}");
    assert!(named("潞城镇")["rank"].is_null(), "too few to rank");
    let yuqiao = &named("玉桥街道")["current"];
    assert_eq!(yuqiao["received"], 5, "{yuqiao}");
    assert_eq!(yuqiao["signed_on_time"], 2, "{yuqiao}");
    assert_eq!(yuqiao["solved"], 1, "{yuqiao}");
    assert_eq!(yuqiao["closed_on_time"], 1, "{yuqiao}");
    assert_eq!(yuqiao["response_rate"], 1.0, "{yuqiao}");
    assert_eq!(yuqiao["satisfaction_rate"], 1.0, "{yuqiao}");
    let lucheng = &named("潞城镇")["current"];
    assert_eq!(lucheng["received"], 1, "{lucheng}");
    assert!(lucheng["satisfaction_rate"].is_null(), "{lucheng}");
    // Refused: periods backwards, longer than a year, rows of no kind.
    let far = today - chrono::Duration::days(400);
    for query in [
        format!("from={today}&to={from}"),
        format!("from={far}&to={today}"),
        format!("{query}&by=planet"),
    ] {
        let (status, refused) = hub
            .get(&format!("/api/assessment?{query}"), VIEWER_TOKEN)
            .await;
        assert_eq!(status, 400, "{query}: {refused}");
    }

    let driver = Driver::start().await;
    let profile = tempdir();
    let session = driver.session(&profile).await;
    let console = format!("http://{}/", hub.http.unwrap());
    session.go(&format!("{console}#token={OPS_TOKEN}")).await;
    session.wait_for_text("#who", "tester (ops)").await;
    session.click("#tab-assessment").await;
    session
        .execute(
            "document.getElementById('a-from').value = arguments[0];
             document.getElementById('a-to').value = arguments[1];
             document.getElementById('a-by').value = 'street';",
            json!([from.to_string(), today.to_string()]),
        )
        .await;
    session.click("#a-show").await;
    let period = format!(
        "{} – {} by street/township, against {} – {}",
        assessment["period"]["from"].as_str().unwrap(),
        assessment["period"]["to"].as_str().unwrap(),
        assessment["previous"]["from"].as_str().unwrap(),
        assessment["previous"]["to"].as_str().unwrap(),
    );
    session.wait_for_text("#a-period", &period).await;

    // The ranking, row by row as the API ranks them.
    for (n, row) in rows.iter().enumerate() {
        let tr = format!("#ranking tbody tr:nth-child({})", n + 1);
        let cell = |field: &str| format!("{tr} td[data-field={field}]");
        let current = &row["current"];
        session
            .wait_for_text(&cell("rank"), &shown(&row["rank"]))
            .await;
        session
            .wait_for_text(&cell("name"), row["name"].as_str().unwrap())
            .await;
        for field in [
            "received",
            "signed_on_time",
            "closed_on_time",
            "overdue",
            "returns",
            "rework",
        ] {
            session
                .wait_for_text(&cell(field), &shown(&current[field]))
                .await;
        }
        for rate in ["response_rate", "solve_rate", "satisfaction_rate"] {
            session
                .wait_for_text(
                    &format!("{} .current", cell(rate)),
                    &percent(&current[rate]),
                )
                .await;
            session
                .wait_for_text(
                    &format!("{} .previous", cell(rate)),
                    &percent(&row["previous"][rate]),
                )
                .await;
        }
    }
    let total = &assessment["total"]["current"];
    session
        .wait_for_text(
            "#ranking tfoot td[data-field=received]",
            &shown(&total["received"]),
        )
        .await;

    // The three charts drawn by Chart.js: the rates by row in rank order,
    // the district's months, overdue by unit.
    let charts = session
        .execute(
            "return ['chart-rates', 'chart-months', 'chart-overdue'].map((id) => {
               const chart = Chart.getChart(document.getElementById(id));
               return chart ? { labels: chart.data.labels, datasets: chart.data.datasets.length } : null;
             });",
            json!([]),
        )
        .await;
    let ranked: Vec<&Value> = rows.iter().map(|r| &r["name"]).collect();
    assert_eq!(charts[0]["labels"], json!(ranked), "{charts}");
    assert_eq!(charts[0]["datasets"], 3, "{charts}");
    let months: Vec<&Value> = assessment["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["month"])
        .collect();
    assert_eq!(months.len(), 6, "{assessment}");
    assert_eq!(charts[1]["labels"], json!(months), "{charts}");
    assert_eq!(charts[1]["datasets"], 3, "{charts}");
    assert!(charts[2]["labels"].is_array(), "{charts}");

    // Hot spots by community: 玉桥东里社区 had five of the six calls.
    let (status, hot) = hub
        .get(&format!("/api/hotspots?{query}&by=community"), VIEWER_TOKEN)
        .await;
    assert_eq!(status, 200, "{hot}");
    assert_eq!(hot["top_places"][0]["name"], "玉桥东里社区", "{hot}");
    assert_eq!(hot["top_places"][0]["count"], 5, "{hot}");
    session
        .wait_for_text(
            "#hot-places tbody tr:nth-child(1) td:nth-child(1)",
            "玉桥东里社区",
        )
        .await;
    session
        .wait_for_text("#hot-places tbody tr:nth-child(1) td:nth-child(2)", "5")
        .await;
    assert!(
        session
            .find(&format!(
                "#hot-categories tbody tr[data-category=\"{}\"]",
                hot["top_categories"][0]["category"].as_str().unwrap()
            ))
            .await
            .is_some(),
        "the busiest category listed"
    );
    session.screenshot("console-assessment.png").await;

    // The monthly report needs the token: the page fetches it and saves it.
    session.click("#report-csv").await;
    let downloads = profile.join("downloads");
    let mut report = String::new();
    wait_until(Duration::from_secs(20), "the CSV report saved", || {
        let found = std::fs::read_dir(&downloads)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"));
        if let Some(path) = found {
            report = std::fs::read_to_string(path).unwrap_or_default();
        }
        let saved = !report.is_empty();
        async move { saved }
    })
    .await;
    assert!(
        report.contains("玉桥街道") && report.contains("潞城镇"),
        "{report}"
    );

    session.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(profile);
    hub.stop().await;
}
