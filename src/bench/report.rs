//! The bench's figures: a table for people, JSON for files and CI.

use std::collections::BTreeMap;

use serde::Serialize;

use super::BenchArgs;
use super::broker::Published;
use super::cpu::{CpuUse, Part};
use super::mix::Planned;

/// Goals of issue 5 for this machine class (2 cores shared by the broker,
/// the database and the hub).
pub const GOAL_RATIO: f64 = 0.5;
pub const GOAL_P99_MS: f64 = 50.0;
pub const GOAL_RSS_MB: f64 = 150.0;
pub const GOAL_POPULATION: u64 = 1_800_000;
pub const GOAL_POPULATION_SECS: f64 = 300.0;
/// Offered load, as a share of the hub's full speed, past which a latency
/// run measures a queue: a message arriving while the hub is busy waits
/// for the messages before it. The full speed is measured with full
/// batches; at a fixed load the batches are small and each message costs
/// more, so the queue starts well before 100% (docs/PERFORMANCE.md).
const NEAR_FULL_SPEED: f64 = 0.5;

#[derive(Debug, Serialize)]
pub struct Report {
    pub gridhub_version: &'static str,
    pub started_at: String,
    pub machine: Machine,
    pub mix: String,
    pub invalid_fraction: f64,
    pub planned: BTreeMap<String, Planned>,
    pub ceiling: Option<Ceiling>,
    pub throughput: Option<Throughput>,
    /// Hub throughput over the ceiling's, both measured in this run.
    pub ratio: Option<f64>,
    pub latency: Option<Latency>,
    /// The latency run's offered load over the hub's full speed measured in
    /// the throughput run of the same mix.
    pub latency_load_of_full_speed: Option<f64>,
    pub hub_peak_rss_bytes: Option<u64>,
    /// The most the hub's path could carry at the CPU a message it cost in
    /// the throughput run, given the machine's CPUs.
    pub cpu_bound: Option<CpuBound>,
    pub checks: Checks,
    pub goals: Vec<Goal>,
    pub notes: Vec<String>,
}

/// Upper bounds on the hub's rate from what its path cost in CPU.
#[derive(Debug, Serialize)]
pub struct CpuBound {
    /// With every CPU given to the broker, the database and the hub, at
    /// their cost a message in the throughput run.
    pub messages_per_sec: f64,
    pub ratio: f64,
    /// With every CPU given to the broker alone.
    pub broker_messages_per_sec: f64,
    pub broker_ratio: f64,
}

