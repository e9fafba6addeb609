//! The unit of work: one inbound message in, one intent or one refusal out.
//!
//! `prepare` runs the pure stages (decode, identity, schema, mapping, intent);
//! the store applies what they produce. Nothing here touches the network, so
//! every stage is tested directly and the consumer loop around it stays dumb.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connector::{INTENT_SCHEMA, Registry};
use crate::intent::Intent;
use crate::message::Inbound;
use crate::schema::Violation;

/// Largest body accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// Deepest JSON nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Longest message_id accepted.
pub const MAX_MESSAGE_ID: usize = 128;

/// Where a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The envelope or the bytes: message_id, routing key, content type, size, JSON.
    Decode,
    /// The publisher may not publish as this connector.
    Identity,
    /// The message does not match its connector's schema.
    Schema,
    /// The connector's mapping failed.
    Mapping,
    /// The mapping's result is not a valid unified intent.
    Intent,
    /// The case store refused the intent.
    Apply,
    /// The broker dead-lettered it after too many deliveries.
    DeliveryLimit,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Identity => "identity",
            Stage::Schema => "schema",
            Stage::Mapping => "mapping",
            Stage::Intent => "intent",
            Stage::Apply => "apply",
            Stage::DeliveryLimit => "delivery-limit",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        [
            Stage::Decode,
            Stage::Identity,
            Stage::Schema,
            Stage::Mapping,
            Stage::Intent,
            Stage::Apply,
            Stage::DeliveryLimit,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::str::FromStr for Stage {
    type Err = String;

    fn from_str(text: &str) -> Result<Stage, String> {
        Stage::parse(text).ok_or_else(|| {
            format!(
                "unknown stage {text:?}: decode, identity, schema, mapping, intent, apply or delivery-limit"
            )
        })
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message was refused. Holds no value from the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub stage: Stage,
    /// One line for people: the first violation and how many more.
    pub reason: String,
    /// Schema file (relative to the schemas folder) for schema and intent refusals.
    pub schema: Option<String>,
    pub violations: Vec<Violation>,
}

impl Refusal {
    pub fn new(stage: Stage, reason: impl Into<String>) -> Refusal {
        let reason = reason.into();
        Refusal {
            stage,
            violations: vec![Violation::at_root(reason.clone())],
            reason,
            schema: None,
        }
    }

    pub fn from_violations(stage: Stage, schema: &str, violations: Vec<Violation>) -> Refusal {
        let first = &violations[0];
        let path = if first.instance_path.is_empty() {
            "/"
        } else {
            &first.instance_path
        };
        let mut reason = format!("{path}: {}", first.message);
        if violations.len() > 1 {
            reason.push_str(&format!(" (and {} more)", violations.len() - 1));
        }
        Refusal {
            stage,
            reason,
            schema: Some(schema.to_owned()),
            violations,
        }
    }
}

/// A message that passed every pure stage.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub message_id: String,
    pub message_type: String,
    /// The version of the type's format it was read as.
    pub version: u32,
    pub intent: Intent,
}

/// Runs decode, identity, schema, mapping and intent on one message.
///
/// `connector` is the connector whose queue carried the message; the routing
/// key must name it. `trusted` are broker users that may publish as anyone.
pub fn prepare(
    registry: &Registry,
    connector: &str,
    message: &Inbound,
    trusted: &[String],
) -> Result<Prepared, Refusal> {
    let (message_id, message_type, version, output) =
        mapped(registry, connector, message, trusted)?;
    Ok(Prepared {
        message_id,
        message_type: message_type.to_owned(),
        version,
        intent: typed(output)?,
    })
}

/// [`prepare`], keeping the mapping's output as JSON, exactly as validated
/// (for `gridhub check` and the bench, which compare it).
pub fn prepare_json(
    registry: &Registry,
    connector: &str,
    message: &Inbound,
    trusted: &[String],
) -> Result<(Prepared, Value), Refusal> {
    let (message_id, message_type, version, output) =
        mapped(registry, connector, message, trusted)?;
    let prepared = Prepared {
        message_id,
        message_type: message_type.to_owned(),
        version,
        intent: typed(output.clone())?,
    };
    Ok((prepared, output))
}

/// Decode, identity, schema, mapping and the intent's schema: the message's
/// id, type and version, and the mapping's output.
fn mapped<'m>(
    registry: &Registry,
    connector: &str,
    message: &'m Inbound,
    trusted: &[String],
) -> Result<(String, &'m str, u32, Value), Refusal> {
    let decode = |reason: String| Refusal::new(Stage::Decode, reason);
    let message_id = match message.message_id.as_deref() {
        None | Some("") => return Err(decode("message has no message_id".to_owned())),
        Some(id) if id.len() > MAX_MESSAGE_ID => {
            return Err(decode(format!(
                "message_id is longer than {MAX_MESSAGE_ID} bytes"
            )));
        }
        Some(id) => id.to_owned(),
    };
    let Some(connector) = registry.get(connector) else {
        return Err(decode(format!("unknown connector {connector}")));
    };
    let message_type = match message.routing_key.split_once('.') {
        Some((prefix, message_type)) if prefix == connector.id() => message_type,
        _ => {
            return Err(decode(format!(
                "routing key does not start with {}.",
                connector.id()
            )));
        }
    };
    let Some(versions) = connector.messages.get(message_type) else {
        return Err(decode(format!(
            "connector {} has no message type {}",
            connector.id(),
            clip(message_type, 64)
        )));
    };
    let compiled = versions
        .select(message.amqp_type.as_deref())
        .map_err(|asked| {
            decode(format!(
                "connector {}'s message type {message_type} has no version v{asked} \
                 (AMQP type property); live: {}",
                connector.id(),
                versions.names()
            ))
        })?;
    if !connector.allows_publisher(message.user_id.as_deref(), trusted) {
        let who = message
            .user_id
            .as_deref()
            .map(|u| clip(u, 64))
            .unwrap_or("an unnamed publisher (no user_id)".into());
        return Err(Refusal::new(
            Stage::Identity,
            format!("{who} may not publish as connector {}", connector.id()),
        ));
    }
    let document = decode_body(message).map_err(decode)?;

    let violations = compiled.schema.violations(&document);
    if !violations.is_empty() {
        return Err(Refusal::from_violations(
            Stage::Schema,
            &compiled.schema.name,
            violations,
        ));
    }
    let output = compiled.mapping.run(&document).map_err(|reason| Refusal {
        stage: Stage::Mapping,
        violations: vec![Violation::at_root(reason.clone())],
        reason: format!("{}: {reason}", compiled.mapping.name),
        schema: None,
    })?;
    let violations = registry.intent.violations(&output);
    if !violations.is_empty() {
        return Err(Refusal::from_violations(
            Stage::Intent,
            INTENT_SCHEMA,
            violations,
        ));
    }
    Ok((message_id, message_type, compiled.number, output))
}

