//! The dead-letter office: list with filters, group by failure signature,
//! show one, replay (one, a group, all matching a filter), edit and replay,
//! purge. The CLI and the HTTP API both call these.
//!
//! Each connector's part of the hub consumes its DLQ into the case store
//! (`dlq_messages`), on RabbitMQ or on the in-process bus of `gridhub demo`;
//! the office reads that record and never the queue, so reading a dead
//! letter is no delivery the broker counts. Settling one marks its row:
//!
//! - a replayed dead letter is marked `replayed` only after the carrier
//!   confirmed its copy on the inbound exchange and routed it to a queue;
//! - a purged one is marked `purged`, nothing else.
//!
//! If the process dies half-way, each dead letter is then waiting, or
//! republished, or both (crash between the confirm and the mark). Both is
//! harmless: the replay copy and a second replay of the waiting one carry
//! the same replay count, and the inbox lets only one of them take effect.
//!
//! An operation reads at most the dead letters waiting when it started (and
//! at most the scan limit), so that a replayed message that is refused again
//! and comes back is not replayed twice by the same operation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::amqp::{self, Names};
use crate::bus::LocalBus;
use crate::carrier::{Carrier, Outcome, Sent};
use crate::connector::Registry;
use crate::dlq::{self, DeadLetter};
use crate::message::Inbound;
use crate::metrics::Metrics;
use crate::pipeline::{self, Refusal, Stage};
use crate::store::Store;
use crate::store::audit::{Actor, AuditRecord};

/// Replays waiting for their confirms before the DLQ copies are acknowledged.
const CONFIRM_WINDOW: usize = 64;

/// Which dead letters an operation is about. Every field is optional; all
/// given must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Connector id (which DLQ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Stage that refused: decode, identity, schema, mapping, intent, apply, delivery-limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Text in the reason or in a violation (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Refused at or after (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Refused before (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Failure signature (the id `groups` shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// One dead letter (the id `list` shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The message's message_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Only these connectors (a department's token); never read from a
    /// request.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub within: Option<Vec<String>>,
}

impl Filter {
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let dead = letter;
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if !eq(&self.connector, &dead.connector)
            || self.stage.is_some_and(|stage| stage.as_str() != dead.stage)
            || !eq(&self.group, &letter.group)
            || !eq(&self.id, &letter.id)
        {
            return false;
        }
        if let Some(id) = &self.message_id
            && dead.message_id.as_deref() != Some(id.as_str())
        {
            return false;
        }
        if let Some(text) = &self.reason {
            let text = text.to_lowercase();
            let found = dead.reason.to_lowercase().contains(&text)
                || dead.violations.iter().any(|v| {
                    v.message.to_lowercase().contains(&text)
                        || v.instance_path.to_lowercase().contains(&text)
                        || v.schema_path.to_lowercase().contains(&text)
                });
            if !found {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(at) = letter.refused_at() else {
                return false;
            };
            if self.since.is_some_and(|since| at < since) || self.until.is_some_and(|u| at >= u) {
                return false;
            }
        }
        true
    }

    /// Whether the filter says anything at all.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// What makes two failures the same: connector, stage, schema file, and the
/// schema paths (hence the kinds) of the violations; for failures without a
/// schema violation, the reason (reasons never quote message values).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub connector: String,
    pub stage: String,
    pub schema: Option<String>,
    pub schema_paths: Vec<String>,
    pub kinds: Vec<String>,
    pub reason: Option<String>,
}

impl Signature {
    pub fn of(letter: &DeadLetter) -> Signature {
        let paths: BTreeSet<&str> = letter
            .violations
            .iter()
            .map(|v| v.schema_path.as_str())
            .filter(|p| !p.is_empty())
            .collect();
        let kinds: BTreeSet<&str> = letter
            .violations
            .iter()
            .filter(|v| !v.schema_path.is_empty())
            .map(|v| v.keyword())
            .collect();
        Signature {
            connector: letter.connector.clone(),
            stage: letter.stage.clone(),
            schema: letter.schema.clone(),
            reason: paths.is_empty().then(|| letter.reason.clone()),
            schema_paths: paths.into_iter().map(str::to_owned).collect(),
            kinds: kinds.into_iter().map(str::to_owned).collect(),
        }
    }

