//! The outbox relay: publishes committed events to the out exchange with
//! publisher confirms, and marks a row sent only after the broker's ack.
//! Several hubs may relay at once: rows are claimed with SKIP LOCKED.
//! On the in-process bus of `gridhub demo`, an event is sent once the bus
//! has queued it.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Names;
use super::topology::Topology;
use crate::bus::LocalBus;
use crate::metrics::Metrics;
use crate::store::outbox::Pending;
use crate::store::{Store, StoreError};

/// Events published per claim, at most.
const PAGE: i64 = 500;
/// Payload bytes per claim, about (one event more may pass it): a page of
/// shared population records is a few hundred KiB an event.
const PAGE_BYTES: i64 = 1024 * 1024;

pub struct Relay {
    pub store: Store,
    pub names: Names,
    pub ready: Arc<Notify>,
    pub poll: Duration,
    pub stop: CancellationToken,
    pub metrics: Arc<Metrics>,
    /// Declared again when an event finds no queue (one was deleted).
    pub topology: Arc<Topology>,
    /// The hub's broker user: every event carries it as `user_id`, which
    /// the broker checks, so a consumer can tell the hub's events from
    /// anything else in its queue.
    pub user: String,
}

/// Where the relay publishes.
enum Outlet<'a> {
    Broker(&'a Channel),
    Local(&'a LocalBus),
}

impl Relay {
    /// Relays on a broker connection until stopped or the connection fails.
    #[tracing::instrument(name = "relay", skip_all)]
    pub async fn run(&self, connection: &Connection) -> lapin::Result<()> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.relay(Outlet::Broker(&channel)).await
    }

    /// Relays onto the in-process bus until stopped.
    #[tracing::instrument(name = "relay", skip_all)]
    pub async fn run_local(&self, bus: &LocalBus) {
        // Publishing on the bus cannot fail.
        let _ = self.relay(Outlet::Local(bus)).await;
    }

    async fn relay(&self, outlet: Outlet<'_>) -> lapin::Result<()> {
        let exchange = self.names.outbound_exchange();
        loop {
            // Drain everything unsent, a page at a time.
            loop {
                let claim = match self.store.claim_outbox(PAGE, PAGE_BYTES).await {
                    Ok(claim) => claim,
                    Err(StoreError::Transient(error)) => {
                        tracing::warn!(error = %error, "case store unavailable; outbox waits");
                        break;
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "cannot read the outbox");
                        break;
                    }
                };
                if claim.events.is_empty() {
                    break;
                }
                let (sent, returned) =
                    publish(&outlet, &exchange, &self.user, &claim.events).await?;
                if !returned.is_empty() {
                    self.unroutable(&outlet, &returned).await?;
                }
                let more = claim.more;
                let count = sent.len();
                if let Err(error) = claim.mark_sent(&sent).await {
                    // Published but not marked: they go out again later; consumers dedupe by message_id.
                    tracing::warn!(error = %error, "could not mark events sent; they will be published again");
                    break;
                }
                tracing::debug!(events = count, "events published");
                if !more {
                    break;
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                _ = self.ready.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

impl Relay {
    /// Events the broker returned (no queue for their destination): they
    /// stay unsent, counted, and the topology is declared again so that the
    /// next round finds their queue.
    async fn unroutable(&self, outlet: &Outlet<'_>, returned: &[&str]) -> lapin::Result<()> {
        for routing_key in returned {
            let destination = routing_key.split_once('.').map_or(*routing_key, |(d, _)| d);
            self.metrics
                .unroutable
                .get_or_create(&Metrics::label(destination))
                .inc();
        }
        tracing::warn!(
            events = returned.len(),
            "events found no queue; declaring the topology again, they go out next round"
        );
        if let Outlet::Broker(channel) = outlet {
            self.topology.declare(channel).await?;
        }
        Ok(())
    }
}

/// Publishes a page of events; returns the outbox ids of those now safe,
/// and the routing keys of those the broker returned (mandatory: no queue
/// took them).
async fn publish<'e>(
    outlet: &Outlet<'_>,
    exchange: &str,
    user: &str,
    events: &'e [Pending],
) -> lapin::Result<(Vec<i64>, Vec<&'e str>)> {
    let messages = events.iter().map(|event| {
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(event.event_id.to_string().into())
            .with_type(ShortString::from(
                event.routing_key.split_once('.').map_or("", |(_, e)| e),
            ))
            .with_timestamp(event.created_at.timestamp().max(0) as u64)
            .with_app_id("gridhub".into())
            .with_user_id(user.into());
        (event, properties, event.payload.as_bytes())
    });
    let mut sent = Vec::with_capacity(events.len());
    let mut returned = Vec::new();
    match outlet {
        Outlet::Broker(channel) => {
            let mut confirms = Vec::with_capacity(events.len());
            for (event, properties, body) in messages {
                let confirm = channel
                    .basic_publish(
                        exchange.into(),
                        event.routing_key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        body,
                        properties,
                    )
                    .await?;
                confirms.push((event, confirm));
            }
            for (event, confirm) in confirms {
                match confirm.await? {
                    Confirmation::Ack(None) => sent.push(event.id),
                    Confirmation::Ack(Some(_)) => returned.push(event.routing_key.as_str()),
                    Confirmation::Nack(_) | Confirmation::NotRequested => {}
                }
            }
        }
        Outlet::Local(bus) => {
            for (event, properties, body) in messages {
                // As on the broker, an event no queue is bound for is sent.
                bus.publish(exchange, &event.routing_key, properties, body);
                sent.push(event.id);
            }
        }
    }
    Ok((sent, returned))
}
