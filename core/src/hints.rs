//! Plain-language hints for refused messages, drawn from the schema that
//! refused them: what a department reads beside each group of its own
//! refusals (`GET /api/connectors/{id}/refusals`).
//!
//! A violation names the rule that failed (its schema path: a JSON pointer
//! into the schema document, `$ref`s already resolved) and where (its
//! instance path). A hint says in words what that rule, and the field's
//! other rules, expect: the pattern, the allowed values (`enum`, `const`),
//! the limits (lengths, ranges, item counts), the required and the allowed
//! properties, the type and the format, with the schema's own description
//! of the field. Nothing here reads a refused message: a hint is the same
//! for every message refused for the same reason and quotes only the
//! schema, and paths keep only the names the schema declares.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::pipeline::{MAX_BODY, MAX_DEPTH, Stage};
use crate::schema::Violation;

/// What to tell the sender about one cause of refusal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hint {
    /// A few sentences for people.
    pub text: String,
    /// The rule's facts as the schema states them, keyword by keyword
    /// (`type`, `pattern`, `enum`, `maxLength`, `required`, ...), and
    /// `allowed_properties` for a closed object; for a missing property,
    /// its object's facts with `missing` (its name) and `property` (its
    /// own facts). Empty when no schema applies.
    pub expected: Map<String, Value>,
    /// Where a valid message shows what is expected: the path with each
    /// array item as `*`, and for a missing property, that property.
    pub example_path: Option<String>,
}

/// Keywords a violation's schema path can end in, as JSON Schema 2020-12
/// names them.
const KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "minProperties",
    "maxProperties",
    "required",
    "dependentRequired",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "items",
    "prefixItems",
    "propertyNames",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "false",
];

/// The facts of a field's rule that a hint reports, in the order it says them.
const FACTS: &[&str] = &[
    "type",
    "const",
    "enum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
    "examples",
];

/// Values listed in a hint's text before "and N more".
const LISTED: usize = 12;

/// The hint for one cause: a violation at a stage of `connector`, the
/// schema it was found against (the message type's, or the unified
/// intent's at stage `intent`), or none for a refusal without a place in
/// the document (decode, identity, mapping, apply, delivery limit).
pub fn hint(
    stage: Stage,
    connector: &str,
    schema: Option<&Value>,
    violation: Option<&Violation>,
) -> Hint {
    let (schema, violation) = match (schema, violation) {
        (Some(schema), Some(v)) if !v.schema_path.is_empty() => (schema, v),
        _ => {
            return Hint {
                text: stage_text(stage, connector),
                expected: Map::new(),
                example_path: None,
            };
        }
    };
    let mut found = rule(schema, violation);
    if stage == Stage::Intent {
        found.text = format!(
            "The message fits its own schema, but what the connector's mapping makes of it \
             does not fit the hub's unified intent (schemas/hub/intent.v1.json), at a place \
             of the intent, not of the message: check the fields the mapping reads there. {}",
            found.text
        );
    }
    found
}

/// What to do about a refusal that has no place in the document.
fn stage_text(stage: Stage, connector: &str) -> String {
    match stage {
        Stage::Decode => format!(
            "The hub could not read the message. Publish UTF-8 JSON (content type \
             application/json) of at most {} KiB, nested at most {MAX_DEPTH} deep, with a \
             message_id, under the routing key {connector}.<type> of a type your contract \
             lists (GET /api/connectors/{connector}).",
            MAX_BODY / 1024
        ),
        Stage::Identity => format!(
            "Publish as your own broker user: set the message's user_id property to the \
             user the hub gave {connector} (RabbitMQ checks it against your connection)."
        ),
        Stage::Schema => "The message does not fit its schema; the reason says where.".to_owned(),
        Stage::Mapping => "The message fits its schema, but the connector's mapping refused \
             it on a rule across fields that the schema cannot state: the reason names the \
             rule. The contract's invalid samples show such messages."
            .to_owned(),
        Stage::Intent => "What the connector's mapping makes of the message does not fit the \
             hub's unified intent: the reason names the place."
            .to_owned(),
        Stage::Apply => "The message is well formed, but it does not fit the case as the hub \
             holds it: a case number the hub does not know, or a step the case's status does \
             not allow (already signed for, already closed, not yet accepted). Check the case \
             number against the case.dispatched event you received, and the order of your steps."
            .to_owned(),
        Stage::DeliveryLimit => "The hub failed to finish this message too many times and the \
             broker set it aside; this is the hub's fault, not the message's, and the district \
             centre's operators are told."
            .to_owned(),
    }
}

