//! `gridhub check`: compile every schema and mapping, run every sample
//! against its expectation, report one line per problem naming the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::connector::{Connector, Registry};
use crate::message::{Inbound, content_type_for};
use crate::pipeline::{self, Stage};

/// `NAME.expect.json` beside an invalid sample.
#[derive(Debug, Clone, Deserialize)]
pub struct ExpectedRefusal {
    pub stage: Stage,
    /// A violation must be reported at this JSON pointer.
    pub instance_path: String,
    /// Content type to publish the sample with; default from the extension.
    #[serde(default)]
    pub content_type: Option<String>,
    /// What fault the sample shows, for people.
    #[serde(default)]
    pub note: Option<String>,
}

/// One sample file and what it should give.
#[derive(Debug, Clone)]
pub struct Sample {
    pub connector: String,
    pub message_type: String,
    /// The version of the type's format it is in (folder `<type>.v<N>`;
    /// `<type>` alone is v1).
    pub version: u32,
    pub path: PathBuf,
    pub expect: Expectation,
}

#[derive(Debug, Clone)]
pub enum Expectation {
    /// A valid sample and the intent its mapping must give.
    Intent(Value),
    /// An invalid sample and the refusal it must get.
    Refusal(ExpectedRefusal),
}

impl Sample {
    /// The AMQP `type` property it is sent with: none for v1, which is what
    /// a publisher that has never heard of versions sends.
    pub fn amqp_type(&self) -> Option<String> {
        (self.version != 1).then(|| format!("v{}", self.version))
    }

    /// The message as the connector would publish it.
    pub fn inbound(&self, message_id: &str) -> std::io::Result<Inbound> {
        let content_type = match &self.expect {
            Expectation::Refusal(ExpectedRefusal {
                content_type: Some(ct),
                ..
            }) => ct.clone(),
            _ => content_type_for(&self.path).to_owned(),
        };
        Ok(Inbound {
            routing_key: format!("{}.{}", self.connector, self.message_type),
            message_id: Some(message_id.to_owned()),
            content_type: Some(content_type),
            amqp_type: self.amqp_type(),
            user_id: None,
            body: std::fs::read(&self.path)?,
            replays: 0,
        })
    }
}

/// A samples folder's message type and version: `ticket` is v1 of
/// `ticket`, `ticket.v2` its v2.
pub fn sample_folder(name: &str) -> (&str, Option<u32>) {
    match name.rsplit_once('.') {
        Some((message_type, version)) => {
            (message_type, crate::connector::requested_version(version))
        }
        None => (name, Some(1)),
    }
}

/// Every sample of a connector: `samples/<type>[.v<N>]/{valid,invalid}/NAME.*`
/// with `NAME.expect.json` beside it. Problems finding them are returned too.
pub fn samples(connector: &Connector) -> (Vec<Sample>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let root = connector.dir.join("samples");
    let Ok(types) = std::fs::read_dir(&root) else {
        return (found, problems);
    };
    let mut types: Vec<PathBuf> = types
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    types.sort();
    for type_dir in types {
        let folder = type_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let (message_type, version) = sample_folder(&folder);
        let message_type = message_type.to_owned();
        let Some(versions) = connector.messages.get(&message_type) else {
            problems.push(format!(
                "{}: connector {} has no message type {message_type}",
                type_dir.display(),
                connector.id()
            ));
            continue;
        };
        let Some(version) = version.filter(|n| versions.version(*n).is_some()) else {
            problems.push(format!(
                "{}: connector {}'s message type {message_type} has no such version \
                 (live: {}; folders are named <type> for v1, <type>.v<N> for the others)",
                type_dir.display(),
                connector.id(),
                versions.names()
            ));
            continue;
        };
        for validity in ["valid", "invalid"] {
            let dir = type_dir.join(validity);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for path in files {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if name.ends_with(".expect.json") {
                    let stem = name.trim_end_matches(".expect.json");
                    let has_sample = std::fs::read_dir(&dir)
                        .into_iter()
                        .flatten()
                        .filter_map(Result::ok)
                        .any(|e| {
                            let other = e.file_name().to_string_lossy().into_owned();
                            other != name
                                && Path::new(&other).file_stem().is_some_and(|s| s == stem)
                        });
                    if !has_sample {
                        problems.push(format!("{}: expectation without a sample", path.display()));
                    }
                    continue;
                }
                let stem = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let expect_path = dir.join(format!("{stem}.expect.json"));
                let expect = match read_json(&expect_path) {
                    Ok(value) => value,
                    Err(error) => {
                        problems.push(format!("{}: {error}", expect_path.display()));
                        continue;
                    }
                };
                let expect = if validity == "valid" {
                    Expectation::Intent(expect)
                } else {
                    match ExpectedRefusal::deserialize(&expect) {
                        Ok(refusal) => Expectation::Refusal(refusal),
                        Err(error) => {
                            problems.push(format!("{}: {error}", expect_path.display()));
                            continue;
                        }
                    }
                };
                found.push(Sample {
                    connector: connector.id().to_owned(),
                    message_type: message_type.clone(),
                    version,
                    path,
                    expect,
                });
            }
        }
    }
    (found, problems)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|error| format!("cannot read: {error}"))?;
    serde_json::from_slice(&text).map_err(|error| format!("not JSON: {error}"))
}

