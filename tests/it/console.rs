//! The ops console in a real browser: Debian's chromium, headless, driven
//! through chromedriver (W3C WebDriver) by the test.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use gridhub::amqp::publish::Outgoing;
use serde_json::{Value, json};

use crate::cli::tempdir;
use crate::helpers::{
    OPS_TOKEN, TestEnv, VIEWER_TOKEN, hotline_ticket, http, outgoing, sample, ticket_12345,
    wait_until,
};

const HOTLINE: &str = "hotline-12345";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process of this test's own, on a free port.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    async fn start() -> Driver {
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

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = http(self.addr, method, path, None, body.as_ref()).await;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "webdriver {method} {path}: {text}");
        value["value"].clone()
    }

    async fn session(&self, profile: &std::path::Path) -> Session<'_> {
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
                    "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
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

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn go(&self, url: &str) {
        self.driver
            .call(
                "POST",
                &format!("/session/{}/url", self.id),
                Some(json!({"url": url})),
            )
            .await;
    }

    /// The element, if the page has it now.
    async fn find(&self, css: &str) -> Option<String> {
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
    async fn text(&self, css: &str) -> Option<String> {
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

    async fn click(&self, css: &str) {
        let element = self.find(css).await.unwrap_or_else(|| panic!("no {css}"));
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

    async fn screenshot(&self, name: &str) {
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

    async fn wait_for_text(&self, css: &str, want: &str) {
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

    async fn close(self) {
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