/// The hint for a violation found against `schema`.
fn rule(schema: &Value, violation: &Violation) -> Hint {
    let names = declared_names(schema);
    let path = general_path(&names, &violation.instance_path);
    // The field's own subschema: its description, and its properties when
    // the failing rule sits in a branch (`then`, `else`, `allOf`).
    let field_node = at_instance(schema, &violation.instance_path);
    let keyword_of_path = violation.keyword().to_owned();
    let located =
        locate(schema, &violation.schema_path).or_else(|| field_node.map(|n| (n, keyword_of_path)));
    let Some((node, keyword)) = located else {
        return Hint {
            text: format!("{}: {} (see the schema).", shown(&path), violation.message),
            expected: Map::new(),
            example_path: Some(path),
        };
    };
    let node = deref(schema, node);
    let field = field_name(&path);
    let property_of = |name: &str| {
        node.get("properties")
            .or_else(|| field_node.and_then(|f| f.get("properties")))
            .and_then(|p| p.get(name))
            .map(|p| deref(schema, p))
    };
    let missing = (keyword == "required")
        .then(|| missing_property(node, &violation.message))
        .flatten();
    let mut sentences = Vec::new();
    let mut expected = facts(schema, node);
    let example_path = match &missing {
        Some(name) => Some(format!("{path}/{}", escape(name))),
        None => Some(path.clone()),
    };
    match keyword.as_str() {
        "required" => {
            let list = string_list(node.get("required"));
            match &missing {
                Some(name) => {
                    sentences.push(format!(
                        "{name} is missing from {field}, which must have {list}"
                    ));
                    // What the missing property itself must be.
                    if let Some(own) = property_of(name) {
                        let own_facts = facts(schema, own);
                        if let Some(summary) = summary(&own_facts, &[]) {
                            sentences.push(format!("{name} must be {summary}"));
                        }
                        if let Some(text) = own.get("description").and_then(Value::as_str) {
                            sentences.push(format!("{name}: {text}"));
                        }
                        expected.insert("missing".to_owned(), Value::from(name.as_str()));
                        expected.insert("property".to_owned(), Value::Object(own_facts));
                    }
                }
                None => sentences.push(format!("{field} must have {list}")),
            }
        }
        "additionalProperties" | "unevaluatedProperties" => {
            let allowed = properties_of(node);
            sentences.push(if allowed.is_empty() {
                format!("{field} takes no properties beyond those its schema lists")
            } else {
                format!(
                    "{field} takes only the properties {}: leave out any other \
                     (names are case-sensitive)",
                    listed(allowed.iter().map(|s| s.to_string()).collect())
                )
            });
        }
        "dependentRequired" => {
            if let Some(Value::Object(dependencies)) = node.get("dependentRequired") {
                for (name, needs) in dependencies {
                    sentences.push(format!(
                        "when {field} has {name}, it must also have {}",
                        string_list(Some(needs))
                    ));
                }
            }
        }
        "oneOf" | "anyOf" => {
            let forms = node
                .get(keyword.as_str())
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let how = if keyword == "oneOf" {
                "exactly one"
            } else {
                "at least one"
            };
            let described: Vec<String> =
                forms.iter().map(|form| form_words(schema, form)).collect();
            sentences.push(format!(
                "{field} must match {how} of its {} forms: {}",
                forms.len(),
                described.join("; ")
            ));
        }
        "not" => sentences.push(match node.get("not").map(|n| excluded(schema, n)) {
            Some(Some(words)) => format!("{field} must not {words}"),
            _ => format!("{field} must not take the form its schema excludes here"),
        }),
        "false" => sentences.push(format!("{field} is not allowed here")),
        "uniqueItems" => sentences.push(format!("the items of {field} must all differ")),
        "contains" | "minContains" | "maxContains" => sentences.push(format!(
            "{field} must hold the items its schema asks for (contains)"
        )),
        "propertyNames" => sentences.push(format!(
            "the property names of {field} must fit its propertyNames rule"
        )),
        _ => {
            let skip = said_by(&keyword);
            let lead = lead(&keyword, &expected);
            match (lead, summary(&expected, skip)) {
                (Some(lead), Some(rest)) => {
                    sentences.push(format!("{field} must {lead}"));
                    sentences.push(format!("in full, {field} is {rest}"));
                }
                (Some(lead), None) => sentences.push(format!("{field} must {lead}")),
                (None, Some(rest)) => sentences.push(format!("{field} must be {rest}")),
                (None, None) => sentences.push(format!(
                    "{field} breaks the schema's {keyword} rule: {}",
                    violation.message
                )),
            }
        }
    }
    // A rule of a `then` or `else` holds only under its `if`.
    if let Some(when) = condition(schema, &violation.schema_path)
        && let Some(first) = sentences.first_mut()
    {
        *first = format!("{when}: {first}");
    }
    let description = node
        .get("description")
        .or_else(|| field_node.and_then(|f| f.get("description")))
        .and_then(Value::as_str);
    if missing.is_none()
        && let Some(text) = description
    {
        sentences.push(format!("{field}: {text}"));
    }
    if let Some(allowed) = closed_properties(node) {
        expected.insert("allowed_properties".to_owned(), allowed);
    }
    Hint {
        text: sentences
            .into_iter()
            .map(|s| sentence(&s))
            .collect::<Vec<_>>()
            .join(" "),
        expected,
        example_path,
    }
}

