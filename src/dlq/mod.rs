//! Dead letters: a refused message, how it is written to its DLQ, recorded
//! in the case store, and handled by ops.
//!
//! One vocabulary runs through the module:
//!
//! - a **dead letter** ([`DeadLetter`]) is the original message (body and
//!   properties) with headers naming the stage, the connector, the schema
//!   and every violation. The original `user_id` moves to a header, because
//!   the broker only accepts a `user_id` equal to the publishing
//!   connection's user;
//! - its **group** is its failure signature ([`Signature`], [`Group`]):
//!   dead letters that failed the same way, whatever their values;
//! - the **office** ([`Office`]) is where ops list, show, group, replay,
//!   edit and purge them. Each connector's part of the hub consumes its DLQ
//!   into the case store (`amqp::consumer::record`), so the office reads
//!   the store, never the queue, and no read is a delivery the broker
//!   counts.

mod office;

pub use office::{
    Detail, Edited, Filter, Group, Listing, Office, OfficeError, Report, Signature, group,
    replay_properties,
};

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::pipeline::{Refusal, Stage};
use crate::schema::Violation;

pub const STAGE: &str = "x-gridhub-stage";
pub const CONNECTOR: &str = "x-gridhub-connector";
pub const REASON: &str = "x-gridhub-reason";
pub const SCHEMA: &str = "x-gridhub-schema";
pub const VIOLATIONS: &str = "x-gridhub-violations";
pub const ROUTING_KEY: &str = "x-gridhub-routing-key";
pub const REFUSED_AT: &str = "x-gridhub-refused-at";
pub const ORIGINAL_USER: &str = "x-gridhub-original-user-id";
/// How often ops replayed the message; kept by the hub, not read from x-death.
pub const REPLAYS: &str = "x-gridhub-replays";
/// A body over the hub's limit is not copied whole into the DLQ: these
/// headers give its size and SHA-256 (hex), and the copy carries only its
/// first [`KEPT_PREFIX`] bytes, enough to tell what it was.
pub const BODY_SIZE: &str = "x-gridhub-body-size";
pub const BODY_SHA256: &str = "x-gridhub-body-sha256";
pub const BODY_TRUNCATED: &str = "x-gridhub-body-truncated";
/// How much of an oversized body its dead letter keeps.
pub const KEPT_PREFIX: usize = 4096;

/// The body a dead letter carries, and the headers that describe what was
/// cut: the whole body when within the hub's limit; else its first
/// [`KEPT_PREFIX`] bytes, with its size and SHA-256.
pub fn kept_body<'b>(body: &'b [u8], headers: &mut FieldTable) -> &'b [u8] {
    if body.len() <= crate::pipeline::MAX_BODY {
        return body;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    headers.insert(BODY_SIZE.into(), AMQPValue::LongLongInt(body.len() as i64));
    headers.insert(BODY_SHA256.into(), AMQPValue::LongString(hex.into()));
    headers.insert(BODY_TRUNCATED.into(), AMQPValue::Boolean(true));
    &body[..KEPT_PREFIX]
}

/// Whether a dead letter carries only the first bytes of its body.
pub fn truncated(props: &BasicProperties) -> bool {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(BODY_TRUNCATED).cloned())
        .is_some_and(|v| matches!(v, AMQPValue::Boolean(true)))
}

/// Properties of the dead letter: the original's, less `user_id` and
/// `expiration`, persistent, with the reason headers added.
///
/// No inbound `x-gridhub-*` header is kept: the hub writes its own, and
/// records who the message speaks for (`identity`, see [`provenance`]) and
/// how often it was replayed itself.
pub fn properties(
    original: &BasicProperties,
    connector: &str,
    routing_key: &str,
    refusal: &Refusal,
    now: DateTime<Utc>,
) -> BasicProperties {
    let trusted_as = Provenance {
        user: original.user_id().as_ref().map(|u| u.as_str().to_owned()),
        replays: 0,
    };
    refused_properties(original, connector, routing_key, refusal, now, &trusted_as)
}

