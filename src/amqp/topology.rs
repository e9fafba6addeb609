//! The broker topology: declared idempotently at every (re)connection, and
//! exported as a RabbitMQ definitions file for operators who load
//! definitions on the broker instead.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use serde_json::{Map, Value, json};

use super::Names;
use super::access::{Access, Passwords};
use crate::connector::Registry;

/// A queue argument: the two kinds RabbitMQ's arguments here need.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Str(&'static str),
    Owned(String),
    Int(i64),
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    pub arguments: Vec<(&'static str, Arg)>,
}

impl QueueSpec {
    /// The queue's arguments as AMQP declares them.
    pub fn field_table(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        for (key, value) in &self.arguments {
            let value = match value {
                Arg::Str(s) => AMQPValue::LongString((*s).into()),
                Arg::Owned(s) => AMQPValue::LongString(s.as_str().into()),
                Arg::Int(n) => AMQPValue::LongLongInt(*n),
            };
            arguments.insert((*key).into(), value);
        }
        arguments
    }
}

#[derive(Debug, Clone)]
pub struct BindingSpec {
    pub exchange: String,
    pub queue: String,
    pub routing_key: String,
}

/// Every exchange, queue and binding the hub needs.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Topic exchanges.
    pub exchanges: Vec<String>,
    pub queues: Vec<QueueSpec>,
    pub bindings: Vec<BindingSpec>,
}

impl Topology {
    /// Derives the topology from the connectors.
    ///
    /// - `<ns>.in` (topic) → `<ns>.in.<connector>` (quorum, delivery limit,
    ///   at-least-once dead-lettering to `<ns>.dlx`), bound with `<connector>.#`;
    /// - `<ns>.dlx` (topic) → `<ns>.dlq.<connector>` (quorum), bound with `<connector>.#`;
    /// - `<ns>.out` (topic) → `<ns>.out.<destination>` (quorum), bound with
    ///   `<destination>.#`, for the centre and every connector that receives events.
    pub fn new(names: &Names, registry: &Registry, delivery_limit: u32, centre: &str) -> Topology {
        let mut topology = Topology {
            exchanges: vec![
                names.inbound_exchange(),
                names.dead_letter_exchange(),
                names.outbound_exchange(),
            ],
            queues: Vec::new(),
            bindings: Vec::new(),
        };
        for connector in registry.connectors.values() {
            let id = connector.id();
            topology.queues.push(QueueSpec {
                name: names.inbound_queue(id),
                arguments: vec![
                    ("x-queue-type", Arg::Str("quorum")),
                    ("x-delivery-limit", Arg::Int(i64::from(delivery_limit))),
                    (
                        "x-dead-letter-exchange",
                        Arg::Owned(names.dead_letter_exchange()),
                    ),
                    ("x-dead-letter-strategy", Arg::Str("at-least-once")),
                    ("x-overflow", Arg::Str("reject-publish")),
                ],
            });
            topology.bindings.push(BindingSpec {
                exchange: names.inbound_exchange(),
                queue: names.inbound_queue(id),
                routing_key: format!("{id}.#"),
            });
            topology.queues.push(QueueSpec {
                name: names.dead_letter_queue(id),
                arguments: vec![("x-queue-type", Arg::Str("quorum"))],
            });
            topology.bindings.push(BindingSpec {
                exchange: names.dead_letter_exchange(),
                queue: names.dead_letter_queue(id),
                routing_key: format!("{id}.#"),
            });
        }
        let mut destinations = vec![centre.to_owned()];
        destinations.extend(
            registry
                .connectors
                .values()
                .filter(|c| !c.config.receives.is_empty())
                .map(|c| c.id().to_owned()),
        );
        // Share targets receive records even if they list no events.
        for connector in registry.connectors.values() {
            for share in &connector.config.shares {
                destinations.extend(share.to.iter().cloned());
            }
        }
        destinations.sort();
        destinations.dedup();
        for destination in destinations {
            topology.queues.push(QueueSpec {
                name: names.outbound_queue(&destination),
                arguments: vec![("x-queue-type", Arg::Str("quorum"))],
            });
            topology.bindings.push(BindingSpec {
                exchange: names.outbound_exchange(),
                queue: names.outbound_queue(&destination),
                routing_key: format!("{destination}.#"),
            });
        }
        topology
    }

    /// Declares everything; declaring what exists with the same arguments is a no-op.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        for exchange in &self.exchanges {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
        }
        for queue in &self.queues {
            let arguments = queue.field_table();
            channel
                .queue_declare(
                    queue.name.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    arguments,
                )
                .await?;
        }
        for binding in &self.bindings {
            channel
                .queue_bind(
                    binding.queue.as_str().into(),
                    binding.exchange.as_str().into(),
                    binding.routing_key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// RabbitMQ definitions (the format `rabbitmqctl import_definitions` and
    /// the management plugin load): the topology in `access`'s virtual
    /// host, with its users and their permissions (passwords hashed in,
    /// where given).
    pub fn definitions(&self, access: &Access, passwords: Option<&Passwords>) -> Value {
        let vhost = access.vhost.as_str();
        let exchanges: Vec<Value> = self
            .exchanges
            .iter()
            .map(|name| {
                json!({"name": name, "vhost": vhost, "type": "topic", "durable": true,
                       "auto_delete": false, "internal": false, "arguments": {}})
            })
            .collect();
        let queues: Vec<Value> = self
            .queues
            .iter()
            .map(|queue| {
                let arguments: Map<String, Value> = queue
                    .arguments
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Arg::Str(s) => json!(s),
                            Arg::Owned(s) => json!(s),
                            Arg::Int(n) => json!(n),
                        };
                        ((*k).to_owned(), v)
                    })
                    .collect();
                json!({"name": queue.name, "vhost": vhost, "durable": true, "auto_delete": false,
                       "arguments": arguments})
            })
            .collect();
        let bindings: Vec<Value> = self
            .bindings
            .iter()
            .map(|b| {
                json!({"source": b.exchange, "vhost": vhost, "destination": b.queue,
                       "destination_type": "queue", "routing_key": b.routing_key, "arguments": {}})
            })
            .collect();
        let (users, permissions, topic_permissions) = access.definitions(passwords);
        json!({
            "rabbit_version": "3.10.8",
            "vhosts": [{"name": vhost}],
            "users": users,
            "permissions": permissions,
            "topic_permissions": topic_permissions,
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
        })
    }
}
