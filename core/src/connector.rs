//! Connectors are data: `connectors/<id>/connector.toml`, a jq mapping per
//! inbound message type, samples, and the schemas they name under
//! `schemas/`. This module loads and compiles all of them, reporting every
//! problem with its file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::mapping::Mapping;
use crate::schema::Schema;

/// Schema every mapping result is validated against.
pub const INTENT_SCHEMA: &str = "hub/intent.v1.json";

/// The closed set of connector kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A citizen hotline's call-centre system (12345, 96156, 96126).
    Hotline,
    /// A district department's system (委办局).
    Department,
    /// The grid platform and its workers' terminals.
    Grid,
}

/// `connector.toml`, as written by the connector's owner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Unique id: routing-key prefix and queue suffix.
    pub id: String,
    /// Which kind of system this connector stands for.
    pub kind: Kind,
    /// Human-readable name.
    pub name: String,
    /// Broker users allowed to publish as this connector; unset accepts any.
    #[serde(default)]
    pub publishers: Option<Vec<String>>,
    /// Events about this connector's own cases that it receives back.
    #[serde(default)]
    pub receives: Vec<String>,
    /// Inbound message types.
    #[serde(default)]
    pub messages: Vec<MessageConfig>,
    /// What personal data this connector is entitled to receive.
    #[serde(default)]
    pub privacy: Privacy,
    /// Datasets this connector shares (`share_records` intents), and with whom.
    #[serde(default)]
    pub shares: Vec<ShareConfig>,
    /// Deliveries of this connector's queue a consumer holds unacknowledged,
    /// when fewer than the hub's `prefetch`: the hub holds up to prefetch
    /// times the message size, so a connector that sends pages of records
    /// (up to 256 KiB each) sets a small one. Unset: the hub's `prefetch`.
    #[serde(default)]
    pub prefetch: Option<std::num::NonZeroU16>,
}

/// How much of a piece of personal data a destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Disclosure {
    /// As recorded.
    Full,
    /// Partly hidden: ID numbers keep their first 6 and last 4 characters,
    /// phone numbers their first 3 and last 4, names their first character.
    Masked,
    /// Left out.
    #[default]
    None,
}

/// A destination's entitlement to personal data (数据保密).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// The reporter of a dispatched case (name, phone, ID number). A
    /// reporter who asked for confidentiality is never disclosed. Default none.
    #[serde(default)]
    pub reporter: Disclosure,
    /// Shared population records (name, ID number, phone). Default none.
    #[serde(default)]
    pub records: Disclosure,
}

/// One dataset a connector shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareConfig {
    /// Dataset name, as the mapping's `share_records` intent gives it.
    pub dataset: String,
    /// Connectors that receive it, each masked by its own `privacy.records`.
    pub to: Vec<String>,
}

/// One inbound message type of a connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// Second part of the routing key `<connector>.<type>`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// Schema file, relative to the schemas folder.
    pub schema: String,
    /// jq program, relative to the connector's folder.
    pub mapping: String,
    /// Personal fields of what it shares, beyond the four always personal
    /// (`name`, `phone`, `id_number`, `birth_date`): a dotted path in the
    /// mapped record and its kind (`address`, `code`, `text`, or one of the
    /// four). Each destination gets them in full, masked or not at all, by
    /// its `privacy.records`.
    #[serde(default)]
    pub personal: BTreeMap<String, crate::privacy::Kind>,
}

/// A loaded connector: its configuration and compiled message types.
pub struct Connector {
    pub config: ConnectorConfig,
    /// The connector's folder.
    pub dir: PathBuf,
    pub messages: BTreeMap<String, MessageType>,
}

/// A compiled inbound message type.
pub struct MessageType {
    pub schema: Schema,
    pub mapping: Mapping,
    /// Its personal fields: the four always personal and those declared.
    pub personal: crate::privacy::Personal,
}

impl Connector {
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Whether `user` may publish as this connector.
    pub fn allows_publisher(&self, user: Option<&str>, trusted: &[String]) -> bool {
        let Some(allowed) = &self.config.publishers else {
            return true;
        };
        match user {
            Some(user) => allowed.iter().chain(trusted).any(|u| u == user),
            None => false,
        }
    }
}

/// Every connector, plus the schemas the hub itself needs.
pub struct Registry {
    pub connectors: BTreeMap<String, Connector>,
    pub intent: Schema,
    pub schemas_dir: PathBuf,
}

