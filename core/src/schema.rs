//! JSON Schema compilation and validation.
//!
//! Every schema is compiled once, when the connectors are loaded. Validation
//! reports every violation with its instance path and schema path; messages
//! are masked so that no value from the message (personal data) ends up in a
//! reason, a log line or a dead-letter header.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// Most violations kept for one message; the rest are counted.
pub const MAX_VIOLATIONS: usize = 20;

/// One compiled schema and the file it came from.
pub struct Schema {
    /// Path relative to the schemas folder, as written in connector.toml.
    pub name: String,
    validator: jsonschema::Validator,
}

/// One way an instance fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Violation {
    /// JSON pointer into the instance, `""` for the root.
    pub instance_path: String,
    /// JSON pointer into the schema, naming the keyword that failed.
    pub schema_path: String,
    /// What is wrong, without the offending value.
    pub message: String,
}

impl Violation {
    /// A violation that is not tied to a place in the document.
    pub fn at_root(message: impl Into<String>) -> Violation {
        Violation {
            instance_path: String::new(),
            schema_path: String::new(),
            message: message.into(),
        }
    }

    /// The keyword that failed: the last segment of the schema path.
    pub fn keyword(&self) -> &str {
        self.schema_path.rsplit('/').next().unwrap_or("")
    }
}

impl Schema {
    /// Reads and compiles `schemas_dir/name`.
    pub fn load(schemas_dir: &Path, name: &str) -> anyhow::Result<Schema> {
        let path: PathBuf = schemas_dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| anyhow::anyhow!("{}: cannot read: {error}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: not JSON: {error}", path.display()))?;
        Self::compile(name, &value).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }

    /// Compiles a schema held in memory.
    pub fn compile(name: &str, value: &Value) -> anyhow::Result<Schema> {
        if value.get("$schema").and_then(Value::as_str)
            != Some("https://json-schema.org/draft/2020-12/schema")
        {
            anyhow::bail!("$schema must be https://json-schema.org/draft/2020-12/schema");
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(value)
            .map_err(|error| anyhow::anyhow!("invalid schema: {error}"))?;
        Ok(Schema {
            name: name.to_owned(),
            validator,
        })
    }

    /// Every violation (up to [`MAX_VIOLATIONS`]); empty when valid.
    pub fn violations(&self, instance: &Value) -> Vec<Violation> {
        if self.validator.is_valid(instance) {
            return Vec::new();
        }
        self.validator
            .iter_errors(instance)
            .take(MAX_VIOLATIONS)
            .map(|error| Violation {
                instance_path: error.instance_path().as_str().to_owned(),
                schema_path: error.schema_path().as_str().to_owned(),
                message: masked_message(&error),
            })
            .collect()
    }
}

/// The error's message with no value from the message in it. jsonschema
/// masks values, but not the key names it reports for unexpected
/// properties, and a key can be personal data (a phone number used as a
/// key): those are counted, not quoted.
fn masked_message(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    let unexpected = |n: usize, keyword: &str| {
        format!(
            "{n} propert{} not allowed here ({keyword})",
            if n == 1 { "y" } else { "ies" }
        )
    };
    match error.kind() {
        Kind::AdditionalProperties { unexpected: keys } => {
            unexpected(keys.len(), "additionalProperties")
        }
        Kind::UnevaluatedProperties { unexpected: keys } => {
            unexpected(keys.len(), "unevaluatedProperties")
        }
        Kind::PropertyNames { .. } => "a property name does not fit propertyNames".to_owned(),
        _ => error.masked().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::compile(
            "test.json",
            &json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["phone"],
                "properties": {
                    "phone": {"type": "string", "pattern": "^1[0-9]{10}$"},
                    "at": {"type": "string", "format": "date-time"}
                }
            }),
        )
        .unwrap()
    }

    #[test]
    fn valid_instance_has_no_violations() {
        assert!(
            schema()
                .violations(&json!({"phone": "13800000000"}))
                .is_empty()
        );
    }

    #[test]
    fn violations_name_paths_and_hide_values() {
        let violations =
            schema().violations(&json!({"phone": "secret-123", "at": "2026-02-30T00:00:00Z"}));
        assert_eq!(violations.len(), 2);
        let paths: Vec<_> = violations
            .iter()
            .map(|v| v.instance_path.as_str())
            .collect();
        assert!(paths.contains(&"/phone"));
        assert!(paths.contains(&"/at"));
        for violation in &violations {
            assert!(
                !violation.message.contains("secret-123"),
                "{}",
                violation.message
            );
        }
        let phone = violations
            .iter()
            .find(|v| v.instance_path == "/phone")
            .unwrap();
        assert_eq!(phone.keyword(), "pattern");
    }

    #[test]
    fn unexpected_keys_are_counted_not_quoted() {
        let closed = Schema::compile(
            "closed.json",
            &json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": false,
                "propertyNames": {"maxLength": 12}
            }),
        )
        .unwrap();
        let violations = closed.violations(&json!({"13800138000": 1, "110101199001011234": 2}));
        assert!(!violations.is_empty());
        for violation in &violations {
            assert!(
                !violation.message.contains("13800138000")
                    && !violation.message.contains("110101199001011234"),
                "{}",
                violation.message
            );
        }
        assert!(
            violations
                .iter()
                .any(|v| v.message == "2 properties not allowed here (additionalProperties)"),
            "{violations:?}"
        );
    }

    #[test]
    fn missing_required_is_reported_at_the_object() {
        let violations = schema().violations(&json!({}));
        assert_eq!(violations[0].instance_path, "");
        assert_eq!(violations[0].keyword(), "required");
    }

    #[test]
    fn other_drafts_are_refused() {
        let error = Schema::compile("x.json", &json!({"type": "object"}))
            .err()
            .unwrap();
        assert!(error.to_string().contains("$schema"));
    }
}