/// Runs one sample through the pure stages; `None` when it behaves as expected.
pub fn check_sample(registry: &Registry, sample: &Sample) -> Option<String> {
    let message = match sample.inbound("sample") {
        Ok(message) => message,
        Err(error) => return Some(format!("{}: cannot read: {error}", sample.path.display())),
    };
    let mut message = message;
    // Samples are checked as their own connector's publisher would send
    // them; those of a connector only the hub publishes as (`publishers =
    // []`, the Open311 endpoint's), as the hub.
    let publishers = registry
        .get(&sample.connector)
        .and_then(|c| c.config.publishers.as_ref());
    let trusted: Vec<String> = match publishers {
        Some(publishers) if publishers.is_empty() => vec![crate::hub::LOCAL_HUB_USER.to_owned()],
        _ => Vec::new(),
    };
    message.user_id = publishers
        .and_then(|p| p.first().cloned())
        .or_else(|| trusted.first().cloned());
    let result = pipeline::prepare_json(registry, &sample.connector, &message, &trusted)
        .map(|(_, intent)| intent);
    let file = sample.path.display();
    match (&sample.expect, result) {
        (Expectation::Intent(expected), Ok(intent)) => {
            if &intent == expected {
                None
            } else {
                Some(format!(
                    "{file}: intent differs from expectation: {}",
                    diff(expected, &intent)
                ))
            }
        }
        (Expectation::Intent(_), Err(refusal)) => Some(format!(
            "{file}: expected an intent, refused at {}: {}",
            refusal.stage, refusal.reason
        )),
        (Expectation::Refusal(expected), Ok(_)) if expected.stage == Stage::Apply => None,
        (Expectation::Refusal(expected), Ok(_)) => Some(format!(
            "{file}: expected a refusal at {} {}, but it was accepted",
            expected.stage, expected.instance_path
        )),
        (Expectation::Refusal(expected), Err(refusal)) => {
            if refusal.stage != expected.stage {
                Some(format!(
                    "{file}: expected a refusal at {}, refused at {}: {}",
                    expected.stage, refusal.stage, refusal.reason
                ))
            } else if !refusal
                .violations
                .iter()
                .any(|v| v.instance_path == expected.instance_path)
            {
                let paths: Vec<&str> = refusal
                    .violations
                    .iter()
                    .map(|v| v.instance_path.as_str())
                    .collect();
                Some(format!(
                    "{file}: expected a violation at {:?}, got {:?}",
                    expected.instance_path, paths
                ))
            } else {
                None
            }
        }
    }
}

/// Names the first top-level key that differs, without showing values.
fn diff(expected: &Value, actual: &Value) -> String {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            let differing: Vec<&str> = keys
                .into_iter()
                .filter(|k| e.get(*k) != a.get(*k))
                .map(String::as_str)
                .collect();
            format!("keys {}", differing.join(", "))
        }
        _ => "not an object".to_owned(),
    }
}

/// Outcome of `gridhub check`.
pub struct Report {
    pub samples: usize,
    pub problems: Vec<String>,
    /// What does not stop the hub but should be looked at: a destination
    /// entitled to masked data that would receive, in full, a field that
    /// gives the masked data back.
    pub warnings: Vec<String>,
}

/// Loads everything the settings name and runs every sample: the
/// connectors, the routing rules against them, the assessment's rules, and
/// Open311's service definitions (when the file is there) against the
/// dispatch catalogue.
pub fn run_all(settings: &crate::settings::Settings) -> Report {
    let (connectors_dir, schemas_dir) = (&settings.connectors_dir, &settings.schemas_dir());
    let routing_file = &settings.routing_file();
    let mut report = run(connectors_dir, schemas_dir);
    if let Err(mut problems) = crate::assessment::Config::load(&settings.assessment_file()) {
        report.problems.append(&mut problems);
    }
    match crate::routing::Routing::load(routing_file) {
        Ok(routing) => {
            let open311 = settings.open311_services_file();
            if open311.exists()
                && let Err(error) = crate::http::open311::Services::load(&open311, &routing)
            {
                report.problems.push(format!("{error:#}"));
            }
            for year in routing.calendar.iter().flat_map(|c| c.unarranged_years()) {
                report.warnings.push(format!(
                    "{}: warning: calendar year {year} lists no make-up working day (调休): \
                     enter the State Council's arrangement for it when it is published",
                    routing_file.display()
                ));
            }
            if let Ok(registry) = Registry::load(connectors_dir, schemas_dir) {
                report.problems.extend(
                    crate::routing::check_against(&routing, &registry)
                        .into_iter()
                        .map(|p| format!("{}: {p}", routing_file.display())),
                );
            }
        }
        Err(mut problems) => report.problems.append(&mut problems),
    }
    report
}

