//! What a bench run publishes: a mix of connector message types, given as
//! data (`connector.type=weight,...`), with message templates taken from the
//! connectors' own samples.
//!
//! Every generated message has a unique message_id. A valid message also has
//! a unique source reference (the ticket number the mapping turns into
//! `source_ref`): the template's reference is found in its body and its
//! trailing digits are replaced by a sequence; when a template's sequence
//! space runs out, the digits before it (a date, or a number) are advanced.
//! Every variant is run through the pipeline before use, so a generated
//! message is valid against the connector's schema and mapping.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{Duration, NaiveDate};
use serde_json::Value;

use crate::check::Expectation;
use crate::connector::Registry;
use crate::message::{Inbound, content_type_for};
use crate::pipeline;

/// The default mix: every hotline format, grid reports and department
/// population records. Types whose connector does not exist are left out.
pub const DEFAULT_MIX: &[(&str, &str, u32)] = &[
    ("hotline-12345", "ticket", 40),
    ("hotline-96156", "ticket", 10),
    ("hotline-96126", "ticket", 10),
    ("grid-platform", "report", 20),
    ("dept-police", "floating-population", 10),
    ("dept-health", "resident-population", 10),
];

/// Digits of a source reference replaced by the sequence (at most).
const SEQUENCE_DIGITS: usize = 6;

/// One entry of `--mix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixEntry {
    pub connector: String,
    pub message_type: String,
    pub weight: u32,
}

impl std::fmt::Display for MixEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}={}",
            self.connector, self.message_type, self.weight
        )
    }
}

/// Parses `connector.type=weight,...` (weight defaults to 1).
pub fn parse_mix(text: &str) -> anyhow::Result<Vec<MixEntry>> {
    let mut entries = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, weight) = match part.split_once('=') {
            Some((key, weight)) => (
                key,
                weight
                    .trim()
                    .parse::<u32>()
                    .with_context(|| format!("mix entry {part}: weight is not a number"))?,
            ),
            None => (part, 1),
        };
        let Some((connector, message_type)) = key.trim().split_once('.') else {
            anyhow::bail!("mix entry {part}: expected connector.type=weight");
        };
        entries.push(MixEntry {
            connector: connector.to_owned(),
            message_type: message_type.to_owned(),
            weight,
        });
    }
    if entries.iter().all(|e| e.weight == 0) {
        anyhow::bail!("the mix has no entry with a weight above 0");
    }
    Ok(entries)
}

/// The default mix, keeping what exists; the notes say what was left out.
pub fn default_mix(registry: &Registry) -> (Vec<MixEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    for (connector, message_type, weight) in DEFAULT_MIX {
        let exists = registry
            .get(connector)
            .is_some_and(|c| c.messages.contains_key(*message_type));
        if exists {
            entries.push(MixEntry {
                connector: (*connector).to_owned(),
                message_type: (*message_type).to_owned(),
                weight: *weight,
            });
        } else {
            notes.push(format!(
                "{connector}.{message_type} left out of the mix: no such connector message type"
            ));
        }
    }
    (entries, notes)
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    /// Position in the run (unique across phases).
    pub seq: u64,
    pub routing_key: String,
    pub message_id: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub valid: bool,
    pub opens_case: bool,
    /// Records a valid `share_records` message carries (0 for other kinds).
    pub records: u64,
}

/// A valid template: its body text split around every occurrence of a
/// quoted source reference. A single message has one reference, in every
/// slot; a page of records has one per row.
struct Valid {
    parts: Vec<String>,
    /// The row whose reference goes after `parts[i]`, for every part but the last.
    slots: Vec<usize>,
    /// References (rows) a message of this template takes.
    rows: u64,
    /// Records a message of this template shares (0 unless `share_records`).
    records: u64,
}

/// How a type's references are made: `head` + epoch digits + `middle` +
/// sequence digits, from the first template's reference. One pattern per
/// type keeps references unique across its templates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    head: String,
    epoch: String,
    middle: String,
    digits: usize,
    /// Sequence numbers per epoch: 10^digits.
    space: u64,
    /// Epoch digits, per epoch, checked as planned.
    variants: Vec<String>,
}

