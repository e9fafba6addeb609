//! Mappings: jq programs, run by jaq, that turn one inbound message into one
//! unified intent.
//!
//! Programs are compiled once at start. A mapping's lookup tables (top-level
//! definitions without arguments whose body is literal data, such as
//! `def natures: {"咨询": "consultation", ...};`) are built once then too:
//! jq would build such an object anew at every call, one key at a time, and
//! that was most of the hub's CPU per message. They run without access to the clock,
//! the environment or other inputs (`now`, `env`, `input`, `halt`, ... are
//! left out), so a mapping is a pure function of the message: the same
//! message always gives the same intent, which is what makes samples usable
//! as tests and redelivery harmless.

use std::path::Path;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Def, Term};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, ValT, Vars, data::JustLut};
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
    /// The lookup tables, the program's global variables.
    tables: Vec<Literal>,
    /// Key of this mapping's tables in each thread's cache.
    id: u64,
}

/// Mappings compiled so far: each gets its own key in the table cache.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// jaq's values are reference-counted for one thread, so each thread
    /// builds a mapping's tables once, on its first message.
    static TABLES: std::cell::RefCell<std::collections::HashMap<u64, Vec<Val>>> =
        std::cell::RefCell::default();
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
        let defs: Vec<Def<&str>> = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .filter(|def| !FORBIDDEN.contains(&def.name))
            .collect();
        let funs: Vec<_> = jaq_core::funs::<Data>()
            .chain(jaq_std::funs::<Data>())
            .chain(jaq_json::funs::<Data>())
            .filter(|(name, _, _)| !FORBIDDEN.contains(name))
            .collect();
        let builtin = |n: &str| defs.iter().any(|d| d.name == n) || funs.iter().any(|f| f.0 == n);
        let arena = Arena::default();
        // Each table's own definition is renamed out of the way; its name
        // becomes a definition of the prelude that reads a global variable.
        let tables = tables(code, &builtin);
        let mut renamed = code.to_owned();
        for table in tables.iter().rev() {
            renamed.replace_range(
                table.span.clone(),
                &format!("__gridhub_table_{}", table.name),
            );
        }
        let code: &str = arena.alloc(renamed);
        let mut globals: Vec<&str> = Vec::with_capacity(tables.len());
        let mut prelude = defs;
        for table in &tables {
            let var: &str = arena.alloc(format!("$__gridhub_table_{}", table.name));
            let name: &str = arena.alloc(table.name.clone());
            globals.push(var);
            prelude.push(Def {
                name,
                args: Vec::new(),
                body: Term::Var(var),
            });
        }
        let program = File { code, path: () };
        let modules = Loader::new(prelude)
            .load(&arena, program)
            .map_err(|errors| {
                anyhow::anyhow!("cannot parse jq program: {}", describe_load(&errors))
            })?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .with_global_vars(globals)
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
            tables: tables.into_iter().map(|t| t.value).collect(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Runs the program on one message. It must give exactly one value.
    pub fn run(&self, input: &Value) -> Result<Value, String> {
        let input = Val::deserialize(input).map_err(|_| "input cannot be read by jq".to_owned())?;
        let tables = self.bound_tables();
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new(tables));
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

/// A lookup table of a program: a top-level definition without arguments
/// whose body is literal data.
struct Table {
    name: String,
    /// Where the definition's name is in the program text.
    span: std::ops::Range<usize>,
    value: Literal,
}

/// Literal data of a jq program, kept apart from jaq's values (which may
/// not cross threads).
#[derive(Debug, Clone)]
enum Literal {
    Null,
    Bool(bool),
    /// A number as written: jaq reads it as an integer or a number.
    Num(String),
    Str(String),
    Arr(Vec<Literal>),
    Obj(Vec<(String, Literal)>),
}

impl Literal {
    /// The value, built as jaq builds the literal.
    fn value(&self) -> Val {
        match self {
            Literal::Null => Val::Null,
            Literal::Bool(b) => Val::from(*b),
            Literal::Num(n) => n
                .parse::<isize>()
                .map(Val::from)
                .or_else(|_| Val::from_num(n))
                .unwrap_or(Val::Null),
            Literal::Str(s) => Val::from(s.clone()),
            Literal::Arr(items) => items.iter().map(Literal::value).collect(),
            Literal::Obj(pairs) => {
                Val::from_map(pairs.iter().map(|(k, v)| (Val::from(k.clone()), v.value())))
                    .unwrap_or(Val::Null)
            }
        }
    }
}

/// The program's lookup tables. A name defined twice at the top level, or
/// that is also a built-in filter, is left alone; so is a program jaq's
/// parser does not take as a plain term (the loader reports why).
fn tables(code: &str, builtin: &dyn Fn(&str) -> bool) -> Vec<Table> {
    let Some(Term::Def(defs, _)) = jaq_core::load::parse(code, |p| p.term()) else {
        return Vec::new();
    };
    let defined_once =
        |name: &str| defs.iter().filter(|d| d.name == name).count() == 1 && !builtin(name);
    defs.iter()
        .filter(|def| def.args.is_empty() && defined_once(def.name))
        .filter_map(|def| {
            Some(Table {
                name: def.name.to_owned(),
                span: jaq_core::load::span(code, def.name),
                value: literal(&def.body)?,
            })
        })
        .collect()
}

/// The value of a term made of literal data only (strings without
/// interpolation, numbers, null, booleans, arrays, objects with literal
/// keys), built as jaq builds it; `None` for anything else.
fn literal(term: &Term<&str>) -> Option<Literal> {
    Some(match term {
        Term::Num(n) => {
            // Only what jaq itself reads as a number.
            if n.parse::<isize>().is_err() && Val::from_num(n).is_err() {
                return None;
            }
            Literal::Num((*n).to_owned())
        }
        Term::Str(None, parts) => {
            let mut text = String::new();
            for part in parts {
                match part {
                    StrPart::Str(s) => text.push_str(s),
                    StrPart::Char(c) => text.push(*c),
                    StrPart::Term(_) => return None,
                }
            }
            Literal::Str(text)
        }
        Term::Call(name, args) if args.is_empty() => match *name {
            "null" => Literal::Null,
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            _ => return None,
        },
        Term::Neg(inner) => match &**inner {
            Term::Num(n) if !n.starts_with('-') => {
                literal(inner).map(|_| Literal::Num(format!("-{n}")))?
            }
            _ => return None,
        },
        Term::Arr(None) => Literal::Arr(Vec::new()),
        Term::Arr(Some(items)) => {
            let mut values = Vec::new();
            comma_items(items, &mut values)?;
            Literal::Arr(values)
        }
        Term::Obj(entries) => {
            let mut pairs = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let Literal::Str(key) = literal(key)? else {
                    return None;
                };
                pairs.push((key, literal(value.as_ref()?)?));
            }
            Literal::Obj(pairs)
        }
        _ => return None,
    })
}