    pub fn id(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.connector.as_str(),
            self.stage.as_str(),
            self.schema.as_deref().unwrap_or(""),
            &self.schema_paths.join("\n"),
            self.reason.as_deref().unwrap_or(""),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        super::hex(&hash.finalize()[..6])
    }
}

/// Dead letters that failed the same way.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub connector: String,
    pub stage: String,
    pub schema: Option<String>,
    pub schema_paths: Vec<String>,
    /// Kinds of violation (the failing keywords: required, pattern, type, ...).
    pub kinds: Vec<String>,
    /// The reason of the most recent one.
    pub reason: String,
    pub count: usize,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// Groups letters by signature, largest group first.
pub fn group(letters: &[DeadLetter]) -> Vec<Group> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    for letter in letters {
        let at = letter.refused_at();
        let entry = groups.entry(letter.group.clone()).or_insert_with(|| {
            let signature = Signature::of(letter);
            Group {
                id: letter.group.clone(),
                connector: signature.connector,
                stage: signature.stage,
                schema: signature.schema,
                schema_paths: signature.schema_paths,
                kinds: signature.kinds,
                reason: letter.reason.clone(),
                count: 0,
                first_seen: at,
                last_seen: at,
            }
        });
        entry.count += 1;
        if at.is_some() && (entry.first_seen.is_none() || at < entry.first_seen) {
            entry.first_seen = at;
        }
        if at > entry.last_seen {
            entry.last_seen = at;
            entry.reason = letter.reason.clone();
        }
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    groups
}

/// Dead letters matching a filter.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub letters: Vec<DeadLetter>,
    /// Messages read, matching or not.
    pub scanned: usize,
    /// Some DLQ held more than the scan limit: not everything was read.
    pub truncated: bool,
}

/// One dead letter in full.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub letter: DeadLetter,
    /// AMQP properties and headers as received.
    pub properties: Value,
    /// The payload, pretty-printed when it is JSON; `None` when the caller
    /// may not read bodies.
    pub body: Option<String>,
    pub body_is_json: bool,
}

/// What a replay or purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Messages that matched.
    pub matched: usize,
    /// Replayed (confirmed and routed, then removed from the DLQ) or purged.
    pub done: usize,
    /// Matched but left in the DLQ (the broker did not confirm or route the copy).
    pub failed: usize,
    pub message_ids: Vec<String>,
    pub truncated: bool,
}

/// The outcome of an edit.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Edited {
    /// The fixed message was republished and the dead letter removed.
    Replayed { report: Report },
    /// The fixed body would be refused again; nothing was changed.
    WouldBeRefused { refusal: Refusal },
    /// No dead letter with that id.
    NotFound,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("unknown connector {0}")]
    UnknownConnector(String),
    #[error("case store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The dead-letter operations of one hub.
pub struct Office {
    /// Where the broker is; `None` on the in-process bus.
    url: Option<String>,
    /// The broker link's TLS (`amqps://`).
    tls: Option<amqp::Tls>,
    /// The carrier: the bus, or the broker connection once opened (and
    /// opened again when it closed).
    carrier: tokio::sync::Mutex<Option<Carrier>>,
    names: Names,
    store: Store,
    registry: Arc<Registry>,
    hub_user: String,
    trusted: Vec<String>,
    scan_limit: usize,
    metrics: Option<Arc<Metrics>>,
}

