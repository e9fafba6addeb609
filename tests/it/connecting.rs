//! docs/CONNECTING.md, run: the department programs of docs/examples/
//! (Python with pika, Java with the RabbitMQ Java client) log in as
//! 住建委's own broker user, over TLS, in a virtual host provisioned from
//! `gridhub topology`; they read the contract and dry-run with the
//! department's scoped token, consume the case dispatched to them, reply in
//! v1 and v2 with confirms, and stop once before an ack as a crash would:
//! the event comes again and is handled once, and a reply sent again has
//! no second effect.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gridhub::amqp::publish::{self, Outgoing};
use gridhub::settings::{Role, Settings};
use lapin::Connection;
use serde_json::{Value, json};

use crate::helpers::{RunningHub, TestEnv, root, ticket_12345, wait_until};

const HOUSING: &str = "dept-housing";
/// The department's API token, scoped to its connector.
const TOKEN: &str = "housing-system-token-0123456789";
const CA: &str = "/var/lib/gridhub-dev-tls/ca.pem";
const SIGN_FOR: &str = "feedback/valid/01-sign-for-elevator-yuqiao.json";
const PROGRESS_V2: &str = "feedback.v2/valid/03-progress-with-photos-facade-beiyuan.json";
const CONTACT_V2: &str = "feedback.v2/valid/07-contact-by-phone-elevator.json";

