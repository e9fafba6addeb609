//! What carries messages: RabbitMQ, or the in-process bus of `gridhub demo`.
//!
//! This is the one seam between the hub and its carrier. The consumers,
//! the dead-letter recorder, the outbox relay, the dead-letter office and
//! the HTTP API all work through these types and never ask which carrier
//! they have:
//!
//! - [`Carrier`]: a connection to one carrier; opens publishers and
//!   subscriptions, reads queue depths.
//! - [`Publisher`]: publishes `mandatory` with confirms; [`Sent::outcome`]
//!   says whether a queue took the message, none did, or the carrier
//!   refused it.
//! - [`Subscription`], split into its [`Deliveries`] and its [`Acks`]:
//!   manual acknowledgement, so that one half can take deliveries while the
//!   other settles earlier ones.
//!
//! On the bus a publish is routed at once and acknowledged by nothing; a
//! message no queue is bound for comes back as [`Outcome::Returned`], as a
//! mandatory publish does on the broker.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};

use crate::amqp::topology::Topology;
use crate::bus::{LocalBus, LocalConsumer};

/// A connection to the carrier. Cheap to clone.
#[derive(Clone)]
pub enum Carrier {
    Broker(Arc<Connection>),
    Local(Arc<LocalBus>),
}

/// A publisher: every publish is `mandatory` and, on the broker, confirmed.
pub enum Publisher {
    /// A channel in confirm mode.
    Broker(Channel),
    Local(Arc<LocalBus>),
}

/// A published message whose outcome is not known yet.
pub struct Sent(Pending);

enum Pending {
    Broker(PublisherConfirm),
    Routed(bool),
}

/// What became of a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed, and at least one queue took it.
    Taken,
    /// No queue took it (mandatory publish returned): a queue is missing.
    Returned,
    /// The carrier refused it (broker nack).
    Refused,
}

/// One queue consumed with manual acknowledgement.
pub struct Subscription {
    deliveries: Deliveries,
    acks: Acks,
}

/// The deliveries of a subscription, in order.
pub enum Deliveries {
    Broker {
        consumer: Box<lapin::Consumer>,
        channel: Channel,
        tag: String,
    },
    Local(Arc<LocalConsumer>),
}

/// Settles a subscription's deliveries.
pub enum Acks {
    Broker(Channel),
    Local(Arc<LocalConsumer>),
}

/// A delivery, whatever carried it.
#[derive(Debug)]
pub struct Incoming {
    pub delivery_tag: u64,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    pub redelivered: bool,
}

impl Carrier {
    /// A publisher whose publishes are mandatory and confirmed.
    pub async fn publisher(&self) -> lapin::Result<Publisher> {
        match self {
            Carrier::Broker(connection) => {
                let channel = connection.create_channel().await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                Ok(Publisher::Broker(channel))
            }
            Carrier::Local(bus) => Ok(Publisher::Local(bus.clone())),
        }
    }

    /// Consumes `queue` with manual acknowledgement, holding at most
    /// `prefetch` unacknowledged deliveries (the bus holds no limit).
    pub async fn subscribe(
        &self,
        queue: &str,
        tag: &str,
        prefetch: u16,
    ) -> lapin::Result<Subscription> {
        match self {
            Carrier::Broker(connection) => {
                let channel = connection.create_channel().await?;
                channel
                    .basic_qos(prefetch, BasicQosOptions::default())
                    .await?;
                let consumer = channel
                    .basic_consume(
                        queue.into(),
                        tag.into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                Ok(Subscription {
                    deliveries: Deliveries::Broker {
                        consumer: Box::new(consumer),
                        channel: channel.clone(),
                        tag: tag.to_owned(),
                    },
                    acks: Acks::Broker(channel),
                })
            }
            Carrier::Local(bus) => {
                let consumer = Arc::new(bus.consume(queue).ok_or_else(|| {
                    lapin::Error::from(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such queue on the bus",
                    ))
                })?);
                Ok(Subscription {
                    deliveries: Deliveries::Local(consumer.clone()),
                    acks: Acks::Local(consumer),
                })
            }
        }
    }