/// Loads every connector and runs every sample.
pub fn run(connectors_dir: &Path, schemas_dir: &Path) -> Report {
    let registry = match Registry::load(connectors_dir, schemas_dir) {
        Ok(registry) => registry,
        Err(problems) => {
            return Report {
                samples: 0,
                problems,
                warnings: Vec::new(),
            };
        }
    };
    let mut report = Report {
        samples: 0,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    for connector in registry.connectors.values() {
        let (samples, mut problems) = samples(connector);
        report.problems.append(&mut problems);
        for (message_type, versions) in &connector.messages {
            for version in &versions.versions {
                let has_valid = samples.iter().any(|s| {
                    &s.message_type == message_type
                        && s.version == version.number
                        && matches!(s.expect, Expectation::Intent(_))
                });
                if !has_valid {
                    let folder = match version.number {
                        1 => message_type.clone(),
                        n => format!("{message_type}.v{n}"),
                    };
                    report.problems.push(format!(
                        "{}: message type {message_type} {} has no valid sample",
                        connector
                            .dir
                            .join("samples")
                            .join(folder)
                            .join("valid")
                            .display(),
                        version.name()
                    ));
                }
            }
        }
        report.samples += samples.len();
        report.problems.extend(
            samples
                .iter()
                .filter_map(|sample| check_sample(&registry, sample)),
        );
        report
            .warnings
            .extend(unmasking_fields(&registry, connector, &samples));
    }
    report
}

/// Fields of shared records that reach a destination entitled to masked
/// data in full although they look like an ID number or a mobile phone
/// number: undeclared personal data, which would give back what is masked.
/// Found in the connector's valid samples' records.
fn unmasking_fields(registry: &Registry, connector: &Connector, samples: &[Sample]) -> Vec<String> {
    use crate::connector::Disclosure;
    let mut warnings = std::collections::BTreeSet::new();
    for sample in samples {
        let Expectation::Intent(intent) = &sample.expect else {
            continue;
        };
        let (Some("share_records"), Some(dataset), Some(records)) = (
            intent["kind"].as_str(),
            intent["dataset"].as_str(),
            intent["records"].as_array(),
        ) else {
            continue;
        };
        let Some(message) = connector.messages.get(&sample.message_type) else {
            continue;
        };
        let declared: std::collections::BTreeSet<String> = message
            .personal
            .fields()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        let masked_to: Vec<&str> = connector
            .config
            .shares
            .iter()
            .filter(|s| s.dataset == dataset)
            .flat_map(|s| s.to.iter())
            .filter(|to| {
                registry
                    .get(to)
                    .is_some_and(|c| c.config.privacy.records == Disclosure::Masked)
            })
            .map(String::as_str)
            .collect();
        if masked_to.is_empty() {
            continue;
        }
        for record in records {
            let mut leaves = Vec::new();
            text_leaves(record, String::new(), &mut leaves);
            for (path, text) in leaves {
                let looks = if looks_like_id_number(text) {
                    "an ID number"
                } else if looks_like_mobile(text) {
                    "a mobile phone number"
                } else {
                    continue;
                };
                if !declared.contains(&path) {
                    warnings.insert(format!(
                        "{}: warning: {} {}: records field {path} looks like {looks} and \
                         reaches {} (entitled to masked data) in full; declare it under \
                         [messages.personal]",
                        connector.dir.join("connector.toml").display(),
                        connector.id(),
                        sample.message_type,
                        masked_to.join(", ")
                    ));
                }
            }
        }
    }
    warnings.into_iter().collect()
}

/// Every text value of a JSON value, with its dotted path.
fn text_leaves<'v>(value: &'v Value, path: String, out: &mut Vec<(String, &'v str)>) {
    match value {
        Value::String(text) => out.push((path, text)),
        Value::Object(object) => {
            for (key, value) in object {
                let path = match path.is_empty() {
                    true => key.clone(),
                    false => format!("{path}.{key}"),
                };
                text_leaves(value, path, out);
            }
        }
        _ => {}
    }
}

/// 17 digits and a digit or X: a resident ID number's shape.
fn looks_like_id_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 18
        && bytes[..17].iter().all(u8::is_ascii_digit)
        && (bytes[17].is_ascii_digit() || bytes[17] == b'X' || bytes[17] == b'x')
}

/// `1[3-9]` and nine more digits: a mainland mobile number's shape.
fn looks_like_mobile(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 11
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1])
        && bytes.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::sample_folder;

    #[test]
    fn a_samples_folder_names_its_type_and_version() {
        assert_eq!(sample_folder("feedback"), ("feedback", Some(1)));
        assert_eq!(sample_folder("feedback.v2"), ("feedback", Some(2)));
        assert_eq!(sample_folder("feedback.v1"), ("feedback", Some(1)));
        // Not a version: no version, which check reports.
        assert_eq!(sample_folder("feedback.old"), ("feedback", None));
        assert_eq!(sample_folder("feedback.v02"), ("feedback", None));
    }
}
