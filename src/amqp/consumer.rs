//! The inbound consumer: deliveries in, batches through the pipeline and the
//! store, acknowledgements out.
//!
//! The same consumer runs on RabbitMQ and on the in-process bus of
//! `gridhub demo`: it works through the [`Carrier`] and never asks which.
//!
//! Two halves run together on one channel: the collector takes
//! deliveries into batches and runs the pure stages; the finisher
//! dead-letters refusals (waiting for the broker's confirm), records the
//! batch in one transaction, and acknowledges the batch with one
//! `basic.ack(multiple)`. The collector prepares the next batch while the
//! finisher commits the previous one; a channel of one batch between them
//! bounds memory to the prefetch plus one batch.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lapin::BasicProperties;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Names;
use crate::carrier::{Acks, Carrier, Deliveries, Incoming, Outcome, Publisher};
use crate::connector::Registry;
use crate::message::Inbound;
use crate::metrics::Metrics;
use crate::pipeline::{self, Prepared, Refusal};
use crate::settings::RetrySettings;
use crate::store::{Applied, Item, Rules, Store, StoreError, Work};

/// What every consumer shares.
pub struct Context {
    pub registry: Arc<Registry>,
    pub store: Store,
    pub names: Names,
    /// Routing rules and event destinations; `places` is replaced per batch.
    pub rules: Rules,
    /// The district's places, reloaded when grid data changes.
    pub places: crate::places::Current,
    pub trusted: Vec<String>,
    /// What each connector may hold, in deliveries (`Settings::holding`).
    pub holding: crate::settings::Holding,
    /// The broker's largest message, as the settings say; a larger
    /// delivery means the broker is set otherwise and `holding` is no bound.
    pub max_message_size: u64,
    /// Set once a delivery was larger than `max_message_size`.
    pub oversize_seen: std::sync::atomic::AtomicBool,
    pub batch_size: usize,
    pub batch_bytes: usize,
    pub batch_linger: Duration,
    pub retry: RetrySettings,
    /// How long a batch is held while the store keeps failing transiently.
    pub store_hold: Duration,
    /// Wakes the outbox relay after a commit.
    pub outbox_ready: Arc<Notify>,
    /// Stop taking deliveries; finish the ones in hand.
    pub stop: CancellationToken,
    /// Give up on the ones in hand too (after the grace period).
    pub abandon: CancellationToken,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Declared again when a dead letter finds no queue (one was deleted).
    pub topology: Arc<super::topology::Topology>,
}

impl Context {
    /// The prefetch of a connector's consumers: the hub's, bounded by
    /// `held_bytes`, or the connector's own where smaller.
    pub fn prefetch_of(&self, connector: &str) -> u16 {
        let bound = self.holding.prefetch;
        self.registry
            .get(connector)
            .and_then(|c| c.config.prefetch)
            .map_or(bound, |own| own.get().min(bound))
    }

    /// The rules with the places as they are now.
    pub fn current_rules(&self) -> Rules {
        Rules {
            places: self.places.get(),
            ..self.rules.clone()
        }
    }
}

/// Where a batch's dead letters and its acknowledgement go.
struct Outlet<'a> {
    acks: &'a Acks,
    /// Publishes to the dead-letter exchange.
    dead_letters: &'a Publisher,
}

/// A delivery and what the pure stages made of it.
struct Entry {
    delivery_tag: u64,
    /// When the consumer took it, for the latency histogram.
    taken: std::time::Instant,
    message: Inbound,
    properties: BasicProperties,
    result: Result<Prepared, Refusal>,
}

/// Why a consumer stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("consumer stream ended: the broker cancelled it or the connection closed")]
    StreamEnded,
    #[error("the broker refused a dead letter (nack)")]
    DeadLetterNacked,
    #[error("a dead letter found no queue, even after the topology was declared again")]
    DeadLetterUnroutable,
    #[error("abandoned in-flight deliveries at shutdown")]
    Abandoned,
    #[error("the case store stayed unavailable past the hold bound")]
    Stalled,
    #[error("a deleted dead-letter queue was declared again; reconnecting to consume it")]
    QueueRestored,
}

