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

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::OutboxEvent;
use crate::connector::{Disclosure, Registry};
use crate::intent::{Place, Reporter};
use crate::privacy;

/// A case as events describe it.
#[derive(Debug, Clone)]
pub struct CaseView {
    pub id: Uuid,
    pub case_no: String,
    pub status: String,
    pub channel: String,
    pub nature: String,
    pub category: Option<String>,
    pub priority: String,
    pub title: String,
    pub description: String,
    pub place: Place,
    pub grid_id: Option<String>,
    pub community: Option<String>,
    pub street: Option<String>,
    pub located_by: Option<String>,
    pub unplaced: bool,
    pub lead_unit: Option<String>,
    pub lead_connector: Option<String>,
    pub dispatch_level: Option<String>,
    pub assisting_units: Vec<String>,
    pub routing_rule: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub parent_case_no: Option<String>,
    pub received_at: DateTime<Utc>,
    pub rework_count: i32,
    pub escalation_level: i16,
    pub satisfaction: Option<String>,
}

/// Source tickets of a case: (connector, the source's own ticket id).
pub type Sources = Vec<(String, String)>;

/// What every event says about the case; no personal data.
pub fn summary(case: &CaseView) -> Value {
    json!({
        "case_id": case.id,
        "case_no": case.case_no,
        "status": case.status,
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
        "occurred_at": Utc::now(),
    })
}

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

    /// `case.<what>` to the centre and to every source that receives it.
    pub fn status(&mut self, case: &CaseView, what: &str, sources: &Sources, extra: Value) {
        let event = format!("case.{what}");
        let mut payload = summary(case);
        merge(&mut payload, &extra);
        let mut to_centre = payload.clone();
        merge(&mut to_centre, &json!({"sources": sources_json(sources)}));
        self.out
            .push(OutboxEvent::new(self.centre, &event, to_centre));
        let mut told = std::collections::HashSet::new();
        for (connector, ticket) in sources {
            if connector == self.centre
                || !self.receives(connector, &event)
                || !told.insert((connector, ticket))
            {
                continue;
            }
            let mut own = payload.clone();
            merge(
                &mut own,
                &json!({"source": {"connector": connector, "ticket_id": ticket}}),
            );
            self.out.push(OutboxEvent::new(connector, &event, own));
        }
    }

    /// `case.<what>` to a unit's connector, e.g. a dispatch. The reporter is
    /// disclosed as the connector's privacy policy allows, and never when
    /// they asked for confidentiality.
    pub fn send_to_unit(
        &mut self,
        connector: &str,
        what: &str,
        case: &CaseView,
        reporter: Option<&Reporter>,
        extra: Value,
    ) {
        let mut payload = summary(case);
        merge(
            &mut payload,
            &json!({
                "description": case.description,
                "place": {
                    "address": case.place.address, "lon": case.place.lon, "lat": case.place.lat,
                    "street": case.place.street, "community": case.place.community,
                },
                "assisting_units": case.assisting_units,
                "routing_rule": case.routing_rule,
            }),
        );
        merge(&mut payload, &extra);
        let level = self
            .registry
            .get(connector)
            .map(|c| c.config.privacy.reporter)
            .unwrap_or_default();
        if let Some(reporter) = reporter.filter(|r| !r.confidential && !r.anonymous)
            && level != Disclosure::None
        {
            let mut person = serde_json::Map::new();
            for (key, value) in [
                ("name", &reporter.name),
                ("phone", &reporter.phone),
                ("id_number", &reporter.id_number),
            ] {
                if let Some(value) = value {
                    person.insert(key.to_owned(), json!(value));
                }
            }
            let disclosed = privacy::disclose(&person, level);
            merge(&mut payload, &json!({"reporter": disclosed}));
        }
        self.out.push(OutboxEvent::new(
            connector,
            &format!("case.{what}"),
            payload,
        ));
    }
}

fn sources_json(sources: &Sources) -> Value {
    Value::Array(
        sources
            .iter()
            .map(|(connector, ticket)| json!({"connector": connector, "ticket_id": ticket}))
            .collect(),
    )
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
}
