//! Prometheus metrics: counters the consumer bumps as it works, and gauges
//! (queue depths, outbox backlog, cases by status) read when scraped.
//! `deploy/prometheus/` holds the alerts on them, `deploy/grafana/` the
//! dashboards.
//!
//! Each hub owns its registry (no global recorder), so that several hubs in
//! one process (the tests) keep their figures apart.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabel {
    pub connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub connector: String,
    pub stage: String,
}

/// A message type's version, as a publisher chose it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub connector: String,
    pub message_type: String,
    /// `v1`, `v2`.
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// Overdue cases: the unit that owes the step, and how far it is pressed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OverdueLabels {
    /// The lead unit (handling, sign-for) or the hotline (callback).
    pub unit: String,
    /// `sign_for`, `reminder` (催办), `supervision` (督办) or `callback`.
    pub level: String,
}

/// Escalation events recorded in the last hour: their kind and the unit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EscalationLabels {
    /// `deadline_warning`, `sign_for_overdue`, `reminder` (催办),
    /// `supervision` (督办) or `callback_overdue`.
    pub kind: String,
    /// The lead unit the case was with.
    pub unit: String,
}

/// What the hub depends on: `broker` or `database`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabel {
    pub dependency: &'static str,
}

mod process;

type LatencyFamily = Family<ConnectorLabel, Histogram, fn() -> Histogram>;

/// A step of a consumer's batch, for the time each one takes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BatchStepLabel {
    /// `wait` (from the collector taking the batch, after its linger, to
    /// the finisher starting on it: the pure stages, then the previous
    /// batch), `settled` (which refusals were dead-lettered before),
    /// `dead_letter` (publish and confirm), `record` (the transaction with
    /// its commit, and the store's late refusals), `ack`.
    pub step: &'static str,
}

type StepFamily = Family<BatchStepLabel, Histogram, fn() -> Histogram>;

