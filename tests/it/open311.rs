//! The Open311 GeoReport v2 endpoint: a maintained Open311 client posts a
//! request and follows it to closure through the same pipeline as any
//! connector's message; every answer has the spec's fields and no
//! personal data; what an untrusted client can send is bounded.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{OPS_TOKEN, RunningHub, TestEnv, root, wait_until};
use gridhub::hub::Hub;
use gridhub::settings::{ApiKey, Open311Settings, Role, Settings, Token};

const KEY: &str = "open311-key-for-tests-0123456789";

/// The fields GeoReport v2 lists for each answer, in its order.
const SERVICE: [&str; 7] = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
];
const ATTRIBUTE: [&str; 8] = [
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
];
const REQUEST: [&str; 17] = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
];
const DISCOVERY: [&str; 4] = ["changeset", "contact", "key_service", "endpoints"];
const ENDPOINT: [&str; 5] = ["specification", "url", "changeset", "type", "formats"];

/// What the reporter posted and the public must never read back.
const PERSONAL: [&str; 6] = [
    "小明",
    "wang.xm@example.com",
    "13911112222",
    "device-a1b2",
    "u-20931",
    "not-the-key",
];

fn settings(env: &TestEnv) -> Settings {
    let mut settings = env.settings.clone();
    settings.open311.api_keys = vec![ApiKey {
        name: "city-app".to_owned(),
        key: KEY.to_owned(),
        connector: "web-portal".to_owned(),
    }];
    settings
}