impl Office {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        amqp_url: &str,
        names: Names,
        store: Store,
        registry: Arc<Registry>,
        trusted: Vec<String>,
        scan_limit: usize,
        metrics: Option<Arc<Metrics>>,
    ) -> Office {
        Office {
            url: Some(amqp_url.to_owned()),
            tls: None,
            carrier: tokio::sync::Mutex::new(None),
            hub_user: amqp::url_user(amqp_url),
            names,
            store,
            registry,
            trusted,
            scan_limit: scan_limit.max(1),
            metrics,
        }
    }

    /// The same operations on the in-process bus; `hub_user` is the
    /// identity replays are published with.
    pub fn local(
        bus: Arc<LocalBus>,
        hub_user: &str,
        names: Names,
        store: Store,
        registry: Arc<Registry>,
        scan_limit: usize,
        metrics: Option<Arc<Metrics>>,
    ) -> Office {
        Office {
            url: None,
            tls: None,
            carrier: tokio::sync::Mutex::new(Some(Carrier::Local(bus))),
            hub_user: hub_user.to_owned(),
            names,
            store,
            registry,
            trusted: Vec::new(),
            scan_limit: scan_limit.max(1),
            metrics,
        }
    }

    /// Connects to the broker with this TLS.
    pub fn with_tls(mut self, tls: Option<amqp::Tls>) -> Office {
        self.tls = tls;
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The carrier: the broker connection, opened (again) when needed, or
    /// the in-process bus.
    pub async fn carrier(&self) -> lapin::Result<Carrier> {
        let mut held = self.carrier.lock().await;
        if let Some(carrier) = held.as_ref()
            && carrier.is_open()
        {
            return Ok(carrier.clone());
        }
        let url = self.url.as_deref().unwrap_or_default();
        let carrier = Carrier::Broker(Arc::new(
            amqp::connect_with(url, "ops", self.tls.as_ref()).await?,
        ));
        *held = Some(carrier.clone());
        Ok(carrier)
    }

    /// Closes the broker connection, if open.
    pub async fn close(&self) {
        if let Some(carrier) = self.carrier.lock().await.take() {
            carrier.close("done").await;
        }
    }

    /// The connector's waiting dead letters, up to the scan limit.
    async fn scan(&self, connector: &str, settle_as: &'static str) -> Result<Scan, OfficeError> {
        let limit = i64::try_from(self.scan_limit).unwrap_or(i64::MAX - 1);
        let mut rows: std::collections::VecDeque<_> = self
            .store
            .waiting_dead_letters(connector, limit + 1)
            .await?
            .into();
        let more = rows.len() > self.scan_limit;
        rows.truncate(self.scan_limit);
        Ok(Scan {
            store: self.store.clone(),
            connector: connector.to_owned(),
            rows,
            taken: 0,
            more,
            settle_as,
        })
    }

    fn connectors(&self, filter: &Filter) -> Result<Vec<String>, OfficeError> {
        let mut connectors = match &filter.connector {
            Some(id) if self.registry.get(id).is_some() => vec![id.clone()],
            Some(id) => return Err(OfficeError::UnknownConnector(id.clone())),
            None => self.registry.connectors.keys().cloned().collect(),
        };
        if let Some(within) = &filter.within {
            connectors.retain(|c| within.contains(c));
        }
        Ok(connectors)
    }

    /// Dead letters matching the filter, in queue order, connector by connector.
    pub async fn list(&self, filter: &Filter) -> Result<Listing, OfficeError> {
        let mut listing = Listing {
            letters: Vec::new(),
            scanned: 0,
            truncated: false,
        };
        for connector in self.connectors(filter)? {
            let mut scan = self.scan(&connector, "kept").await?;
            while let Some(taken) = scan.next().await? {
                if filter.matches(&taken.letter) {
                    listing.letters.push(taken.letter);
                }
            }
            listing.scanned += scan.taken;
            listing.truncated |= scan.truncated();
        }
        Ok(listing)
    }

    /// Dead letters matching the filter, grouped by failure signature.
    pub async fn groups(&self, filter: &Filter) -> Result<(Vec<Group>, bool), OfficeError> {
        let listing = self.list(filter).await?;
        Ok((group(&listing.letters), listing.truncated))
    }

    /// One dead letter in full; the body only if `with_body`.
    pub async fn show(
        &self,
        connector: &str,
        id: &str,
        with_body: bool,
    ) -> Result<Option<Detail>, OfficeError> {
        let filter = Filter {
            connector: Some(connector.to_owned()),
            id: Some(id.to_owned()),
            ..Filter::default()
        };
        for connector in self.connectors(&filter)? {
            let mut scan = self.scan(&connector, "kept").await?;
            while let Some(taken) = scan.next().await? {
                if filter.matches(&taken.letter) {
                    return Ok(Some(detail(taken, with_body)));
                }
            }
        }
        Ok(None)
    }

    /// One dead letter in full, its body included, for `actor`: reading a
    /// payload (personal data) is audited.
    pub async fn read(
        &self,
        connector: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<Option<Detail>, OfficeError> {
        let found = self.show(connector, id, true).await?;
        if let Some(detail) = &found {
            let filter = Filter {
                connector: Some(connector.to_owned()),
                id: Some(id.to_owned()),
                ..Filter::default()
            };
            let report = Report {
                matched: 1,
                done: 1,
                message_ids: detail.letter.message_id.iter().cloned().collect(),
                ..Report::default()
            };
            self.audit(actor, "read-payload", &filter, &report, None)
                .await;
        }
        Ok(found)
    }

    /// Republishes every dead letter matching the filter to the inbound
    /// exchange (original routing key and message_id, replay count + 1,
    /// published as the hub's own user) and removes each from its DLQ once
    /// the broker confirmed the copy. With `filter.id`, at most one.
    pub async fn replay(&self, filter: &Filter, actor: &Actor) -> Result<Report, OfficeError> {
        let report = self.replay_with(filter, None).await?;
        self.audit(actor, "replay", filter, &report, None).await;
        Ok(report)
    }

    /// Replaces the body of one dead letter and replays it. Unless `force`,
    /// the new body is first run through the pure stages and nothing happens
    /// if they would refuse it.
    pub async fn edit(
        &self,
        connector: &str,
        id: &str,
        body: Vec<u8>,
        force: bool,
        actor: &Actor,
    ) -> Result<Edited, OfficeError> {
        let filter = Filter {
            connector: Some(connector.to_owned()),
            id: Some(id.to_owned()),
            ..Filter::default()
        };
        if !force {
            let Some(detail) = self.show(connector, id, false).await? else {
                return Ok(Edited::NotFound);
            };
            let message = Inbound {
                routing_key: detail.letter.routing_key.clone(),
                message_id: detail.letter.message_id.clone(),
                content_type: detail.letter.content_type.clone(),
                amqp_type: detail.letter.amqp_type.clone(),
                // Judged as the replay will be: as its original publisher.
                user_id: detail.letter.original_user.clone(),
                body: body.clone(),
                replays: i32::try_from(detail.letter.replays + 1).unwrap_or(i32::MAX),
            };
            let mut trusted = self.trusted.clone();
            trusted.push(self.hub_user.clone());
            if let Err(refusal) = pipeline::prepare(&self.registry, connector, &message, &trusted) {
                return Ok(Edited::WouldBeRefused { refusal });
            }
        }
        let size = body.len();
        let report = self.replay_with(&filter, Some(body)).await?;
        if report.matched == 0 {
            return Ok(Edited::NotFound);
        }
        self.audit(
            actor,
            "edit-replay",
            &filter,
            &report,
            Some(format!("body replaced ({size} bytes)")),
        )
        .await;
        Ok(Edited::Replayed { report })
    }

    /// Removes the dead letters that match the filter and, if `only` is
    /// given, whose id is in it (the ones a confirmation step showed).
    pub async fn purge(
        &self,
        filter: &Filter,
        only: Option<&HashSet<String>>,
        actor: &Actor,
    ) -> Result<Report, OfficeError> {
        let mut report = Report::default();
        for connector in self.connectors(filter)? {
            let mut scan = self.scan(&connector, "purged").await?;
            while let Some(taken) = scan.next().await? {
                let chosen = filter.matches(&taken.letter)
                    && only.is_none_or(|ids| ids.contains(&taken.letter.id));
                if !chosen {
                    continue;
                }
                report.matched += 1;
                scan.settle(taken.id).await?;
                report.done += 1;
                if let Some(metrics) = &self.metrics {
                    metrics
                        .purged
                        .get_or_create(&Metrics::label(&connector))
                        .inc();
                }
                if let Some(id) = taken.letter.message_id {
                    report.message_ids.push(id);
                }
            }
            report.truncated |= scan.truncated();
        }
        self.audit(actor, "purge", filter, &report, None).await;
        Ok(report)
    }

    async fn replay_with(
        &self,
        filter: &Filter,
        new_body: Option<Vec<u8>>,
    ) -> Result<Report, OfficeError> {
        let publisher = self.carrier().await?.publisher().await?;
        let exchange = self.names.inbound_exchange();
        let mut report = Report::default();
        let only_one = filter.id.is_some();
        for connector in self.connectors(filter)? {
            let mut scan = self.scan(&connector, "replayed").await?;
            let mut pending: Vec<(i64, Option<String>, Sent)> = Vec::new();
            while let Some(taken) = scan.next().await? {
                if !filter.matches(&taken.letter) {
                    continue;
                }
                report.matched += 1;
                if new_body.is_none() && dlq::truncated(&taken.properties) {
                    // Only the body's first bytes were kept: replaying
                    // them would be a different message. Edit it instead.
                    report.failed += 1;
                    continue;
                }
                let properties = replay_properties(&taken.properties, &self.hub_user);
                let body = new_body.as_deref().unwrap_or(&taken.body);
                let confirm = publisher
                    .publish(&exchange, &taken.letter.routing_key, properties, body)
                    .await?;
                pending.push((taken.id, taken.letter.message_id.clone(), confirm));
                if pending.len() >= CONFIRM_WINDOW {
                    self.settle(&connector, &scan, &mut pending, &mut report)
                        .await?;
                }
                if only_one {
                    break;
                }
            }
            self.settle(&connector, &scan, &mut pending, &mut report)
                .await?;
            report.truncated |= scan.truncated();
            if only_one && report.matched > 0 {
                break;
            }
        }
        publisher.close("replayed").await;
        Ok(report)
    }

    /// Waits for the confirms of replayed copies; settles the dead letter of
    /// each confirmed and routed copy, leaves the others waiting.
    async fn settle(
        &self,
        connector: &str,
        scan: &Scan,
        pending: &mut Vec<(i64, Option<String>, Sent)>,
        report: &mut Report,
    ) -> Result<(), OfficeError> {
        for (id, message_id, confirm) in pending.drain(..) {
            match confirm.outcome().await? {
                Outcome::Taken => {
                    scan.settle(id).await?;
                    report.done += 1;
                    if let Some(metrics) = &self.metrics {
                        metrics
                            .replayed
                            .get_or_create(&Metrics::label(connector))
                            .inc();
                    }
                    if let Some(id) = message_id {
                        report.message_ids.push(id);
                    }
                }
                Outcome::Returned | Outcome::Refused => {
                    tracing::warn!(connector = %connector, message_id = message_id.as_deref().unwrap_or("<none>"), "replay not confirmed or not routed; the dead letter stays");
                    report.failed += 1;
                }
            }
        }
        Ok(())
    }

    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        filter: &Filter,
        report: &Report,
        note: Option<String>,
    ) {
        let record = AuditRecord {
            actor,
            action,
            filter: serde_json::to_value(filter).unwrap_or(json!({})),
            affected: report.done,
            failed: report.failed,
            message_ids: report.message_ids.clone(),
            note,
        };
        tracing::info!(actor = %actor.name, action = %action, affected = report.done, failed = report.failed, "dead-letter operation");
        // The operation is done and safe; an audit row that cannot be written is
        // reported loudly rather than undoing it.
        if let Err(error) = self.store.audit(&record).await {
            tracing::error!(error = %error, actor = %actor.name, action = %action, affected = report.done, "cannot write the audit row");
        }
    }

    /// Records that someone asked for a purge confirmation.
    pub async fn audit_request(&self, actor: &Actor, filter: &Filter, count: usize) {
        let report = Report {
            matched: count,
            ..Report::default()
        };
        self.audit(
            actor,
            "purge-requested",
            filter,
            &report,
            Some(format!("{count} dead letters shown for confirmation")),
        )
        .await;
    }
}

