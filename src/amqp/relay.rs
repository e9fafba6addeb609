//! The outbox relay: publishes committed events to the out exchange with
//! publisher confirms, and marks a row sent only after the broker's ack.
//! Several hubs may relay at once: rows are claimed with SKIP LOCKED.
//! On the in-process bus of `gridhub demo`, an event is sent once the bus
//! has queued it. Publishes are mandatory: an event no queue took stays
//! unsent and the topology is declared again.

use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::ShortString;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Names;
use super::topology::Topology;
use crate::carrier::{Carrier, Outcome, Publisher};
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

impl Relay {
    /// Relays until stopped or the connection fails.
    #[tracing::instrument(name = "relay", skip_all)]
    pub async fn run(&self, carrier: &Carrier) -> lapin::Result<()> {
        let publisher = carrier.publisher().await?;
        let result = self.relay(&publisher).await;
        publisher.close("relay stopped").await;
        result
    }

    async fn relay(&self, outlet: &Publisher) -> lapin::Result<()> {
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
                    publish(outlet, &exchange, &self.user, &claim.events).await?;
                if !returned.is_empty() {
                    self.unroutable(outlet, &returned).await?;
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
    async fn unroutable(&self, outlet: &Publisher, returned: &[&str]) -> lapin::Result<()> {
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
        outlet.declare(&self.topology).await
    }
}

/// Publishes a page of events; returns the outbox ids of those now safe,
/// and the routing keys of those the broker returned (mandatory: no queue
/// took them).
async fn publish<'e>(
    outlet: &Publisher,
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
    let mut pending = Vec::with_capacity(events.len());
    for (event, properties, body) in messages {
        let published = outlet
            .publish(exchange, &event.routing_key, properties, body)
            .await?;
        pending.push((event, published));
    }
    let mut sent = Vec::with_capacity(events.len());
    let mut returned = Vec::new();
    for (event, published) in pending {
        match published.outcome().await? {
            Outcome::Taken => sent.push(event.id),
            Outcome::Returned => returned.push(event.routing_key.as_str()),
            // Stays unsent: published again next round.
            Outcome::Refused => {}
        }
    }
    Ok((sent, returned))
}
