//! Messages the AMQP client cannot read, taken off their queue.
//!
//! A delivery whose routing key or short-string properties (message_id,
//! type, app_id, header keys, ...) are not UTF-8 fails lapin's parse of the
//! frame, and the parse failure ends the whole connection (see `raw`). The
//! hub then reconnects that connector alone, in quarantine (prefetch 1), so
//! that when it fails again only the culprit was held, and it is back at
//! the head of the queue. [`evict`] takes it from there with the raw
//! client, checks that lapin indeed cannot read it, dead-letters a copy the
//! hub and ops can read (the body as it was, the properties it could make
//! out, the original property bytes in `x-gridhub-raw-properties`, stage
//! `decode`, reason "unreadable properties"), records the refusal, and
//! only then acknowledges it. A readable message found there instead (the
//! culprit went to another hub) is given back.

use chrono::Utc;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation};

use super::raw::{RawConnection, RawError, RawMessage};
use crate::amqp::consumer::Context;
use crate::dlq;
use crate::message::printable;
use crate::pipeline::{Refusal, Stage};
use crate::store::{Item, Work};

/// The reason an unreadable message is refused with.
pub const REASON: &str = "unreadable properties: the routing key or a property (message_id, type, \
     app_id, a header's key) is not UTF-8, which the hub's AMQP client cannot read";

/// Header holding the original property bytes of an unreadable message.
pub const RAW_PROPERTIES: &str = "x-gridhub-raw-properties";

/// Most messages one eviction takes off a queue.
const LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    #[error(transparent)]
    Raw(#[from] RawError),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not take the readable copy (nack or no queue)")]
    NotTaken,
    #[error("case store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Whether lapin can read a message as it travelled.
pub fn readable(message: &RawMessage) -> bool {
    std::str::from_utf8(&message.routing_key).is_ok()
        && lapin::protocol::basic::parse_properties(message.properties.as_slice())
            .is_ok_and(|(rest, _)| rest.is_empty())
}

/// Takes the unreadable messages at the head of `connector`'s inbound
/// queue off it, each dead-lettered first; returns how many.
pub async fn evict(
    url: &str,
    channel: &Channel,
    ctx: &Context,
    connector: &str,
) -> Result<usize, EvictError> {
    let queue = ctx.names.inbound_queue(connector);
    let mut raw = RawConnection::open(url).await?;
    let mut evicted = 0;
    while evicted < LIMIT {
        let Some(message) = raw.get(&queue).await? else {
            break;
        };
        if readable(&message) {
            raw.requeue(message.delivery_tag).await?;
            break;
        }
        dead_letter(channel, ctx, connector, &message).await?;
        raw.ack(message.delivery_tag).await?;
        evicted += 1;
    }
    raw.close().await?;
    Ok(evicted)
}

/// Dead-letters a readable copy and records the refusal.
async fn dead_letter(
    channel: &Channel,
    ctx: &Context,
    connector: &str,
    message: &RawMessage,
) -> Result<(), EvictError> {
    let seen = Lenient::read(&message.properties);
    let routing_key = printable(&String::from_utf8_lossy(&message.routing_key)).into_owned();
    let refusal = Refusal::new(Stage::Decode, REASON);
    let mut headers = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    headers.insert(dlq::STAGE.into(), text(Stage::Decode.as_str()));
    headers.insert(dlq::CONNECTOR.into(), text(connector));
    headers.insert(dlq::REASON.into(), text(REASON));
    headers.insert(dlq::ROUTING_KEY.into(), text(&routing_key));
    headers.insert(dlq::REFUSED_AT.into(), text(&Utc::now().to_rfc3339()));
    headers.insert(dlq::VIOLATIONS.into(), text("[]"));
    if let Some(user) = &seen.user_id {
        headers.insert(dlq::ORIGINAL_USER.into(), text(user));
    }
    headers.insert(
        RAW_PROPERTIES.into(),
        AMQPValue::LongString(LongString::from(message.properties.clone())),
    );
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers);
    if let Some(id) = &seen.message_id {
        properties = properties.with_message_id(id.as_str().into());
    }
    if let Some(content_type) = &seen.content_type {
        properties = properties.with_content_type(content_type.as_str().into());
    }
    let confirm = channel
        .basic_publish(
            ctx.names.dead_letter_exchange().as_str().into(),
            format!("{connector}.unreadable").as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &message.body,
            properties,
        )
        .await?
        .await?;
    if !matches!(confirm, Confirmation::Ack(None)) {
        return Err(EvictError::NotTaken);
    }
    let items = [Item {
        connector,
        message_id: None,
        message_type: "",
        replays: 0,
        work: Work::Refused {
            refusal: &refusal,
            routing_key: &routing_key,
        },
    }];
    ctx.store.apply(&items, &ctx.current_rules()).await?;
    ctx.metrics.refused(connector, Stage::Decode.as_str());
    tracing::warn!(
        connector,
        "a message with unreadable properties was dead-lettered"
    );
    Ok(())
}

