//! The pipeline on both carriers: every connector sample through RabbitMQ
//! and PostgreSQL (production), and through the in-process bus and SQLite
//! (`gridhub demo`), with the same results. The same hub, pipeline, store
//! logic and dead-letter operations run in both; only what carries the
//! messages and where cases are written differ.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gridhub::amqp::publish::{Outgoing, Published};
use gridhub::bus::LocalBus;
use gridhub::check::{self, Expectation};
use gridhub::connector::Registry;
use gridhub::dlq::{Filter, Office};
use gridhub::hub::{Hub, LOCAL_HUB_USER};
use gridhub::settings::Settings;
use serde_json::Value;

use crate::helpers::{
    AMQP, RunningHub, TestEnv, number_cases_past, root, sample_messages, wait_until,
};

/// What one carrier made of the samples, in terms both can be compared in.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// message_id → (status, channel, nature, category, priority, grid).
    cases: BTreeMap<String, Vec<Value>>,
    /// (message_id, stage) of every dead letter.
    dead: BTreeSet<(String, String)>,
    /// Events that reached the command centre's queue.
    centre_events: u32,
}

enum Carrier {
    Broker(Box<TestEnv>),
    Local(Arc<LocalBus>),
}

struct Running {
    carrier: Carrier,
    hub: RunningHub,
    ops: Office,
}

async fn start(local: bool) -> Running {
    let registry =
        Arc::new(Registry::load(&root().join("connectors"), &root().join("schemas")).unwrap());
    let (carrier, settings) = if local {
        let settings = Settings {
            database_url: "sqlite::memory:".to_owned(),
            connectors_dir: root().join("connectors"),
            routing_file: Some(root().join("deploy/routing.toml")),
            namespace: "local".to_owned(),
            http_listen: String::new(),
            places_refresh_ms: 100,
            outbox_poll_ms: 200,
            ..Settings::default()
        };
        (None, settings)
    } else {
        let env = TestEnv::new().await;
        let settings = Settings {
            http_listen: String::new(),
            ..env.settings.clone()
        };
        (Some(env), settings)
    };
    let hub = Hub::build(settings.clone()).await.expect("hub builds");
    let store = hub.store().clone();
    let names = gridhub::amqp::Names::new(&settings.namespace);
    let (hub, carrier, ops) = match carrier {
        None => {
            let (hub, bus) = hub.on_local_bus();
            let ops = Office::local(
                bus.clone(),
                LOCAL_HUB_USER,
                names,
                store.clone(),
                registry,
                10_000,
                None,
            );
            (hub, Carrier::Local(bus), ops)
        }
        Some(env) => {
            let ops = Office::new(
                AMQP,
                names,
                store.clone(),
                registry,
                vec!["guest".to_owned()],
                10_000,
                None,
            );
            (hub, Carrier::Broker(Box::new(env)), ops)
        }
    };
    Running {
        carrier,
        hub: RunningHub::run(hub),
        ops,
    }
}

impl Running {
    async fn publish(&self, messages: &[Outgoing]) {
        match &self.carrier {
            Carrier::Broker(env) => {
                let results = env.publish(messages).await;
                assert!(results.iter().all(|r| *r == Published::Confirmed));
            }
            Carrier::Local(bus) => {
                let exchange = self.ops.names().inbound_exchange();
                for message in messages {
                    // As the broker would carry it, from the hub's own user.
                    let properties = message.properties().with_user_id(LOCAL_HUB_USER.into());
                    assert_eq!(
                        bus.publish(&exchange, &message.routing_key, properties, &message.body),
                        1,
                        "{} routed",
                        message.routing_key
                    );
                }
            }
        }
    }

    async fn depth(&self, queue: &str) -> u32 {
        match &self.carrier {
            Carrier::Broker(env) => env.depth(queue).await,
            Carrier::Local(_) => self
                .ops
                .carrier()
                .await
                .unwrap()
                .depth(queue)
                .await
                .unwrap(),
        }
    }

    async fn stop(self) {
        self.hub.stop().await;
        self.ops.close().await;
    }
}