fn step_histogram() -> Histogram {
    // 0.1 ms to about 13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every figure the hub exports.
pub struct Metrics {
    registry: Registry,
    pub received: Family<ConnectorLabel, Counter>,
    pub processed: Family<ConnectorLabel, Counter>,
    pub refused: Family<StageLabels, Counter>,
    pub retried: Family<ConnectorLabel, Counter>,
    pub redelivered: Family<ConnectorLabel, Counter>,
    pub latency: LatencyFamily,
    pub batch_steps: StepFamily,
    pub replayed: Family<ConnectorLabel, Counter>,
    pub purged: Family<ConnectorLabel, Counter>,
    /// Dead letters and events the broker returned: no queue for them.
    pub unroutable: Family<ConnectorLabel, Counter>,
    /// Batches released after the case store stayed unavailable too long.
    pub stalled: Family<ConnectorLabel, Counter>,
    /// Connections that ended on a delivery the client could not parse.
    pub unreadable: Family<ConnectorLabel, Counter>,
    /// Messages in a version of their type's format marked deprecated.
    pub deprecated: Family<VersionLabels, Counter>,
    pub inbound_depth: Family<ConnectorLabel, Gauge>,
    pub dlq_depth: Family<ConnectorLabel, Gauge>,
    pub outbox_backlog: Gauge,
    pub cases: Family<StatusLabel, Gauge>,
    pub overdue: Family<OverdueLabels, Gauge>,
    /// Seconds since the oldest event not yet confirmed was committed.
    pub outbox_oldest: Gauge<f64, AtomicU64>,
    pub escalations: Family<EscalationLabels, Gauge>,
    /// 1 when the hub reached it at the last scrape, else 0.
    pub up: Family<DependencyLabel, Gauge>,
    /// The process's own figures, without the `gridhub_` prefix.
    process: Registry,
    /// Serialises scrapes: gauges are refreshed, then encoded.
    pub scrape: tokio::sync::Mutex<()>,
    rates: Mutex<Rates>,
}

/// Counter totals at the previous look, to turn totals into rates.
#[derive(Default)]
struct Rates {
    at: Option<std::time::Instant>,
    totals: std::collections::HashMap<String, (u64, u64)>,
    per_second: std::collections::HashMap<String, (f64, f64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gridhub");
        let metrics = Metrics {
            received: Family::default(),
            processed: Family::default(),
            refused: Family::default(),
            retried: Family::default(),
            redelivered: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            batch_steps: Family::new_with_constructor(step_histogram),
            replayed: Family::default(),
            purged: Family::default(),
            unroutable: Family::default(),
            stalled: Family::default(),
            unreadable: Family::default(),
            deprecated: Family::default(),
            inbound_depth: Family::default(),
            dlq_depth: Family::default(),
            outbox_backlog: Gauge::default(),
            cases: Family::default(),
            overdue: Family::default(),
            outbox_oldest: Gauge::default(),
            escalations: Family::default(),
            up: Family::default(),
            process: Registry::default(),
            scrape: tokio::sync::Mutex::new(()),
            rates: Mutex::new(Rates::default()),
            registry: Registry::default(),
        };
        registry.register(
            "messages_received",
            "Deliveries taken from a connector's inbound queue",
            metrics.received.clone(),
        );
        registry.register(
            "messages_processed",
            "Messages recorded in the case store (including recognised duplicates)",
            metrics.processed.clone(),
        );
        registry.register(
            "messages_refused",
            "Messages dead-lettered, by the stage that refused them",
            metrics.refused.clone(),
        );
        registry.register(
            "store_retries",
            "Times a batch was held and retried because the case store was unavailable",
            metrics.retried.clone(),
        );
        registry.register(
            "messages_redelivered",
            "Deliveries the broker marked as redelivered",
            metrics.redelivered.clone(),
        );
        registry.register(
            "processing_seconds",
            "Time from taking a delivery to acknowledging it",
            metrics.latency.clone(),
        );
        registry.register(
            "batch_step_seconds",
            "Time each step of a consumer's batch takes, per batch",
            metrics.batch_steps.clone(),
        );
        registry.register(
            "dlq_replayed",
            "Dead letters republished by operators",
            metrics.replayed.clone(),
        );
        registry.register(
            "dlq_purged",
            "Dead letters purged by operators",
            metrics.purged.clone(),
        );
        registry.register(
            "unroutable",
            "Dead letters (by connector) and events (by destination) the broker returned because no queue took them; retried after the topology is declared again",
            metrics.unroutable.clone(),
        );
        registry.register(
            "store_stalls",
            "Batches given back to the broker because the case store stayed unavailable past store_hold_secs",
            metrics.stalled.clone(),
        );
        registry.register(
            "unreadable_deliveries",
            "Connections of a connector that ended on a delivery the AMQP client could not parse (a property that is not UTF-8); the connector is then quarantined and the message dead-lettered",
            metrics.unreadable.clone(),
        );
        registry.register(
            "deprecated_messages",
            "Messages received in a version of their type's format marked deprecated in its connector.toml",
            metrics.deprecated.clone(),
        );
        registry.register(
            "inbound_queue_depth",
            "Messages ready in a connector's inbound queue",
            metrics.inbound_depth.clone(),
        );
        registry.register(
            "dlq_depth",
            "Messages waiting in a connector's dead-letter queue",
            metrics.dlq_depth.clone(),
        );
        registry.register(
            "outbox_backlog",
            "Case events committed but not yet confirmed by the broker",
            metrics.outbox_backlog.clone(),
        );
        registry.register("cases", "Cases by status", metrics.cases.clone());
        registry.register(
            "cases_overdue",
            "Open cases past a deadline, by the unit that owes the step and the escalation level",
            metrics.overdue.clone(),
        );
        registry.register(
            "outbox_oldest_unsent_seconds",
            "Age of the oldest case event not yet confirmed by the broker (0 when none waits)",
            metrics.outbox_oldest.clone(),
        );
        registry.register(
            "case_escalations_last_hour",
            "Escalation events of the last hour (deadline warnings, sign-for overdue, reminders, supervisions, callbacks overdue), by kind and lead unit",
            metrics.escalations.clone(),
        );
        registry.register(
            "dependency_up",
            "Whether the hub reached the broker or the database at this scrape (1) or not (0)",
            metrics.up.clone(),
        );
        let mut process = Registry::default();
        process.register_collector(Box::new(process::Process));
        Metrics {
            registry,
            process,
            ..metrics
        }
    }

    /// Sets whether `dependency` answered this scrape.
    pub fn up(&self, dependency: &'static str, up: bool) {
        self.up
            .get_or_create(&DependencyLabel { dependency })
            .set(i64::from(up));
    }

    /// Records how long a step of a batch took.
    pub fn batch_step(&self, step: &'static str, took: std::time::Duration) {
        self.batch_steps
            .get_or_create(&BatchStepLabel { step })
            .observe(took.as_secs_f64());
    }

    pub fn label(connector: &str) -> ConnectorLabel {
        ConnectorLabel {
            connector: connector.to_owned(),
        }
    }

    /// One message in a deprecated version of its type's format.
    pub fn deprecated(&self, connector: &str, message_type: &str, version: u32) {
        self.deprecated
            .get_or_create(&VersionLabels {
                connector: connector.to_owned(),
                message_type: message_type.to_owned(),
                version: format!("v{version}"),
            })
            .inc();
    }

    pub fn refused(&self, connector: &str, stage: &str) {
        self.refused
            .get_or_create(&StageLabels {
                connector: connector.to_owned(),
                stage: stage.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition of everything.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut text = String::new();
        let _ = encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &self.process))
            .and_then(|()| encode_eof(&mut text));
        text
    }

    /// Messages received and processed per second for each connector, over
    /// the time since the previous call (at least 2 s apart, else the last
    /// figures again).
    pub fn rates(&self, connectors: &[String]) -> std::collections::HashMap<String, (f64, f64)> {
        let mut rates = self.rates.lock().expect("rates lock");
        let now = std::time::Instant::now();
        let elapsed = rates.at.map(|at| now.duration_since(at).as_secs_f64());
        if elapsed.is_some_and(|e| e < 2.0) {
            return rates.per_second.clone();
        }
        let mut totals = std::collections::HashMap::new();
        let mut per_second = std::collections::HashMap::new();
        for connector in connectors {
            let label = Metrics::label(connector);
            let received = self.received.get_or_create(&label).get();
            let processed = self.processed.get_or_create(&label).get();
            if let (Some(elapsed), Some((r0, p0))) = (elapsed, rates.totals.get(connector)) {
                per_second.insert(
                    connector.clone(),
                    (
                        received.saturating_sub(*r0) as f64 / elapsed,
                        processed.saturating_sub(*p0) as f64 / elapsed,
                    ),
                );
            } else {
                per_second.insert(connector.clone(), (0.0, 0.0));
            }
            totals.insert(connector.clone(), (received, processed));
        }
        rates.at = Some(now);
        rates.totals = totals;
        rates.per_second = per_second.clone();
        per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family() {
        let metrics = Metrics::new();
        metrics.received.get_or_create(&Metrics::label("a")).inc();
        metrics.refused("a", "schema");
        metrics
            .latency
            .get_or_create(&Metrics::label("a"))
            .observe(0.01);
        let text = metrics.encode();
        assert!(
            text.contains("gridhub_messages_received_total{connector=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gridhub_messages_refused_total{connector=\"a\",stage=\"schema\"} 1")
        );
        assert!(text.contains("gridhub_processing_seconds_bucket"));
        assert!(text.contains("gridhub_outbox_backlog"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        if cfg!(target_os = "linux") {
            assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
            assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
        }
    }
}