/// What can be made out of a property list whose short strings need not be
/// UTF-8: each text property decoded lossily, control characters escaped,
/// and clipped to what a short string holds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Lenient {
    content_type: Option<String>,
    message_id: Option<String>,
    user_id: Option<String>,
}

impl Lenient {
    fn read(properties: &[u8]) -> Lenient {
        let mut seen = Lenient::default();
        let _ = seen.try_read(properties);
        seen
    }

    /// Reads the properties in order, as far as they go.
    fn try_read(&mut self, properties: &[u8]) -> Option<()> {
        let mut cursor = Cursor(properties);
        let flags = u16::from_be_bytes(cursor.take(2)?.try_into().ok()?);
        let has = |bit: u16| flags & (1 << bit) != 0;
        if has(15) {
            self.content_type = Some(cursor.short()?);
        }
        if has(14) {
            cursor.short()?; // content encoding
        }
        if has(13) {
            let len = u32::from_be_bytes(cursor.take(4)?.try_into().ok()?) as usize;
            cursor.take(len)?; // headers: kept whole in the raw bytes
        }
        if has(12) {
            cursor.take(1)?; // delivery mode
        }
        if has(11) {
            cursor.take(1)?; // priority
        }
        for _ in [10, 9, 8].into_iter().filter(|bit| has(*bit)) {
            cursor.short()?; // correlation id, reply to, expiration
        }
        if has(7) {
            self.message_id = Some(cursor.short()?);
        }
        if has(6) {
            cursor.take(8)?; // timestamp
        }
        if has(5) {
            cursor.short()?; // type
        }
        if has(4) {
            self.user_id = Some(cursor.short()?);
        }
        Some(())
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A short string as text: decoded lossily, control characters escaped.
    fn short(&mut self) -> Option<String> {
        let len = self.take(1)?[0] as usize;
        let text = String::from_utf8_lossy(self.take(len)?);
        Some(printable(&text).chars().take(255).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(routing_key: &[u8], properties: Vec<u8>) -> RawMessage {
        RawMessage {
            delivery_tag: 1,
            redelivered: false,
            routing_key: routing_key.to_vec(),
            properties,
            body: Vec::new(),
        }
    }

    /// Flags for content type, headers, message_id and user_id, then their values.
    fn properties(message_id: &[u8], header_key: &[u8]) -> Vec<u8> {
        let flags: u16 = (1 << 15) | (1 << 13) | (1 << 7) | (1 << 4);
        let mut bytes = flags.to_be_bytes().to_vec();
        bytes.push(16);
        bytes.extend_from_slice(b"application/json");
        let mut table = vec![header_key.len() as u8];
        table.extend_from_slice(header_key);
        table.extend_from_slice(b"S\x00\x00\x00\x01x");
        bytes.extend_from_slice(&(table.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&table);
        bytes.push(message_id.len() as u8);
        bytes.extend_from_slice(message_id);
        bytes.push(13);
        bytes.extend_from_slice(b"hotline-12345");
        bytes
    }

    #[test]
    fn what_lapin_cannot_read_is_told_apart() {
        assert!(readable(&message(b"a.b", properties(b"m-1", b"k"))));
        assert!(!readable(&message(b"a.b", properties(b"\xff\xfe", b"k"))));
        assert!(!readable(&message(b"a.b", properties(b"m-1", b"\xff"))));
        assert!(!readable(&message(b"a.\xff", properties(b"m-1", b"k"))));
    }

    #[test]
    fn the_properties_are_made_out_leniently() {
        let seen = Lenient::read(&properties(b"id\xff\x00", b"\xfe"));
        assert_eq!(
            seen,
            Lenient {
                content_type: Some("application/json".into()),
                message_id: Some("id\u{fffd}\\u{0}".into()),
                user_id: Some("hotline-12345".into()),
            }
        );
        // Cut short: what came before the cut is kept.
        let mut cut = properties(b"m", b"k");
        cut.truncate(19);
        assert_eq!(
            Lenient::read(&cut).content_type.as_deref(),
            Some("application/json")
        );
    }
}
