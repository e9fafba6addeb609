//! The events the hub publishes about cases, and who receives them.
//!
//! - the district centre's destination receives every event;
//! - a hotline (or any source connector) receives `case.<event>` about cases
//!   it reported, and about cases merged into them, when its connector.toml
//!   `receives` lists the event; each carries the source's own ticket id;
//! - a unit's connector receives `case.dispatched` (and `case.rework`,
//!   `case.reminder`, `case.supervision`) for cases it handles, with the
//!   reporter disclosed as its `privacy.reporter` allows;
//! - the grid platform receives `case.verify_requested`.
//!
//! No event but a dispatch carries personal data.
//!
//! An event's payload is written as text once and copied to each of its
//! destinations with that destination's own entries (the centre's `sources`,
//! a hotline's `source`) appended; a case's summary is never built as a
//! `serde_json::Value` tree.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::OutboxEvent;
use super::outbox::json_text;
use super::statements::CaseRow;
use crate::connector::{Disclosure, Registry};
use crate::intent::Reporter;
use crate::privacy;

/// Source tickets of a case: (connector, the source's own ticket id).
pub type Sources = Vec<(String, String)>;

/// An event's payload before its destinations' own entries: what every
/// event says about the case (no personal data), what a unit is told
/// besides, and the event's own entries, which replace the case's of the
/// same name.
struct Body<'a> {
    case: &'a CaseRow,
    /// The status the event announces (a case can pass several in one
    /// change).
    status: &'a str,
    occurred_at: DateTime<Utc>,
    /// With the description, the place, the assisting units and the rule.
    for_unit: bool,
    extra: &'a Map<String, Value>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let case = self.case;
        let mut map = serializer.serialize_map(None)?;
        macro_rules! entries {
            ($($key:literal: $value:expr),* $(,)?) => {$(
                if !self.extra.contains_key($key) {
                    map.serialize_entry($key, &$value)?;
                }
            )*};
        }
        entries! {
            "case_id": case.id,
            "case_no": case.case_no,
            "status": self.status,
            "channel": case.channel,
            "nature": case.nature,
            "category": case.category,
            "priority": case.priority,
            "title": case.title,
            "grid_id": case.grid_id,
            "community": case.community,
            "street": case.street,
            "unplaced": case.unplaced,
            "lead_unit": case.lead_unit,
            "dispatch_level": case.dispatch_level,
            "due_at": case.due_at,
            "parent_case_no": case.parent_case_no,
            "rework_count": case.rework_count,
            "escalation_level": case.escalation_level,
            "satisfaction": case.satisfaction,
            "received_at": case.received_at,
            "occurred_at": self.occurred_at,
        }
        if self.for_unit {
            entries! {
                "description": case.description,
                "place": UnitPlace(case),
                "assisting_units": case.assisting_units,
                "routing_rule": case.routing_rule,
            }
        }
        for (key, value) in self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The place as a unit is told it.
struct UnitPlace<'a>(&'a CaseRow);

impl Serialize for UnitPlace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let case = self.0;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("address", &case.address)?;
        map.serialize_entry("lon", &case.lon)?;
        map.serialize_entry("lat", &case.lat)?;
        map.serialize_entry("street", &case.street_given)?;
        map.serialize_entry("community", &case.community_given)?;
        map.end()
    }
}

/// A source ticket as events name it.
#[derive(serde::Serialize)]
struct SourceRef<'a> {
    connector: &'a str,
    ticket_id: &'a str,
}

/// About the bytes of a case's summary as JSON (a ticket's is 600 to 800).
const SUMMARY_BYTES: usize = 1024;

/// Collects the events of one transaction.
pub struct Events<'a> {
    pub centre: &'a str,
    pub registry: &'a Registry,
    pub out: Vec<OutboxEvent>,
}

