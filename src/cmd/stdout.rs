//! Everything Bindery prints on stdout goes through here ([`Stdout`], [`print`](fn@print)), so a
//! closed or failing stdout is an error, never a panic (`println!` panics on `EPIPE`).
//!
//! - A closed stdout (`EPIPE`: `bindery crds | head -1`) is [`StdoutClosed`]: the
//!   command stops writing and ends quietly with success, as `head` expects
//!   ([`is_closed`] recognizes it in an error chain).
//! - Any other write error (`ENOSPC` on `/dev/full`, ...) is an error naming stdout:
//!   `writing to stdout: No space left on device (os error 28)`.

use std::io::{self, Write};

/// The error of a write to a closed stdout (the reader went away).
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
pub struct StdoutClosed;

/// Any other failed write to stdout.
#[derive(Debug, thiserror::Error)]
#[error("writing to stdout: {0}")]
pub struct StdoutFailed(io::Error);

/// The process's stdout (locked): a [`Write`] whose errors are [`StdoutClosed`] or
/// [`StdoutFailed`] inside an [`io::Error`] of the same kind.
pub struct Stdout(io::StdoutLock<'static>);

/// Locks stdout for writing through [`Stdout`].
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = stdout();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn classify(e: io::Error) -> io::Error {
    // Already classified (a write retried through another layer): keep it.
    if e.get_ref()
        .is_some_and(|inner| inner.is::<StdoutClosed>() || inner.is::<StdoutFailed>())
    {
        return e;
    }
    match e.kind() {
        io::ErrorKind::BrokenPipe => io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed),
        kind => io::Error::new(kind, StdoutFailed(e)),
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(classify)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(classify)
    }
}

/// True when `e` (or an error in its chain) is a write to a closed stdout.
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<io::Error>()
                .is_some_and(|io| io.get_ref().is_some_and(|inner| inner.is::<StdoutClosed>()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_closed_stdout_is_recognized_through_context() {
        let e = classify(io::Error::from(io::ErrorKind::BrokenPipe));
        let e = anyhow::Error::from(e).context("writing deltas");
        assert!(is_closed(&e));
        let full = classify(io::Error::from_raw_os_error(28));
        assert!(
            full.to_string().starts_with("writing to stdout: "),
            "{full}"
        );
        let full = Err::<(), _>(full).context("writing deltas").unwrap_err();
        assert!(!is_closed(&full));
        assert!(
            format!("{full:#}").contains("writing to stdout"),
            "{full:#}"
        );
    }

    #[test]
    fn serde_json_keeps_the_classified_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(classify(io::Error::from(io::ErrorKind::BrokenPipe)))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = serde_json::to_writer(Closed, &serde_json::json!({"a": 1})).unwrap_err();
        let e = anyhow::Error::from(io::Error::from(e));
        assert!(is_closed(&e));
    }
}
