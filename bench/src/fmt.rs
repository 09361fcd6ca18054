//! Times and sizes as the benches' tables print them.

use std::time::Duration;

/// Seconds as `µs` (below a millisecond), `ms` (below a second) or `s`.
pub fn seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// A duration as [`seconds`] prints it.
pub fn duration(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

/// KiB as whole MiB.
pub fn mib(kb: u64) -> String {
    format!("{:.0} MiB", kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn units() {
        assert_eq!(super::seconds(0.000_070_4), "70 µs");
        assert_eq!(super::seconds(0.005_461), "5.46 ms");
        assert_eq!(super::seconds(4.47), "4.47 s");
        assert_eq!(super::mib(299 * 1024 + 100), "299 MiB");
    }
}