struct Invalid {
    content_type: String,
    body: Vec<u8>,
}

/// One connector message type of the mix, ready to generate.
struct TypeGen {
    connector: String,
    routing_key: String,
    weight: u32,
    opens_case: bool,
    /// References a message takes: 1, or the rows of a page.
    rows: u64,
    pattern: Pattern,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
    /// References taken so far (one per message, or one per row of a page).
    count: u64,
}

/// What one message of the plan is.
#[derive(Debug, Clone, Copy)]
struct Pick {
    kind: u16,
    invalid: bool,
}

/// Deterministic generator: the same seed gives the same messages.
pub struct Generator {
    types: Vec<TypeGen>,
    total_weight: u64,
    /// Parts per 10,000 of messages that are invalid.
    invalid_per_10k: u64,
    seed: u64,
    run: String,
    pub notes: Vec<String>,
}

/// Summary of what was planned, by connector message type.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Planned {
    pub valid: u64,
    pub invalid: u64,
    pub opening: u64,
    /// Records the valid `share_records` messages carry.
    pub records: u64,
}

impl Generator {
    /// Loads the templates of every mix entry from its connector's samples.
    pub fn new(
        registry: &Registry,
        mix: &[MixEntry],
        invalid_fraction: f64,
        run: &str,
        seed: u64,
        page_rows: usize,
    ) -> anyhow::Result<Generator> {
        let mut notes = Vec::new();
        let mut types = Vec::new();
        for entry in mix.iter().filter(|e| e.weight > 0) {
            let Some(connector) = registry.get(&entry.connector) else {
                anyhow::bail!("mix entry {entry}: no connector {}", entry.connector);
            };
            if !connector.messages.contains_key(&entry.message_type) {
                anyhow::bail!(
                    "mix entry {entry}: connector {} has no message type {}",
                    entry.connector,
                    entry.message_type
                );
            }
            // The samples `gridhub check` runs: each with its expectation.
            let (samples, _) = crate::check::samples(connector);
            let of_type = |valid: bool| {
                samples
                    .iter()
                    .filter(|s| s.message_type == entry.message_type)
                    .filter(move |s| matches!(s.expect, Expectation::Intent(_)) == valid)
                    .map(|s| s.path.clone())
            };
            let routing_key = format!("{}.{}", entry.connector, entry.message_type);
            let mut valid = Vec::new();
            let mut opens_case = None;
            let mut pattern: Option<Pattern> = None;
            for file in of_type(true) {
                let loaded = load_valid(registry, &entry.connector, &routing_key, &file, page_rows)
                    .and_then(|(template, opens, own)| {
                        if opens_case.is_some_and(|o| o != opens) {
                            return Err(
                                "its intent kind differs from the type's other samples".to_owned()
                            );
                        }
                        let shared = pattern.clone().unwrap_or(own);
                        check_valid(
                            registry,
                            &entry.connector,
                            &routing_key,
                            &template.body(|row| shared.reference(&shared.epoch, row as u64)),
                            &shared.reference(&shared.epoch, 0),
                        )
                        .map_err(|reason| {
                            format!("the type's references do not fit it ({reason})")
                        })?;
                        Ok((template, opens, shared))
                    });
                match loaded {
                    Ok((template, opens, shared)) => {
                        opens_case = Some(opens);
                        pattern = Some(shared);
                        valid.push(template);
                    }
                    Err(reason) => notes.push(format!("{}: left out: {reason}", file.display())),
                }
            }
            let Some(pattern) = pattern.filter(|_| !valid.is_empty()) else {
                anyhow::bail!(
                    "mix entry {entry}: no usable valid sample under {}",
                    connector
                        .dir
                        .join("samples")
                        .join(&entry.message_type)
                        .join("valid")
                        .display()
                );
            };
            let mut invalid = Vec::new();
            for file in of_type(false) {
                invalid.push(load_invalid(&file)?);
            }
            if invalid.is_empty() && invalid_fraction > 0.0 {
                notes.push(format!(
                    "{routing_key}: no invalid samples; its share of invalid messages is valid"
                ));
            }
            types.push(TypeGen {
                connector: entry.connector.clone(),
                routing_key,
                weight: entry.weight,
                opens_case: opens_case.unwrap_or(false),
                rows: valid[0].rows,
                pattern,
                valid,
                invalid,
                count: 0,
            });
        }
        if types.is_empty() {
            anyhow::bail!("the mix is empty");
        }
        Ok(Generator {
            total_weight: types.iter().map(|t| u64::from(t.weight)).sum(),
            types,
            invalid_per_10k: (invalid_fraction.clamp(0.0, 1.0) * 10_000.0).round() as u64,
            seed,
            run: run.to_owned(),
            notes,
        })
    }

