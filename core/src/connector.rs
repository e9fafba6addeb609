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
    /// The format's version, from 1 (the default). One type may be declared
    /// once per version: each version is live, with its own schema, mapping
    /// and samples, and a publisher chooses one with the AMQP `type`
    /// property `v<N>` (see [`requested_version`]).
    #[serde(default = "first_version")]
    pub version: u32,
    /// The date this version is announced to go (`deprecated = 2027-06-30`):
    /// until the entry is removed it is still accepted, but every message in
    /// it is counted and its connector's developers see it flagged.
    #[serde(default)]
    pub deprecated: Option<toml::value::Datetime>,
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

fn first_version() -> u32 {
    1
}

/// A compiled inbound message type: every live version of its format.
pub struct MessageType {
    /// Ascending by number, never empty.
    pub versions: Vec<Version>,
    /// Its personal fields: the four always personal and those any of its
    /// versions declares. A field personal in one version is personal in
    /// all, so that no version shows a record more than another.
    pub personal: crate::privacy::Personal,
}

/// One version of a message type's format.
pub struct Version {
    pub number: u32,
    pub schema: Schema,
    pub mapping: Mapping,
    /// The date it is announced to go, when deprecated.
    pub deprecated: Option<chrono::NaiveDate>,
}

impl Version {
    /// `v1`, `v2`: the value of the AMQP `type` property that chooses it.
    pub fn name(&self) -> String {
        format!("v{}", self.number)
    }
}

impl MessageType {
    /// What a message without a version is read as: the oldest live
    /// version, the one publishers sent before any other existed.
    pub fn oldest(&self) -> &Version {
        &self.versions[0]
    }

    pub fn version(&self, number: u32) -> Option<&Version> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// The version a message with this AMQP `type` property is read as;
    /// `Err` names a version asked for that is not live.
    pub fn select(&self, amqp_type: Option<&str>) -> Result<&Version, u32> {
        match amqp_type.and_then(requested_version) {
            None => Ok(self.oldest()),
            Some(number) => self.version(number).ok_or(number),
        }
    }

    /// `v1, v2`: the live versions, for messages.
    pub fn names(&self) -> String {
        let names: Vec<String> = self.versions.iter().map(Version::name).collect();
        names.join(", ")
    }
}

