//! The `process_*` series every Prometheus exporter has (CPU, memory, file descriptors,
//! start time), read from `/proc/self` at scrape time, under the names of the official
//! clients so that the usual dashboards and alerts work. Written here rather than taken
//! from the `metrics-process` crate, which records through the global recorder that
//! anycastd does not install.

use std::fmt::Write;

use super::names;

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// The series in the text format; empty where `/proc` cannot be read.
pub fn render() -> String {
    let mut s = String::new();
    let mut series = |name: &str, kind: &str, value: Option<f64>| {
        if let Some(v) = value {
            let help = names::help(name);
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat
        .rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat(5), 11 and 12 after the ')'.
    let cpu = field(11).zip(field(12)).map(|(u, s)| (u + s) / TICKS);
    series(names::PROCESS_CPU, "counter", cpu);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|k| k * 1024.0)
    };
    series(names::PROCESS_RSS, "gauge", kb("VmRSS:"));
    series(names::PROCESS_VSIZE, "gauge", kb("VmSize:"));
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    series(names::PROCESS_FDS, "gauge", fds);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<f64>().ok());
    series(names::PROCESS_MAX_FDS, "gauge", max_fds);
    // starttime (field 22, 19 after the ')') is in ticks since boot; btime is the boot.
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let start = boot.zip(field(19)).map(|(b, t)| b + t / TICKS);
    series(names::PROCESS_START, "gauge", start);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_series_is_read() {
        let text = super::render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in\n{text}"));
            let v: f64 = line[name.len() + 1..].parse().expect("a number");
            // A test process may not have used a whole tick of CPU yet.
            let floor = if name == "process_cpu_seconds_total" {
                0.0
            } else {
                1.0
            };
            assert!(v >= floor, "{line}");
        }
    }
}