/// Consumes one connector's queue until stopped or until the connection fails.
#[tracing::instrument(name = "consumer", skip_all, fields(connector = %connector, consumer = index))]
pub async fn run(
    carrier: &Carrier,
    ctx: Arc<Context>,
    connector: String,
    index: usize,
    quarantine_prefetch: Option<u16>,
) -> Result<(), ConsumerError> {
    let prefetch = ctx.prefetch_of(&connector);
    let prefetch = quarantine_prefetch.map_or(prefetch, |q| q.min(prefetch));
    let dead_letters = carrier.publisher().await?;
    let queue = ctx.names.inbound_queue(&connector);
    let tag = format!(
        "gridhub-{connector}-{index}-{}",
        uuid::Uuid::new_v4().simple()
    );
    let (mut deliveries, acks) = carrier.subscribe(&queue, &tag, prefetch).await?.split();
    tracing::info!(queue = %queue, prefetch, "consuming");
    let result = consume(&ctx, &connector, &mut deliveries, &acks, &dead_letters).await;
    acks.close("consumer stopped").await;
    dead_letters.close("consumer stopped").await;
    result
}

/// Records a connector's DLQ in the case store until stopped or until the
/// connection fails: each batch of dead letters is recorded in one
/// transaction, then acknowledged. Ops read the store (`dlq::Office`), so
/// that no read of a dead letter is a delivery the broker counts.
#[tracing::instrument(name = "dlq_recorder", skip_all, fields(connector = %connector))]
pub async fn record(
    carrier: &Carrier,
    ctx: Arc<Context>,
    connector: String,
) -> Result<(), ConsumerError> {
    let queue = ctx.names.dead_letter_queue(&connector);
    let tag = format!("gridhub-dlq-{connector}-{}", uuid::Uuid::new_v4().simple());
    let (mut deliveries, acks) = carrier
        .subscribe(&queue, &tag, ctx.holding.recorder)
        .await?
        .split();
    let result = record_from(&ctx, &connector, &mut deliveries, &acks).await;
    acks.close("recorder stopped").await;
    result
}

async fn record_from(
    ctx: &Context,
    connector: &str,
    deliveries: &mut Deliveries,
    acks: &Acks,
) -> Result<(), ConsumerError> {
    loop {
        let first = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => return Ok(()),
            next = deliveries.next() => next.ok_or(ConsumerError::StreamEnded)??,
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(5);
        while batch.len() < usize::from(ctx.holding.recorder) {
            match tokio::time::timeout_at(deadline, deliveries.next()).await {
                Ok(Some(Ok(delivery))) => batch.push(delivery),
                Ok(Some(Err(error))) => return Err(error.into()),
                Ok(None) => return Err(ConsumerError::StreamEnded),
                Err(_) => break,
            }
        }
        let letters: Vec<crate::store::dead_letters::NewDeadLetter<'_>> = batch
            .iter()
            .map(|delivery| {
                let letter = crate::dlq::DeadLetter::from_message(
                    connector,
                    &delivery.routing_key,
                    &delivery.properties,
                    &delivery.body,
                );
                crate::store::dead_letters::NewDeadLetter {
                    letter_id: letter.id,
                    connector,
                    routing_key: crate::message::printable(&delivery.routing_key),
                    properties: crate::dlq::encode_properties(&delivery.properties),
                    body: &delivery.body,
                }
            })
            .collect();
        with_retry(ctx, connector, || ctx.store.record_dead_letters(&letters)).await?;
        let last = batch.last().map_or(0, |d| d.delivery_tag);
        acks.ack_through(last).await?;
        tracing::debug!(dead_letters = batch.len(), "dead letters recorded");
    }
}

/// The collector and the finisher of one consumer, until stopped or failed.
async fn consume(
    ctx: &Context,
    connector: &str,
    deliveries: &mut Deliveries,
    acks: &Acks,
    dead_letters: &Publisher,
) -> Result<(), ConsumerError> {
    let (batches, mut ready) = mpsc::channel::<Vec<Entry>>(1);
    let collector = async {
        let result = collect(ctx, connector, deliveries, &batches).await;
        if ctx.stop.is_cancelled() {
            deliveries.cancel().await;
        }
        drop(batches);
        result
    };
    let finisher = async {
        while let Some(batch) = ready.recv().await {
            let last_tag = batch.last().map(|e| e.delivery_tag);
            let outlet = Outlet { acks, dead_letters };
            match finish(ctx, connector, &outlet, batch).await {
                Err(ConsumerError::Stalled) => {
                    // The store kept failing: the batch goes back to the
                    // broker, which redelivers it, counting each time
                    // against the delivery limit. What was dead-lettered
                    // before the store failed may be dead-lettered again.
                    ctx.metrics
                        .stalled
                        .get_or_create(&Metrics::label(connector))
                        .inc();
                    tracing::error!(
                        held_secs = ctx.store_hold.as_secs(),
                        "case store unavailable too long; batch given back to the broker"
                    );
                    if let Some(tag) = last_tag {
                        acks.release_through(tag).await?;
                    }
                }
                other => other?,
            }
        }
        Ok::<(), ConsumerError>(())
    };
    // A finisher that fails ends the consumer at once: the collector may be
    // waiting for deliveries that never come.
    tokio::pin!(collector);
    tokio::pin!(finisher);
    tokio::select! {
        finished = &mut finisher => {
            // Ended: failed, or drained after the collector dropped its sender.
            finished?;
            collector.await
        }
        collected = &mut collector => {
            finisher.await?;
            collected
        }
    }
}