    /// Messages ready in `queue`, or `None` if it does not exist (or the
    /// broker does not answer).
    pub async fn depth(&self, queue: &str) -> Option<u32> {
        match self {
            Carrier::Broker(connection) => {
                // A passive declare of a missing queue closes its channel:
                // use one of its own.
                let channel = connection.create_channel().await.ok()?;
                let declared = channel
                    .queue_declare(
                        queue.into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..QueueDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await;
                let _ = channel.close(200, "depth read".into()).await;
                declared.ok().map(|q| q.message_count())
            }
            Carrier::Local(bus) => bus.depth(queue),
        }
    }

    /// Whether `exchange` exists (a passive declare); `None` if the broker
    /// could not be asked. The bus has every exchange of the topology it
    /// was declared from.
    pub async fn has_exchange(&self, exchange: &str) -> Option<bool> {
        match self {
            Carrier::Broker(connection) => {
                let channel = connection.create_channel().await.ok()?;
                let declared = channel
                    .exchange_declare(
                        exchange.into(),
                        lapin::ExchangeKind::Topic,
                        ExchangeDeclareOptions {
                            passive: true,
                            ..ExchangeDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await;
                let _ = channel.close(200, "checked".into()).await;
                Some(declared.is_ok())
            }
            Carrier::Local(_) => Some(true),
        }
    }

    /// Whether the connection is still usable.
    pub fn is_open(&self) -> bool {
        match self {
            Carrier::Broker(connection) => connection.status().connected(),
            Carrier::Local(_) => true,
        }
    }

    /// Closes the broker connection; the bus stays.
    pub async fn close(&self, reason: &str) {
        if let Carrier::Broker(connection) = self {
            let _ = connection.close(200, reason.into()).await;
        }
    }
}

impl Publisher {
    /// Publishes one message, `mandatory`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> lapin::Result<Sent> {
        match self {
            Publisher::Broker(channel) => {
                let confirm = channel
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        body,
                        properties,
                    )
                    .await?;
                Ok(Sent(Pending::Broker(confirm)))
            }
            Publisher::Local(bus) => Ok(Sent(Pending::Routed(
                bus.publish(exchange, routing_key, properties, body) > 0,
            ))),
        }
    }

    /// Declares the topology again, after a message found no queue (one was
    /// deleted). Queues on the bus cannot be deleted: nothing to do there.
    pub async fn declare(&self, topology: &Topology) -> lapin::Result<()> {
        match self {
            Publisher::Broker(channel) => topology.declare(channel).await,
            Publisher::Local(_) => Ok(()),
        }
    }

    /// Closes the broker channel.
    pub async fn close(self, reason: &str) {
        if let Publisher::Broker(channel) = self {
            let _ = channel.close(200, reason.into()).await;
        }
    }
}

impl Sent {
    /// Waits for the broker's confirm.
    pub async fn outcome(self) -> lapin::Result<Outcome> {
        Ok(match self.0 {
            Pending::Broker(confirm) => match confirm.await? {
                Confirmation::Ack(None) | Confirmation::NotRequested => Outcome::Taken,
                Confirmation::Ack(Some(_)) => Outcome::Returned,
                Confirmation::Nack(_) => Outcome::Refused,
            },
            Pending::Routed(true) => Outcome::Taken,
            Pending::Routed(false) => Outcome::Returned,
        })
    }
}

impl Subscription {
    /// The two halves: one takes deliveries, the other settles them.
    pub fn split(self) -> (Deliveries, Acks) {
        (self.deliveries, self.acks)
    }
}

impl Deliveries {
    /// The next delivery; `None` when the broker ended the stream.
    pub async fn next(&mut self) -> Option<lapin::Result<Incoming>> {
        match self {
            Deliveries::Broker { consumer, .. } => {
                Some(consumer.next().await?.map(|delivery| Incoming {
                    delivery_tag: delivery.delivery_tag,
                    routing_key: delivery.routing_key.as_str().to_owned(),
                    properties: delivery.properties,
                    body: delivery.data,
                    redelivered: delivery.redelivered,
                }))
            }
            Deliveries::Local(consumer) => {
                let delivery = consumer.next().await;
                Some(Ok(Incoming {
                    delivery_tag: delivery.tag,
                    routing_key: delivery.message.routing_key,
                    properties: delivery.message.properties,
                    body: delivery.message.body,
                    redelivered: delivery.message.redelivered,
                }))
            }
        }
    }

    /// Asks for no more deliveries; what was sent and not taken goes back
    /// to the queue when the channel closes.
    pub async fn cancel(&self) {
        if let Deliveries::Broker { channel, tag, .. } = self {
            let _ = channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await;
        }
    }
}

impl Acks {
    /// Acknowledges every delivery up to `tag`.
    pub async fn ack_through(&self, tag: u64) -> lapin::Result<()> {
        match self {
            Acks::Broker(channel) => {
                channel
                    .basic_ack(tag, BasicAckOptions { multiple: true })
                    .await
            }
            Acks::Local(consumer) => {
                consumer.ack(tag, true);
                Ok(())
            }
        }
    }

    /// Gives every delivery up to `tag` back to the queue (nack, requeue).
    pub async fn release_through(&self, tag: u64) -> lapin::Result<()> {
        match self {
            Acks::Broker(channel) => {
                channel
                    .basic_nack(
                        tag,
                        BasicNackOptions {
                            multiple: true,
                            requeue: true,
                        },
                    )
                    .await
            }
            Acks::Local(consumer) => {
                consumer.release_through(tag);
                Ok(())
            }
        }
    }

    /// Closes the broker channel: what it held unacknowledged goes back to
    /// the queue.
    pub async fn close(self, reason: &str) {
        if let Acks::Broker(channel) = self {
            let _ = channel.close(200, reason.into()).await;
        }
    }
}