/// The version of its type's format a message is read in, when its routing
/// key names a known type and its AMQP `type` a live version (or none).
pub fn version_of<'r>(
    registry: &'r Registry,
    connector: &str,
    message: &Inbound,
) -> Option<(&'r str, &'r crate::connector::Version)> {
    let connector = registry.get(connector)?;
    let (_, message_type) = message.routing_key.split_once('.')?;
    let (message_type, versions) = connector.messages.get_key_value(message_type)?;
    let version = versions.select(message.amqp_type.as_deref()).ok()?;
    Some((message_type.as_str(), version))
}

/// The intent's types, taking the validated output apart (no copy).
fn typed(output: Value) -> Result<Intent, Refusal> {
    Intent::deserialize(output).map_err(|error| {
        // The schema and the types disagree: a bug in the hub, not in the message.
        Refusal::new(
            Stage::Intent,
            format!(
                "intent does not fit the hub's types: {}",
                error.classify_name()
            ),
        )
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        }
    }
}

/// At most `max` characters of a name taken from a message, for a reason,
/// with control characters escaped (`message::printable`).
fn clip(text: &str, max: usize) -> String {
    let end = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
    crate::message::printable(&text[..end]).into_owned()
}

/// Checks the content type and size, parses JSON and bounds its depth.
fn decode_body(message: &Inbound) -> Result<Value, String> {
    if let Some(content_type) = message.content_type.as_deref() {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(format!(
                "content type {} is not application/json",
                clip(essence, 64)
            ));
        }
    }
    if message.body.is_empty() {
        return Err("empty body".to_owned());
    }
    if message.body.len() > MAX_BODY {
        return Err(format!(
            "body of {} bytes exceeds the limit of {MAX_BODY}",
            message.body.len()
        ));
    }
    let depth = nesting_depth(&message.body);
    if depth > MAX_DEPTH {
        return Err(format!("JSON nesting deeper than {MAX_DEPTH}"));
    }
    // serde_json's syntax errors name a line and column, never the content.
    serde_json::from_slice(&message.body).map_err(|error| format!("not JSON: {error}"))
}