fn comma_items(term: &Term<&str>, values: &mut Vec<Literal>) -> Option<()> {
    match term {
        Term::BinOp(left, BinaryOp::Comma, right) => {
            comma_items(left, values)?;
            comma_items(right, values)
        }
        other => {
            values.push(literal(other)?);
            Some(())
        }
    }
}

impl Mapping {
    /// This thread's values of the tables (cheap clones of shared values).
    fn bound_tables(&self) -> Vec<Val> {
        if self.tables.is_empty() {
            return Vec::new();
        }
        TABLES.with_borrow_mut(|cache| {
            cache
                .entry(self.id)
                .or_insert_with(|| self.tables.iter().map(Literal::value).collect())
                .clone()
        })
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
        let ctx = Ctx::<Data>::new(&mapping.filter.lut, Vars::new(mapping.bound_tables()));
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
    fn lookup_tables_are_bound_once_and_mean_the_same() {
        let code = r#"
            def natures: {"咨询": "consultation", "a\tb": [1, -2.5, null, true, {x: "y"}], "e": [], "o": {}};
            def compact: with_entries(select(.value != null));
            def pick($k): natures[$k];
            {n: natures[.k], p: pick("a\tb"), c: ({a: null, b: 1} | compact), all: natures}
        "#;
        let mapping = Mapping::compile("t.jq", code).unwrap();
        assert_eq!(mapping.tables.len(), 1, "only the literal table is bound");
        let input = json!({"k": "咨询"});
        let expected = json!({
            "n": "consultation",
            "p": [1, -2.5, null, true, {"x": "y"}],
            "c": {"b": 1},
            "all": {"咨询": "consultation", "a\tb": [1, -2.5, null, true, {"x": "y"}], "e": [], "o": {}}
        });
        assert_eq!(mapping.run(&input).unwrap(), expected);
        // The same program with the table not literal (so not bound) agrees.
        let unbound =
            Mapping::compile("t.jq", &code.replace("\"e\": []", "\"e\": ([] | .)")).unwrap();
        assert!(unbound.tables.is_empty());
        assert_eq!(unbound.run(&input).unwrap(), expected);
    }

    #[test]
    fn a_table_named_like_a_builtin_is_left_alone() {
        let mapping = Mapping::compile("t.jq", r#"def length: {"a": 1}; length"#).unwrap();
        assert!(mapping.tables.is_empty());
        assert_eq!(mapping.run(&json!({})).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn numbers_and_unicode_round_trip() {
        let mapping = Mapping::compile("t.jq", ".").unwrap();
        let value = json!({"lon": 116.65, "n": 3, "t": "梨园镇", "b": true, "z": null});
        assert_eq!(mapping.run(&value).unwrap(), value);
    }
}