/// "when HJDM is "07"" for a rule under a `then`, "unless ..." under an
/// `else`: the `if` beside it, in words, when it tests properties' values.
fn condition(schema: &Value, schema_path: &str) -> Option<String> {
    let segments: Vec<&str> = schema_path.split('/').skip(1).collect();
    let at = segments
        .iter()
        .rposition(|s| *s == "then" || *s == "else")?;
    let pointer: String = segments[..at].iter().map(|s| format!("/{s}")).collect();
    let test = schema.pointer(&pointer)?.get("if")?;
    let parts: Vec<String> = test
        .get("properties")?
        .as_object()?
        .iter()
        .filter_map(|(name, rule)| {
            if let Some(value) = rule.get("const") {
                Some(format!("{name} is {}", json(value)))
            } else {
                rule.get("enum")
                    .map(|values_| format!("{name} is one of {}", values(values_)))
            }
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let how = if segments[at] == "then" {
        "when"
    } else {
        "unless"
    };
    Some(format!("{how} {}", parts.join(" and ")))
}

/// What a `not` excludes, as "have X" or "have any of X, Y", when it says
/// which properties; `None` for another rule.
fn excluded(root: &Value, not: &Value) -> Option<String> {
    let not = deref(root, not);
    let only_required = |form: &Value| {
        form.as_object()
            .filter(|f| f.len() == 1)
            .and_then(|f| f.get("required"))
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
    };
    if let Some(names) = only_required(not) {
        return Some(format!("have {}", listed(names)));
    }
    let forms = not.get("anyOf")?.as_array()?;
    let mut names = Vec::new();
    for form in forms {
        names.extend(only_required(deref(root, form))?);
    }
    Some(format!("have any of {}", listed(names)))
}

/// The subschema holding the keyword a schema path ends in, and that
/// keyword; `None` when the path does not lead into this document (a
/// `$ref` to another file).
fn locate<'s>(schema: &'s Value, schema_path: &str) -> Option<(&'s Value, String)> {
    let segments: Vec<&str> = schema_path.split('/').skip(1).collect();
    for end in (0..segments.len()).rev() {
        let keyword = unescape(segments[end]);
        if !KEYWORDS.contains(&keyword.as_str()) {
            continue;
        }
        let pointer: String = segments[..end].iter().map(|s| format!("/{s}")).collect();
        if let Some(node) = schema.pointer(&pointer)
            && (node.get(keyword.as_str()).is_some() || keyword == "false")
        {
            return Some((node, keyword));
        }
    }
    None
}

/// The subschema that describes the value at an instance path, following
/// `properties`, `items`, `prefixItems`, `additionalProperties` and local
/// `$ref`s.
fn at_instance<'s>(schema: &'s Value, instance_path: &str) -> Option<&'s Value> {
    let mut node = deref(schema, schema);
    for segment in instance_path.split('/').skip(1) {
        let name = unescape(segment);
        let index = name.parse::<usize>().ok();
        let next = node
            .get("properties")
            .and_then(|p| p.get(name.as_str()))
            .or_else(|| {
                let index = index?;
                node.get("prefixItems")
                    .and_then(|items| items.get(index))
                    .or_else(|| node.get("items").filter(|i| i.is_object()))
            })
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        node = deref(schema, next);
    }
    Some(node)
}

