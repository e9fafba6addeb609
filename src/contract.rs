//! A connector's contract, as a department's developers read it without
//! the hub's repository (`GET /api/connectors/{id}`, `gridhub connector
//! show`): for each message type its routing key, JSON Schema, personal
//! fields and samples (valid ones with the intent they become, invalid ones
//! with the refusal they get and why); the events it receives back, with
//! their schema; the records it shares and receives; the personal data it
//! is entitled to.

use serde_json::{Value, json};

use crate::check::{Expectation, samples};
use crate::connector::{Connector, Registry};

/// The schema of every event the hub publishes (`gridhub.out`).
const EVENT_SCHEMA: &str = "hub/event.v1.json";

/// A sample's body: as text, or in base64 when it is not UTF-8 (a sample
/// of bytes a decoder must refuse).
fn body_of(path: &std::path::Path) -> Value {
    use base64::Engine;
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => json!({"body": text}),
            Err(error) => json!({
                "body_base64": base64::engine::general_purpose::STANDARD.encode(error.as_bytes()),
            }),
        },
        Err(_) => json!({"body": null}),
    }
}

/// One line a connector: what `GET /api/connectors` lists.
pub fn summary(connector: &Connector) -> Value {
    json!({
        "id": connector.id(),
        "kind": connector.config.kind,
        "name": connector.config.name,
        "publishes": connector.messages.keys()
            .map(|t| format!("{}.{t}", connector.id()))
            .collect::<Vec<_>>(),
        "receives": connector.config.receives,
    })
}

/// The whole contract of a connector.
pub fn contract(connector: &Connector, registry: &Registry) -> Value {
    let id = connector.id();
    let (found, _) = samples(connector);
    let schema_of = |file: &str| {
        std::fs::read_to_string(registry.schemas_dir.join(file))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .unwrap_or(Value::Null)
    };
    let messages: Vec<Value> = connector
        .config
        .messages
        .iter()
        .map(|m| {
            let of_type = found
                .iter()
                .filter(|s| s.message_type == m.message_type && s.version == m.version);
            let (mut valid, mut invalid) = (Vec::new(), Vec::new());
            for sample in of_type {
                let name = sample
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut entry = body_of(&sample.path);
                entry["name"] = json!(name);
                match &sample.expect {
                    Expectation::Intent(intent) => {
                        entry["intent"] = intent.clone();
                        valid.push(entry);
                    }
                    Expectation::Refusal(refusal) => {
                        entry["refused_at"] = json!(refusal.stage.as_str());
                        entry["path"] = json!(refusal.instance_path);
                        entry["why"] = json!(refusal.note);
                        invalid.push(entry);
                    }
                }
            }
            // Declared beyond the four always personal.
            let personal: Vec<Value> = m
                .personal
                .iter()
                .map(|(path, kind)| json!({"path": path, "kind": kind}))
                .collect();
            json!({
                "type": m.message_type,
                "version": format!("v{}", m.version),
                // What chooses it: the AMQP `type` property (none for v1,
                // which a publisher that sends none gets when v1 is live).
                "amqp_type": (m.version != 1).then(|| format!("v{}", m.version)),
                "deprecated": m.deprecated.map(|d| d.to_string()),
                "routing_key": format!("{id}.{}", m.message_type),
                "schema_file": m.schema,
                "schema": schema_of(&m.schema),
                "personal_fields": personal,
                "samples": {"valid": valid, "invalid": invalid},
            })
        })
        .collect();
    let receives_records: Vec<Value> = registry
        .connectors
        .values()
        .flat_map(|from| {
            from.config
                .shares
                .iter()
                .filter(|s| s.to.iter().any(|to| to == id))
                .map(move |s| json!({"dataset": s.dataset, "from": from.id()}))
        })
        .collect();
    json!({
        "id": id,
        "kind": connector.config.kind,
        "name": connector.config.name,
        "publish": {
            "exchange": "gridhub.in",
            // Personal wherever they stand: a reporter's, a record's.
            "always_personal": ["name", "phone", "id_number", "birth_date"],
            "user_id_required": connector.config.publishers.is_some(),
            "message_id_required": true,
            "messages": messages,
        },
        "receive": {
            "queue": format!("gridhub.out.{id}"),
            "routing_keys": connector.config.receives.iter()
                .map(|e| format!("{id}.{e}"))
                .collect::<Vec<_>>(),
            "events": connector.config.receives,
            "event_schema_file": EVENT_SCHEMA,
            "event_schema": schema_of(EVENT_SCHEMA),
            "records": receives_records,
        },
        "shares": connector.config.shares.iter()
            .map(|s| json!({"dataset": s.dataset, "to": s.to}))
            .collect::<Vec<_>>(),
        "personal_data_received": {
            "reporter": connector.config.privacy.reporter,
            "records": connector.config.privacy.records,
        },
    })
}