async fn run_samples(local: bool) -> Outcome {
    let running = start(local).await;
    let registry = Registry::load(&root().join("connectors"), &root().join("schemas")).unwrap();
    let user = if local { LOCAL_HUB_USER } else { "guest" };
    let (messages, expected) = sample_messages(&registry, user);
    number_cases_past(&running.hub.store, &messages).await;
    let kind_of = |s: &check::Sample| match &s.expect {
        Expectation::Intent(intent) => intent["kind"].as_str().unwrap_or_default().to_owned(),
        Expectation::Refusal(_) => "refusal".to_owned(),
    };
    let count = |kind: &str| expected.iter().filter(|(_, s)| kind_of(s) == kind).count();
    let (opens, updates, invalid) = (count("open_case"), count("update_case"), count("refusal"));

    // Grid data first (as in production, the district is known before calls
    // come in), then everything else.
    let (grids, rest): (Vec<_>, Vec<_>) = messages
        .into_iter()
        .partition(|m| m.routing_key == "dept-planning.grid-boundaries");
    running.publish(&grids).await;
    wait_until(Duration::from_secs(30), "grid data loaded", || async {
        running.hub.store.grid_version().await.unwrap_or(0) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.publish(&rest).await;

    let store = running.hub.store.clone();
    wait_until(Duration::from_secs(60), "every sample recorded", || async {
        let cases = store.cases(10_000, None).await.unwrap().len();
        let dead = running
            .ops
            .list(&Filter::default())
            .await
            .unwrap()
            .letters
            .len();
        cases == opens && dead == invalid + updates
    })
    .await;

    let mut outcome = Outcome {
        cases: BTreeMap::new(),
        dead: BTreeSet::new(),
        centre_events: 0,
    };
    // A department's view, on either store: the cases that concern it.
    let all = store.cases(10_000, None).await.unwrap();
    let scope = ["dept-urban-management".to_owned()];
    let concerns = |case: &Value| {
        case["lead_unit"] == scope[0]
            || case["assisting_units"]
                .as_array()
                .is_some_and(|units| units.iter().any(|u| *u == scope[0]))
            || case["sources"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["connector"] == scope[0]))
    };
    let own = store.cases(10_000, Some(&scope)).await.unwrap();
    assert!(!own.is_empty(), "urban management leads some sample cases");
    assert!(own.iter().all(concerns));
    assert_eq!(own.len(), all.iter().filter(|c| concerns(c)).count());
    for case in all {
        let message_id = case["sources"][0]["message_id"]
            .as_str()
            .expect("a case has its source")
            .to_owned();
        let fields = [
            "status", "channel", "nature", "category", "priority", "grid_id",
        ]
        .iter()
        .map(|f| case[*f].clone())
        .collect();
        outcome.cases.insert(message_id, fields);
    }
    for letter in running.ops.list(&Filter::default()).await.unwrap().letters {
        outcome.dead.insert((
            letter.message_id.clone().unwrap_or_default(),
            letter.stage.clone(),
        ));
    }
    // Every refused sample is dead-lettered at the stage it expects.
    for (message_id, sample) in &expected {
        if let Expectation::Refusal(refusal) = &sample.expect {
            assert!(
                outcome
                    .dead
                    .contains(&(message_id.clone(), refusal.stage.as_str().to_owned())),
                "{}: not dead-lettered at {}",
                sample.path.display(),
                refusal.stage
            );
        }
    }

    // The relay delivered every event for the command centre.
    let centre = running.ops.names().outbound_queue("command-centre");
    wait_until(Duration::from_secs(20), "events relayed", || async {
        running.hub.store.outbox_backlog().await.unwrap() == 0
    })
    .await;
    outcome.centre_events = running.depth(&centre).await;
    assert!(
        outcome.centre_events as usize >= opens,
        "case.opened for every case"
    );

    // A replayed group comes back refused again, one replay further on.
    let groups = running.ops.groups(&Filter::default()).await.unwrap().0;
    let group = groups
        .iter()
        .find(|g| g.stage == "schema")
        .expect("a schema failure group");
    let filter = Filter {
        group: Some(group.id.clone()),
        ..Filter::default()
    };
    let report = running.ops.replay(&filter, &"test".into()).await.unwrap();
    assert_eq!(report.done, group.count);
    wait_until(Duration::from_secs(20), "replays refused again", || async {
        let letters = running.ops.list(&filter).await.unwrap().letters;
        letters.len() == group.count && letters.iter().all(|l| l.replays == 1)
    })
    .await;
    running.stop().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_give_the_same_results_on_the_broker_and_on_the_local_bus() {
    let local = run_samples(true).await;
    let broker = run_samples(false).await;
    assert!(!local.cases.is_empty() && !local.dead.is_empty());
    assert_eq!(local.cases, broker.cases);
    assert_eq!(local.dead, broker.dead);
    assert_eq!(local.centre_events, broker.centre_events);
}