/// Deepest bracket nesting, ignoring brackets inside strings. Runs before
/// parsing, so a hostile document costs one linear scan and no recursion.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod clip_tests {
    use super::clip;

    #[test]
    fn names_from_a_message_are_clipped_and_escaped() {
        assert_eq!(clip("ticket", 64), "ticket");
        assert_eq!(clip("tick\0et\u{1b}[31m", 64), "tick\\u{0}et\\u{1b}[31m");
        assert_eq!(clip("票据类型", 2), "票据");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_depth_ignores_strings() {
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": "[[[["}]}"#), 3);
        assert_eq!(nesting_depth(br#""\"[""#), 0);
        assert_eq!(nesting_depth(&[b'['; 40]), 40);
    }

    #[test]
    fn content_type_with_parameters_is_json() {
        let message = Inbound {
            content_type: Some("application/json; charset=utf-8".into()),
            body: b"{}".to_vec(),
            ..Inbound::default()
        };
        assert!(decode_body(&message).is_ok());
        let xml = Inbound {
            content_type: Some("application/xml".into()),
            body: b"<a/>".to_vec(),
            ..Inbound::default()
        };
        assert_eq!(
            decode_body(&xml).unwrap_err(),
            "content type application/xml is not application/json"
        );
    }

    #[test]
    fn empty_oversized_and_deep_bodies_are_refused() {
        let empty = Inbound::default();
        assert_eq!(decode_body(&empty).unwrap_err(), "empty body");
        let big = Inbound {
            body: vec![b' '; MAX_BODY + 1],
            ..Inbound::default()
        };
        assert!(decode_body(&big).unwrap_err().contains("exceeds"));
        let deep = Inbound {
            body: [vec![b'['; 200], vec![b']'; 200]].concat(),
            ..Inbound::default()
        };
        assert!(decode_body(&deep).unwrap_err().contains("nesting"));
    }

    #[test]
    fn refusal_reason_names_the_first_path() {
        let violations = vec![
            Violation {
                instance_path: "/a".into(),
                schema_path: "/properties/a/type".into(),
                message: "value is not of type \"string\"".into(),
            },
            Violation::at_root("x"),
        ];
        let refusal = Refusal::from_violations(Stage::Schema, "s.json", violations);
        assert_eq!(
            refusal.reason,
            "/a: value is not of type \"string\" (and 1 more)"
        );
    }

    #[test]
    fn stages_round_trip() {
        for stage in [
            "decode",
            "identity",
            "schema",
            "mapping",
            "intent",
            "apply",
            "delivery-limit",
        ] {
            assert_eq!(Stage::parse(stage).unwrap().as_str(), stage);
        }
    }
}