/// The copy a replay publishes: the dead letter's properties without the
/// hub's and the broker's dead-letter headers, one more replay, published
/// as the hub's own broker user.
pub fn replay_properties(dead: &BasicProperties, hub_user: &str) -> BasicProperties {
    let replays = dlq::replays(dead).saturating_add(1);
    let mut headers = FieldTable::default();
    if let Some(original) = dead.headers() {
        for (key, value) in original.inner() {
            let name = key.as_str();
            if name.starts_with("x-gridhub-")
                || name == "x-death"
                || name.starts_with("x-first-death-")
                || name.starts_with("x-last-death-")
                || name == "x-delivery-count"
            {
                continue;
            }
            headers.insert(key.clone(), value.clone());
        }
    }
    headers.insert(dlq::REPLAYS.into(), AMQPValue::LongInt(replays));
    // The identity the original was judged as goes with the replay, which
    // is judged as that publisher again, not as the hub that republishes it.
    if let Some(user) = dead
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(dlq::ORIGINAL_USER))
    {
        headers.insert(dlq::ORIGINAL_USER.into(), user.clone());
    }
    dlq::copy_properties(
        dead,
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_user_id(hub_user.into())
            .with_headers(headers),
    )
}

fn detail(taken: Taken, with_body: bool) -> Detail {
    let parsed: Option<Value> = serde_json::from_slice(&taken.body).ok();
    let body_is_json = parsed.is_some();
    let body = with_body.then(|| match &parsed {
        Some(value) => serde_json::to_string_pretty(value).unwrap_or_default(),
        None => String::from_utf8_lossy(&taken.body).into_owned(),
    });
    Detail {
        properties: properties_json(&taken.properties, &taken.delivery_routing_key),
        letter: taken.letter,
        body,
        body_is_json,
    }
}