impl<'a> Events<'a> {
    pub fn new(centre: &'a str, registry: &'a Registry) -> Events<'a> {
        Events {
            centre,
            registry,
            out: Vec::new(),
        }
    }

    fn receives(&self, connector: &str, event: &str) -> bool {
        self.registry
            .get(connector)
            .is_some_and(|c| c.config.receives.iter().any(|e| e == event))
    }

    /// `case.<what>`, announcing the case at `status`, to the centre and to
    /// every source that receives it. `extra` (an object) adds entries or
    /// replaces the case's.
    pub fn status(
        &mut self,
        case: &CaseRow,
        status: &str,
        what: &str,
        sources: &Sources,
        extra: Value,
    ) {
        let event = format!("case.{what}");
        let body = json_text(
            &Body {
                case,
                status,
                occurred_at: Utc::now(),
                for_unit: false,
                extra: &object(extra),
            },
            SUMMARY_BYTES,
        );
        let all: Vec<SourceRef> = sources
            .iter()
            .map(|(connector, ticket_id)| SourceRef {
                connector,
                ticket_id,
            })
            .collect();
        self.out.push(OutboxEvent::appended(
            self.centre,
            &event,
            &body,
            Some(("sources", &json_text(&all, 64 * all.len()))),
        ));
        let mut told = HashSet::new();
        for source in &all {
            if source.connector == self.centre
                || !self.receives(source.connector, &event)
                || !told.insert((source.connector, source.ticket_id))
            {
                continue;
            }
            self.out.push(OutboxEvent::appended(
                source.connector,
                &event,
                &body,
                Some(("source", &json_text(source, 64))),
            ));
        }
    }

    /// `case.<what>` to a case's lead unit about the centre's decision (a
    /// suspension, an extension, a reminder): no reporter, and the
    /// description with its numbers masked, since whether the reporter
    /// asked for confidentiality is not at hand (the dispatch told the unit
    /// as much as it may know). Not to the centre, which hears every event
    /// anyway.
    pub fn notify_unit(&mut self, connector: &str, what: &str, case: &CaseRow, extra: Value) {
        if connector == self.centre {
            return;
        }
        let mut extra = object(extra);
        extra.insert(
            "description".to_owned(),
            Value::String(privacy::mask_numbers_in(&case.description)),
        );
        self.send_to_unit(connector, what, case, None, Value::Object(extra));
    }

    /// `case.<what>` to a unit's connector, e.g. a dispatch. The reporter is
    /// disclosed as the connector's privacy policy allows, and never when
    /// they asked for confidentiality. `extra` (an object) adds entries or
    /// replaces the case's.
    pub fn send_to_unit(
        &mut self,
        connector: &str,
        what: &str,
        case: &CaseRow,
        reporter: Option<&Reporter>,
        extra: Value,
    ) {
        let level = self
            .registry
            .get(connector)
            .map(|c| c.config.privacy.reporter)
            .unwrap_or_default();
        let mut extra = object(extra);
        // A complainant who asked for confidentiality may have named
        // themselves in what they said: the unit gets the description with
        // its phone, ID and card numbers masked.
        if reporter.is_some_and(|r| r.confidential) && !extra.contains_key("description") {
            extra.insert(
                "description".to_owned(),
                Value::String(privacy::mask_numbers_in(&case.description)),
            );
        }
        if let Some(reporter) = reporter.filter(|r| !r.confidential && !r.anonymous)
            && level != Disclosure::None
        {
            let mut person = Map::new();
            for (key, value) in [
                ("name", &reporter.name),
                ("phone", &reporter.phone),
                ("id_number", &reporter.id_number),
            ] {
                if let Some(value) = value {
                    person.insert(key.to_owned(), Value::String(value.clone()));
                }
            }
            let disclosed = privacy::disclose(&person, level, privacy::Personal::standard());
            extra.insert("reporter".to_owned(), Value::Object(disclosed));
        }
        let body = json_text(
            &Body {
                case,
                status: &case.status,
                occurred_at: Utc::now(),
                for_unit: true,
                extra: &extra,
            },
            2 * SUMMARY_BYTES,
        );
        self.out.push(OutboxEvent::appended(
            connector,
            &format!("case.{what}"),
            &body,
            None,
        ));
    }
}

