//! A `bindery run` process of a test: started against the control plane's kubeconfigs
//! (or as the caller set it up), its output in a log file, stopped with SIGTERM when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::bindery_bin;

/// A running `bindery run`, stopped with SIGTERM when dropped.
pub struct BinderyRun {
    child: Child,
    /// Its log: stdout and stderr.
    pub log: PathBuf,
}

impl BinderyRun {
    /// Starts `bindery run` against the two kubeconfigs, with `extra` arguments (and
    /// `--listen 127.0.0.1:0` unless they have `--listen`: tests run side by side).
    pub fn start(wds: &Path, its: &Path, log: &Path, extra: &[&str]) -> Result<BinderyRun> {
        let mut cmd = Command::new(bindery_bin());
        cmd.arg("run")
            .arg("--wds-kubeconfig")
            .arg(wds)
            .arg("--its-kubeconfig")
            .arg(its)
            .args(extra);
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.env("BINDERY_LOG", "info,bindery=debug");
        BinderyRun::start_command(cmd, log)
    }

    /// Starts `cmd` (a `bindery run` the caller set up: arguments, environment) with its
    /// stdout and stderr to `log`.
    pub fn start_command(mut cmd: Command, log: &Path) -> Result<BinderyRun> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("creating the bindery log {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting bindery run (log: {})", log.display()))?;
        Ok(BinderyRun {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Sends SIGTERM and waits for the exit; true when it exited successfully.
    pub fn stop(&mut self) -> Result<bool> {
        let what = format!("bindery (log: {})", self.log.display());
        Ok(crate::terminate(&mut self.child, &what, Duration::from_secs(30))?.success())
    }

    /// Sends it `signal` (`libc::SIGTERM`, `libc::SIGINT`, ...).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Its exit status once it exits, waiting at most `timeout`; `None` if it still runs.
    pub fn exit_within(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if start.elapsed() > timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL (no drain, no clean-up) and waits for it.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log so far.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for BinderyRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
    }
}

/// The last `lines` lines of the text file at `path` (empty if it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