impl Registry {
    /// Loads every `connector.toml` under `connectors_dir` and compiles its
    /// schemas and mappings. Returns every problem found, one per line.
    pub fn load(connectors_dir: &Path, schemas_dir: &Path) -> Result<Registry, Vec<String>> {
        let mut problems = Vec::new();
        let intent =
            Schema::load(schemas_dir, INTENT_SCHEMA).map_err(|e| problems.push(e.to_string()));
        let mut connectors = BTreeMap::new();
        let entries = match std::fs::read_dir(connectors_dir) {
            Ok(entries) => entries,
            Err(error) => {
                problems.push(format!(
                    "{}: cannot read: {error}",
                    connectors_dir.display()
                ));
                return Err(problems);
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("connector.toml").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            match load_connector(&dir, schemas_dir) {
                Ok(connector) => {
                    if connectors.contains_key(connector.id()) {
                        problems.push(format!(
                            "{}: duplicate connector id {}",
                            dir.display(),
                            connector.id()
                        ));
                    } else {
                        connectors.insert(connector.id().to_owned(), connector);
                    }
                }
                Err(mut errors) => problems.append(&mut errors),
            }
        }
        for connector in connectors.values() {
            for share in &connector.config.shares {
                for to in share.to.iter().filter(|to| !connectors.contains_key(*to)) {
                    problems.push(format!(
                        "{}: shares {} with unknown connector {to}",
                        connector.dir.join("connector.toml").display(),
                        share.dataset
                    ));
                }
            }
        }
        if connectors.is_empty() && problems.is_empty() {
            problems.push(format!(
                "{}: no connector folders (connector.toml) found",
                connectors_dir.display()
            ));
        }
        match intent {
            Ok(intent) if problems.is_empty() => Ok(Registry {
                connectors,
                intent,
                schemas_dir: schemas_dir.to_owned(),
            }),
            _ => Err(problems),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Connector> {
        self.connectors.get(id)
    }

    /// Whether `id` is a connector of this kind.
    pub fn is(&self, id: &str, kind: Kind) -> bool {
        self.get(id).is_some_and(|c| c.config.kind == kind)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Every event the hub publishes (`schemas/hub/event.v1.json`): what a
/// connector's `receives` may name. A name not here would never arrive.
pub const EVENTS: &[&str] = &[
    "case.opened",
    "case.dispatched",
    "case.merged",
    "case.accepted",
    "case.progress",
    "case.responded",
    "case.verifying",
    "case.verify_requested",
    "case.callback",
    "case.callback_requested",
    "case.callback_overdue",
    "case.closed",
    "case.returned",
    "case.return_approved",
    "case.return_rejected",
    "case.rework",
    "case.reopened",
    "case.deadline_warning",
    "case.reminder",
    "case.supervision",
    "case.sign_for_overdue",
    "case.extension_requested",
    "case.suspension_requested",
    "case.extended",
    "case.suspended",
    "case.resumed",
    "case.request_rejected",
    "case.split",
    "records.shared",
];

fn load_connector(dir: &Path, schemas_dir: &Path) -> Result<Connector, Vec<String>> {
    let file = dir.join("connector.toml");
    let text = std::fs::read_to_string(&file)
        .map_err(|error| vec![format!("{}: cannot read: {error}", file.display())])?;
    let config: ConnectorConfig = toml::from_str(&text)
        .map_err(|error| vec![format!("{}: {}", file.display(), error.message())])?;
    let mut problems = Vec::new();
    if !valid_id(&config.id) {
        problems.push(format!(
            "{}: id {:?} must be lowercase letters, digits and dashes",
            file.display(),
            config.id
        ));
    }
    for event in &config.receives {
        if !EVENTS.contains(&event.as_str()) {
            problems.push(format!(
                "{}: receives {:?}, which the hub never publishes (one of: {})",
                file.display(),
                crate::message::printable(event),
                EVENTS.join(", ")
            ));
        }
    }
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if folder != config.id {
        problems.push(format!(
            "{}: id {} differs from its folder name {folder}",
            file.display(),
            config.id
        ));
    }
    let mut messages = BTreeMap::new();
    for message in &config.messages {
        if !valid_type(&message.message_type) {
            problems.push(format!(
                "{}: message type {:?} must be lowercase letters, digits, dashes and underscores",
                file.display(),
                message.message_type
            ));
            continue;
        }
        if messages.contains_key(&message.message_type) {
            problems.push(format!(
                "{}: message type {} is declared twice",
                file.display(),
                message.message_type
            ));
            continue;
        }
        let schema =
            Schema::load(schemas_dir, &message.schema).map_err(|e| problems.push(e.to_string()));
        let mapping_path = dir.join(&message.mapping);
        let mapping = Mapping::load(&mapping_path, &message.mapping)
            .map_err(|e| problems.push(e.to_string()));
        if let Some(path) = message
            .personal
            .keys()
            .find(|p| p.is_empty() || p.split('.').any(str::is_empty))
        {
            problems.push(format!(
                "{}: message type {}: personal field {path:?} is not a dotted path",
                file.display(),
                message.message_type
            ));
        }
        if let (Ok(schema), Ok(mapping)) = (schema, mapping) {
            let personal = crate::privacy::Personal::declared(
                message
                    .personal
                    .iter()
                    .map(|(path, kind)| (path.as_str(), *kind)),
            );
            messages.insert(
                message.message_type.clone(),
                MessageType {
                    schema,
                    mapping,
                    personal,
                },
            );
        }
    }
    if problems.is_empty() {
        Ok(Connector {
            config,
            dir: dir.to_owned(),
            messages,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_with_dashes() {
        assert!(valid_id("hotline-12345"));
        assert!(!valid_id("Hotline"));
        assert!(!valid_id("a.b"));
        assert!(!valid_id(""));
        assert!(!valid_id("1abc"));
    }

    #[test]
    fn publisher_check() {
        let config: ConnectorConfig = toml::from_str(
            r#"
            id = "x"
            kind = "hotline"
            name = "x"
            publishers = ["x-user"]
            "#,
        )
        .unwrap();
        let connector = Connector {
            config,
            dir: PathBuf::new(),
            messages: BTreeMap::new(),
        };
        let trusted = vec!["hub".to_owned()];
        assert!(connector.allows_publisher(Some("x-user"), &trusted));
        assert!(connector.allows_publisher(Some("hub"), &trusted));
        assert!(!connector.allows_publisher(Some("other"), &trusted));
        assert!(!connector.allows_publisher(None, &trusted));
    }
}