async fn collect(
    ctx: &Context,
    connector: &str,
    source: &mut Deliveries,
    batches: &mpsc::Sender<Vec<Entry>>,
) -> Result<(), ConsumerError> {
    // A delivery that would have taken the last batch over its byte bound
    // starts the next one.
    let mut carried: Option<Incoming> = None;
    loop {
        if ctx.stop.is_cancelled() {
            // A carried delivery goes back to the queue with the channel.
            return Ok(());
        }
        let first = match carried.take() {
            Some(delivery) => delivery,
            None => {
                let next = tokio::select! {
                    biased;
                    _ = ctx.stop.cancelled() => return Ok(()),
                    next = source.next() => next,
                };
                next.ok_or(ConsumerError::StreamEnded)??
            }
        };
        let mut bytes = first.body.len();
        let mut deliveries = vec![first];
        let deadline = tokio::time::Instant::now() + ctx.batch_linger;
        let mut failure = None;
        while deliveries.len() < ctx.batch_size && bytes < ctx.batch_bytes {
            match tokio::time::timeout_at(deadline, source.next()).await {
                Ok(Some(Ok(delivery))) => {
                    if bytes + delivery.body.len() > ctx.batch_bytes {
                        carried = Some(delivery);
                        break;
                    }
                    bytes += delivery.body.len();
                    deliveries.push(delivery);
                }
                Ok(Some(Err(error))) => {
                    failure = Some(error.into());
                    break;
                }
                Ok(None) => {
                    failure = Some(ConsumerError::StreamEnded);
                    break;
                }
                Err(_) => break,
            }
        }
        if deliveries
            .iter()
            .any(|d| d.body.len() as u64 > ctx.max_message_size)
            && !ctx
                .oversize_seen
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::error!(
                max_message_size = ctx.max_message_size,
                "the broker delivered a message larger than max_message_size: its own \
                 max_message_size is larger, and held_bytes is no bound; set them alike"
            );
        }
        let (taken, label) = (std::time::Instant::now(), Metrics::label(connector));
        ctx.metrics
            .received
            .get_or_create(&label)
            .inc_by(deliveries.len() as u64);
        let batch: Vec<Entry> = deliveries
            .into_iter()
            .map(|delivery| {
                let provenance = crate::dlq::provenance(&delivery.properties, &ctx.trusted);
                let message = Inbound {
                    routing_key: delivery.routing_key,
                    message_id: delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|m| m.as_str().to_owned()),
                    content_type: delivery
                        .properties
                        .content_type()
                        .as_ref()
                        .map(|c| c.as_str().to_owned()),
                    amqp_type: delivery
                        .properties
                        .kind()
                        .as_ref()
                        .map(|t| t.as_str().to_owned()),
                    user_id: provenance.user,
                    body: delivery.body,
                    replays: provenance.replays,
                };
                let result = pipeline::prepare(&ctx.registry, connector, &message, &ctx.trusted);
                if let Some((message_type, version)) =
                    pipeline::version_of(&ctx.registry, connector, &message)
                    && version.deprecated.is_some()
                {
                    ctx.metrics
                        .deprecated(connector, message_type, version.number);
                }
                if delivery.redelivered {
                    ctx.metrics.redelivered.get_or_create(&label).inc();
                }
                Entry {
                    delivery_tag: delivery.delivery_tag,
                    taken,
                    message,
                    properties: delivery.properties,
                    result,
                }
            })
            .collect();
        if batches.send(batch).await.is_err() {
            return Ok(());
        }
        if let Some(error) = failure {
            return Err(error);
        }
    }
}