fn properties_json(props: &BasicProperties, routing_key: &str) -> Value {
    let text = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|s| s.as_str().to_owned());
    let headers: serde_json::Map<String, Value> = props
        .headers()
        .as_ref()
        .map(|h| {
            h.inner()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), amqp_json(v)))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "routing_key": routing_key,
        "message_id": text(props.message_id()),
        "content_type": text(props.content_type()),
        "content_encoding": text(props.content_encoding()),
        "correlation_id": text(props.correlation_id()),
        "type": text(props.kind()),
        "app_id": text(props.app_id()),
        "user_id": text(props.user_id()),
        "timestamp": props.timestamp(),
        "delivery_mode": props.delivery_mode(),
        "priority": props.priority(),
        "headers": headers,
    })
}

fn amqp_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::LongString(s) => {
            let text = String::from_utf8_lossy(s.as_bytes()).into_owned();
            // Violations are JSON in a header: show them as JSON.
            if text.starts_with('[') {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            } else {
                Value::String(text)
            }
        }
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::Timestamp(n) => json!(n),
        AMQPValue::FieldTable(t) => Value::Object(
            t.inner()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), amqp_json(v)))
                .collect(),
        ),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_json).collect()),
        AMQPValue::Void => Value::Null,
        other => Value::String(format!("{other:?}")),
    }
}