/// The names of an object's fields, sorted (a parsed `Value` keeps no
/// order; [`written`] reads it off the text).
fn fields(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// A field list, sorted, to compare with [`fields`].
fn spec(list: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = list.iter().map(|n| (*n).to_owned()).collect();
    names.sort();
    names
}

/// The field names of a JSON object, or of the first object of a JSON
/// list, in written order (a parsed `Value` keeps none).
fn written(text: &str) -> Vec<String> {
    let first = match text.trim_start().starts_with('[') {
        true => serde_json::from_str::<Vec<Fields>>(text).unwrap().remove(0),
        false => serde_json::from_str::<Fields>(text).unwrap(),
    };
    first.0
}

/// An object's field names, in order.
struct Fields(Vec<String>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    out.push(k);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One HTTP/1.1 request, as written: (status, content type, body).
async fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

async fn post_form(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    form: &str,
) -> (u16, String, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await
}

/// Runs the Python client: its transcript, and the value of its RESULT line.
async fn client(args: &[&str]) -> (String, Value) {
    let script = crate::helpers::root().join("tests/it/open311.py");
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(args)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{transcript}");
    assert!(
        output.status.success(),
        "the Open311 client failed:\n{transcript}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = transcript
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|line| serde_json::from_str(line).unwrap())
        .expect("a RESULT line");
    (transcript, result)
}

/// A city app's round trip on a running hub: discover, list, post, the
/// token, the request, then closed at the desk and read again (JSON and
/// XML). The case number.
async fn round_trip(hub: &RunningHub) -> String {
    let addr = hub.http.unwrap();
    let base = format!("http://{addr}/open311/v2");

    let (transcript, posted) = client(&["post", &base, KEY]).await;
    let case_no = posted["service_request_id"].as_str().unwrap().to_owned();
    assert!(!transcript.contains(KEY), "the transcript redacts the key");

    // The case was opened by the pipeline, as any connector's message:
    // routed and dispatched, its source the connector and the token.
    let (status, case) = hub.get(&format!("/api/cases/{case_no}"), OPS_TOKEN).await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(
        (
            &case["channel"],
            &case["status"],
            &case["priority"],
            &case["lead_unit"]
        ),
        (
            &json!("web"),
            &json!("dispatched"),
            &json!("urgent"),
            &json!("dept-urban-management")
        )
    );
    assert_eq!(case["sources"][0]["connector"], "web-portal");
    assert_eq!(case["sources"][0]["message_id"], posted["token"]);

    // The request as the public reads it: the spec's fields, no personal data.
    let request = &posted["request"];
    assert_eq!(fields(request), spec(&REQUEST));
    assert_eq!(request["status"], "open");
    assert_eq!(request["service_code"], "noise.construction");
    assert_eq!(request["service_name"], "施工噪声");
    assert_eq!(request["agency_responsible"], "区城市管理委员会");
    assert_eq!(request["service_notice"], "已派至区城市管理委员会办理");
    assert_eq!(request["address"], "通州区玉桥中路18号工地");
    assert_eq!(request["lat"], 39.8953);
    assert_eq!(request["long"], 116.6752);
    assert_eq!(
        request["media_url"],
        "https://app.tz.example/media/8812.jpg"
    );
    assert!(
        request["expected_datetime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let description = request["description"].as_str().unwrap();
    assert!(description.contains("打桩") && description.contains("139*"));
    let public = request.to_string();
    for personal in PERSONAL {
        assert!(!public.contains(personal), "{personal} in {public}");
    }
    for service in posted["services"].as_array().unwrap() {
        assert_eq!(fields(service), spec(&SERVICE));
    }
    let definition = &posted["definition"];
    assert_eq!(fields(definition), spec(&["service_code", "attributes"]));
    assert_eq!(fields(&definition["attributes"][0]), spec(&ATTRIBUTE));
    assert_eq!(fields(&posted["discovery"]), spec(&DISCOVERY));
    assert_eq!(
        fields(&posted["discovery"]["endpoints"][0]),
        spec(&ENDPOINT)
    );
    assert_eq!(posted["discovery"]["endpoints"][0]["url"], base.as_str());

    // The centre closes it at the desk; the app reads it closed, in JSON and XML.
    let (status, body) = hub
        .post(
            &format!("/api/cases/{case_no}/act"),
            OPS_TOKEN,
            &json!({"action": "close", "reason": "已责令施工单位停止夜间施工"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, closed) = client(&["closed", &base, &case_no]).await;
    assert_eq!(
        closed["xml_request"]["service_request_id"],
        case_no.as_str()
    );
    assert_eq!(closed["xml_request"]["status"], "closed");
    assert_eq!(
        closed["xml_request"]["status_notes"],
        "已责令施工单位停止夜间施工"
    );
    assert_eq!(closed["xml_request"]["service_notice"], "已办结");
    assert_eq!(
        closed["xml_definition"]["attributes"]["attribute"]["code"],
        "night_work"
    );
    assert_eq!(closed["xml_services"].as_array().unwrap().len(), 27);
    assert_eq!(closed["xml_error_status"], 404);
    assert!(
        closed["xml_error"]
            .as_str()
            .unwrap()
            .contains("<errors><error><code>404</code>")
    );
    let updated = closed["json"]["updated_datetime"].as_str().unwrap();
    assert!(updated >= request["requested_datetime"].as_str().unwrap());
    case_no
}

#[tokio::test(flavor = "multi_thread")]
async fn a_city_app_posts_a_request_and_follows_it_to_closure() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(settings(&env)).await;
    env.load_one_grid().await;
    let case_no = round_trip(&hub).await;

    let grid: String = sqlx::query_scalar("SELECT grid_id FROM cases WHERE case_no = $1")
        .bind(&case_no)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(grid, "YQ-001-01", "placed by its point");
    let (name, phone): (String, String) = sqlx::query_as(
        "SELECT r.name, r.phone FROM reporters r JOIN cases c ON c.id = r.case_id WHERE c.case_no = $1",
    )
    .bind(&case_no)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        name.starts_with("gh1:") && phone.starts_with("gh1:"),
        "sealed at rest"
    );
    let stored: String =
        sqlx::query_scalar("SELECT row_to_json(c)::text FROM cases c WHERE case_no = $1")
            .bind(&case_no)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    for kept_out in ["wang.xm@example.com", "device-a1b2", "u-20931", "小明"] {
        assert!(!stored.contains(kept_out), "the case keeps no {kept_out}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_round_trip_runs_on_the_in_process_bus_and_sqlite() {
    let settings = Settings {
        database_url: "sqlite::memory:".to_owned(),
        connectors_dir: root().join("connectors"),
        routing_file: Some(root().join("deploy/routing.toml")),
        namespace: "local".to_owned(),
        http_listen: "127.0.0.1:0".to_owned(),
        places_refresh_ms: 100,
        outbox_poll_ms: 200,
        shutdown_grace_secs: 5,
        tokens: vec![Token {
            name: "tester".to_owned(),
            token: OPS_TOKEN.to_owned(),
            role: Role::Ops,
            connectors: Vec::new(),
        }],
        open311: Open311Settings {
            api_keys: vec![ApiKey {
                name: "city-app".to_owned(),
                key: KEY.to_owned(),
                connector: "web-portal".to_owned(),
            }],
            ..Open311Settings::default()
        },
        ..Settings::default()
    };
    let (hub, _bus) = Hub::build(settings)
        .await
        .expect("hub builds")
        .on_local_bus();
    let hub = RunningHub::run(hub);
    round_trip(&hub).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_an_untrusted_client_sends_is_bounded_and_answered_in_the_spec_format() {
    let env = TestEnv::new().await;
    let mut settings = settings(&env);
    settings.open311.max_body_bytes = 4096;
    settings.open311.requests_per_minute = 40;
    let hub = env.start_hub(settings).await;
    let addr = hub.http.unwrap();
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    let error = |body: &str| -> (i64, String) {
        let value: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
        assert_eq!(written(body), ["code", "description"]);
        (
            value[0]["code"].as_i64().unwrap(),
            value[0]["description"].as_str().unwrap().to_owned(),
        )
    };

    // XML with its declaration and type.
    let (status, content_type, body) = get(addr, "/open311/v2/discovery.xml").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/xml; charset=utf-8")
    );
    assert!(body.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<discovery><changeset>"));
    let (status, content_type, _) = get(addr, "/open311/v2/services.json").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json; charset=utf-8")
    );

    // Keys, codes, types, sizes: each refused with its reason.
    let (status, _, body) = post_form(
        addr,
        "/open311/v2/requests.json",
        form,
        "service_code=road.pothole&address_string=x",
    )
    .await;
    assert_eq!((status, error(&body).0), (403, 403));
    let (status, _, body) = post_form(
        addr,
        "/open311/v2/requests.xml",
        form,
        "api_key=wrong-key-0000000000000&service_code=road.pothole",
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<errors><error><code>403</code><description>missing or invalid api_key")
    );
    let (status, _, body) = post_form(
        addr,
        "/open311/v2/requests.json",
        form,
        &format!("api_key={KEY}&service_code=no.such&address_string=x"),
    )
    .await;
    assert_eq!(
        (status, error(&body).1.as_str()),
        (404, "service_code not found")
    );
    let (status, _, body) = post_form(
        addr,
        "/open311/v2/requests.json",
        form,
        &format!("api_key={KEY}&service_code=road.pothole"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error(&body).1.contains("location"));
    let (status, _, body) =
        post_form(addr, "/open311/v2/requests.json", "application/json", "{}").await;
    assert_eq!(status, 400, "{body}");
    let big = format!(
        "api_key={KEY}&service_code=road.pothole&description={}",
        "x".repeat(5000)
    );
    let (status, _, body) = post_form(addr, "/open311/v2/requests.json", form, &big).await;
    assert_eq!((status, error(&body).0), (413, 413));
    // Refused by the connector's schema before it is published: no case, no dead letter.
    let long = format!(
        "api_key={KEY}&service_code=road.pothole&address_string=x&media_url=javascript:alert(1)"
    );
    let (status, _, body) = post_form(addr, "/open311/v2/requests.json", form, &long).await;
    assert_eq!(status, 400);
    assert!(error(&body).1.contains("media_url"), "{body}");
    let (status, _, body) = post_form(
        addr,
        "/open311/v2/requests.json",
        form,
        &format!("api_key={KEY}&service_code=noise.construction&address_string=x"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error(&body).1.contains("attribute[night_work] is required"));

    // Reads of what does not exist, and malformed filters.
    for path in [
        "/open311/v2/tokens/0123456789abcdef0123456789abcdef.json",
        "/open311/v2/tokens/..%2F..%2Fetc.json",
        "/open311/v2/requests/TZ2612060000042.json",
        "/open311/v2/requests/1%20OR%201=1.json",
        "/open311/v2/services/no.such.json",
        "/open311/v2/nothing.json",
        "/open311/v3/services.json",
    ] {
        let (status, _, body) = get(addr, path).await;
        assert_eq!((status, error(&body).0), (404, 404), "{path}");
    }
    let (status, _, body) = get(
        addr,
        "/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 400);
    assert!(error(&body).1.contains("90 days"));
    let (status, _, body) = get(addr, "/open311/v2/requests.json?status=open").await;
    assert_eq!((status, body.as_str()), (200, "[]"));

    // A client's budget a minute, then 429.
    let mut limited = false;
    for _ in 0..45 {
        let (status, _, body) = get(addr, "/open311/v2/services.json").await;
        if status == 429 {
            assert_eq!(error(&body).0, 429);
            limited = true;
            break;
        }
    }
    assert!(limited, "the 41st request of a minute is refused");
    assert_eq!(env.count("SELECT count(*) FROM inbox").await, 0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_published_as_its_connector_and_its_token_waits_for_the_case() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(settings(&env)).await;
    let addr = hub.http.unwrap();
    let form = format!(
        "api_key={KEY}&service_code=road.pothole&address_string=%E6%96%B0%E5%8D%8E%E5%A4%A7%E8%A1%97&description=%E5%9D%91"
    );
    let (status, _, body) = post_form(
        addr,
        "/open311/v2/requests.json",
        "application/x-www-form-urlencoded",
        &form,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(written(&body), ["token"]);
    let token = answer[0]["token"].as_str().unwrap().to_owned();
    let path = format!("/open311/v2/tokens/{token}.json");
    wait_until(Duration::from_secs(20), "the token's case", || {
        let path = path.clone();
        async move { get(addr, &path).await.0 == 200 }
    })
    .await;
    let (_, _, body) = get(addr, &path).await;
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(written(&body), ["service_request_id", "token"]);
    // The spec's fields in the spec's order.
    let case_no = found[0]["service_request_id"].as_str().unwrap().to_owned();
    let (_, _, body) = get(addr, &format!("/open311/v2/requests/{case_no}.json")).await;
    assert_eq!(written(&body), REQUEST);
    let (_, _, body) = get(addr, "/open311/v2/services.json").await;
    assert_eq!(written(&body), SERVICE);
    let (_, _, body) = get(addr, "/open311/v2/discovery.json").await;
    assert_eq!(written(&body), DISCOVERY);
    let (outcome, message_type): (String, String) = sqlx::query_as(
        "SELECT outcome, message_type FROM inbox WHERE connector = 'web-portal' AND message_id = $1",
    )
    .bind(&token)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (outcome.as_str(), message_type.as_str()),
        ("case_opened", "request")
    );
    hub.stop().await;
}
