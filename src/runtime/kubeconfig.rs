//! Reading kubeconfig files without ever quoting them: a kubeconfig holds tokens and
//! private keys, and kube's YAML errors print the lines around the error (a user's
//! `token:` or `client-key-data:`), which would end up in a pod's logs.
//!
//! Each file is read whole ([`crate::files`], at most [`MAX_KUBECONFIG_BYTES`]) and
//! checked first with serde_yaml_ng, whose messages name the line and column and never
//! the content (what is quoted, a value, is cut out); only a file that passes goes to
//! kube, which resolves the paths it names. If kube still refuses it as YAML, its message
//! is withheld.

use std::path::{Path, PathBuf};

use kube::config::{Kubeconfig, KubeconfigError};
use serde::Deserialize;

use crate::files::{self, FileError};

/// The largest kubeconfig read (kubeconfigs with embedded certificates are some kB).
pub const MAX_KUBECONFIG_BYTES: u64 = 16 << 20;

/// Why a kubeconfig cannot be read. No variant quotes the file.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigFileError {
    /// The file cannot be read, is too large or is not text.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not YAML.
    #[error("{}: line {line}, column {column}: not valid YAML: {reason}", .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where (1-based).
        line: usize,
        /// Where (1-based).
        column: usize,
        /// What is wrong, without the content.
        reason: String,
    },
    /// The file is YAML, but not a kubeconfig.
    #[error("{}{}: not a kubeconfig: {reason}", .path.display(), at(*.location))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where (1-based line and column), if known.
        location: Option<(usize, usize)>,
        /// What is wrong, without the content.
        reason: String,
    },
    /// kube refuses the file as YAML where the check passed; its message may quote the
    /// file, so it is not shown.
    #[error("{}: kube cannot parse it as a kubeconfig (its message is withheld: it may quote the file)", .path.display())]
    Unparsable {
        /// The file.
        path: PathBuf,
    },
    /// Another of kube's errors (a merge of files that disagree, say).
    #[error("{}: {source}", .path.display())]
    Kube {
        /// The file.
        path: PathBuf,
        /// kube's error (not a parse error: those may quote the file).
        source: KubeconfigError,
    },
    /// Neither `KUBECONFIG` nor a home directory says where the kubeconfig is.
    #[error("no KUBECONFIG and no home directory for ~/.kube/config")]
    NoDefault,
}

fn at(location: Option<(usize, usize)>) -> String {
    location.map_or_else(String::new, |(l, c)| format!(": line {l}, column {c}"))
}

/// Reads the kubeconfig `path` (every YAML document in it, merged), with its relative
/// paths resolved against its directory, as kube does.
pub fn read(path: &Path) -> Result<Kubeconfig, KubeconfigFileError> {
    let text = files::read_to_string(path, MAX_KUBECONFIG_BYTES, "a kubeconfig")?;
    check(path, &text)?;
    Kubeconfig::read_from(path).map_err(|source| match source {
        KubeconfigError::Parse(_) => KubeconfigFileError::Unparsable {
            path: path.to_path_buf(),
        },
        source => KubeconfigFileError::Kube {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Reads the default kubeconfig, as kube and kubectl find it: the files `KUBECONFIG`
/// lists, merged (the first to set a value wins), else `~/.kube/config`. Returns it and
/// its name for messages (`KUBECONFIG=...` or `~/.kube/config`).
pub fn read_default() -> Result<(Kubeconfig, String), KubeconfigFileError> {
    if let Some(value) = std::env::var_os("KUBECONFIG") {
        let paths: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            let mut merged = Kubeconfig::default();
            for path in &paths {
                let next = read(path)?;
                merged = merged
                    .merge(next)
                    .map_err(|source| KubeconfigFileError::Kube {
                        path: path.clone(),
                        source,
                    })?;
            }
            return Ok((merged, format!("KUBECONFIG={}", value.to_string_lossy())));
        }
    }
    let home = std::env::home_dir().ok_or(KubeconfigFileError::NoDefault)?;
    let path = home.join(".kube").join("config");
    Ok((read(&path)?, "~/.kube/config".to_string()))
}

/// Checks `text` is YAML documents that each read as a kubeconfig, with errors that
/// name the line and column but not the content.
fn check(path: &Path, text: &str) -> Result<(), KubeconfigFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        if let Err(e) = Kubeconfig::deserialize(document) {
            return Err(locate(path, &e));
        }
    }
    Ok(())
}

/// `e` as an error naming `path`, the line and column, and what is wrong with anything
/// quoted (a value of the file) cut out.
fn locate(path: &Path, e: &serde_yaml_ng::Error) -> KubeconfigFileError {
    let location = e.location().map(|l| (l.line(), l.column()));
    let message = e.to_string();
    // serde_yaml_ng appends " at line L column C" (and a context); the position is kept
    // apart.
    let reason = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    let syntax = !message.contains("invalid type")
        && !message.contains("missing field")
        && !message.contains("unknown")
        && !message.contains("invalid value")
        && !message.contains("invalid length");
    match location {
        Some((line, column)) if syntax => KubeconfigFileError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            reason: redact(&reason),
        },
        location => KubeconfigFileError::Invalid {
            path: path.to_path_buf(),
            location,
            reason: redact(&reason),
        },
    }
}