/// A subschema with its local `$ref` followed (a few hops at most).
fn deref<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..8 {
        let Some(target) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        else {
            break;
        };
        match root.pointer(target) {
            Some(next) => node = next,
            None => break,
        }
    }
    node
}

/// The facts of a subschema's rule (with `$ref` followed).
fn facts(root: &Value, node: &Value) -> Map<String, Value> {
    let node = deref(root, node);
    let mut out = Map::new();
    for key in FACTS {
        if let Some(value) = node.get(*key) {
            out.insert((*key).to_owned(), value.clone());
        }
    }
    out
}

/// The properties a closed object (`additionalProperties: false`) takes.
fn closed_properties(node: &Value) -> Option<Value> {
    let closed = node.get("additionalProperties") == Some(&Value::Bool(false))
        || node.get("unevaluatedProperties") == Some(&Value::Bool(false));
    closed.then(|| Value::from(properties_of(node)))
}

fn properties_of(node: &Value) -> Vec<&str> {
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Which facts the lead sentence of a keyword already says.
fn said_by(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "type" => &["type"],
        "enum" => &["enum"],
        "const" => &["const"],
        "pattern" => &["pattern"],
        "format" => &["format"],
        "minLength" | "maxLength" => &["minLength", "maxLength"],
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
            &["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
        }
        "multipleOf" => &["multipleOf"],
        "minItems" | "maxItems" => &["minItems", "maxItems"],
        "minProperties" | "maxProperties" => &["minProperties", "maxProperties"],
        _ => &[],
    }
}

/// "must ..." for the failing keyword.
fn lead(keyword: &str, facts: &Map<String, Value>) -> Option<String> {
    Some(match keyword {
        "type" => format!("be {}", type_words(facts.get("type")?)),
        "enum" => format!("be one of {}", values(facts.get("enum")?)),
        "const" => format!("be exactly {}", json(facts.get("const")?)),
        "pattern" => format!("match the pattern {}", facts.get("pattern")?.as_str()?),
        "format" => format!("be {}", format_words(facts.get("format")?.as_str()?)),
        "minLength" | "maxLength" => format!("be {}", length_words(facts)?),
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
            format!("be {}", range_words(facts)?)
        }
        "multipleOf" => format!("be a multiple of {}", facts.get("multipleOf")?),
        "minItems" | "maxItems" => format!(
            "hold {} items",
            bounds(facts.get("minItems"), facts.get("maxItems"))?
        ),
        "minProperties" | "maxProperties" => format!(
            "have {} properties",
            bounds(facts.get("minProperties"), facts.get("maxProperties"))?
        ),
        _ => return None,
    })
}

