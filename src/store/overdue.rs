//! Deadlines: the overdue scanner. Marks cases whose sign-for, handling or
//! callback deadline passed and emits escalation events: a warning to the
//! lead unit at `warn_at` of its handling time, a reminder (催办) at the
//! handling deadline, supervision (督办) once overdue by
//! `supervision_after`; `callback_overdue` to the centre and the hotlines
//! that owe the callback.
//!
//! Safe with several hubs: each case's escalation level only rises, in an
//! UPDATE that locks the row; a case another hub is escalating is skipped,
//! and a level is emitted by the one transaction that raised it.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::events::Events;
use super::statements::{CaseEvent, CaseKey, Due, Facts};
use super::update::load_case;
use super::{Rules, Store, StoreError};

/// One escalation raised by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub case_no: String,
    /// `deadline_warning`, `sign_for_overdue`, `reminder`, `supervision` or
    /// `callback_overdue`.
    pub kind: &'static str,
}

impl Store {
    /// Escalates what is overdue at `now` (the clock is a parameter so that
    /// tests and operators can run a scan as of any time).
    pub async fn escalate(
        &self,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Result<Vec<Escalation>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let supervision =
            chrono::Duration::from_std(rules.routing.supervision_after).unwrap_or_default();
        let warned = tx
            .flag_deadline_warnings(now, rules.routing.warn_at)
            .await?;
        let raised = tx.raise_overdue(now, supervision).await?;
        let unsigned = tx.flag_past(Due::SignFor, now).await?;
        let callbacks = tx.flag_past(Due::Callback, now).await?;

        let mut escalations = Vec::new();
        let mut events = Events::new(&rules.centre, &rules.registry);
        let mut records: Vec<(Uuid, &'static str)> =
            warned.iter().map(|id| (*id, "deadline_warning")).collect();
        for (id, old, new) in &raised {
            for level in (*old + 1)..=*new {
                let kind = if level == 1 {
                    "reminder"
                } else {
                    "supervision"
                };
                records.push((*id, kind));
            }
        }
        records.extend(unsigned.iter().map(|id| (*id, "sign_for_overdue")));
        records.extend(callbacks.iter().map(|id| (*id, "callback_overdue")));
        for (id, kind) in records {
            let Some(row) = load_case(&mut tx, CaseKey::Id(id), &self.seal).await? else {
                continue;
            };
            tx.insert_event(&CaseEvent {
                case_id: id,
                kind,
                from_status: Some(&row.status),
                to_status: &row.status,
                actor: "gridhub",
                note: match kind {
                    "callback_overdue" => row.callback_due_at,
                    _ => row.due_at,
                }
                .map(|d| format!("deadline {}", d.to_rfc3339())),
                connector: None,
                message_id: None,
                media: None,
                on_behalf_of: None,
                facts: Facts::of(&row),
            })
            .await?;
            let view = &row;
            let sources = tx.sources(id).await?;
            let escalation = if kind == "callback_overdue" {
                json!({"escalation": kind, "callback_due_at": row.callback_due_at})
            } else {
                json!({"escalation": kind})
            };
            events.status(view, &view.status, kind, &sources, escalation);
            // A callback is the hotline's to make: the unit is not pressed.
            if let Some(lead) = &row.lead_connector
                && lead != &rules.centre
                && kind != "callback_overdue"
            {
                events.send_to_unit(lead, kind, view, None, json!({"escalation": kind}));
            }
            escalations.push(Escalation {
                case_no: row.case_no.clone(),
                kind,
            });
        }
        tx.insert_outbox(&events.out, &self.seal).await?;
        tx.commit().await?;
        Ok(escalations)
    }
}