/// `message` with every quoted span cut out: serde quotes the values it saw in double
/// quotes (`"…"`), and in backticks the names of fields (kept: they are the kubeconfig's
/// schema, after `field `) and variants (cut: a value).
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut closing: Option<(char, bool)> = None;
    for c in message.chars() {
        match closing {
            None if c == '"' || c == '`' => {
                let keep = c == '`' && out.ends_with("field ");
                out.push(c);
                if !keep {
                    out.push('…');
                }
                closing = Some((c, keep));
            }
            None => out.push(c),
            Some((end, _)) if c == end => {
                out.push(c);
                closing = None;
            }
            Some((_, true)) => out.push(c),
            Some((_, false)) => {}
        }
    }
    if let Some((end, _)) = closing {
        out.push(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: [&str; 3] = ["SECRET-TOKEN-123", "S3CR3TKEY", "hunter2"];

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Malformed kubeconfigs full of secrets: the errors name the file, line and column,
    /// and quote none of it.
    #[test]
    fn errors_name_the_place_and_never_the_content() {
        let dir = std::env::temp_dir().join(format!("bindery-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let user = "users:\n- name: u\n  user:\n    token: SECRET-TOKEN-123\n    client-key-data: S3CR3TKEY\n";
        let cases = [
            (
                "syntax.kc",
                format!("apiVersion: v1\n{user}  bad: [unclosed\nclusters: []\n"),
                ": line 8, column 9: not valid YAML: ",
            ),
            (
                "tab.kc",
                format!("apiVersion: v1\n{user}\tpassword: hunter2\n"),
                ": line 7, column 1: not valid YAML: ",
            ),
            (
                "type.kc",
                format!("apiVersion: v1\n{user}clusters: \"hunter2\"\n"),
                ": line 7, column 11: not a kubeconfig: clusters: invalid type: string \"…\"",
            ),
            (
                "list.kc",
                format!("apiVersion: v1\n{user}contexts: [hunter2]\n"),
                ": not a kubeconfig: ",
            ),
        ];
        for (name, text, want) in cases {
            let path = write(&dir, name, &text);
            let err = read(&path).unwrap_err().to_string();
            assert!(
                err.starts_with(&path.display().to_string()),
                "{name}: {err}"
            );
            assert!(err.contains(want), "{name}: {err}");
            for secret in SECRETS {
                assert!(!err.contains(secret), "{name} quotes {secret}: {err}");
            }
        }
        // A good one is read as kube reads it: relative paths resolved.
        let good = write(
            &dir,
            "good.kc",
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x:6443\n    certificate-authority: ca.crt\n",
        );
        let kc = read(&good).unwrap();
        let ca = kc.clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .certificate_authority
            .clone();
        assert_eq!(ca, Some(dir.join("ca.crt").display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quoted_values_are_cut_out() {
        assert_eq!(
            redact(r#"invalid type: string "s3cret", expected a sequence"#),
            r#"invalid type: string "…", expected a sequence"#
        );
        assert_eq!(redact(r#"unterminated "abc"#), r#"unterminated "…""#);
        assert_eq!(redact("missing field `name`"), "missing field `name`");
        assert_eq!(
            redact("unknown variant `hunter2`, expected `a` or `b`"),
            "unknown variant `…`, expected `…` or `…`"
        );
    }
}