/// Dead-letters, records and acknowledges one batch.
async fn finish(
    ctx: &Context,
    connector: &str,
    outlet: &Outlet<'_>,
    batch: Vec<Entry>,
) -> Result<(), ConsumerError> {
    let Some(last_tag) = batch.last().map(|e| e.delivery_tag) else {
        return Ok(());
    };
    let metrics = &ctx.metrics;
    let mut step = std::time::Instant::now();
    metrics.batch_step("wait", step.duration_since(batch[0].taken));
    let mut lap = |name: &'static str| {
        let now = std::time::Instant::now();
        metrics.batch_step(name, now - step);
        step = now;
    };
    let rules = ctx.current_rules();
    // 1. Refused messages go to their DLQ first: once the broker confirms,
    //    they are safe. A redelivered refusal the inbox already holds is not
    //    dead-lettered twice.
    let refused: Vec<(&Entry, &Refusal)> = batch
        .iter()
        .filter_map(|e| e.result.as_ref().err().map(|r| (e, r)))
        .collect();
    let keyed: Vec<(&str, i32)> = refused
        .iter()
        .filter_map(|(e, _)| usable_id(e).map(|id| (id, e.message.replays)))
        .collect();
    let settled = with_retry(ctx, connector, || ctx.store.settled(connector, &keyed)).await?;
    lap("settled");
    let refused: Vec<(&Entry, &Refusal)> = refused
        .into_iter()
        .filter(|(e, _)| usable_id(e).is_none_or(|id| !settled.contains(id)))
        .collect();
    for (entry, refusal) in &refused {
        log_refusal(entry, refusal);
    }
    let mut redeclared = dead_letter(ctx, connector, outlet, &refused).await?;
    lap("dead_letter");

    // 2. One transaction records everything, refusals included.
    let items: Vec<Item<'_>> = batch.iter().map(|entry| item(connector, entry)).collect();
    let results = with_retry(ctx, connector, || ctx.store.apply(&items, &rules)).await?;

    // 3. What the store refused goes to the DLQ too, then is recorded as refused.
    let late: Vec<(&Entry, Refusal)> = batch
        .iter()
        .zip(&results)
        .filter_map(|(entry, applied)| match applied {
            Applied::Refused(refusal) => Some((entry, refusal.clone())),
            _ => None,
        })
        .collect();
    if !late.is_empty() {
        let pairs: Vec<(&Entry, &Refusal)> = late.iter().map(|(e, r)| (*e, r)).collect();
        for (entry, refusal) in &pairs {
            log_refusal(entry, refusal);
        }
        redeclared |= dead_letter(ctx, connector, outlet, &pairs).await?;
        let items: Vec<Item<'_>> = pairs
            .iter()
            .map(|(entry, refusal)| Item {
                connector,
                message_id: usable_id(entry),
                message_type: message_type(entry),
                replays: entry.message.replays,
                work: Work::Refused {
                    refusal,
                    routing_key: &entry.message.routing_key,
                },
            })
            .collect();
        with_retry(ctx, connector, || ctx.store.apply(&items, &rules)).await?;
    }
    lap("record");
    log_applied(&batch, &results);
    ctx.outbox_ready.notify_one();

    // 4. Everything up to the last delivery of the batch is done.
    let acked = outlet.acks.ack_through(last_tag).await;
    if let Err(error) = acked {
        // Recorded but not acknowledged: the broker redelivers, the inbox recognises them.
        tracing::warn!(error = %error, "acknowledgement failed after commit; the batch will be redelivered and skipped");
        return Err(error.into());
    }
    lap("ack");
    count(ctx, connector, &batch, &refused, &late, &results);
    tracing::debug!(
        messages = batch.len(),
        refused = refused.len() + late.len(),
        "batch done"
    );
    if redeclared {
        // A DLQ had been deleted: its recorder's consumer went with it.
        // The batch is done; the connection starts over and the recorder
        // consumes the declared queue again.
        return Err(ConsumerError::QueueRestored);
    }
    Ok(())
}