/// [`properties`] for a message whose provenance the consumer worked out.
pub fn refused_properties(
    original: &BasicProperties,
    connector: &str,
    routing_key: &str,
    refusal: &Refusal,
    now: DateTime<Utc>,
    provenance: &Provenance,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(inbound) = original.headers() {
        for (key, value) in inbound {
            if !key.as_str().starts_with(HUB_HEADERS) {
                headers.insert(key.clone(), value.clone());
            }
        }
    }
    let put = |headers: &mut FieldTable, key: &str, value: &str| {
        headers.insert(key.into(), AMQPValue::LongString(LongString::from(value)));
    };
    put(&mut headers, STAGE, refusal.stage.as_str());
    put(&mut headers, CONNECTOR, connector);
    put(&mut headers, REASON, &refusal.reason);
    put(&mut headers, ROUTING_KEY, routing_key);
    put(&mut headers, REFUSED_AT, &now.to_rfc3339());
    put(
        &mut headers,
        VIOLATIONS,
        &serde_json::to_string(&refusal.violations).unwrap_or_else(|_| "[]".to_owned()),
    );
    if let Some(schema) = &refusal.schema {
        put(&mut headers, SCHEMA, &format!("schemas/{schema}"));
    }
    if let Some(user) = &provenance.user {
        put(&mut headers, ORIGINAL_USER, user);
    }
    if provenance.replays > 0 {
        headers.insert(REPLAYS.into(), AMQPValue::LongInt(provenance.replays));
    }
    copy_properties(
        original,
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers),
    )
}

/// `base` with the original's content type, encoding, priority,
/// correlation id, reply-to, message_id, timestamp, type and app id; never
/// its `user_id` (the broker accepts only the publishing connection's) nor
/// its `expiration` (a dead letter must not expire).
pub fn copy_properties(original: &BasicProperties, base: BasicProperties) -> BasicProperties {
    let mut props = base;
    macro_rules! copy {
        ($get:ident, $with:ident) => {
            if let Some(value) = original.$get() {
                props = props.$with(value.clone());
            }
        };
    }
    copy!(content_type, with_content_type);
    copy!(content_encoding, with_content_encoding);
    copy!(priority, with_priority);
    copy!(correlation_id, with_correlation_id);
    copy!(reply_to, with_reply_to);
    copy!(message_id, with_message_id);
    copy!(timestamp, with_timestamp);
    copy!(kind, with_type);
    copy!(app_id, with_app_id);
    props
}

/// A dead letter as ops see it. No body: `dlq show` prints that on request.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Stable id of this dead letter: a hash of its connector, message_id,
    /// refusal time, replay count and body.
    pub id: String,
    /// Its failure signature's id.
    pub group: String,
    pub connector: String,
    pub stage: String,
    pub reason: String,
    pub message_id: Option<String>,
    pub routing_key: String,
    pub schema: Option<String>,
    pub violations: Vec<Violation>,
    pub refused_at: Option<String>,
    pub replays: i64,
    pub content_type: Option<String>,
    /// Its AMQP `type` property: the version of its format it asked for.
    pub amqp_type: Option<String>,
    pub size: usize,
    /// Only the first bytes of the body were kept (it was over the limit);
    /// `size` is then the original's.
    pub truncated: bool,
    /// The broker user that published the original, as the hub recorded it
    /// (none if it sent no user_id): a replay is judged as this publisher.
    pub original_user: Option<String>,
}

fn header_str(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_int(headers: &FieldTable, key: &str) -> Option<i64> {
    match headers.inner().get(key)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).parse().ok(),
        _ => None,
    }
}

/// Every header the hub itself writes starts with this.
pub const HUB_HEADERS: &str = "x-gridhub-";

/// Who a delivery speaks for and how often ops replayed it, as far as the
/// hub can trust it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provenance {
    /// The broker user the identity stage judges: the publisher's own
    /// (checked by the broker), or for a replay the original publisher the
    /// hub recorded when it refused the message (none if it sent none).
    pub user: Option<String>,
    /// Replays (0 unless the hub itself replayed it).
    pub replays: i32,
}