/// One message read from a DLQ and not yet settled.
struct Taken {
    /// Its row in `dlq_messages`.
    id: i64,
    letter: DeadLetter,
    body: Vec<u8>,
    properties: BasicProperties,
    delivery_routing_key: String,
}

/// Reads one connector's recorded dead letters (`dlq_messages`): the hub
/// consumes every DLQ into the store, so a scan never touches the broker
/// and no read is a delivery the broker counts.
struct Scan {
    store: Store,
    connector: String,
    /// Read from the store, not yet taken.
    rows: std::collections::VecDeque<crate::store::dead_letters::StoredDeadLetter>,
    taken: usize,
    /// More were waiting than the scan limit.
    more: bool,
    /// What settling one means for this operation: `replayed` or `purged`.
    settle_as: &'static str,
}

impl Scan {
    async fn next(&mut self) -> Result<Option<Taken>, OfficeError> {
        while let Some(row) = self.rows.pop_front() {
            let Some(properties) = dlq::decode_properties(&row.properties) else {
                tracing::warn!(connector = %self.connector, id = row.id, "a recorded dead letter's properties do not parse; skipped");
                continue;
            };
            let body = match row.body {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(connector = %self.connector, id = row.id, error = %error, "a recorded dead letter's body does not open; skipped");
                    continue;
                }
            };
            self.taken += 1;
            let letter =
                DeadLetter::from_message(&self.connector, &row.routing_key, &properties, &body);
            return Ok(Some(Taken {
                id: row.id,
                letter,
                body,
                properties,
                delivery_routing_key: row.routing_key,
            }));
        }
        Ok(None)
    }

    /// Settles a dead letter: replayed (after the broker confirmed its copy)
    /// or purged.
    async fn settle(&self, id: i64) -> Result<(), OfficeError> {
        self.store.settle_dead_letter(id, self.settle_as).await?;
        Ok(())
    }

    fn truncated(&self) -> bool {
        self.more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Stage;
    use crate::schema::Violation;

    fn letter(stage: &str, paths: &[&str], reason: &str, at: &str) -> DeadLetter {
        let violations = paths
            .iter()
            .map(|p| Violation {
                instance_path: "/x".into(),
                schema_path: (*p).into(),
                message: "is not valid".into(),
            })
            .collect();
        let mut letter = DeadLetter {
            id: String::new(),
            group: String::new(),
            connector: "hotline-12345".into(),
            stage: stage.into(),
            reason: reason.into(),
            message_id: Some(format!("m-{at}")),
            routing_key: "hotline-12345.ticket".into(),
            schema: Some("schemas/hotline-12345/ticket.v1.json".into()),
            violations,
            refused_at: Some(at.into()),
            replays: 0,
            content_type: None,
            amqp_type: None,
            size: 3,
            truncated: false,
            original_user: None,
        };
        letter.id = letter.identity(at.as_bytes());
        letter.group = Signature::of(&letter).id();
        letter
    }

    #[test]
    fn same_failure_same_group_whatever_the_values() {
        let a = letter(
            "schema",
            &["/properties/dh/pattern"],
            "1 violation",
            "2026-11-28T01:00:00Z",
        );
        let b = letter(
            "schema",
            &["/properties/dh/pattern"],
            "1 violation",
            "2026-11-28T02:00:00Z",
        );
        let c = letter(
            "schema",
            &["/required"],
            "1 violation",
            "2026-11-28T03:00:00Z",
        );
        assert_eq!(a.group, b.group);
        assert_ne!(a.id, b.id);
        assert_ne!(a.group, c.group);
        let groups = group(&[a.clone(), b, c]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 2);
        assert_eq!(groups[0].kinds, vec!["pattern"]);
        assert_eq!(
            groups[0].first_seen,
            a.refused_at(),
            "first seen is the earliest"
        );
        assert_eq!(groups[1].kinds, vec!["required"]);
    }

    #[test]
    fn filters_combine() {
        let a = letter(
            "schema",
            &["/required"],
            "missing field",
            "2026-11-28T01:00:00Z",
        );
        let since: DateTime<Utc> = "2026-11-28T00:30:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2026-11-28T01:00:00Z".parse().unwrap();
        let f = |filter: Filter| filter.matches(&a);
        assert!(f(Filter::default()));
        assert!(f(Filter {
            stage: Some(Stage::Schema),
            reason: Some("MISSING".into()),
            ..Filter::default()
        }));
        assert!(f(Filter {
            reason: Some("not valid".into()),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            stage: Some(Stage::Decode),
            ..Filter::default()
        }));
        assert!(f(Filter {
            since: Some(since),
            ..Filter::default()
        }));
        assert!(
            !f(Filter {
                until: Some(until),
                ..Filter::default()
            }),
            "until is exclusive"
        );
        assert!(f(Filter {
            group: Some(a.group.clone()),
            id: Some(a.id.clone()),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            connector: Some("hotline-96156".into()),
            ..Filter::default()
        }));
    }

    #[test]
    fn replay_copy_drops_reasons_and_counts_the_replay() {
        let original = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_user_id("hotline-12345".into())
            .with_content_type("application/json".into());
        let refusal = Refusal::new(Stage::Schema, "1 violation");
        let dead = dlq::properties(
            &original,
            "hotline-12345",
            "hotline-12345.ticket",
            &refusal,
            Utc::now(),
        );
        let copy = replay_properties(&dead, "hub");
        assert_eq!(copy.message_id().as_ref().unwrap().as_str(), "m-1");
        assert_eq!(copy.user_id().as_ref().unwrap().as_str(), "hub");
        assert_eq!(dlq::replays(&copy), 1);
        let headers = copy.headers().clone().unwrap();
        assert!(
            headers
                .inner()
                .keys()
                .all(|k| [dlq::REPLAYS, dlq::ORIGINAL_USER].contains(&k.as_str()))
        );
        // Judged as the original publisher, not as the hub.
        let seen = dlq::provenance(&copy, &["hub".to_owned()]);
        assert_eq!(seen.user.as_deref(), Some("hotline-12345"));
        // Refused again: the dead letter keeps the count; the next replay is 2.
        let again = dlq::refused_properties(
            &copy,
            "hotline-12345",
            "hotline-12345.ticket",
            &refusal,
            Utc::now(),
            &seen,
        );
        assert_eq!(dlq::replays(&again), 1);
        assert_eq!(dlq::replays(&replay_properties(&again, "hub")), 2);
    }
}