    fn pick(&self, seq: u64) -> Pick {
        let r = splitmix(self.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut w = (r >> 16) % self.total_weight;
        let mut kind = 0;
        for (index, t) in self.types.iter().enumerate() {
            if w < u64::from(t.weight) {
                kind = index;
                break;
            }
            w -= u64::from(t.weight);
        }
        let invalid =
            (r & 0xFFFF) % 10_000 < self.invalid_per_10k && !self.types[kind].invalid.is_empty();
        Pick {
            kind: kind as u16,
            invalid,
        }
    }

    /// Prepares the variants that messages `from..to` need, checking each
    /// through the pipeline; fails when a type runs out of unique references.
    pub fn plan(
        &mut self,
        registry: &Registry,
        from: u64,
        to: u64,
    ) -> anyhow::Result<BTreeMap<String, Planned>> {
        let mut valid_counts = vec![0u64; self.types.len()];
        let mut planned: BTreeMap<String, Planned> = BTreeMap::new();
        for seq in from..to {
            let pick = self.pick(seq);
            let t = &self.types[pick.kind as usize];
            let entry = planned.entry(t.routing_key.clone()).or_default();
            if pick.invalid {
                entry.invalid += 1;
            } else {
                // The template message() will take for this one.
                let nth = t.count / t.rows + valid_counts[pick.kind as usize];
                entry.records += t.valid[(nth % t.valid.len() as u64) as usize].records;
                valid_counts[pick.kind as usize] += 1;
                entry.valid += 1;
                if t.opens_case {
                    entry.opening += 1;
                }
            }
        }
        for (index, extra) in valid_counts.into_iter().enumerate() {
            let t = &mut self.types[index];
            let last = t.count + extra * t.rows;
            let epochs = last.div_ceil(t.pattern.space) as usize;
            while t.pattern.variants.len() < epochs.max(1) {
                let epoch = t.pattern.variants.len();
                let variant = t.pattern.variant(epoch).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: unique source references exhausted after {} messages; lower --messages or the type's weight",
                        t.routing_key,
                        epoch as u64 * t.pattern.space
                    )
                })?;
                let space = t.pattern.space;
                for template in &t.valid {
                    // The first and the last references of the epoch.
                    for start in [0, space.saturating_sub(t.rows)] {
                        let at = |row: usize| (start + row as u64) % space;
                        let reference = t.pattern.reference(&variant, at(0));
                        check_valid(
                            registry,
                            &t.connector,
                            &t.routing_key,
                            &template.body(|row| t.pattern.reference(&variant, at(row))),
                            &reference,
                        )
                        .map_err(|reason| {
                            anyhow::anyhow!(
                                "{}: generated reference {} is not valid: {reason}",
                                t.routing_key,
                                mask_reference(&reference)
                            )
                        })?;
                    }
                }
                t.pattern.variants.push(variant);
            }
        }
        Ok(planned)
    }

    /// The message at `seq`, under `phase` (part of the message_id). The
    /// variants must have been planned with [`Generator::plan`].
    pub fn message(&mut self, phase: &str, seq: u64) -> Message {
        let pick = self.pick(seq);
        let r = splitmix(seq ^ self.seed.rotate_left(17));
        let t = &mut self.types[pick.kind as usize];
        let message_id = format!("{}-{phase}-{seq}", self.run);
        if pick.invalid {
            let invalid = &t.invalid[(r % t.invalid.len() as u64) as usize];
            return Message {
                seq,
                routing_key: t.routing_key.clone(),
                message_id,
                content_type: invalid.content_type.clone(),
                body: invalid.body.clone(),
                valid: false,
                opens_case: false,
                records: 0,
            };
        }
        let n = t.count;
        t.count += t.rows;
        let template = &t.valid[((n / t.rows) % t.valid.len() as u64) as usize];
        let pattern = &t.pattern;
        let body = template.body(|row| {
            let at = n + row as u64;
            pattern.reference(
                &pattern.variants[(at / pattern.space) as usize],
                at % pattern.space,
            )
        });
        Message {
            seq,
            routing_key: t.routing_key.clone(),
            message_id,
            content_type: "application/json".to_owned(),
            body: body.into_bytes(),
            valid: true,
            opens_case: t.opens_case,
            records: template.records,
        }
    }

    /// Resets the per-type sequences, so the same messages come again.
    pub fn rewind(&mut self) {
        for t in &mut self.types {
            t.count = 0;
        }
    }

    /// Position of every type's sequence, to continue after a rewind.
    pub fn positions(&self) -> Vec<u64> {
        self.types.iter().map(|t| t.count).collect()
    }

    pub fn set_positions(&mut self, positions: &[u64]) {
        for (t, p) in self.types.iter_mut().zip(positions) {
            t.count = *p;
        }
    }

    /// The connectors the mix publishes as.
    pub fn connectors(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.types.iter().map(|t| t.connector.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The mix as `connector.type=weight`, for reports.
    pub fn describe(&self) -> String {
        self.types
            .iter()
            .map(|t| format!("{}={}", t.routing_key, t.weight))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Pattern {
    fn variant(&self, epoch: usize) -> Option<String> {
        if epoch == 0 {
            return Some(self.epoch.clone());
        }
        advance(&self.epoch, epoch as u64)
    }

    fn reference(&self, epoch: &str, seq: u64) -> String {
        format!(
            "{}{epoch}{}{seq:0width$}",
            self.head,
            self.middle,
            width = self.digits
        )
    }
}

impl Valid {
    /// The message with `reference(row)` in every slot of that row.
    fn body(&self, reference: impl Fn(usize) -> String) -> String {
        let mut body =
            String::with_capacity(self.parts.iter().map(String::len).sum::<usize>() + 32);
        for (index, part) in self.parts.iter().enumerate() {
            body.push_str(part);
            if let Some(&row) = self.slots.get(index) {
                let quoted = serde_json::to_string(&reference(row)).expect("a string serialises");
                body.push_str(&quoted);
            }
        }
        body
    }
}

/// Advances the digits before the sequence: a date (YYYYMMDD or YYMMDD) by
/// days, anything else as a number of the same width.
fn advance(digits: &str, by: u64) -> Option<String> {
    let days = Duration::days(i64::try_from(by).ok()?);
    match digits.len() {
        8 => {
            if let Ok(date) = NaiveDate::parse_from_str(digits, "%Y%m%d") {
                let next = date.checked_add_signed(days)?;
                return Some(next.format("%Y%m%d").to_string());
            }
        }
        6 => {
            if let Ok(date) = NaiveDate::parse_from_str(&format!("20{digits}"), "%Y%m%d") {
                let next = date.checked_add_signed(days)?;
                let text = next.format("%Y%m%d").to_string();
                return text.strip_prefix("20").map(str::to_owned);
            }
        }
        0 => return None,
        _ => {}
    }
    let value: u64 = digits.parse().ok()?;
    let next = value.checked_add(by)?;
    let text = format!("{next:0width$}", width = digits.len());
    (text.len() == digits.len()).then_some(text)
}

/// Splits a reference into head, epoch digits, middle and sequence digits.
fn split_reference(reference: &str) -> Option<(String, String, String, usize)> {
    let bytes = reference.as_bytes();
    let run = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if run == 0 {
        return None;
    }
    let digits = run.min(SEQUENCE_DIGITS);
    let sequence_start = reference.len() - digits;
    if run > digits {
        // The digits before the sequence in the same run are the epoch part.
        let epoch_start = reference.len() - run;
        return Some((
            reference[..epoch_start].to_owned(),
            reference[epoch_start..sequence_start].to_owned(),
            String::new(),
            digits,
        ));
    }
    // The epoch part is the previous run of digits, if any.
    let before = &reference[..sequence_start];
    let end = before
        .bytes()
        .rposition(|b| b.is_ascii_digit())
        .map(|p| p + 1);
    match end {
        Some(end) => {
            let start = before[..end]
                .bytes()
                .rposition(|b| !b.is_ascii_digit())
                .map(|p| p + 1)
                .unwrap_or(0);
            Some((
                before[..start].to_owned(),
                before[start..end].to_owned(),
                before[end..].to_owned(),
                digits,
            ))
        }
        None => Some((before.to_owned(), String::new(), String::new(), digits)),
    }
}

fn inbound(routing_key: &str, content_type: &str, body: Vec<u8>) -> Inbound {
    Inbound {
        routing_key: routing_key.to_owned(),
        message_id: Some("bench-template".to_owned()),
        content_type: Some(content_type.to_owned()),
        amqp_type: None,
        user_id: None,
        body,
        replays: 0,
    }
}

/// Runs the pipeline on a body; Ok with the intent when valid.
fn run_pipeline(
    registry: &Registry,
    connector: &str,
    routing_key: &str,
    body: &[u8],
) -> Result<Value, String> {
    let trusted = Vec::new();
    let mut message = inbound(routing_key, "application/json", body.to_vec());
    // Publisher identity is not what the bench tests: publish as a listed publisher.
    if let Some(publishers) = registry
        .get(connector)
        .and_then(|c| c.config.publishers.as_ref())
        && let Some(first) = publishers.first()
    {
        message.user_id = Some(first.clone());
    }
    pipeline::prepare_json(registry, connector, &message, &trusted)
        .map(|(_, intent)| intent)
        .map_err(|refusal| format!("{}: {}", refusal.stage, refusal.reason))
}

fn check_valid(
    registry: &Registry,
    connector: &str,
    routing_key: &str,
    body: &str,
    reference: &str,
) -> Result<(), String> {
    let intent = run_pipeline(registry, connector, routing_key, body.as_bytes())?;
    if reference_of(&intent).as_deref() != Some(reference) {
        return Err("the mapping's reference is not the generated one".to_owned());
    }
    Ok(())
}

/// The intent's own key for the source record: `source_ref`, or else the
/// only top-level string field whose name ends in `_ref`.
fn reference_of(intent: &Value) -> Option<String> {
    let object = intent.as_object()?;
    if let Some(reference) = object.get("source_ref").and_then(Value::as_str) {
        return Some(reference.to_owned());
    }
    // Shared records: the first record's id makes each message distinct.
    if let Some(reference) = intent
        .pointer("/records/0/record_id")
        .and_then(Value::as_str)
    {
        return Some(reference.to_owned());
    }
    let mut refs = object
        .iter()
        .filter(|(k, v)| k.ends_with("_ref") && v.is_string());
    match (refs.next(), refs.next()) {
        (Some((_, v)), None) => v.as_str().map(str::to_owned),
        _ => None,
    }
}

fn load_valid(
    registry: &Registry,
    connector: &str,
    routing_key: &str,
    file: &Path,
    page_rows: usize,
) -> Result<(Valid, bool, Pattern), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let text = serde_json::to_string(&value).map_err(|e| e.to_string())?;
    let intent = run_pipeline(registry, connector, routing_key, text.as_bytes())
        .map_err(|reason| format!("refused by the pipeline ({reason})"))?;
    let opens_case = intent.get("kind").and_then(Value::as_str) == Some("open_case");
    let shares = intent.get("kind").and_then(Value::as_str) == Some("share_records");
    let reference = reference_of(&intent).ok_or("its intent has no source reference")?;
    let template = if shares && page_rows > 1 {
        page(&value, &intent, page_rows)?
    } else {
        let quoted = serde_json::to_string(&reference).map_err(|e| e.to_string())?;
        let parts: Vec<String> = text.split(&quoted).map(str::to_owned).collect();
        let records = intent
            .get("records")
            .and_then(Value::as_array)
            .filter(|_| shares)
            .map_or(0, |r| r.len() as u64);
        Valid {
            slots: vec![0; parts.len().saturating_sub(1)],
            parts,
            rows: 1,
            records,
        }
    };
    if template.parts.len() < 2 {
        return Err("its source reference is not a string of the message".to_owned());
    }
    let (head, epoch, middle, digits) =
        split_reference(&reference).ok_or("its source reference does not end in digits")?;
    let pattern = Pattern {
        head,
        epoch,
        middle,
        digits,
        space: 10u64.pow(digits as u32),
        variants: Vec::new(),
    };
    Ok((template, opens_case, pattern))
}

/// A page of `rows` records made from a `share_records` template: the array
/// of the message that holds its records (in the intent's order), cycled to
/// `rows` elements, each with a record id of its own; a top-level number equal
/// to the template's record count (a record count field) follows the page.
/// Every page is checked through the pipeline before use.
fn page(value: &Value, intent: &Value, rows: usize) -> Result<Valid, String> {
    let ids: Vec<&str> = intent
        .get("records")
        .and_then(Value::as_array)
        .ok_or("its intent has no records")?
        .iter()
        .map(|r| r.get("record_id").and_then(Value::as_str))
        .collect::<Option<_>>()
        .ok_or("a record of its intent has no record_id")?;
    let object = value.as_object().ok_or("it is not a JSON object")?;
    let (key, template) = object
        .iter()
        .find_map(|(key, v)| {
            let elements = v.as_array()?;
            let holds = elements.len() == ids.len()
                && elements.iter().zip(&ids).all(|(e, id)| holds_string(e, id));
            holds.then(|| (key.clone(), elements.clone()))
        })
        .ok_or("no array of the message holds its records in order")?;
    let mut page = object.clone();
    let elements = (0..rows)
        .map(|row| {
            let k = row % ids.len();
            let mut element = template[k].clone();
            replace_string(&mut element, ids[k], &format!("{ROW_MARK}{row}@@"));
            element
        })
        .collect();
    page.insert(key, Value::Array(elements));
    for v in page.values_mut() {
        if v.as_u64() == Some(ids.len() as u64) {
            *v = Value::from(rows);
        }
    }
    let text = serde_json::to_string(&Value::Object(page)).map_err(|e| e.to_string())?;
    if text.len() > pipeline::MAX_BODY {
        return Err(format!(
            "a page of {rows} rows is {} bytes, over the hub's limit of {} bytes",
            text.len(),
            pipeline::MAX_BODY
        ));
    }
    let quoted_mark = format!("\"{ROW_MARK}");
    let mut parts = Vec::with_capacity(rows + 1);
    let mut slots = Vec::with_capacity(rows);
    let mut rest = text.as_str();
    while let Some(at) = rest.find(&quoted_mark) {
        parts.push(rest[..at].to_owned());
        let after = &rest[at + quoted_mark.len()..];
        let end = after.find("@@\"").ok_or("a row mark is cut")?;
        slots.push(
            after[..end]
                .parse()
                .map_err(|_| "a row mark is not a number")?,
        );
        rest = &after[end + 3..];
    }
    parts.push(rest.to_owned());
    Ok(Valid {
        parts,
        slots,
        rows: rows as u64,
        records: rows as u64,
    })
}

/// Stands in a page's template for the record id of a row.
const ROW_MARK: &str = "@@gridhub-bench-row:";

fn holds_string(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Array(items) => items.iter().any(|v| holds_string(v, text)),
        Value::Object(map) => map.values().any(|v| holds_string(v, text)),
        _ => false,
    }
}

fn replace_string(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_string(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_string(v, from, to)),
        _ => {}
    }
}