/// The version an AMQP `type` property asks for: `v<N>` (`v2`), N from 1
/// to 9999 without leading zeros. Any other value asks for none: `type` is
/// a free field of AMQP that clients may already fill with their own
/// names, and reading those as errors would itself force a flag day.
pub fn requested_version(amqp_type: &str) -> Option<u32> {
    let digits = amqp_type.strip_prefix('v')?;
    if digits.is_empty()
        || digits.len() > 4
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
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
    let mut messages: BTreeMap<String, MessageType> = BTreeMap::new();
    for message in &config.messages {
        let (message_type, number) = (&message.message_type, message.version);
        if !valid_type(message_type) {
            problems.push(format!(
                "{}: message type {message_type:?} must be lowercase letters, digits, dashes and underscores",
                file.display(),
            ));
            continue;
        }
        if !(1..=9999).contains(&number) {
            problems.push(format!(
                "{}: message type {message_type}: version {number} must be from 1 to 9999",
                file.display(),
            ));
            continue;
        }
        if messages
            .get(message_type)
            .is_some_and(|t| t.version(number).is_some())
        {
            problems.push(format!(
                "{}: message type {message_type} v{number} is declared twice",
                file.display(),
            ));
            continue;
        }
        let deprecated = match &message.deprecated {
            None => None,
            Some(date) => match deprecation_date(date) {
                Some(date) => Some(date),
                None => {
                    problems.push(format!(
                        "{}: message type {message_type} v{number}: deprecated = {date} \
                         must be a date, such as 2027-06-30",
                        file.display(),
                    ));
                    continue;
                }
            },
        };
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
                "{}: message type {message_type}: personal field {path:?} is not a dotted path",
                file.display(),
            ));
        }
        if let (Ok(schema), Ok(mapping)) = (schema, mapping) {
            let versions = &mut messages
                .entry(message_type.clone())
                .or_insert_with(|| MessageType {
                    versions: Vec::new(),
                    personal: crate::privacy::Personal::declared(
                        config
                            .messages
                            .iter()
                            .filter(|m| &m.message_type == message_type)
                            .flat_map(|m| m.personal.iter())
                            .map(|(path, kind)| (path.as_str(), *kind)),
                    ),
                })
                .versions;
            versions.push(Version {
                number,
                schema,
                mapping,
                deprecated,
            });
            versions.sort_by_key(|v| v.number);
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

/// A `deprecated` value: a date alone.
fn deprecation_date(value: &toml::value::Datetime) -> Option<chrono::NaiveDate> {
    match (value.date, value.time, value.offset) {
        (Some(date), None, None) => {
            chrono::NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())
        }
        _ => None,
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

    #[test]
    fn a_version_is_asked_for_as_v_and_a_number() {
        assert_eq!(requested_version("v1"), Some(1));
        assert_eq!(requested_version("v2"), Some(2));
        assert_eq!(requested_version("v9999"), Some(9999));
        // Anything else asks for none: the oldest live version reads it.
        for other in [
            "", "v", "v0", "v02", "V2", "2", "v2.0", "v-1", "v10000", "ticket", "v２",
        ] {
            assert_eq!(requested_version(other), None, "{other:?}");
        }
    }

    #[test]
    fn versions_of_a_type_load_side_by_side() {
        let root = std::env::temp_dir().join(format!("gridhub-versions-{}", std::process::id()));
        let (dir, schemas) = (root.join("connectors/x"), root.join("schemas"));
        std::fs::create_dir_all(dir.join("mappings")).unwrap();
        std::fs::create_dir_all(schemas.join("x")).unwrap();
        let schema =
            r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}"#;
        std::fs::write(schemas.join("x/t.v1.json"), schema).unwrap();
        std::fs::write(schemas.join("x/t.v2.json"), schema).unwrap();
        std::fs::write(dir.join("mappings/t.jq"), ".").unwrap();
        let write = |more: &str| {
            let text = format!(
                "id = \"x\"\nkind = \"department\"\nname = \"x\"\n\
                 [[messages]]\ntype = \"t\"\nversion = 2\nschema = \"x/t.v2.json\"\nmapping = \"mappings/t.jq\"\n\
                 [[messages]]\ntype = \"t\"\nschema = \"x/t.v1.json\"\nmapping = \"mappings/t.jq\"\n{more}"
            );
            std::fs::write(dir.join("connector.toml"), text).unwrap();
            load_connector(&dir, &schemas)
        };
        let connector = write("deprecated = 2027-06-30\n").unwrap();
        let versions = &connector.messages["t"];
        assert_eq!(versions.names(), "v1, v2");
        assert_eq!(versions.oldest().number, 1);
        assert_eq!(
            versions.oldest().deprecated,
            chrono::NaiveDate::from_ymd_opt(2027, 6, 30)
        );
        assert_eq!(versions.select(None).unwrap().number, 1);
        assert_eq!(versions.select(Some("v2")).unwrap().number, 2);
        assert_eq!(versions.select(Some("feedback")).unwrap().number, 1);
        assert_eq!(versions.select(Some("v3")).err(), Some(3));
        let twice = write(
            "[[messages]]\ntype = \"t\"\nschema = \"x/t.v1.json\"\nmapping = \"mappings/t.jq\"\n",
        );
        assert!(twice.is_err_and(|p| p[0].contains("t v1 is declared twice")));
        let not_a_date = write("deprecated = 2027-06-30T00:00:00Z\n");
        assert!(not_a_date.is_err_and(|p| p[0].contains("must be a date")));
        std::fs::remove_dir_all(&root).ok();
    }
}
