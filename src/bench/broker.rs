//! The bench's own broker clients: a pipelined publisher with confirms (at
//! full speed or at a fixed rate) and the ceiling's consumer (manual acks,
//! ack multiple, no processing).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::ProgressBar;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::time::Instant;

use super::mix::Message;

/// Microseconds since the Unix epoch: the clock PostgreSQL's timestamps share.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// What a publishing run did.
#[derive(Debug, Default)]
pub struct Published {
    pub first_micros: i64,
    pub last_confirm_micros: i64,
    /// Publish time of every message, in order of `messages`.
    pub at_micros: Vec<i64>,
    pub confirmed: u64,
    pub bytes: u64,
}

/// Publishes every message with `mandatory` and persistent delivery, keeping
/// at most `window` unconfirmed; at `rate` messages per second if given.
/// Fails on the first nack or unroutable message: a bench that lost a
/// message at the broker measures nothing.
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    user_id: &str,
    messages: impl Iterator<Item = Message>,
    window: usize,
    rate: Option<f64>,
    progress: &ProgressBar,
) -> anyhow::Result<Published> {
    let mut outcome = Published::default();
    let mut inflight = FuturesUnordered::new();
    let start = Instant::now();
    for (index, message) in messages.enumerate() {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(index as f64 / rate);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    Some(result) = inflight.next(), if !inflight.is_empty() => {
                        settle(result, &mut outcome, progress)?;
                    }
                }
            }
        }
        while inflight.len() >= window {
            if let Some(result) = inflight.next().await {
                settle(result, &mut outcome, progress)?;
            }
        }
        let at = now_micros();
        if index == 0 {
            outcome.first_micros = at;
        }
        outcome.at_micros.push(at);
        outcome.bytes += message.body.len() as u64;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(message.message_id.as_str().into())
            .with_content_type(message.content_type.as_str().into())
            .with_user_id(user_id.into());
        let channel = channel.clone();
        let exchange = exchange.to_owned();
        inflight.push(async move {
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    message.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &message.body,
                    properties,
                )
                .await?;
            Ok::<_, lapin::Error>((message.routing_key, confirm.await?))
        });
    }
    while let Some(result) = inflight.next().await {
        settle(result, &mut outcome, progress)?;
    }
    outcome.last_confirm_micros = now_micros();
    Ok(outcome)
}

fn settle(
    result: Result<(String, Confirmation), lapin::Error>,
    outcome: &mut Published,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    match result? {
        (_, Confirmation::Ack(None) | Confirmation::NotRequested) => {
            outcome.confirmed += 1;
            progress.inc(1);
            Ok(())
        }
        (routing_key, Confirmation::Ack(Some(_))) => {
            anyhow::bail!("the broker had no queue for {routing_key}")
        }
        (routing_key, Confirmation::Nack(_)) => {
            anyhow::bail!("the broker refused a message for {routing_key} (nack)")
        }
    }
}

/// Consumes `count` messages from `queue` with manual acks (one ack per
/// `ack_every`, multiple), doing nothing with them. Returns when the last
/// one was acknowledged, in microseconds since the epoch.
pub async fn consume(
    channel: &Channel,
    queue: &str,
    count: u64,
    prefetch: u16,
    progress: &ProgressBar,
) -> anyhow::Result<i64> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "gridhub-bench-ceiling".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let ack_every = u64::from(prefetch / 4).max(1);
    let mut received = 0u64;
    let mut unacked = 0u64;
    while received < count {
        let delivery = match consumer.next().await {
            Some(delivery) => delivery?,
            None => anyhow::bail!("the ceiling's consumer was cancelled"),
        };
        received += 1;
        unacked += 1;
        if unacked >= ack_every || received == count {
            channel
                .basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true })
                .await?;
            progress.inc(unacked);
            unacked = 0;
        }
    }
    Ok(now_micros())
}
