//! Mappings: jq programs, run by jaq, that turn one inbound message into one
//! unified intent.
//!
//! Programs are compiled once at start. They run without access to the clock,
//! the environment or other inputs (`now`, `env`, `input`, `halt`, ... are
//! left out), so a mapping is a pure function of the message: the same
//! message always gives the same intent, which is what makes samples usable
//! as tests and redelivery harmless.

use std::path::Path;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Vars, data::JustLut};
use jaq_json::Val;
use serde::Deserialize;
use serde_json::Value;

type Data = JustLut<Val>;

/// Native filters a mapping may not use: they read the clock, the
/// environment or other inputs, write to stderr, or stop the process.
/// Both native filters and the standard definitions built on them go.
const FORBIDDEN: &[&str] = &[
    "now",
    "env",
    "input",
    "inputs",
    "debug",
    "debug_empty",
    "stderr",
    "stderr_empty",
    "halt",
    "halt_error",
    "input_filename",
    "localtime",
    "strflocaltime",
];

/// Longest reason text kept from a mapping's own `error(...)`.
const MAX_REASON: usize = 200;

/// A compiled mapping.
pub struct Mapping {
    /// File it was compiled from, for reasons and reports.
    pub name: String,
    filter: jaq_core::Filter<Data>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("name", &self.name).finish()
    }
}

impl Mapping {
    /// Reads and compiles a jq program file.
    pub fn load(path: &Path, name: &str) -> anyhow::Result<Mapping> {
        let code = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("{}: cannot read: {error}", path.display()))?;
        Self::compile(name, &code).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }

    /// Compiles a jq program held in memory.
    pub fn compile(name: &str, code: &str) -> anyhow::Result<Mapping> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .filter(|def| !FORBIDDEN.contains(&def.name));
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs::<Data>())
            .chain(jaq_json::funs::<Data>())
            .filter(|(name, _, _)| !FORBIDDEN.contains(name));
        let arena = Arena::default();
        let program = File { code, path: () };
        let modules = Loader::new(defs).load(&arena, program).map_err(|errors| {
            anyhow::anyhow!("cannot parse jq program: {}", describe_load(&errors))
        })?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                let undefined: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, errs)| {
                        errs.iter()
                            .map(|(name, kind)| format!("{} {name}", kind.as_str()))
                    })
                    .collect();
                anyhow::anyhow!(
                    "cannot compile jq program: undefined {}",
                    undefined.join(", ")
                )
            })?;
        Ok(Mapping {
            name: name.to_owned(),
            filter,
        })
    }

    /// Runs the program on one message. It must give exactly one value.
    pub fn run(&self, input: &Value) -> Result<Value, String> {
        let input = Val::deserialize(input).map_err(|_| "input cannot be read by jq".to_owned())?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input));
        let first = match outputs.next() {
            None => return Err("mapping gave no output".to_owned()),
            Some(Ok(value)) => value,
            Some(Err(exn)) => return Err(describe_exn(exn)),
        };
        match outputs.next() {
            None => {}
            Some(Ok(_)) => return Err("mapping gave more than one output".to_owned()),
            Some(Err(exn)) => return Err(describe_exn(exn)),
        }
        to_json(&first)
    }
}

fn describe_load<P>(errors: &jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error;
    let mut parts = Vec::new();
    for (_, error) in errors {
        match error {
            Error::Io(errs) => parts.extend(errs.iter().map(|(path, e)| format!("{path}: {e}"))),
            Error::Lex(errs) => parts.extend(errs.iter().map(|(expect, at)| {
                format!("expected {} near `{}`", expect.as_str(), snippet(at))
            })),
            Error::Parse(errs) => parts.extend(errs.iter().map(|(expect, at)| {
                format!("expected {} near `{}`", expect.as_str(), snippet(at))
            })),
        }
    }
    parts.join("; ")
}

fn snippet(at: &str) -> String {
    at.chars().take(20).collect()
}

/// Built-in jaq errors embed the offending value; those values come from
/// the message and may be personal data, so only the kind of error is kept.
const BUILTIN_PREFIXES: &[&str] = &[
    "cannot use ",
    "cannot calculate ",
    "cannot index ",
    "invalid path expression",
    "cannot parse ",
    "cannot iterate",
];

fn describe_exn(exn: jaq_core::Exn<'_, Val>) -> String {
    let Ok(error) = exn.get_err() else {
        return "mapping stopped the program".to_owned();
    };
    let value = error.into_val();
    let text = match &value {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.to_string(),
    };
    if let Some(prefix) = BUILTIN_PREFIXES.iter().find(|p| text.starts_with(**p)) {
        return format!("jq runtime error: {}(value hidden)", prefix);
    }
    let mut reason: String = text.chars().take(MAX_REASON).collect();
    if reason.len() < text.len() {
        reason.push('…');
    }
    reason
}