/// Reads a delivery's provenance. The hub's headers (`x-gridhub-*`) count
/// only when a trusted user (the hub's own) published the message: anyone
/// else's are ignored, so that no publisher can claim replays, or another
/// publisher's identity.
pub fn provenance(props: &BasicProperties, trusted: &[String]) -> Provenance {
    let user = props.user_id().as_ref().map(|u| u.as_str().to_owned());
    let by_hub = user.as_ref().is_some_and(|u| trusted.contains(u));
    if !by_hub {
        return Provenance { user, replays: 0 };
    }
    match replays(props) {
        0 => Provenance { user, replays: 0 },
        // A replay: judged as its original publisher, as the hub recorded.
        replayed => Provenance {
            user: props
                .headers()
                .as_ref()
                .and_then(|h| header_str(h, ORIGINAL_USER)),
            replays: replayed,
        },
    }
}

/// The AMQP encoding of a message's properties (flags and list), as the
/// dead-letter store keeps them.
pub fn encode_properties(props: &BasicProperties) -> Vec<u8> {
    lapin::protocol::basic::gen_properties(props)(Vec::new().into())
        .map(|written| written.write)
        .unwrap_or_default()
}

/// Properties back from [`encode_properties`]; `None` if they do not parse.
pub fn decode_properties(bytes: &[u8]) -> Option<BasicProperties> {
    match lapin::protocol::basic::parse_properties(bytes) {
        Ok(([], props)) => Some(props),
        _ => None,
    }
}

/// The replay count a message carries (0 for one never replayed).
pub fn replays(props: &BasicProperties) -> i32 {
    props
        .headers()
        .as_ref()
        .and_then(|h| header_int(h, REPLAYS))
        .map_or(0, |n| n.clamp(0, i64::from(i32::MAX)) as i32)
}

impl DeadLetter {
    /// Reads a message from a DLQ. Messages the broker dead-lettered itself
    /// (delivery limit) have no hub headers; their reason comes from x-death.
    pub fn from_message(
        queue_connector: &str,
        routing_key: &str,
        props: &BasicProperties,
        body: &[u8],
    ) -> DeadLetter {
        let size = body.len();
        let headers = props.headers().clone().unwrap_or_default();
        let stage = header_str(&headers, STAGE);
        let (stage, reason) = match stage {
            Some(stage) => (stage, header_str(&headers, REASON).unwrap_or_default()),
            None => {
                let why = header_str(&headers, "x-first-death-reason")
                    .unwrap_or_else(|| "unknown".to_owned());
                (
                    Stage::DeliveryLimit.as_str().to_owned(),
                    format!(
                        "dead-lettered by the broker ({why}): the hub failed to finish it too many times"
                    ),
                )
            }
        };
        let mut letter = DeadLetter {
            id: String::new(),
            group: String::new(),
            connector: header_str(&headers, CONNECTOR)
                .unwrap_or_else(|| queue_connector.to_owned()),
            stage,
            reason,
            message_id: props.message_id().as_ref().map(|m| m.as_str().to_owned()),
            routing_key: header_str(&headers, ROUTING_KEY)
                .unwrap_or_else(|| routing_key.to_owned()),
            schema: header_str(&headers, SCHEMA),
            violations: header_str(&headers, VIOLATIONS)
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default(),
            refused_at: header_str(&headers, REFUSED_AT),
            replays: header_int(&headers, REPLAYS).unwrap_or(0),
            content_type: props.content_type().as_ref().map(|c| c.as_str().to_owned()),
            amqp_type: props.kind().as_ref().map(|t| t.as_str().to_owned()),
            size: header_int(&headers, BODY_SIZE)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(size),
            truncated: truncated(props),
            original_user: header_str(&headers, ORIGINAL_USER),
        };
        letter.id = letter.identity(body);
        letter.group = Signature::of(&letter).id();
        letter
    }
}

