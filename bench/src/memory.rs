//! Resident memory of a process, from `/proc/PID/status`, and its CPU time, from
//! `/proc/PID/stat` (Linux; `None` elsewhere).

/// The CPU time (user + system) process `pid` has used so far, in seconds.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (in parentheses): utime and stime are the 12th
    // and 13th, in clock ticks.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((ticks(11)? + ticks(12)?) / per_second)
}

/// This process's resident set size (`VmRSS`), in KiB.
pub fn rss_kb() -> Option<u64> {
    status_kb("/proc/self/status", "VmRSS")
}

/// This process's peak resident set size so far (`VmHWM`), in KiB.
pub fn peak_rss_kb() -> Option<u64> {
    status_kb("/proc/self/status", "VmHWM")
}

/// The peak resident set size so far (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kb_of(pid: u32) -> Option<u64> {
    status_kb(&format!("/proc/{pid}/status"), "VmHWM")
}

/// A `kB` field (`VmRSS:   1234 kB`) of a `status` file.
fn status_kb(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn reads_this_process() {
        let rss = super::rss_kb().expect("VmRSS");
        let peak = super::peak_rss_kb().expect("VmHWM");
        assert!(rss > 0 && peak >= rss);
        assert_eq!(
            super::peak_rss_kb_of(std::process::id()).map(|kb| kb >= rss),
            Some(true)
        );
    }
}