/// Converts jq's value to JSON directly: going through text cost a
/// serialisation and a parse per message.
fn to_json(value: &Val) -> Result<Value, String> {
    direct(value).map_or_else(
        || {
            // Big integers, exotic decimals, non-string keys: the text path.
            serde_json::from_str(&value.to_string())
                .map_err(|_| "mapping output is not JSON".to_owned())
        },
        Ok,
    )
}

fn direct(value: &Val) -> Option<Value> {
    use jaq_json::Num;
    Some(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(Num::Int(n)) => Value::from(*n as i64),
        Val::Num(Num::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Val::Num(Num::Dec(text)) => Value::Number(text.parse().ok()?),
        Val::Num(_) => return None,
        Val::TStr(bytes) | Val::BStr(bytes) => {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => Value::Array(items.iter().map(direct).collect::<Option<_>>()?),
        Val::Obj(map) => {
            let mut object = serde_json::Map::with_capacity(map.len());
            for (key, value) in map.iter() {
                let Val::TStr(key) = key else { return None };
                object.insert(String::from_utf8_lossy(key).into_owned(), direct(value)?);
            }
            Value::Object(object)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_one_value() {
        let mapping =
            Mapping::compile("t.jq", r#"{kind: "open_case", t: (.a | ascii_upcase)}"#).unwrap();
        assert_eq!(
            mapping.run(&json!({"a": "x"})).unwrap(),
            json!({"kind": "open_case", "t": "X"})
        );
    }

    #[test]
    fn user_error_is_the_reason() {
        let mapping = Mapping::compile("t.jq", r#"error("unknown category code")"#).unwrap();
        assert_eq!(
            mapping.run(&json!({})).unwrap_err(),
            "unknown category code"
        );
    }

    #[test]
    fn builtin_error_hides_the_value() {
        let mapping = Mapping::compile("t.jq", ".phone | tonumber").unwrap();
        let reason = mapping
            .run(&json!({"phone": "call-me-13800000000"}))
            .unwrap_err();
        assert!(!reason.contains("13800000000"), "{reason}");
        let mapping = Mapping::compile("t.jq", ".phone + 1").unwrap();
        let reason = mapping.run(&json!({"phone": "13800000000"})).unwrap_err();
        assert!(!reason.contains("13800000000"), "{reason}");
    }

    #[test]
    fn needs_exactly_one_output() {
        let none = Mapping::compile("t.jq", "empty").unwrap();
        assert_eq!(none.run(&json!(1)).unwrap_err(), "mapping gave no output");
        let two = Mapping::compile("t.jq", "1, 2").unwrap();
        assert_eq!(
            two.run(&json!(1)).unwrap_err(),
            "mapping gave more than one output"
        );
    }

    #[test]
    fn clock_environment_and_halt_are_not_available() {
        for code in ["now", "env", "halt", "input", "$ENV"] {
            assert!(Mapping::compile("t.jq", code).is_err(), "{code} compiled");
        }
    }

    #[test]
    fn syntax_error_is_reported() {
        let error = Mapping::compile("t.jq", "{a: }").unwrap_err().to_string();
        assert!(error.contains("cannot parse"), "{error}");
    }

    #[test]
    fn direct_conversion_matches_the_text_path() {
        let mapping = Mapping::compile(
            "t.jq",
            r#"{a: [1, 2.5, -0, 1e3, "x", null, true], b: {c: .n}, d: (.n * 3), e: 12345678901234567890}"#,
        )
        .unwrap();
        let input = json!({"n": 39.9069});
        let ctx_value = Val::deserialize(&input).unwrap();
        let ctx = Ctx::<Data>::new(&mapping.filter.lut, Vars::new([]));
        let output = mapping
            .filter
            .id
            .run((ctx, ctx_value))
            .next()
            .unwrap()
            .unwrap();
        let text: Value = serde_json::from_str(&output.to_string()).unwrap();
        assert_eq!(to_json(&output).unwrap(), text);
    }

    #[test]
    fn numbers_and_unicode_round_trip() {
        let mapping = Mapping::compile("t.jq", ".").unwrap();
        let value = json!({"lon": 116.65, "n": 3, "t": "梨园镇", "b": true, "z": null});
        assert_eq!(mapping.run(&value).unwrap(), value);
    }
}