impl DeadLetter {
    fn identity(&self, body: &[u8]) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.connector.as_str(),
            self.message_id.as_deref().unwrap_or(""),
            self.refused_at.as_deref().unwrap_or(""),
            &self.replays.to_string(),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(body);
        hex(&hash.finalize()[..8])
    }

    /// When the hub refused it, if it says.
    pub fn refused_at(&self) -> Option<DateTime<Utc>> {
        self.refused_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_properties_drop_user_id_and_keep_the_rest() {
        let original = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_user_id("hotline-12345".into())
            .with_content_type("application/json".into())
            .with_expiration("60000".into());
        let refusal = Refusal::new(Stage::Decode, "empty body");
        let props = properties(
            &original,
            "hotline-12345",
            "hotline-12345.ticket",
            &refusal,
            Utc::now(),
        );
        assert!(props.user_id().is_none());
        assert!(props.expiration().is_none());
        assert_eq!(props.message_id().as_ref().unwrap().as_str(), "m-1");
        let letter = DeadLetter::from_message("x", "hotline-12345.ticket", &props, b"");
        assert_eq!(letter.connector, "hotline-12345");
        assert_eq!(letter.stage, "decode");
        assert_eq!(letter.reason, "empty body");
        assert_eq!(letter.violations.len(), 1);
        let headers = props.headers().clone().unwrap();
        assert_eq!(
            header_str(&headers, ORIGINAL_USER).as_deref(),
            Some("hotline-12345")
        );
    }

    fn with_headers(user: &str, pairs: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (key, value) in pairs {
            headers.insert((*key).into(), value.clone());
        }
        BasicProperties::default()
            .with_user_id(user.into())
            .with_headers(headers)
    }

    #[test]
    fn publishers_cannot_forge_the_hubs_headers() {
        let trusted = vec!["gridhub".to_owned()];
        let forged = with_headers(
            "dept-health",
            &[
                (REPLAYS, AMQPValue::LongInt(i32::MAX)),
                (ORIGINAL_USER, AMQPValue::LongString("hotline-12345".into())),
                (REASON, AMQPValue::LongString("forged".into())),
                ("x-trace", AMQPValue::LongString("kept".into())),
            ],
        );
        let seen = provenance(&forged, &trusted);
        assert_eq!(
            seen,
            Provenance {
                user: Some("dept-health".to_owned()),
                replays: 0
            }
        );
        // Refused: the forged headers are gone, the hub's own are written.
        let refusal = Refusal::new(Stage::Schema, "bad");
        let props = refused_properties(
            &forged,
            "dept-health",
            "dept-health.x",
            &refusal,
            Utc::now(),
            &seen,
        );
        let headers = props.headers().clone().unwrap();
        assert_eq!(
            header_str(&headers, ORIGINAL_USER).as_deref(),
            Some("dept-health")
        );
        assert_eq!(header_str(&headers, REASON).as_deref(), Some("bad"));
        assert_eq!(header_int(&headers, REPLAYS), None);
        assert_eq!(header_str(&headers, "x-trace").as_deref(), Some("kept"));
        // No user_id: a forged original user is not taken either.
        let anonymous = BasicProperties::default().with_headers(forged.headers().clone().unwrap());
        assert_eq!(provenance(&anonymous, &trusted), Provenance::default());
    }

    #[test]
    fn a_replay_is_judged_as_its_original_publisher() {
        let trusted = vec!["gridhub".to_owned()];
        let replay = with_headers(
            "gridhub",
            &[
                (REPLAYS, AMQPValue::LongInt(2)),
                (ORIGINAL_USER, AMQPValue::LongString("hotline-12345".into())),
            ],
        );
        assert_eq!(
            provenance(&replay, &trusted),
            Provenance {
                user: Some("hotline-12345".to_owned()),
                replays: 2
            }
        );
        // Refused at identity for having no user_id: its replay has none either.
        let no_user = with_headers("gridhub", &[(REPLAYS, AMQPValue::LongInt(1))]);
        assert_eq!(provenance(&no_user, &trusted).user, None);
        // The hub's own messages that are no replays speak for the hub.
        let own = with_headers("gridhub", &[]);
        assert_eq!(provenance(&own, &trusted).user.as_deref(), Some("gridhub"));
    }

    #[test]
    fn broker_dead_letters_are_explained() {
        let mut headers = FieldTable::default();
        headers.insert(
            "x-first-death-reason".into(),
            AMQPValue::LongString("delivery_limit".into()),
        );
        let props = BasicProperties::default().with_headers(headers);
        let letter = DeadLetter::from_message(
            "hotline-96156",
            "hotline-96156.ticket",
            &props,
            b"0123456789",
        );
        assert_eq!(letter.stage, "delivery-limit");
        assert!(letter.reason.contains("delivery_limit"));
        assert_eq!(letter.connector, "hotline-96156");
    }
}