/// What a field is, in words, leaving out the facts in `skip`: "a string
/// of at most 27 characters matching ^...$, for example ...".
fn summary(facts: &Map<String, Value>, skip: &[&str]) -> Option<String> {
    let has = |key: &str| !skip.contains(&key) && facts.contains_key(key);
    let mut parts = Vec::new();
    if has("type") {
        parts.push(type_words(&facts["type"]));
    }
    if has("const") {
        parts.push(format!("exactly {}", json(&facts["const"])));
    }
    if has("enum") {
        parts.push(format!("one of {}", values(&facts["enum"])));
    }
    if has("format") {
        parts.push(format_words(facts["format"].as_str().unwrap_or_default()));
    }
    if !skip.contains(&"minLength")
        && let Some(length) = length_words(facts)
    {
        parts.push(length);
    }
    if has("pattern") {
        parts.push(format!(
            "matching the pattern {}",
            facts["pattern"].as_str().unwrap_or_default()
        ));
    }
    if !skip.contains(&"minimum")
        && let Some(range) = range_words(facts)
    {
        parts.push(range);
    }
    if has("multipleOf") {
        parts.push(format!("a multiple of {}", facts["multipleOf"]));
    }
    if !skip.contains(&"minItems")
        && let Some(items) = bounds(facts.get("minItems"), facts.get("maxItems"))
    {
        parts.push(format!("holding {items} items"));
    }
    if has("uniqueItems") && facts["uniqueItems"] == Value::Bool(true) {
        parts.push("with no item twice".to_owned());
    }
    if has("required") {
        parts.push(format!(
            "with the properties {}",
            string_list(facts.get("required"))
        ));
    }
    if has("examples")
        && let Some(examples) = facts["examples"].as_array()
        && !examples.is_empty()
    {
        parts.push(format!(
            "for example {}",
            examples
                .iter()
                .take(3)
                .map(json)
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn type_words(value: &Value) -> String {
    let one = |t: &str| match t {
        "string" => "a string".to_owned(),
        "integer" => "a whole number".to_owned(),
        "number" => "a number".to_owned(),
        "boolean" => "true or false".to_owned(),
        "object" => "an object".to_owned(),
        "array" => "an array".to_owned(),
        "null" => "null".to_owned(),
        other => format!("of type {other}"),
    };
    match value {
        Value::String(t) => one(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        other => format!("of type {other}"),
    }
}

fn format_words(format: &str) -> String {
    match format {
        "date-time" => "a date and time as RFC 3339 writes it, with its offset \
                        (2026-11-28T10:15:00+08:00)"
            .to_owned(),
        "date" => "a date as YYYY-MM-DD (2026-11-28)".to_owned(),
        "time" => "a time as HH:MM:SS with its offset (10:15:00+08:00)".to_owned(),
        "duration" => "an ISO 8601 duration (P3D, PT2H)".to_owned(),
        "email" => "an e-mail address".to_owned(),
        "uri" => "an absolute URI (https://...)".to_owned(),
        "uri-reference" => "a URI or a relative reference".to_owned(),
        "uuid" => "a UUID (8-4-4-4-12 hex digits)".to_owned(),
        "ipv4" => "an IPv4 address".to_owned(),
        "ipv6" => "an IPv6 address".to_owned(),
        "hostname" => "a host name".to_owned(),
        other => format!("a valid {other}"),
    }
}

fn length_words(facts: &Map<String, Value>) -> Option<String> {
    let (min, max) = (facts.get("minLength"), facts.get("maxLength"));
    Some(match (min, max) {
        (Some(min), Some(max)) if min == max => format!("exactly {max} characters long"),
        (Some(min), Some(max)) => format!("{min} to {max} characters long"),
        (Some(min), None) if min == &Value::from(1) => "not empty".to_owned(),
        (Some(min), None) => format!("at least {min} characters long"),
        (None, Some(max)) => format!("at most {max} characters long"),
        (None, None) => return None,
    })
}

fn range_words(facts: &Map<String, Value>) -> Option<String> {
    let low = facts
        .get("minimum")
        .map(|v| (v, true))
        .or_else(|| facts.get("exclusiveMinimum").map(|v| (v, false)));
    let high = facts
        .get("maximum")
        .map(|v| (v, true))
        .or_else(|| facts.get("exclusiveMaximum").map(|v| (v, false)));
    Some(match (low, high) {
        (Some((low, true)), Some((high, true))) => format!("from {low} to {high}"),
        (Some((low, li)), Some((high, hi))) => format!(
            "{} {low} and {} {high}",
            if li { "at least" } else { "greater than" },
            if hi { "at most" } else { "less than" }
        ),
        (Some((low, true)), None) => format!("at least {low}"),
        (Some((low, false)), None) => format!("greater than {low}"),
        (None, Some((high, true))) => format!("at most {high}"),
        (None, Some((high, false))) => format!("less than {high}"),
        (None, None) => return None,
    })
}

fn bounds(min: Option<&Value>, max: Option<&Value>) -> Option<String> {
    Some(match (min, max) {
        (Some(min), Some(max)) if min == max => format!("exactly {max}"),
        (Some(min), Some(max)) => format!("{min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => return None,
    })
}

/// One of a `oneOf`/`anyOf`'s forms in a few words.
fn form_words(root: &Value, form: &Value) -> String {
    let form = deref(root, form);
    if let Some(title) = form.get("title").and_then(Value::as_str) {
        return title.to_owned();
    }
    let facts = facts(root, form);
    if let Some(required) = form.get("required") {
        return format!("with {}", string_list(Some(required)));
    }
    summary(&facts, &["examples"]).unwrap_or_else(|| "another form".to_owned())
}

/// A property the message lacks, as the violation's message names it
/// (`"CaseNo" is a required property`), if the schema requires it.
fn missing_property(node: &Value, message: &str) -> Option<String> {
    let required = node.get("required")?.as_array()?;
    let quoted = message.strip_suffix(" is a required property")?;
    let name: String = serde_json::from_str(quoted).ok()?;
    required
        .iter()
        .any(|r| r.as_str() == Some(name.as_str()))
        .then_some(name)
}

/// Every property name the schema declares, anywhere in it.
fn declared_names(schema: &Value) -> BTreeSet<String> {
    fn walk(node: &Value, names: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    names.extend(properties.keys().cloned());
                }
                if let Some(Value::Array(required)) = map.get("required") {
                    names.extend(required.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                for value in map.values() {
                    walk(value, names);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, names)),
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    walk(schema, &mut names);
    names
}

/// An instance path as it may be shown to anyone: each segment the schema
/// does not declare as a property name (an array index, or a key that came
/// from the message) becomes `*`, so that the same fault at every item of
/// an array is one cause and no value from the message is shown.
pub fn shown_path(schema: Option<&Value>, instance_path: &str) -> String {
    let names = schema.map(declared_names).unwrap_or_default();
    general_path(&names, instance_path)
}

fn general_path(names: &BTreeSet<String>, instance_path: &str) -> String {
    instance_path
        .split('/')
        .skip(1)
        .map(|segment| {
            if names.contains(&unescape(segment)) {
                format!("/{segment}")
            } else {
                "/*".to_owned()
            }
        })
        .collect()
}

/// The value at a path of [`shown_path`]'s form in a document: `*` is an
/// array's first item (or an object's first member).
pub fn value_at<'d>(document: &'d Value, path: &str) -> Option<&'d Value> {
    let mut node = document;
    for segment in path.split('/').skip(1) {
        node = match (segment, node) {
            ("*", Value::Array(items)) => items.first()?,
            ("*", Value::Object(members)) => members.values().next()?,
            (_, Value::Array(items)) => items.get(segment.parse::<usize>().ok()?)?,
            (_, Value::Object(members)) => members.get(&unescape(segment))?,
            _ => return None,
        };
    }
    Some(node)
}

/// How a path reads in a sentence.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "the message".to_owned()
    } else {
        path.to_owned()
    }
}

/// The field a path names: its last declared name ("SignTime"), "each item
/// of SJ" for an array's items, "the message" for the root.
fn field_name(path: &str) -> String {
    let segments: Vec<String> = path.split('/').skip(1).map(unescape).collect();
    match segments.iter().rposition(|s| s != "*") {
        None if segments.is_empty() => "the message".to_owned(),
        None => "each item of the message".to_owned(),
        Some(last) if last + 1 == segments.len() => segments[last].clone(),
        Some(last) => format!("each item of {}", segments[last]),
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Up to [`LISTED`] values, then how many more.
fn values(list: &Value) -> String {
    match list.as_array() {
        Some(items) => listed(items.iter().map(json).collect()),
        None => json(list),
    }
}

fn string_list(list: Option<&Value>) -> String {
    let names: Vec<String> = list
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    listed(names)
}

fn listed(items: Vec<String>) -> String {
    let more = items.len().saturating_sub(LISTED);
    let mut text = items
        .into_iter()
        .take(LISTED)
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// A sentence with its full stop, and its first letter up when it starts
/// with one of this module's own words (a field's name keeps its case).
fn sentence(text: &str) -> String {
    const OWN: &[&str] = &["each ", "the ", "when ", "unless ", "in full"];
    let mut out = if OWN.iter().any(|w| text.starts_with(w)) {
        let mut chars = text.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    } else {
        text.to_owned()
    };
    if !out.ends_with(['.', '?', '!', '。']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::Schema;

    fn schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["CaseNo", "SignTime", "Kind", "SJ"],
            "properties": {
                "CaseNo": {
                    "description": "the hub's case number",
                    "type": "string", "maxLength": 15, "pattern": "^TZ[0-9]{13}$"
                },
                "SignTime": {"type": "string", "format": "date-time"},
                "Kind": {"enum": ["sign", "return"]},
                "Days": {"type": "integer", "minimum": 1, "maximum": 30},
                "SJ": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"$ref": "#/$defs/record"}}
            },
            "$defs": {
                "record": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["XM"],
                    "properties": {"XM": {"type": "string", "minLength": 1, "maxLength": 4}}
                }
            }
        })
    }

    fn valid() -> Value {
        json!({"CaseNo": "TZ2611280000001", "SignTime": "2026-11-28T10:15:00+08:00",
               "Kind": "sign", "SJ": [{"XM": "张三"}]})
    }

    /// The violations the hub's own validator reports for `instance`.
    fn violations(instance: Value) -> Vec<Violation> {
        Schema::compile("t.json", &schema())
            .unwrap()
            .violations(&instance)
    }

    fn only(instance: Value) -> Violation {
        let found = violations(instance);
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }

    fn with(key: &str, value: Value) -> Value {
        let mut message = valid();
        message[key] = value;
        message
    }

    #[test]
    fn a_pattern_is_named_with_the_fields_other_rules_and_description() {
        let v = only(with("CaseNo", json!("13800138000")));
        let hint = hint(Stage::Schema, "dept-x", Some(&schema()), Some(&v));
        assert!(
            hint.text
                .contains("CaseNo must match the pattern ^TZ[0-9]{13}$"),
            "{}",
            hint.text
        );
        assert!(hint.text.contains("at most 15 characters"), "{}", hint.text);
        assert!(hint.text.contains("the hub's case number"), "{}", hint.text);
        assert!(
            !hint.text.contains("13800138000"),
            "no value: {}",
            hint.text
        );
        assert_eq!(hint.expected["pattern"], "^TZ[0-9]{13}$");
        assert_eq!(hint.expected["maxLength"], 15);
        assert_eq!(hint.example_path.as_deref(), Some("/CaseNo"));
    }

    #[test]
    fn allowed_values_formats_and_ranges_are_listed() {
        let v = only(with("Kind", json!("KIND-secret")));
        let text = hint(Stage::Schema, "d", Some(&schema()), Some(&v)).text;
        assert!(
            text.contains(r#"Kind must be one of "sign", "return""#),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");

        let v = only(with("SignTime", json!("2026-11-28 10:15:00")));
        let text = hint(Stage::Schema, "d", Some(&schema()), Some(&v)).text;
        assert!(
            text.contains("SignTime must be a date and time as RFC 3339"),
            "{text}"
        );

        let v = only(with("Days", json!(45)));
        let found = hint(Stage::Schema, "d", Some(&schema()), Some(&v));
        assert!(
            found.text.contains("Days must be from 1 to 30"),
            "{}",
            found.text
        );
        assert!(found.text.contains("a whole number"), "{}", found.text);

        let v = only(with("Days", json!("3")));
        let text = hint(Stage::Schema, "d", Some(&schema()), Some(&v)).text;
        assert!(text.contains("Days must be a whole number"), "{text}");
    }

    #[test]
    fn a_missing_property_is_named_with_its_own_rule() {
        let mut message = valid();
        message.as_object_mut().unwrap().remove("CaseNo");
        let v = only(message);
        let found = hint(Stage::Schema, "d", Some(&schema()), Some(&v));
        assert!(
            found.text.contains(
                "CaseNo is missing from the message, which must have CaseNo, SignTime, Kind, SJ"
            ),
            "{}",
            found.text
        );
        assert!(
            found.text.contains("CaseNo must be a string"),
            "{}",
            found.text
        );
        assert_eq!(found.example_path.as_deref(), Some("/CaseNo"));
        assert_eq!(found.expected["missing"], "CaseNo");
        assert_eq!(found.expected["property"]["pattern"], "^TZ[0-9]{13}$");
        assert_eq!(found.expected["required"][0], "CaseNo");
    }

    #[test]
    fn items_behind_a_ref_are_one_cause_shown_with_a_star() {
        let message = with("SJ", json!([{"XM": "张三"}, {"XM": "欧阳娜娜娜"}]));
        let v = only(message);
        assert_eq!(v.instance_path, "/SJ/1/XM");
        let found = hint(Stage::Schema, "d", Some(&schema()), Some(&v));
        assert!(
            found.text.contains("Each item of SJ") || found.text.contains("XM must be 1 to 4"),
            "{}",
            found.text
        );
        assert!(
            found.text.contains("1 to 4 characters long"),
            "{}",
            found.text
        );
        assert_eq!(found.example_path.as_deref(), Some("/SJ/*/XM"));
        assert_eq!(
            value_at(&valid(), found.example_path.as_deref().unwrap()),
            Some(&json!("张三"))
        );
    }

    #[test]
    fn unknown_keys_are_never_shown() {
        let message = with("13800138000", json!(1));
        let v = only(message);
        let found = hint(Stage::Schema, "d", Some(&schema()), Some(&v));
        assert!(
            found
                .text
                .contains("takes only the properties CaseNo, Days, Kind, SJ, SignTime"),
            "{}",
            found.text
        );
        assert!(!found.text.contains("13800138000"), "{}", found.text);
        assert_eq!(
            found.expected["allowed_properties"],
            json!(["CaseNo", "Days", "Kind", "SJ", "SignTime"])
        );
        // A key from the message in an instance path is shown as `*`.
        assert_eq!(
            shown_path(Some(&schema()), "/SJ/0/13800138000/x"),
            "/SJ/*/*/*"
        );
        assert_eq!(shown_path(Some(&schema()), ""), "");
    }

    #[test]
    fn a_path_outside_the_document_falls_back_to_the_instance() {
        let v = Violation {
            instance_path: "/CaseNo".to_owned(),
            schema_path: "/properties/CaseNo/$ref/pattern".to_owned(),
            message: "value does not match".to_owned(),
        };
        let other = json!({"properties": {"CaseNo": {"type": "string", "pattern": "^A$"}}});
        let found = hint(Stage::Schema, "d", Some(&other), Some(&v));
        assert!(
            found.text.contains("CaseNo must match the pattern ^A$"),
            "{}",
            found.text
        );
    }

    #[test]
    fn refusals_without_a_place_get_the_stages_advice() {
        let decode = hint(Stage::Decode, "dept-x", None, None);
        assert!(decode.text.contains("256 KiB"), "{}", decode.text);
        assert!(decode.text.contains("dept-x.<type>"), "{}", decode.text);
        assert!(decode.example_path.is_none());
        let root = Violation::at_root("no such case");
        let apply = hint(Stage::Apply, "dept-x", Some(&schema()), Some(&root));
        assert!(apply.text.contains("case number"), "{}", apply.text);
        let identity = hint(Stage::Identity, "dept-x", None, None);
        assert!(identity.text.contains("user_id"), "{}", identity.text);
    }

    #[test]
    fn an_intent_violation_says_it_is_the_mappings_output() {
        let v = only(with("Kind", json!(7)));
        let found = hint(Stage::Intent, "d", Some(&schema()), Some(&v));
        assert!(
            found.text.starts_with("The message fits its own schema"),
            "{}",
            found.text
        );
    }

    #[test]
    fn a_rule_under_a_condition_says_when_it_holds() {
        let conditional = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "HJDM": {"enum": ["02", "07"]},
                "LXFS": {"type": "string", "enum": ["1", "2"], "description": "how the reporter was reached"}
            },
            "allOf": [{
                "if": {"properties": {"HJDM": {"const": "07"}}, "required": ["HJDM"]},
                "then": {"required": ["LXFS"]},
                "else": {"not": {"required": ["LXFS"]}}
            }]
        });
        let compiled = Schema::compile("c.json", &conditional).unwrap();
        let found = compiled.violations(&json!({"HJDM": "07"}));
        assert_eq!(found.len(), 1, "{found:?}");
        let text = hint(Stage::Schema, "d", Some(&conditional), Some(&found[0])).text;
        assert!(
            text.starts_with(
                r#"When HJDM is "07": LXFS is missing from the message, which must have LXFS."#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"LXFS must be a string, one of "1", "2""#),
            "{text}"
        );
        assert!(text.contains("how the reporter was reached"), "{text}");

        let found = compiled.violations(&json!({"HJDM": "02", "LXFS": "1"}));
        assert_eq!(found.len(), 1, "{found:?}");
        let text = hint(Stage::Schema, "d", Some(&conditional), Some(&found[0])).text;
        assert!(
            text.starts_with(r#"Unless HJDM is "07": the message must not have LXFS."#),
            "{text}"
        );
    }

    #[test]
    fn values_are_found_at_shown_paths() {
        let doc = json!({"a": [{"b": 1}, {"b": 2}], "c~d": {"e/f": true}});
        assert_eq!(value_at(&doc, "/a/*/b"), Some(&json!(1)));
        assert_eq!(value_at(&doc, "/a/1/b"), Some(&json!(2)));
        assert_eq!(value_at(&doc, "/c~0d/e~1f"), Some(&json!(true)));
        assert_eq!(value_at(&doc, ""), Some(&doc));
        assert_eq!(value_at(&doc, "/x"), None);
    }
}