fn load_invalid(file: &Path) -> anyhow::Result<Invalid> {
    let body = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let expect = file.with_file_name(format!("{name}.expect.json"));
    let content_type = std::fs::read(&expect)
        .ok()
        .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
        .and_then(|v| {
            v.get("content_type")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| content_type_for(file).to_owned());
    Ok(Invalid { content_type, body })
}

/// A reference for error messages: its shape, not its digits.
fn mask_reference(reference: &str) -> String {
    reference
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect()
}

/// SplitMix64: one well-mixed 64-bit value from another (the district
/// generator's own).
pub(crate) use crate::district::rng::mix as splitmix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_weights() {
        let mix = parse_mix("hotline-12345.ticket=3, dept-police.floating-population").unwrap();
        assert_eq!(mix.len(), 2);
        assert_eq!(mix[0].weight, 3);
        assert_eq!(mix[1].message_type, "floating-population");
        assert_eq!(mix[1].weight, 1);
        assert!(parse_mix("hotline=3").is_err());
        assert!(parse_mix("a.b=x").is_err());
        assert!(parse_mix("a.b=0").is_err());
    }

    #[test]
    fn references_split_into_epoch_and_sequence() {
        assert_eq!(
            split_reference("BJ12345-20240115-000123").unwrap(),
            ("BJ12345-".into(), "20240115".into(), "-".into(), 6)
        );
        assert_eq!(
            split_reference("HX240115-00123").unwrap(),
            ("HX".into(), "240115".into(), "-".into(), 5)
        );
        assert_eq!(
            split_reference("GD20240115000123").unwrap(),
            ("GD".into(), "20240115".into(), String::new(), 6)
        );
        assert_eq!(
            split_reference("R-77").unwrap(),
            ("R-".into(), String::new(), String::new(), 2)
        );
        assert!(split_reference("ABC").is_none());
    }

    #[test]
    fn epochs_advance_dates_and_numbers() {
        assert_eq!(advance("20240131", 1).unwrap(), "20240201");
        assert_eq!(advance("240228", 2).unwrap(), "240301");
        assert_eq!(advance("0042", 3).unwrap(), "0045");
        assert!(advance("99", 1).is_none());
        assert!(advance("", 1).is_none());
    }

    /// The project's connectors' registry.
    fn registry() -> Registry {
        let connectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
        Registry::load(&connectors, &crate::settings::schemas_beside(&connectors)).unwrap()
    }

    #[test]
    fn generated_messages_are_unique_and_valid() {
        let registry = registry();
        let (mix, _) = default_mix(&registry);
        let mut generator = Generator::new(&registry, &mix, 0.1, "t", 7, 1).unwrap();
        // A small sequence space forces epochs: check that they stay valid.
        for t in &mut generator.types {
            t.pattern.space = 3;
        }
        let planned = generator.plan(&registry, 0, 400).unwrap();
        assert_eq!(
            planned.values().map(|p| p.valid + p.invalid).sum::<u64>(),
            400
        );
        let mut ids = std::collections::HashSet::new();
        let mut refs = std::collections::HashSet::new();
        for seq in 0..400 {
            let message = generator.message("x", seq);
            assert!(ids.insert(message.message_id.clone()));
            if message.valid {
                let connector = message.routing_key.split('.').next().unwrap().to_owned();
                let intent =
                    run_pipeline(&registry, &connector, &message.routing_key, &message.body)
                        .unwrap();
                assert!(refs.insert((connector, reference_of(&intent).unwrap())));
            }
        }
    }

    #[test]
    fn pages_carry_rows_with_ids_of_their_own() {
        let registry = registry();
        let mix = parse_mix("dept-police.floating-population=1,dept-health.resident-population=1")
            .unwrap();
        let mut generator = Generator::new(&registry, &mix, 0.0, "p", 3, 40).unwrap();
        for t in &mut generator.types {
            t.pattern.space = 1000;
        }
        let planned = generator.plan(&registry, 0, 60).unwrap();
        assert_eq!(planned.values().map(|p| p.records).sum::<u64>(), 60 * 40);
        let mut ids = std::collections::HashSet::new();
        for seq in 0..60 {
            let message = generator.message("x", seq);
            assert_eq!(message.records, 40);
            let connector = message.routing_key.split('.').next().unwrap().to_owned();
            let intent =
                run_pipeline(&registry, &connector, &message.routing_key, &message.body).unwrap();
            let records = intent["records"].as_array().unwrap();
            assert_eq!(records.len(), 40);
            for record in records {
                let id = record["record_id"].as_str().unwrap().to_owned();
                assert!(
                    ids.insert((connector.clone(), id)),
                    "a record id came twice"
                );
            }
        }
    }
}
