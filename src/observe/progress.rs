//! Progress reporting for long commands: a progress bar on a terminal, periodic log
//! lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports progress through a byte count (of the input file), or only a status text
/// ([`Progress::spinner`]).
pub enum Progress {
    /// A terminal: an indicatif bar, and when its status text was last refreshed.
    Bar(ProgressBar, Instant),
    /// Not a terminal: an info line every `every`.
    Lines {
        /// What is being done.
        what: String,
        /// Total bytes, if known.
        total: Option<u64>,
        /// Interval between lines.
        every: Duration,
        /// When the last line was written.
        last: Instant,
    },
}

impl Progress {
    /// Starts reporting on `what`, out of `total` bytes if known.
    pub fn new(what: &str, total: Option<u64>) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let style = ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {prefix}",
            )
            .expect("valid template");
            bar.set_style(style);
            bar.set_message(what.to_string());
            Progress::Bar(bar, Instant::now())
        } else {
            Progress::Lines {
                what: what.to_string(),
                total,
                every: Duration::from_secs(5),
                last: Instant::now(),
            }
        }
    }

    /// Starts reporting on `what` when there is no total to measure against (a count of
    /// events, say): a spinner with a status text on a terminal, an info line every 5 s
    /// otherwise. Update it with [`Progress::status`].
    pub fn spinner(what: &str) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            let style =
                ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}] {prefix}")
                    .expect("valid template");
            bar.set_style(style);
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            Progress::Bar(bar, Instant::now())
        } else {
            Progress::Lines {
                what: what.to_string(),
                total: None,
                every: Duration::from_secs(5),
                last: Instant::now(),
            }
        }
    }

    /// Updates the status text only (what a [`Progress::spinner`] shows): at most every
    /// 200 ms on a terminal, as a `what: status` info line every 5 s otherwise.
    pub fn status(&mut self, status: impl FnOnce() -> String) {
        match self {
            Progress::Bar(bar, refreshed) => {
                if refreshed.elapsed() >= Duration::from_millis(200) {
                    *refreshed = Instant::now();
                    bar.set_prefix(status());
                }
            }
            Progress::Lines {
                what, every, last, ..
            } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    tracing::info!(task = %what, status = %status(), "progress");
                }
            }
        }
    }

    /// Updates the position (bytes) and a short status text.
    pub fn update(&mut self, bytes: u64, status: impl FnOnce() -> String) {
        match self {
            Progress::Bar(bar, refreshed) => {
                bar.set_position(bytes);
                if refreshed.elapsed() >= Duration::from_millis(200) {
                    *refreshed = Instant::now();
                    bar.set_prefix(status());
                }
            }
            Progress::Lines {
                what,
                total,
                every,
                last,
            } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    match total {
                        Some(t) if *t > 0 => {
                            tracing::info!(
                                percent = format_args!("{:.1}", bytes as f64 * 100.0 / *t as f64),
                                bytes,
                                total_bytes = t,
                                status = %status(),
                                task = %what,
                                "progress"
                            )
                        }
                        _ => tracing::info!(task = %what, bytes, status = %status(), "progress"),
                    }
                }
            }
        }
    }

    /// Ends the report.
    pub fn finish(self) {
        if let Progress::Bar(bar, _) = self {
            bar.finish_and_clear();
        }
    }
}