/// A district's broker as the hub's team provisions it (`gridhub topology
/// --passwords`, then `rabbitmqctl import_definitions`), in a virtual host
/// of the test's own; deleted when dropped, with its users and files.
/// RabbitMQ's users belong to the broker, not to a virtual host, so the
/// test's connectors publish as users named for the test
/// (`dept-housing-<namespace>`, the `publishers` of a copy of the
/// connectors) and only those are imported: tests that provision at the
/// same time keep their own passwords.
struct Vhost {
    name: String,
    /// The test's copy of the connectors and schemas, and its files.
    dir: PathBuf,
    users: Vec<String>,
    passwords: HashMap<String, String>,
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .output();
        for user in &self.users {
            let _ = Command::new("rabbitmqctl")
                .args(["-q", "delete_user", user])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Vhost {
    /// `publishers` maps connectors to the users they publish as.
    fn provision(env: &TestEnv, hub_user: &str, publishers: &[(&str, &str)]) -> Vhost {
        let namespace = &env.settings.namespace;
        let name = format!("gridhub-dept-{namespace}");
        let dir = crate::cli::bundled_copy();
        for (connector, user) in publishers {
            let file = dir.join(format!("connectors/{connector}/connector.toml"));
            let text = std::fs::read_to_string(&file).unwrap();
            let own = format!("publishers = [\"{connector}\"]");
            assert!(text.contains(&own), "{connector} publishes as itself");
            std::fs::write(
                &file,
                text.replace(&own, &format!("publishers = [\"{user}\"]")),
            )
            .unwrap();
        }
        let config = dir.join("gridhub.toml");
        std::fs::write(
            &config,
            format!(
                "amqp_url = \"amqp://{hub_user}@127.0.0.1:5672/{name}\"\n\
                 namespace = \"{namespace}\"\n\
                 connectors_dir = \"{}\"\n",
                dir.join("connectors").display()
            ),
        )
        .unwrap();
        let passwords = dir.join("broker-passwords");
        let output = crate::cli::gridhub()
            .args(["topology", "--config"])
            .arg(&config)
            .arg("--passwords")
            .arg(&passwords)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let mut users: Vec<String> = publishers.iter().map(|(_, u)| (*u).to_owned()).collect();
        users.push(hub_user.to_owned());
        let mut definitions: Value = serde_json::from_slice(&output.stdout).unwrap();
        for (list, key) in [
            ("users", "name"),
            ("permissions", "user"),
            ("topic_permissions", "user"),
        ] {
            definitions[list]
                .as_array_mut()
                .unwrap()
                .retain(|entry| users.iter().any(|u| entry[key] == u.as_str()));
        }
        let file = dir.join("definitions.json");
        std::fs::write(&file, definitions.to_string()).unwrap();
        let imported = Command::new("rabbitmqctl")
            .args(["-q", "import_definitions"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(imported.status.success(), "{imported:?}");
        let passwords = std::fs::read_to_string(&passwords)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .map(|(u, p)| (u.to_owned(), p.to_owned()))
            .collect();
        Vhost {
            name,
            dir,
            users,
            passwords,
        }
    }

    /// Plain AMQP, as the hub and the test's hotline connect.
    fn url(&self, user: &str) -> String {
        let password = &self.passwords[user];
        format!("amqp://{user}:{password}@127.0.0.1:5672/{}", self.name)
    }

    /// TLS, as a department connects (the broker's certificate names
    /// `localhost`).
    fn tls_url(&self, user: &str) -> String {
        let password = &self.passwords[user];
        format!("amqps://{user}:{password}@localhost:5671/{}", self.name)
    }

    async fn connect(&self, user: &str) -> Connection {
        gridhub::amqp::connect(&self.url(user), "connecting test")
            .await
            .unwrap_or_else(|e| panic!("{user} connects: {e}"))
    }
}

/// A test's district: its own virtual host, a hub running as its own user
/// there, and the department's API token.
struct District {
    env: TestEnv,
    vhost: Vhost,
    hub: RunningHub,
    /// 住建委's broker user, and the hotline's.
    housing_user: String,
    hotline_user: String,
    /// Where the department's program runs (its seen-events store, the
    /// samples it saved).
    workdir: PathBuf,
}

impl District {
    async fn new() -> District {
        assert!(
            Path::new(CA).exists(),
            "{CA} is missing: run deploy/dev/services.sh, which makes it"
        );
        let env = TestEnv::new().await;
        let namespace = env.settings.namespace.clone();
        let hub_user = format!("hub-{namespace}");
        let housing_user = format!("{HOUSING}-{namespace}");
        let hotline_user = format!("hotline-12345-{namespace}");
        let vhost = Vhost::provision(
            &env,
            &hub_user,
            &[(HOUSING, &housing_user), ("hotline-12345", &hotline_user)],
        );
        let hub = env
            .start_hub(Settings {
                amqp_url: vhost.url(&hub_user),
                connectors_dir: vhost.dir.join("connectors"),
                ..env.settings_with_token(HOUSING, TOKEN, Role::Viewer, &[HOUSING])
            })
            .await;
        District {
            workdir: crate::cli::tempdir(),
            env,
            vhost,
            hub,
            housing_user,
            hotline_user,
        }
    }

    /// A citizen's 12345 call about their compound's property management
    /// (物业管理, category 0801), which the routing rules give to 住建委;
    /// the case's number once it is dispatched there.
    async fn housing_case(&self, ticket_no: &str) -> String {
        let mut ticket: Value = serde_json::from_slice(&ticket_12345(ticket_no)).unwrap();
        ticket["category"] = json!({"code": "0801", "name": "物业管理"});
        ticket["title"] = json!("玉桥东里小区电梯停运三天，物业不予维修");
        let body = serde_json::to_vec(&ticket).unwrap();
        let hotline = self.vhost.connect(&self.hotline_user).await;
        let channel = hotline.create_channel().await.unwrap();
        publish::confirming(&channel).await.unwrap();
        let message = Outgoing {
            routing_key: "hotline-12345.ticket".to_owned(),
            message_id: Some(publish::content_message_id(&body)),
            content_type: Some("application/json".to_owned()),
            user_id: Some(self.hotline_user.clone()),
            body,
            ..Outgoing::default()
        };
        publish::publish_all(&channel, &self.env.names.inbound_exchange(), &[message])
            .await
            .unwrap();
        let _ = hotline.close(200, "done".into()).await;
        let start = std::time::Instant::now();
        let case = loop {
            let case: Option<(String, Option<String>, String)> = sqlx::query_as(
                "SELECT case_no, lead_unit, status FROM cases c
                 JOIN case_sources s ON s.case_id = c.id WHERE s.source_ref = $1",
            )
            .bind(ticket_no)
            .fetch_optional(&self.env.pool)
            .await
            .unwrap();
            if case.is_some() {
                break case;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the case opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (case_no, lead_unit, status) = case.unwrap();
        assert_eq!(
            (lead_unit.as_deref(), status.as_str()),
            (Some(HOUSING), "dispatched")
        );
        case_no
    }

    /// Runs a department program with the settings a department is given,
    /// as environment variables; its standard output (printed, the
    /// transcript) and whether it succeeded.
    async fn run(&self, program: &[&str], args: &[&str]) -> (String, bool) {
        let mut command = Command::new(program[0]);
        command
            .args(&program[1..])
            .args(args)
            .current_dir(&self.workdir)
            .env("HUB_AMQP_URL", self.vhost.tls_url(&self.housing_user))
            .env("HUB_CA_FILE", CA)
            .env("HUB_CONNECTOR", HOUSING)
            .env("HUB_EXCHANGE", self.env.names.inbound_exchange())
            .env("HUB_QUEUE", self.env.names.outbound_queue(HOUSING))
            .env(
                "HUB_API",
                format!("http://{}", self.hub.http.expect("the hub's API")),
            )
            .env("HUB_TOKEN", TOKEN);
        let shown = format!("$ {} {}", program.join(" "), args.join(" "));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("the program starts");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("{shown}\n{stdout}{stderr}");
        (stdout, output.status.success())
    }

    /// The steps 住建委 recorded on the case: (kind, status after).
    async fn steps(&self, case_no: &str) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT e.kind, e.to_status FROM case_events e JOIN cases c ON c.id = e.case_id
             WHERE c.case_no = $1 AND e.actor = $2 ORDER BY e.id",
        )
        .bind(case_no)
        .bind(HOUSING)
        .fetch_all(&self.env.pool)
        .await
        .unwrap()
    }

    /// Messages of 住建委's the hub has recorded (applied, refused or
    /// recognised again), from its metrics.
    async fn processed(&self) -> u64 {
        let (_, metrics) = self.hub.call("GET", "/metrics", None, None).await;
        let key = format!("gridhub_messages_processed_total{{connector=\"{HOUSING}\"}} ");
        metrics
            .as_str()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Events waiting in 住建委's out queue, read as the hub's user.
    async fn waiting(&self) -> u32 {
        let hub_user = format!("hub-{}", self.env.settings.namespace);
        let connection = self.vhost.connect(&hub_user).await;
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                self.env.names.outbound_queue(HOUSING).as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        let _ = connection.close(200, "done".into()).await;
        queue.message_count()
    }

    /// What a department's program must leave behind: its two replies
    /// applied once each, the reply sent again recognised, no refusal, no
    /// event left waiting.
    async fn assert_handled_once(&self, case_no: &str) {
        wait_until(
            Duration::from_secs(20),
            "three replies recorded",
            || async { self.processed().await == 3 },
        )
        .await;
        let steps = self.steps(case_no).await;
        let steps: Vec<(&str, &str)> = steps
            .iter()
            .map(|(k, s)| (k.as_str(), s.as_str()))
            .collect();
        assert_eq!(
            steps,
            [("accept", "accepted"), ("progress", "in_progress")],
            "sign-for (v1) and progress (v2), once each"
        );
        assert_eq!(
            self.env
                .count("SELECT count(*) FROM inbox WHERE connector = 'dept-housing'")
                .await,
            2
        );
        assert_eq!(self.env.count("SELECT count(*) FROM dead_letters").await, 0);
        assert_eq!(self.waiting().await, 0, "every event acknowledged");
    }

    async fn stop(self) {
        self.hub.stop().await;
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// The message_id a transcript line gives a reply.
fn message_id(transcript: &str, starting: &str) -> String {
    transcript
        .lines()
        .find(|l| l.trim_start().starts_with(starting))
        .and_then(|l| l.split("message_id ").nth(1))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no {starting:?} line in\n{transcript}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_connects_as_the_department() {
    let district = District::new().await;
    let case_no = district.housing_case("BJ12345-20261206-000941").await;
    let script = root().join("docs/examples/department.py");
    let python = ["python3", script.to_str().unwrap()];

    // The contract, with the token scoped to the connector; its samples
    // and schemas saved to start from.
    let (contract, ok) = district
        .run(&python, &["contract", "--samples", "samples"])
        .await;
    assert!(ok);
    for line in [
        "dept-housing 区住房和城乡建设委员会 (department)",
        "publishes to gridhub.in, user_id required, message_id required",
        "dept-housing.feedback v1 (no type property, deprecated: goes 2027-06-30)",
        "dept-housing.feedback v2 (type property v2)",
        "receives on gridhub.out.dept-housing: case.dispatched (hub/event.v1.json)",
        "personal data received: reporter masked",
    ] {
        assert!(contract.contains(line), "{line}:\n{contract}");
    }
    let samples = district.workdir.join("samples");
    assert_eq!(
        std::fs::read(samples.join(SIGN_FOR)).unwrap(),
        std::fs::read(
            root()
                .join("connectors/dept-housing/samples")
                .join(SIGN_FOR)
        )
        .unwrap()
    );

    // The dry run: v1 is taken, and deprecated; the v2 body without its
    // type property is read as v1 and refused; with it, taken.
    let sign_for = format!("samples/{SIGN_FOR}");
    let progress = format!("samples/{PROGRESS_V2}");
    let (verdict, ok) = district
        .run(&python, &["try", "--case", &case_no, &sign_for])
        .await;
    assert!(ok, "{verdict}");
    assert!(
        verdict.contains(&format!(
            "accepted (feedback v1, deprecated: goes 2027-06-30): step accept on case {case_no}"
        )),
        "{verdict}"
    );
    let (verdict, ok) = district
        .run(&python, &["try", "--case", &case_no, &progress])
        .await;
    assert!(!ok);
    assert!(
        verdict.contains("REFUSED at schema (feedback v1, deprecated: goes 2027-06-30)")
            && verdict.contains("  /body/CLSJ: "),
        "{verdict}"
    );
    let (verdict, ok) = district
        .run(
            &python,
            &["try", "--amqp-type", "v2", "--case", &case_no, &progress],
        )
        .await;
    assert!(ok, "{verdict}");
    assert!(
        verdict.contains(&format!(
            "accepted (feedback v2): step progress on case {case_no}"
        )),
        "{verdict}"
    );
    // Nothing of that reached the case.
    assert!(district.steps(&case_no).await.is_empty());

    // The case dispatched to the department: handled, replied to in v1
    // and v2, and the program stops before its ack.
    let reply_v2 = format!("v2:{progress}");
    let work = [
        "work", "--reply", &sign_for, "--reply", &reply_v2, "--idle", "3",
    ];
    let mut crashing = work.to_vec();
    crashing.push("--stop-before-ack");
    let (first, ok) = district.run(&python, &crashing).await;
    assert!(ok, "{first}");
    assert!(
        first.contains(&format!(
            "consuming {} as {}",
            district.env.names.outbound_queue(HOUSING),
            district.housing_user
        )),
        "{first}"
    );
    let dispatched = first
        .lines()
        .find(|l| l.starts_with("event ") && l.ends_with(&format!("case.dispatched {case_no}")))
        .unwrap_or_else(|| panic!("the dispatch event:\n{first}"));
    let event_id = dispatched["event ".len()..].split(':').next().unwrap();
    assert!(first.contains("  replied dept-housing.feedback v1, message_id "));
    assert!(first.contains("  replied dept-housing.feedback v2, message_id "));
    assert!(first.contains("  handled; stopping before the ack, as a crash would"));
    let sign_for_id = message_id(&first, "replied dept-housing.feedback v1");

    // Started again: the event comes again and is only acknowledged.
    let (second, ok) = district.run(&python, &work).await;
    assert!(ok, "{second}");
    assert!(
        second.contains(&format!(
            "event {event_id} (redelivered): case.dispatched {case_no}\n  already handled: acknowledged"
        )),
        "{second}"
    );
    assert!(second.contains("no event for 3 s: 1 received, 0 handled"));

    // The sign-for sent again: the broker takes it, the hub recognises it.
    let (again, ok) = district
        .run(&python, &["publish", "--case", &case_no, &sign_for])
        .await;
    assert!(ok, "{again}");
    assert_eq!(message_id(&again, &sign_for), sign_for_id);
    district.assert_handled_once(&case_no).await;

    // A refusal: a v2 body sent without its type property is taken by the
    // broker, read as v1 by the hub and refused. Corrected, it is another
    // message, with another message_id, and applied.
    let contact = format!("samples/{CONTACT_V2}");
    let (refused, ok) = district
        .run(&python, &["publish", "--case", &case_no, &contact])
        .await;
    assert!(ok, "the broker confirms it: {refused}");
    let refused_id = message_id(&refused, &contact);
    let (corrected, ok) = district
        .run(
            &python,
            &["publish", "--amqp-type", "v2", "--case", &case_no, &contact],
        )
        .await;
    assert!(ok, "{corrected}");
    assert_ne!(message_id(&corrected, &contact), refused_id);
    wait_until(
        Duration::from_secs(20),
        "the refusal and the contact",
        || async {
            district.steps(&case_no).await.len() == 3
                && !district.env.dead_letters(HOUSING).await.is_empty()
        },
    )
    .await;
    let letters = district.env.dead_letters(HOUSING).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message_id.as_deref(), Some(refused_id.as_str()));
    assert_eq!(letters[0].stage, "schema");
    assert!(
        letters[0].reason.starts_with("/body/CLSJ"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        district.steps(&case_no).await[2],
        ("contact".to_owned(), "in_progress".to_owned())
    );
    district.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_example_connects_as_the_department() {
    let district = District::new().await;
    let case_no = district.housing_case("BJ12345-20261206-000942").await;
    let source = root().join("docs/examples/Department.java");
    let classpath = [
        "/usr/share/java/amqp-client.jar",
        "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-nop.jar",
    ];
    for jar in classpath {
        assert!(
            Path::new(jar).exists(),
            "{jar} is missing: apt-get install librabbitmq-client-java (.ci/run does)"
        );
    }
    let classpath = classpath.join(":");
    let java = ["java", "-cp", &classpath, source.to_str().unwrap()];
    let samples = root().join("connectors/dept-housing/samples");
    let sign_for = samples.join(SIGN_FOR).display().to_string();
    let reply_v2 = format!("v2:{}", samples.join(PROGRESS_V2).display());
    let work = [
        "work", "--reply", &sign_for, "--reply", &reply_v2, "--idle", "3",
    ];
    let mut crashing = work.to_vec();
    crashing.push("--stop-before-ack");
    let (first, ok) = district.run(&java, &crashing).await;
    assert!(ok, "{first}");
    let dispatched = first
        .lines()
        .find(|l| l.starts_with("event ") && l.ends_with(&format!("case.dispatched {case_no}")))
        .unwrap_or_else(|| panic!("the dispatch event:\n{first}"));
    let event_id = dispatched["event ".len()..].split(':').next().unwrap();
    assert!(first.contains("  replied dept-housing.feedback v1, message_id "));
    assert!(first.contains("  replied dept-housing.feedback v2, message_id "));
    assert!(first.contains("  handled; stopping before the ack, as a crash would"));
    let sign_for_id = message_id(&first, "replied dept-housing.feedback v1");

    let (second, ok) = district.run(&java, &work).await;
    assert!(ok, "{second}");
    assert!(
        second.contains(&format!(
            "event {event_id} (redelivered): case.dispatched {case_no}\n  already handled: acknowledged"
        )),
        "{second}"
    );
    assert!(second.contains("no event for 3 s: 1 received, 0 handled"));

    let (again, ok) = district
        .run(&java, &["publish", "--case", &case_no, &sign_for])
        .await;
    assert!(ok, "{again}");
    assert_eq!(message_id(&again, &sign_for), sign_for_id);
    district.assert_handled_once(&case_no).await;
    district.stop().await;
}

/// Every Python code block of docs/CONNECTING.md is a passage of
/// docs/examples/department.py, word for word, so the guide shows the code
/// the tests above run.
#[test]
fn the_guides_code_is_the_examples_code() {
    let guide = std::fs::read_to_string(root().join("docs/CONNECTING.md")).unwrap();
    let example = std::fs::read_to_string(root().join("docs/examples/department.py")).unwrap();
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```python\n") {
        let block = &rest[start + "```python\n".len()..];
        let end = block.find("```").expect("the block ends");
        let code = &block[..end];
        assert!(
            example.contains(code),
            "docs/CONNECTING.md shows code that is not in docs/examples/department.py:\n{code}"
        );
        blocks += 1;
        rest = &block[end + 3..];
    }
    assert!(blocks >= 3, "{blocks} Python blocks");
}
