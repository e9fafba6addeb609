//! Where the machine's CPU went during a run: RabbitMQ, PostgreSQL, the hub
//! under test, the bench itself and everything else, read from `/proc`
//! before and after each run. On a machine shared by the three, a rate is
//! only read right beside what each of them cost a message.
//!
//! RabbitMQ is the Erlang VM (`beam.smp`), PostgreSQL every `postgres`
//! process (with the time of the backends it has reaped); a broker or
//! database on another machine or outside this machine's process table is
//! not seen, and its share is reported as unknown.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// The processes whose CPU is told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Broker,
    Database,
    Hub,
    Bench,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Broker, Part::Database, Part::Hub, Part::Bench];

    pub fn label(self) -> &'static str {
        match self {
            Part::Broker => "broker",
            Part::Database => "database",
            Part::Hub => "hub",
            Part::Bench => "bench",
        }
    }
}

/// CPU times at one instant, in seconds.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    parts: BTreeMap<Part, f64>,
    /// Busy time of all the machine's CPUs (`/proc/stat`).
    machine_busy: Option<f64>,
}

/// What one process's `/proc/<pid>/stat` says.
#[derive(Debug, PartialEq)]
struct ProcStat<'a> {
    comm: &'a str,
    /// utime + stime, clock ticks.
    own: u64,
    /// cutime + cstime: children waited for, clock ticks.
    children: u64,
}

fn parse_stat(stat: &str) -> Option<ProcStat<'_>> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    // After the command name: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        comm,
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// Busy clock ticks of all CPUs from the first line of `/proc/stat`: user,
/// nice, system, irq, softirq and steal (guest time is within user).
fn parse_machine(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let at = |n: usize| ticks.get(n).copied().unwrap_or_default();
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_sec > 0 { per_sec as f64 } else { 100.0 }
}

impl Snapshot {
    /// Reads every process now. `hub` is the hub under test, if it runs.
    pub fn take(hub: Option<i32>) -> Snapshot {
        let at = Instant::now();
        let per_sec = ticks_per_sec();
        let me = std::process::id() as i32;
        let mut ticks: BTreeMap<Part, u64> = BTreeMap::new();
        let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        for entry in entries {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            // A process may exit between the listing and the read.
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(stat) = parse_stat(&text) else {
                continue;
            };
            let part = if Some(pid) == hub {
                Part::Hub
            } else if pid == me {
                Part::Bench
            } else if stat.comm == "beam.smp" {
                Part::Broker
            } else if stat.comm == "postgres" {
                Part::Database
            } else {
                continue;
            };
            // Reaped children count with their parent: PostgreSQL's
            // postmaster keeps the time of the backends that have exited.
            *ticks.entry(part).or_default() += stat.own + stat.children;
        }
        Snapshot {
            at,
            parts: ticks
                .into_iter()
                .map(|(part, t)| (part, t as f64 / per_sec))
                .collect(),
            machine_busy: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| parse_machine(&s))
                .map(|t| t as f64 / per_sec),
        }
    }

    /// The CPU used from `before` to this snapshot, for `messages` messages,
    /// on `cpus` CPUs.
    pub fn since(&self, before: &Snapshot, messages: u64, cpus: usize) -> CpuUse {
        let seconds = self.at.saturating_duration_since(before.at).as_secs_f64();
        let mut parts = BTreeMap::new();
        for part in Part::ALL {
            if let (Some(after), Some(first)) = (self.parts.get(&part), before.parts.get(&part)) {
                parts.insert(part, (after - first).max(0.0));
            }
        }
        let busy = match (self.machine_busy, before.machine_busy) {
            (Some(after), Some(first)) => Some((after - first).max(0.0)),
            _ => None,
        };
        CpuUse::new(parts, busy, messages, seconds, cpus)
    }
}

/// CPU seconds of each part over a run, and per message.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub messages: u64,
    /// Wall time the CPU was counted over.
    pub seconds: f64,
    /// CPU seconds of each part found on this machine.
    pub seconds_by_part: BTreeMap<Part, f64>,
    /// Milliseconds of CPU a message, by part.
    pub ms_per_message: BTreeMap<Part, f64>,
    /// Busy time of the machine not in any part (other processes, the
    /// kernel's interrupts), in milliseconds a message.
    pub other_ms_per_message: Option<f64>,
    /// Busy time of all CPUs over their capacity in the run, 0 to 1.
    pub machine_busy_share: Option<f64>,
}

impl CpuUse {
    fn new(
        parts: BTreeMap<Part, f64>,
        busy: Option<f64>,
        messages: u64,
        seconds: f64,
        cpus: usize,
    ) -> CpuUse {
        let per = |s: f64| s * 1000.0 / messages.max(1) as f64;
        let counted: f64 = parts.values().sum();
        CpuUse {
            messages,
            seconds,
            ms_per_message: parts.iter().map(|(p, s)| (*p, per(*s))).collect(),
            seconds_by_part: parts,
            other_ms_per_message: busy.map(|b| per((b - counted).max(0.0))),
            machine_busy_share: busy
                .filter(|_| seconds > 0.0 && cpus > 0)
                .map(|b| (b / (seconds * cpus as f64)).min(1.0)),
        }
    }

    pub fn ms(&self, part: Part) -> Option<f64> {
        self.ms_per_message.get(&part).copied()
    }

    /// The machine's busy time a message, in milliseconds.
    pub fn machine_ms(&self) -> Option<f64> {
        Some(self.ms_per_message.values().sum::<f64>() + self.other_ms_per_message?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_stat_line_with_spaces_and_parentheses_in_its_name() {
        let line = "4242 (postgres: a (b) c) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    150 25 7 3 20 0 1 0 100 1000 10";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                comm: "postgres: a (b) c",
                own: 175,
                children: 10
            })
        );
        assert_eq!(parse_stat("4242 (beam.smp) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_machine_busy_time_leaves_idle_and_iowait_out() {
        let stat = "cpu  100 5 50 1000 40 3 2 1 0 0\ncpu0 50 2 25 500 20 1 1 0 0 0\n";
        assert_eq!(parse_machine(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(parse_machine("intr 1 2 3"), None);
    }

    #[test]
    fn use_per_message_and_the_rest_of_the_machine() {
        let start = Instant::now();
        let before = Snapshot {
            at: start,
            parts: BTreeMap::from([(Part::Broker, 10.0), (Part::Hub, 1.0), (Part::Bench, 2.0)]),
            machine_busy: Some(100.0),
        };
        let after = Snapshot {
            at: start + std::time::Duration::from_millis(2500),
            parts: BTreeMap::from([
                (Part::Broker, 12.0),
                (Part::Hub, 2.5),
                (Part::Bench, 2.5),
                // Not seen before: not counted.
                (Part::Database, 9.0),
            ]),
            machine_busy: Some(105.0),
        };
        let used = after.since(&before, 1000, 2);
        assert_eq!(used.ms(Part::Broker), Some(2.0));
        assert_eq!(used.ms(Part::Hub), Some(1.5));
        assert_eq!(used.ms(Part::Bench), Some(0.5));
        assert_eq!(used.ms(Part::Database), None);
        assert_eq!(used.other_ms_per_message, Some(1.0));
        assert_eq!(used.machine_ms(), Some(5.0));
        assert_eq!(used.machine_busy_share, Some(1.0));
    }

    #[test]
    fn this_process_is_seen_as_the_bench() {
        let snapshot = Snapshot::take(None);
        assert!(snapshot.parts.contains_key(&Part::Bench));
        assert!(snapshot.machine_busy.is_some());
    }
}
