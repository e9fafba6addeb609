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

/// The queue argument of the replica count.
pub const QUORUM_REPLICAS: &str = "x-quorum-initial-group-size";

/// Whether the broker refused a declaration because the replica count
/// differs from the existing queue's.
fn replicas_differ(error: &lapin::Error) -> bool {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(error) => {
            error.kind()
                == &lapin::protocol::AMQPErrorKind::Soft(
                    lapin::protocol::AMQPSoftError::PRECONDITIONFAILED,
                )
                && error.get_message().as_str().contains(QUORUM_REPLICAS)
        }
        _ => false,
    }
}

async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

async fn declare_queue(channel: &Channel, queue: &QueueSpec) -> lapin::Result<()> {
    channel
        .queue_declare(
            queue.name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            queue.field_table(),
        )
        .await
        .map(|_| ())
}

async fn declare_binding(channel: &Channel, binding: &BindingSpec) -> lapin::Result<()> {
    channel
        .queue_bind(
            binding.queue.as_str().into(),
            binding.exchange.as_str().into(),
            binding.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

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

    /// Gives every quorum queue `replicas` members when it is created
    /// (`x-quorum-initial-group-size`); `None` leaves it to the broker.
    pub fn with_quorum_replicas(mut self, replicas: Option<u32>) -> Topology {
        if let Some(replicas) = replicas {
            for queue in &mut self.queues {
                let quorum = queue
                    .arguments
                    .iter()
                    .any(|(k, v)| *k == "x-queue-type" && *v == Arg::Str("quorum"));
                if quorum {
                    queue
                        .arguments
                        .push((QUORUM_REPLICAS, Arg::Int(i64::from(replicas))));
                }
            }
        }
        self
    }

    /// Declares everything on channels of `connection`. The replica count
    /// only matters when a queue is created, but RabbitMQ compares it with
    /// an existing queue's as it does every argument (406
    /// `PRECONDITION_FAILED`): a queue that differs only in it is taken as
    /// it is (it keeps its members: `rabbitmq-queues grow|shrink` change
    /// them), so that setting `quorum_replicas` on a running district, or
    /// hubs that disagree on it, does not stop them. Any other difference
    /// still fails.
    pub async fn declare_on(&self, connection: &lapin::Connection) -> lapin::Result<()> {
        let mut channel = connection.create_channel().await?;
        for exchange in &self.exchanges {
            declare_exchange(&channel, exchange).await?;
        }
        for queue in &self.queues {
            let error = match declare_queue(&channel, queue).await {
                Err(error) if replicas_differ(&error) => error,
                other => {
                    other?;
                    continue;
                }
            };
            // The failed declaration closed the channel.
            channel = connection.create_channel().await?;
            let plain = QueueSpec {
                name: queue.name.clone(),
                arguments: queue
                    .arguments
                    .iter()
                    .filter(|(k, _)| *k != QUORUM_REPLICAS)
                    .cloned()
                    .collect(),
            };
            let found = match declare_queue(&channel, &plain).await {
                Err(again) if replicas_differ(&again) => {
                    channel = connection.create_channel().await?;
                    channel
                        .queue_declare(
                            queue.name.as_str().into(),
                            QueueDeclareOptions {
                                passive: true,
                                ..QueueDeclareOptions::default()
                            },
                            FieldTable::default(),
                        )
                        .await
                        .map(|_| ())
                }
                other => other,
            };
            match found {
                Ok(()) => tracing::info!(
                    queue = %queue.name,
                    error = %error,
                    "the queue exists with another replica count; it keeps its members"
                ),
                Err(error) => return Err(error),
            }
        }
        for binding in &self.bindings {
            declare_binding(&channel, binding).await?;
        }
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }

    /// Declares everything; declaring what exists with the same arguments is a no-op.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        for exchange in &self.exchanges {
            declare_exchange(channel, exchange).await?;
        }
        for queue in &self.queues {
            declare_queue(channel, queue).await?;
        }
        for binding in &self.bindings {
            declare_binding(channel, binding).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_count_goes_to_quorum_queues_when_set() {
        let topology = || Topology {
            exchanges: Vec::new(),
            queues: vec![
                QueueSpec {
                    name: "q".into(),
                    arguments: vec![("x-queue-type", Arg::Str("quorum"))],
                },
                QueueSpec {
                    name: "classic".into(),
                    arguments: Vec::new(),
                },
            ],
            bindings: Vec::new(),
        };
        let unset = topology().with_quorum_replicas(None);
        assert!(
            unset
                .queues
                .iter()
                .all(|q| { q.arguments.iter().all(|(k, _)| *k != QUORUM_REPLICAS) })
        );
        let three = topology().with_quorum_replicas(Some(3));
        assert!(
            three.queues[0]
                .arguments
                .contains(&(QUORUM_REPLICAS, Arg::Int(3)))
        );
        assert!(three.queues[1].arguments.is_empty());
    }
}