/// The entries of an object; none of anything else.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn registry() -> Registry {
        let connectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
        Registry::load(&connectors, &crate::settings::schemas_beside(&connectors)).unwrap()
    }

    fn case() -> CaseRow {
        CaseRow {
            id: Uuid::nil(),
            case_no: "C-1".into(),
            status: "dispatched".into(),
            channel: "12345".into(),
            nature: "complaint".into(),
            category: Some("noise".into()),
            priority: "normal".into(),
            title: "Noise at night".into(),
            description: "Loud \"music\"\nafter 22:00".into(),
            address: Some("1 Road".into()),
            street_given: Some("S".into()),
            community_given: None,
            lon: Some(116.5),
            lat: Some(39.9),
            grid_id: Some("G-1".into()),
            community: Some("C".into()),
            street: Some("S".into()),
            located_by: Some("address".into()),
            unplaced: false,
            lead_unit: Some("housing".into()),
            lead_connector: Some("dept-housing".into()),
            dispatch_level: Some("department".into()),
            assisting_units: vec!["police".into()],
            routing_rule: Some("noise".into()),
            due_at: None,
            parent_case_no: None,
            received_at: DateTime::UNIX_EPOCH,
            rework_count: 1,
            escalation_level: 0,
            satisfaction: None,
            ..CaseRow::default()
        }
    }

    fn payloads(events: &Events) -> Vec<(String, Value)> {
        events
            .out
            .iter()
            .map(|e| {
                let payload: Value = serde_json::from_str(&e.payload).unwrap();
                assert_eq!(payload["event_id"], json!(e.event_id));
                (e.routing_key.clone(), payload)
            })
            .collect()
    }

    /// How many times an object's key appears in JSON text.
    fn times(text: &str, key: &str) -> usize {
        text.matches(&format!("\"{key}\":")).count()
    }

    #[test]
    fn the_centre_hears_every_source_and_a_hotline_its_own_ticket() {
        let registry = registry();
        let mut events = Events::new("centre", &registry);
        let sources = vec![
            ("hotline-12345".to_owned(), "T-1".to_owned()),
            ("hotline-12345".to_owned(), "T-1".to_owned()),
            ("dept-police".to_owned(), "P-9".to_owned()),
        ];
        events.status(&case(), "registered", "opened", &sources, json!({}));
        let out = payloads(&events);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        // Told once per ticket; the police's connector does not receive it.
        assert_eq!(keys, ["centre.case.opened", "hotline-12345.case.opened"]);
        let (_, centre) = &out[0];
        assert_eq!(centre["event"], "case.opened");
        assert_eq!(centre["status"], "registered");
        assert_eq!(centre["case_no"], "C-1");
        assert_eq!(centre["received_at"], "1970-01-01T00:00:00Z");
        assert_eq!(
            centre["sources"][2],
            json!({"connector": "dept-police", "ticket_id": "P-9"})
        );
        assert!(centre.get("source").is_none());
        let (_, hotline) = &out[1];
        assert_eq!(
            hotline["source"],
            json!({"connector": "hotline-12345", "ticket_id": "T-1"})
        );
        assert!(hotline.get("sources").is_none());
        // The same event: one id per destination, the same summary.
        assert_ne!(centre["event_id"], hotline["event_id"]);
        assert_eq!(centre["occurred_at"], hotline["occurred_at"]);
        // No personal data and nothing a unit alone is told.
        for (_, payload) in &out {
            for key in ["description", "place", "reporter", "routing_rule"] {
                assert!(payload.get(key).is_none(), "{key}");
            }
        }
    }

    #[test]
    fn an_events_own_entries_replace_the_cases() {
        let registry = registry();
        let mut events = Events::new("centre", &registry);
        let sources = vec![("hotline-12345".to_owned(), "T-1".to_owned())];
        events.status(
            &case(),
            "closed",
            "closed",
            &sources,
            json!({"satisfaction": "satisfied", "resolution": "answered"}),
        );
        events.send_to_unit(
            "dept-housing",
            "rework",
            &case(),
            None,
            json!({"rework_count": 2}),
        );
        for e in &events.out {
            for key in ["satisfaction", "rework_count", "event", "event_id"] {
                assert!(
                    times(&e.payload, key) <= 1,
                    "{key} twice in {}",
                    e.routing_key
                );
            }
        }
        let out = payloads(&events);
        assert_eq!(out[0].1["satisfaction"], "satisfied");
        assert_eq!(out[0].1["resolution"], "answered");
        assert_eq!(out[2].0, "dept-housing.case.rework");
        assert_eq!(out[2].1["rework_count"], 2);
    }

    #[test]
    fn a_unit_is_told_the_place_and_the_reporter_its_policy_allows() {
        let registry = registry();
        let mut events = Events::new("centre", &registry);
        let reporter = Reporter {
            name: Some("张三丰".into()),
            phone: Some("13812345678".into()),
            id_number: None,
            ..Reporter::default()
        };
        let secret = Reporter {
            confidential: true,
            ..reporter.clone()
        };
        let case = case();
        for (connector, reporter) in [
            ("dept-housing", &reporter),
            ("dept-urban-management", &reporter),
            ("dept-urban-management", &secret),
            ("dept-police", &reporter),
        ] {
            let role = json!({"role": "lead"});
            events.send_to_unit(connector, "dispatched", &case, Some(reporter), role);
        }
        let out = payloads(&events);
        let housing = &out[0].1;
        assert_eq!(housing["event"], "case.dispatched");
        assert_eq!(housing["role"], "lead");
        assert_eq!(housing["description"], "Loud \"music\"\nafter 22:00");
        assert_eq!(
            housing["place"],
            json!({"address": "1 Road", "lon": 116.5, "lat": 39.9, "street": "S", "community": null})
        );
        assert_eq!(housing["assisting_units"], json!(["police"]));
        assert_eq!(
            housing["reporter"],
            json!({"name": "张**", "phone": "138****5678"})
        );
        assert_eq!(
            out[1].1["reporter"],
            json!({"name": "张三丰", "phone": "13812345678"})
        );
        assert!(out[2].1.get("reporter").is_none(), "confidential");
        assert!(out[3].1.get("reporter").is_none(), "no entitlement");
        // A confidential complainant's words reach the unit with the
        // numbers in them masked.
        let mut said = case.clone();
        said.description = "我是13812345678的机主，身份证110101199001011234".into();
        events.send_to_unit(
            "dept-housing",
            "dispatched",
            &said,
            Some(&secret),
            json!({}),
        );
        events.send_to_unit(
            "dept-housing",
            "dispatched",
            &said,
            Some(&reporter),
            json!({}),
        );
        let out = payloads(&events);
        assert_eq!(
            out[4].1["description"],
            "我是138******78的机主，身份证110*************34"
        );
        assert_eq!(out[5].1["description"], said.description.as_str());
    }

    /// Not a test of speed: a fixed workload to count instructions with
    /// callgrind (docs/PERFORMANCE.md). 2,000 dispatched tickets' events
    /// (opened and dispatched to the centre and the hotline, the dispatch to
    /// the unit with a masked reporter), each case's written into a
    /// statement's outbox columns.
    #[test]
    #[ignore]
    fn events_of_dispatched_tickets() {
        let registry = registry();
        let reporter = Reporter {
            name: Some("张三丰".into()),
            phone: Some("13812345678".into()),
            ..Reporter::default()
        };
        let mut written = 0;
        for n in 0..2000 {
            let mut case = case();
            case.case_no = format!("C-{n}");
            let sources = vec![("hotline-12345".to_owned(), format!("T-{n}"))];
            let mut events = Events::new("centre", &registry);
            dispatched_ticket(&mut events, &case, &sources, &reporter);
            let mut inserts = crate::store::statements::PgInserts::new();
            crate::store::statements::add_outbox(&mut inserts, &events.out, &Default::default());
            written += events.out.len();
        }
        assert_eq!(written, 5 * 2000);
    }

    /// The events of a dispatched ticket (callgrind's `--toggle-collect`).
    #[inline(never)]
    fn dispatched_ticket(
        events: &mut Events,
        case: &CaseRow,
        sources: &Sources,
        reporter: &Reporter,
    ) {
        events.status(case, "registered", "opened", sources, json!({}));
        events.status(case, &case.status, "dispatched", sources, json!({}));
        let lead = json!({"role": "lead"});
        events.send_to_unit("dept-housing", "dispatched", case, Some(reporter), lead);
    }
}