/// Bumps the counters for a finished batch.
fn count(
    ctx: &Context,
    connector: &str,
    batch: &[Entry],
    refused: &[(&Entry, &Refusal)],
    late: &[(&Entry, Refusal)],
    results: &[Applied],
) {
    let metrics = &ctx.metrics;
    let label = Metrics::label(connector);
    for refusal in refused
        .iter()
        .map(|(_, r)| *r)
        .chain(late.iter().map(|(_, r)| r))
    {
        metrics.refused(connector, refusal.stage.as_str());
    }
    let processed = results
        .iter()
        .filter(|a| !matches!(a, Applied::Refused(_) | Applied::RefusalRecorded))
        .count();
    metrics
        .processed
        .get_or_create(&label)
        .inc_by(processed as u64);
    let latency = metrics.latency.get_or_create(&label);
    for entry in batch {
        latency.observe(entry.taken.elapsed().as_secs_f64());
    }
}

/// The span of one message's own log lines: `message_id` and, once there
/// is one, `case_no`, inside the consumer's span (`connector`).
fn message_span(entry: &Entry) -> tracing::Span {
    tracing::info_span!(
        "message",
        message_id = usable_id(entry).unwrap_or("<none>"),
        case_no = tracing::field::Empty
    )
}

fn log_refusal(entry: &Entry, refusal: &Refusal) {
    message_span(entry).in_scope(|| {
        tracing::info!(stage = %refusal.stage, reason = %refusal.reason, "refused");
    });
}

/// What the store did with each message, at debug level.
fn log_applied(batch: &[Entry], results: &[Applied]) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    for (entry, applied) in batch.iter().zip(results) {
        let (what, case_no) = match applied {
            Applied::CaseOpened { case_no } => ("case opened", Some(case_no)),
            Applied::CaseUpdated { case_no } => ("case updated", Some(case_no)),
            Applied::DuplicateSource => ("ticket already has a case", None),
            Applied::AlreadyProcessed => ("already processed", None),
            Applied::RecordsShared { .. } => ("records shared", None),
            Applied::GridsUpdated { .. } => ("grid data updated", None),
            Applied::RefusalRecorded | Applied::Refused(_) => continue,
        };
        let span = message_span(entry);
        if let Some(case_no) = case_no {
            span.record("case_no", case_no.as_str());
        }
        span.in_scope(|| tracing::debug!("{what}"));
    }
}

/// The routing key's message type, as the inbox records it; empty when it
/// holds a control character (a NUL would fail the whole statement).
fn message_type(entry: &Entry) -> &str {
    entry
        .message
        .routing_key
        .split_once('.')
        .map(|(_, t)| t)
        .filter(|t| !t.chars().any(char::is_control))
        .unwrap_or_default()
}

/// The message_id, when it is one the store can key on.
fn usable_id(entry: &Entry) -> Option<&str> {
    entry.message.message_id.as_deref().filter(|id| {
        !id.is_empty() && id.len() <= pipeline::MAX_MESSAGE_ID && !id.chars().any(char::is_control)
    })
}

fn item<'a>(connector: &'a str, entry: &'a Entry) -> Item<'a> {
    match &entry.result {
        Ok(prepared) => Item {
            connector,
            message_id: Some(&prepared.message_id),
            message_type: &prepared.message_type,
            replays: entry.message.replays,
            work: Work::Apply(&prepared.intent),
        },
        Err(refusal) => Item {
            connector,
            message_id: usable_id(entry),
            message_type: message_type(entry),
            replays: entry.message.replays,
            work: Work::Refused {
                refusal,
                routing_key: &entry.message.routing_key,
            },
        },
    }
}

/// Runs a store operation, waiting out transient failures with capped
/// exponential backoff and jitter. Gives up only when told to abandon
/// in-flight work.
async fn with_retry<T, F, Fut>(
    ctx: &Context,
    connector: &str,
    mut operation: F,
) -> Result<T, ConsumerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delays = ctx.retry.delays();
    let held_since = tokio::time::Instant::now();
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(StoreError::Transient(_)) if held_since.elapsed() >= ctx.store_hold => {
                return Err(ConsumerError::Stalled);
            }
            Err(StoreError::Transient(error)) => {
                ctx.metrics
                    .retried
                    .get_or_create(&Metrics::label(connector))
                    .inc();
                let delay = delays
                    .next()
                    .unwrap_or(Duration::from_millis(ctx.retry.max_delay_ms));
                tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "case store unavailable; holding the batch");
                tokio::select! {
                    _ = ctx.abandon.cancelled() => return Err(ConsumerError::Abandoned),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(error @ StoreError::Permanent { .. }) => {
                // apply() turns data errors into refusals; here one means the
                // hub's own statements are wrong. Hold the batch, loudly.
                tracing::error!(error = %error, "case store rejected the hub's own statement; holding the batch");
                tokio::select! {
                    _ = ctx.abandon.cancelled() => return Err(ConsumerError::Abandoned),
                    _ = tokio::time::sleep(Duration::from_millis(ctx.retry.max_delay_ms)) => {}
                }
            }
        }
    }
}

