//! The process's own figures under the names Prometheus' client libraries
//! give them (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! ...), read from `/proc/self` at each scrape. Nothing where `/proc` is
//! missing (not Linux).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub(super) struct Process;

/// What `/proc/self/stat` says, in seconds and bytes.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: f64,
    /// Since the machine booted.
    started_after_boot: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
}

fn parse_stat(stat: &str, ticks_per_sec: f64, page_bytes: f64) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may hold anything:
    // count fields after its closing one. State is field 3, utime 14,
    // stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (pages).
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_sec,
        threads: field(20)?,
        started_after_boot: field(22)? / ticks_per_sec,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_bytes,
    })
}

/// The soft limit on open files from `/proc/self/limits`.
fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn sysconf(name: libc::c_int, otherwise: f64) -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let value = unsafe { libc::sysconf(name) };
    if value > 0 { value as f64 } else { otherwise }
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let ticks = sysconf(libc::_SC_CLK_TCK, 100.0);
        let page = sysconf(libc::_SC_PAGESIZE, 4096.0);
        let Some(stat) = read("/proc/self/stat").and_then(|s| parse_stat(&s, ticks, page)) else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stat.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time the process spent, in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let mut gauge = |name: &str, help: &str, value: f64| {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stat.resident_bytes,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stat.virtual_bytes,
        )?;
        gauge("process_threads", "Threads of the process", stat.threads)?;
        if let Some(boot) = read("/proc/stat").and_then(|s| boot_time(&s)) {
            gauge(
                "process_start_time_seconds",
                "When the process started, in seconds since the Unix epoch",
                boot + stat.started_after_boot,
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                "process_open_fds",
                "Open file descriptors",
                fds.count() as f64,
            )?;
        }
        if let Some(max) = read("/proc/self/limits").and_then(|s| parse_max_fds(&s)) {
            gauge(
                "process_max_fds",
                "The most file descriptors the process may open",
                max,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_files() {
        let stat = "4242 (gri) dhub) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 \
                    17 0 123400 1073741824 25600 18446744073709551615";
        assert_eq!(
            parse_stat(stat, 100.0, 4096.0),
            Some(Stat {
                cpu_seconds: 3.0,
                threads: 17.0,
                started_after_boot: 1234.0,
                virtual_bytes: 1073741824.0,
                resident_bytes: 25600.0 * 4096.0,
            })
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1767225600\n"),
            Some(1767225600.0)
        );
    }
}