impl CpuBound {
    fn new(cpus: usize, ceiling_per_sec: f64, cpu: &CpuUse) -> Option<CpuBound> {
        let broker = cpu.ms(Part::Broker).filter(|ms| *ms > 0.0)?;
        let path = broker + cpu.ms(Part::Database)? + cpu.ms(Part::Hub)?;
        let cap = |ms: f64| cpus as f64 * 1000.0 / ms;
        Some(CpuBound {
            messages_per_sec: cap(path),
            ratio: cap(path) / ceiling_per_sec,
            broker_messages_per_sec: cap(broker),
            broker_ratio: cap(broker) / ceiling_per_sec,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub kernel: String,
    pub load_average: String,
}

#[derive(Debug, Serialize)]
pub struct Ceiling {
    pub messages: u64,
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub publish_messages_per_sec: f64,
    pub mean_body_bytes: f64,
    /// The machine's CPU from the first publish to the last ack.
    pub cpu: Option<CpuUse>,
}

impl Ceiling {
    pub fn new(messages: u64, sent: &Published, last_ack_micros: i64) -> Ceiling {
        let seconds = secs(last_ack_micros - sent.first_micros);
        Ceiling {
            messages,
            seconds,
            messages_per_sec: messages as f64 / seconds,
            publish_messages_per_sec: messages as f64
                / secs(sent.last_confirm_micros - sent.first_micros),
            mean_body_bytes: sent.bytes as f64 / messages.max(1) as f64,
            cpu: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Throughput {
    pub messages: u64,
    /// First publish to the last inbox row's time.
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub publish_messages_per_sec: f64,
    /// Records the run's valid population messages carried.
    pub records: u64,
    pub records_per_sec: f64,
    /// Every valid message of the run shared records: a population sync.
    pub population_only: bool,
    /// Time 1.8 million records would take: at this run's record rate when
    /// it was a population sync, else at its message rate (one record a
    /// message, the cheapest a department could send them).
    pub projected_population_secs: f64,
    /// CPU time of the hub process (user and system) from the first publish
    /// until its events were relayed, in seconds, and per message in
    /// milliseconds: what the hub itself costs, whatever the machine's load.
    pub hub_cpu_seconds: Option<f64>,
    pub hub_cpu_ms_per_message: Option<f64>,
    /// The machine's CPU over the same span, by process.
    pub cpu: Option<CpuUse>,
}

impl Throughput {
    pub fn set_cpu(&mut self, cpu: CpuUse) {
        self.hub_cpu_seconds = cpu.seconds_by_part.get(&Part::Hub).copied();
        self.hub_cpu_ms_per_message = cpu.ms(Part::Hub);
        self.cpu = Some(cpu);
    }

    pub fn new(
        messages: u64,
        sent: &Published,
        last_commit_micros: i64,
        records: u64,
        population_only: bool,
    ) -> Throughput {
        let seconds = secs(last_commit_micros - sent.first_micros);
        let rate = messages as f64 / seconds;
        let records_per_sec = records as f64 / seconds;
        let per_sec = if population_only {
            records_per_sec
        } else {
            rate
        };
        Throughput {
            messages,
            seconds,
            messages_per_sec: rate,
            publish_messages_per_sec: messages as f64
                / secs(sent.last_confirm_micros - sent.first_micros),
            records,
            records_per_sec,
            population_only,
            projected_population_secs: GOAL_POPULATION as f64 / per_sec.max(f64::MIN_POSITIVE),
            hub_cpu_seconds: None,
            hub_cpu_ms_per_message: None,
            cpu: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub offered_per_sec: f64,
    pub achieved_per_sec: f64,
    pub messages: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The machine's CPU from the first publish to the last inbox row.
    pub cpu: Option<CpuUse>,
}

impl Latency {
    pub fn new(offered: f64, sent: &Published, mut micros: Vec<i64>) -> Latency {
        micros.sort_unstable();
        let n = sent.at_micros.len() as f64;
        let span = sent.at_micros.last().copied().unwrap_or_default()
            - sent.at_micros.first().copied().unwrap_or_default();
        Latency {
            offered_per_sec: offered,
            achieved_per_sec: if span > 0 {
                (n - 1.0) / secs(span)
            } else {
                0.0
            },
            messages: micros.len() as u64,
            p50_ms: percentile(&micros, 0.50),
            p95_ms: percentile(&micros, 0.95),
            p99_ms: percentile(&micros, 0.99),
            max_ms: micros
                .last()
                .map(|m| *m as f64 / 1000.0)
                .unwrap_or_default(),
            cpu: None,
        }
    }
}

/// Nearest-rank percentile, in milliseconds.
fn percentile(sorted_micros: &[i64], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted_micros.len() as f64).ceil() as usize;
    sorted_micros[rank.clamp(1, sorted_micros.len()) - 1] as f64 / 1000.0
}

fn secs(micros: i64) -> f64 {
    (micros.max(1)) as f64 / 1e6
}

/// Nothing lost, nothing doubled.
#[derive(Debug, Default, Serialize)]
pub struct Checks {
    pub ok: bool,
    pub sent: u64,
    pub expected_refused: u64,
    pub expected_cases: u64,
    /// Inbox rows by outcome.
    pub inbox: BTreeMap<String, u64>,
    pub duplicate_message_ids: u64,
    pub cases: u64,
    pub dead_letter_records: u64,
    pub dlq_messages: u64,
    pub outbox_rows: u64,
    pub events_queued: u64,
    /// Records the valid population messages carried.
    pub records_sent: u64,
    /// Records in the events that forwarded them (counted once per message,
    /// whatever the number of destinations).
    pub records_forwarded: u64,
    pub problems: Vec<String>,
}

impl Checks {
    pub fn judge(&mut self) {
        let mut problems = Vec::new();
        let inbox: u64 = self.inbox.values().sum();
        let refused = self.inbox.get("refused").copied().unwrap_or_default();
        let opened = self.inbox.get("case_opened").copied().unwrap_or_default();
        if inbox != self.sent {
            problems.push(format!(
                "inbox holds {inbox} messages, {} were sent",
                self.sent
            ));
        }
        if self.records_forwarded != self.records_sent {
            problems.push(format!(
                "{} records forwarded, {} were sent",
                self.records_forwarded, self.records_sent
            ));
        }
        if self.duplicate_message_ids > 0 {
            problems.push(format!(
                "{} message_ids recorded more than once",
                self.duplicate_message_ids
            ));
        }
        if refused != self.expected_refused {
            problems.push(format!(
                "{refused} refused in the inbox, {} invalid were sent",
                self.expected_refused
            ));
        }
        if self.dead_letter_records != self.expected_refused {
            problems.push(format!(
                "{} dead-letter records, {} invalid were sent",
                self.dead_letter_records, self.expected_refused
            ));
        }
        if self.dlq_messages != self.expected_refused {
            problems.push(format!(
                "{} messages in the DLQs, {} invalid were sent",
                self.dlq_messages, self.expected_refused
            ));
        }
        if self.cases != self.expected_cases || opened != self.expected_cases {
            problems.push(format!(
                "{} cases ({opened} opened per the inbox), {} valid case-opening messages were sent",
                self.cases, self.expected_cases
            ));
        }
        if self.events_queued != self.outbox_rows {
            problems.push(format!(
                "{} events in the out queues, {} outbox rows",
                self.events_queued, self.outbox_rows
            ));
        }
        self.ok = problems.is_empty();
        self.problems.extend(problems);
        self.ok &= self.problems.is_empty();
    }
}

#[derive(Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: Option<bool>,
}

impl Report {
    pub fn new(args: &BenchArgs, mix: String, planned: &BTreeMap<String, Planned>) -> Report {
        Report {
            gridhub_version: env!("CARGO_PKG_VERSION"),
            started_at: chrono::Utc::now().to_rfc3339(),
            machine: Machine {
                cpus: std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default(),
                load_average: std::fs::read_to_string("/proc/loadavg")
                    .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            },
            mix,
            invalid_fraction: args.invalid,
            planned: planned.clone(),
            ceiling: None,
            throughput: None,
            ratio: None,
            latency: None,
            latency_load_of_full_speed: None,
            hub_peak_rss_bytes: None,
            cpu_bound: None,
            checks: Checks::default(),
            goals: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn evaluate_goals(&mut self) {
        if let (Some(ceiling), Some(throughput)) = (&self.ceiling, &self.throughput) {
            self.ratio = Some(throughput.messages_per_sec / ceiling.messages_per_sec);
            self.cpu_bound = throughput
                .cpu
                .as_ref()
                .and_then(|cpu| CpuBound::new(self.machine.cpus, ceiling.messages_per_sec, cpu));
        }
        let mut goals = Vec::new();
        goals.push(Goal {
            goal: format!("hub/ceiling >= {GOAL_RATIO:.2}"),
            measured: self
                .ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "-".into()),
            met: self.ratio.map(|r| r >= GOAL_RATIO),
        });
        goals.push(Goal {
            goal: format!("p99 <= {GOAL_P99_MS} ms at 1000 msg/s"),
            measured: self
                .latency
                .as_ref()
                .map(|l| format!("{:.1} ms at {} msg/s", l.p99_ms, l.offered_per_sec))
                .unwrap_or_else(|| "-".into()),
            met: self
                .latency
                .as_ref()
                .filter(|l| (l.offered_per_sec - 1000.0).abs() < f64::EPSILON)
                .map(|l| l.p99_ms <= GOAL_P99_MS),
        });
        let rss_mb = self.hub_peak_rss_bytes.map(|b| b as f64 / 1_048_576.0);
        goals.push(Goal {
            goal: format!("hub peak RSS <= {GOAL_RSS_MB} MB"),
            measured: rss_mb
                .map(|m| format!("{m:.1} MB"))
                .unwrap_or_else(|| "-".into()),
            met: rss_mb.map(|m| m <= GOAL_RSS_MB),
        });
        goals.push(Goal {
            goal: format!("{GOAL_POPULATION} records in <= {GOAL_POPULATION_SECS} s"),
            measured: self
                .throughput
                .as_ref()
                .map(|t| {
                    if t.population_only && t.records >= GOAL_POPULATION {
                        format!("{:.0} s measured ({} records)", t.seconds, t.records)
                    } else if t.population_only {
                        format!(
                            "{:.0} s projected from {} records",
                            t.projected_population_secs, t.records
                        )
                    } else {
                        format!("{:.0} s at a record a message", t.projected_population_secs)
                    }
                })
                .unwrap_or_else(|| "-".into()),
            // Judged on a population sync only: a department sends pages.
            met: self
                .throughput
                .as_ref()
                .filter(|t| t.population_only)
                .map(|t| t.projected_population_secs <= GOAL_POPULATION_SECS),
        });
        if self.throughput.as_ref().is_some_and(|t| !t.population_only) {
            self.notes.push(
                "the population goal is judged on a sync, not on this mix: \
                 --messages 1800 --latency-messages 0 --no-ceiling --invalid 0 --page-rows 1000 \
                 --mix dept-health.resident-population=1,dept-police.floating-population=1"
                    .to_owned(),
            );
        }
        self.goals = goals;
        if let (Some(bound), Some(cpu)) = (
            &self.cpu_bound,
            self.throughput.as_ref().and_then(|t| t.cpu.as_ref()),
        ) && self.ratio.is_some_and(|r| r < GOAL_RATIO)
        {
            let ms = |part| cpu.ms(part).unwrap_or_default();
            self.notes.push(format!(
                "in the throughput run a message cost the broker {:.3} ms of CPU, the database \
                 {:.3} ms and the hub {:.3} ms: at that cost {} cpus carry at most {:.0} msg/s \
                 ({:.2} of the ceiling), and the broker's part alone allows at most {:.0} msg/s ({:.2})",
                ms(Part::Broker),
                ms(Part::Database),
                ms(Part::Hub),
                self.machine.cpus,
                bound.messages_per_sec,
                bound.ratio,
                bound.broker_messages_per_sec,
                bound.broker_ratio,
            ));
        }
        self.latency_load_of_full_speed = match (&self.latency, &self.throughput) {
            (Some(l), Some(t)) if t.messages_per_sec > 0.0 => {
                Some(l.offered_per_sec / t.messages_per_sec)
            }
            _ => None,
        };
        if let Some(load) = self
            .latency_load_of_full_speed
            .filter(|load| *load > NEAR_FULL_SPEED)
        {
            self.notes.push(format!(
                "the latency run offered {:.0}% of the hub's full speed in this run: \
                 at that load messages queue, and the percentiles measure the queue \
                 more than the hub (this machine is too busy or too slow for the load)",
                load * 100.0
            ));
        }
    }

    pub fn print(&self) {
        println!();
        println!(
            "gridhub bench  mix {}  invalid {:.1}%",
            self.mix,
            self.invalid_fraction * 100.0
        );
        println!(
            "machine: {} cpus, load {} at start",
            self.machine.cpus, self.machine.load_average
        );
        println!();
        println!(
            "{:<34} {:>12} {:>10} {:>14}",
            "RUN", "MESSAGES", "SECONDS", "MSG/S"
        );
        if let Some(c) = &self.ceiling {
            println!(
                "{:<34} {:>12} {:>10.2} {:>14.0}",
                "ceiling (broker only)", c.messages, c.seconds, c.messages_per_sec
            );
        }
        if let Some(t) = &self.throughput {
            println!(
                "{:<34} {:>12} {:>10.2} {:>14.0}",
                "hub end to end", t.messages, t.seconds, t.messages_per_sec
            );
            if t.records > 0 {
                println!(
                    "{:<34} {:>12} {:>10.2} {:>14.0}",
                    "  population records in it", t.records, t.seconds, t.records_per_sec
                );
            }
        }
        if let Some(ratio) = self.ratio {
            println!(
                "{:<34} {:>12} {:>10} {:>14.2}",
                "hub / ceiling", "", "", ratio
            );
        }
        if let Some(l) = &self.latency {
            println!();
            println!(
                "latency at {} msg/s offered ({:.0} achieved, {} messages): p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                l.offered_per_sec,
                l.achieved_per_sec,
                l.messages,
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                l.max_ms
            );
        }
        if let Some(rss) = self.hub_peak_rss_bytes {
            println!("hub peak RSS: {:.1} MB", rss as f64 / 1_048_576.0);
        }
        if let Some((seconds, per_message)) = self
            .throughput
            .as_ref()
            .and_then(|t| Some((t.hub_cpu_seconds?, t.hub_cpu_ms_per_message?)))
        {
            println!(
                "hub CPU in the throughput run (its events relayed): {seconds:.1} s, {per_message:.3} ms a message"
            );
        }
        self.print_cpu();
        println!();
        let c = &self.checks;
        println!(
            "checks: {}  sent {}  inbox {:?}  cases {}/{}  dead letters {} (DLQ {})  duplicates {}  events {}/{}  records {}/{}",
            if c.ok { "ok" } else { "FAILED" },
            c.sent,
            c.inbox,
            c.cases,
            c.expected_cases,
            c.dead_letter_records,
            c.dlq_messages,
            c.duplicate_message_ids,
            c.events_queued,
            c.outbox_rows,
            c.records_forwarded,
            c.records_sent
        );
        for problem in &c.problems {
            println!("  problem: {problem}");
        }
        println!();
        println!("{:<40} {:<40} MET", "GOAL", "MEASURED");
        for goal in &self.goals {
            let met = match goal.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            println!("{:<40} {:<40} {met}", goal.goal, goal.measured);
        }
        for note in &self.notes {
            println!("note: {note}");
        }
    }

    /// Where the machine's CPU went in each run, a message.
    fn print_cpu(&self) {
        let rows = [
            (
                "ceiling (broker only)".to_owned(),
                self.ceiling.as_ref().and_then(|c| c.cpu.as_ref()),
            ),
            (
                "hub end to end".to_owned(),
                self.throughput.as_ref().and_then(|t| t.cpu.as_ref()),
            ),
            (
                self.latency
                    .as_ref()
                    .map(|l| format!("latency at {} msg/s", l.offered_per_sec))
                    .unwrap_or_default(),
                self.latency.as_ref().and_then(|l| l.cpu.as_ref()),
            ),
        ];
        if rows.iter().all(|(_, cpu)| cpu.is_none()) {
            return;
        }
        println!();
        print!("{:<34}", "CPU, ms a message");
        for part in Part::ALL {
            print!(" {:>9}", part.label().to_uppercase());
        }
        println!(" {:>9} {:>9} {:>9}", "OTHER", "MACHINE", "BUSY");
        let cell = |ms: Option<f64>| ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.3}"));
        for (label, cpu) in rows {
            let Some(cpu) = cpu else { continue };
            print!("{label:<34}");
            for part in Part::ALL {
                print!(" {:>9}", cell(cpu.ms(part)));
            }
            println!(
                " {:>9} {:>9} {:>9}",
                cell(cpu.other_ms_per_message),
                cell(cpu.machine_ms()),
                cpu.machine_busy_share
                    .map_or_else(|| "-".to_owned(), |b| format!("{:.0}%", b * 100.0))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn report_with(full_speed: f64, offered: f64) -> Report {
        use clap::Parser as _;
        let args = Cli::parse_from(["bench"]).bench;
        let mut report = Report::new(&args, "mix".into(), &BTreeMap::new());
        report.throughput = Some(Throughput {
            messages: 30_000,
            seconds: 30_000.0 / full_speed,
            messages_per_sec: full_speed,
            publish_messages_per_sec: full_speed,
            records: 0,
            records_per_sec: 0.0,
            population_only: false,
            projected_population_secs: 1e9,
            hub_cpu_seconds: None,
            hub_cpu_ms_per_message: None,
            cpu: None,
        });
        report.latency = Some(Latency {
            offered_per_sec: offered,
            achieved_per_sec: offered,
            messages: 10_000,
            p50_ms: 600.0,
            p95_ms: 1100.0,
            p99_ms: 1300.0,
            max_ms: 1400.0,
            cpu: None,
        });
        report.evaluate_goals();
        report
    }

    #[test]
    fn a_latency_run_near_the_hubs_full_speed_is_called_out() {
        let slow = report_with(1163.0, 1000.0);
        let load = slow.latency_load_of_full_speed.unwrap();
        assert!((load - 0.86).abs() < 0.01, "{load}");
        let queue = |r: &Report| {
            r.notes
                .iter()
                .filter(|n| n.contains("of the hub's full speed"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(queue(&slow).len(), 1);
        assert!(queue(&slow)[0].contains("86% of the hub's full speed"));
        // Still judged: the goal is the p99 at 1,000/s on this machine.
        assert_eq!(slow.goals[1].met, Some(false));

        let fast = report_with(2700.0, 1000.0);
        assert!(queue(&fast).is_empty());
    }

    #[test]
    fn the_population_goal_is_judged_on_a_sync_only() {
        let mixed = report_with(3000.0, 1000.0);
        assert_eq!(mixed.goals[3].met, None);
        assert!(mixed.notes.iter().any(|n| n.contains("--page-rows")));

        let mut sync = report_with(3000.0, 1000.0);
        let throughput = sync.throughput.as_mut().unwrap();
        throughput.population_only = true;
        throughput.projected_population_secs = 80.0;
        sync.notes.clear();
        sync.evaluate_goals();
        assert_eq!(sync.goals[3].met, Some(true));
        assert!(!sync.notes.iter().any(|n| n.contains("--page-rows")));
    }

    #[test]
    fn the_cpu_a_message_bounds_the_ratio() {
        let ms = BTreeMap::from([(Part::Broker, 0.4), (Part::Database, 0.3), (Part::Hub, 0.3)]);
        let used = CpuUse {
            messages: 1000,
            seconds: 1.0,
            seconds_by_part: ms.clone(),
            ms_per_message: ms,
            other_ms_per_message: Some(0.0),
            machine_busy_share: Some(1.0),
        };
        // 2 cpus, 1 ms a message: 2,000 msg/s, a fifth of a 10,000 msg/s
        // ceiling; the broker's 0.4 ms alone: 5,000 msg/s, half of it.
        let bound = CpuBound::new(2, 10_000.0, &used).unwrap();
        assert!((bound.messages_per_sec - 2000.0).abs() < 1e-6);
        assert!((bound.ratio - 0.2).abs() < 1e-9);
        assert!((bound.broker_messages_per_sec - 5000.0).abs() < 1e-6);
        assert!((bound.broker_ratio - 0.5).abs() < 1e-9);

        let mut report = report_with(2000.0, 1000.0);
        report.ceiling = Some(Ceiling {
            messages: 30_000,
            seconds: 3.0,
            messages_per_sec: 10_000.0,
            publish_messages_per_sec: 10_000.0,
            mean_body_bytes: 1000.0,
            cpu: None,
        });
        report.throughput.as_mut().unwrap().set_cpu(used);
        report.evaluate_goals();
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("at most 2000 msg/s (0.20 of the ceiling)"))
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let micros: Vec<i64> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(percentile(&micros, 0.50), 50.0);
        assert_eq!(percentile(&micros, 0.99), 99.0);
        assert_eq!(percentile(&[7000], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