/// Publishes refused messages to the DLX and waits until every one is safe:
/// confirmed by the broker, or queued on the in-process bus.
/// Returns whether the topology had to be declared again (a DLQ was gone).
async fn dead_letter(
    ctx: &Context,
    connector: &str,
    outlet: &Outlet<'_>,
    refused: &[(&Entry, &Refusal)],
) -> Result<bool, ConsumerError> {
    let mut redeclared = false;
    if refused.is_empty() {
        return Ok(redeclared);
    }
    let exchange = ctx.names.dead_letter_exchange();
    let now = Utc::now();
    let letters = refused.iter().map(|(entry, refusal)| {
        let provenance = crate::dlq::Provenance {
            user: entry.message.user_id.clone(),
            replays: entry.message.replays,
        };
        let properties = crate::dlq::refused_properties(
            &entry.properties,
            connector,
            &entry.message.routing_key,
            refusal,
            now,
            &provenance,
        );
        let mut headers = properties.headers().clone().unwrap_or_default();
        let body = crate::dlq::kept_body(&entry.message.body, &mut headers);
        let properties = properties.with_headers(headers);
        // Route by the connector so that any routing key lands in this connector's DLQ.
        let routing_key = format!(
            "{connector}.{}",
            dead_letter_suffix(&entry.message.routing_key, connector)
        );
        (routing_key, properties, body)
    });
    // Mandatory: a dead letter that reaches no queue (its DLQ was deleted)
    // comes back, and is not taken for done.
    let publisher = outlet.dead_letters;
    let mut pending: Vec<_> = letters.collect();
    for attempt in 0.. {
        let mut sent = Vec::with_capacity(pending.len());
        for (routing_key, properties, body) in &pending {
            sent.push(
                publisher
                    .publish(&exchange, routing_key, properties.clone(), body)
                    .await?,
            );
        }
        let mut returned = Vec::new();
        for (letter, sent) in pending.into_iter().zip(sent) {
            match sent.outcome().await? {
                Outcome::Taken => {}
                Outcome::Returned => returned.push(letter),
                Outcome::Refused => return Err(ConsumerError::DeadLetterNacked),
            }
        }
        if returned.is_empty() {
            break;
        }
        ctx.metrics
            .unroutable
            .get_or_create(&Metrics::label(connector))
            .inc_by(returned.len() as u64);
        tracing::warn!(
            dead_letters = returned.len(),
            "dead letters found no queue; declaring the topology again"
        );
        if attempt == 2 {
            return Err(ConsumerError::DeadLetterUnroutable);
        }
        publisher.declare(&ctx.topology).await?;
        redeclared = true;
        pending = returned;
    }
    Ok(redeclared)
}

/// The message type part of a routing key, or `unrouted` when the key does
/// not start with the connector (so the DLQ binding `<connector>.#` matches).
fn dead_letter_suffix<'a>(routing_key: &'a str, connector: &str) -> &'a str {
    match routing_key.split_once('.') {
        Some((prefix, rest))
            if prefix == connector
                && !rest.is_empty()
                && rest.len() < 200
                && !rest.chars().any(char::is_control) =>
        {
            rest
        }
        _ => "unrouted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_always_route_to_their_connector() {
        assert_eq!(
            dead_letter_suffix("hotline-12345.ticket", "hotline-12345"),
            "ticket"
        );
        assert_eq!(
            dead_letter_suffix("hotline-12345", "hotline-12345"),
            "unrouted"
        );
        assert_eq!(
            dead_letter_suffix("other.ticket", "hotline-12345"),
            "unrouted"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let retry = RetrySettings {
            min_delay_ms: 100,
            max_delay_ms: 1000,
        };
        let delays: Vec<Duration> = retry.delays().take(12).collect();
        assert_eq!(delays.len(), 12, "retries forever");
        // Jitter adds up to one more delay on top of the capped base.
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(2000)),
            "{delays:?}"
        );
        assert!(delays[8] >= Duration::from_millis(1000));
    }
}
