//! Where the clients of the WDS and the ITS come from: the `--wds-*` and `--its-*` flags
//! shared by `bindery run`, `explain` and `dry-run` (one [`ClientArgs`], flattened into
//! each), in the manner of kubert's `ClientArgs` and `kube::Config::infer`.
//!
//! | space | given | used |
//! | --- | --- | --- |
//! | WDS | `--wds-kubeconfig F` | `F`, its current-context (or `--wds-context`) |
//! | WDS | `--wds-context C` only | context `C` of `KUBECONFIG` / `~/.kube/config` |
//! | WDS | nothing | `KUBECONFIG` / `~/.kube/config` (current-context), else in-cluster |
//! | ITS | `--its-kubeconfig F` | `F`, its current-context (or `--its-context`) |
//! | ITS | `--its-context C` only | context `C` of the WDS's kubeconfig file |
//! | ITS | nothing | the WDS's API server and credentials (one server holds both spaces) |
//!
//! In-cluster means the Pod's ServiceAccount: `KUBERNETES_SERVICE_HOST`/`_PORT` and the
//! token, CA and namespace in `/var/run/secrets/kubernetes.io/serviceaccount/` (kube's
//! fixed paths), or in the directory `BINDERY_SERVICEACCOUNT_DIR` names (a hidden flag
//! for tests and unusual mounts). Every flag can also be set by its environment
//! variable (`BINDERY_WDS_KUBECONFIG`, ...).

use std::path::{Path, PathBuf};

use bindery_ingest::Space;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::runtime::kubeconfig::{self, KubeconfigFileError};

/// The in-cluster environment variables (as client-go and kube read them).
const SERVICE_HOST_ENV: &str = "KUBERNETES_SERVICE_HOST";
const SERVICE_PORT_ENV: &str = "KUBERNETES_SERVICE_PORT";

/// How to reach the WDS and the ITS.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct ClientArgs {
    /// Kubeconfig of the WDS (workload description space)
    /// [default: KUBECONFIG, ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "FILE", env = "BINDERY_WDS_KUBECONFIG")]
    pub wds_kubeconfig: Option<PathBuf>,
    /// Context of the WDS's kubeconfig to use [default: its current-context].
    #[arg(long, value_name = "NAME", env = "BINDERY_WDS_CONTEXT")]
    pub wds_context: Option<String>,
    /// Kubeconfig of the ITS (inventory and transport space)
    /// [default: --its-context in the WDS's kubeconfig, else the WDS's server].
    #[arg(long, value_name = "FILE", env = "BINDERY_ITS_KUBECONFIG")]
    pub its_kubeconfig: Option<PathBuf>,
    /// Context for the ITS: of --its-kubeconfig, or else of the WDS's kubeconfig.
    #[arg(long, value_name = "NAME", env = "BINDERY_ITS_CONTEXT")]
    pub its_context: Option<String>,
    /// In-cluster: read the ServiceAccount's token, ca.crt and namespace from this
    /// directory instead of /var/run/secrets/kubernetes.io/serviceaccount.
    #[arg(
        long,
        value_name = "DIR",
        env = "BINDERY_SERVICEACCOUNT_DIR",
        hide = true
    )]
    pub serviceaccount_dir: Option<PathBuf>,
}

/// Why a client could not be configured; each names the file, context or variable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file cannot be read or parsed.
    #[error("{}: reading the kubeconfig {source}", .space.title())]
    ReadKubeconfig {
        /// `WDS` or `ITS`.
        space: Space,
        /// What is wrong with it (naming the file, never quoting it).
        source: KubeconfigFileError,
    },
    /// The default kubeconfig (`KUBECONFIG` or `~/.kube/config`) cannot be read.
    #[error("{}: reading the kubeconfig of KUBECONFIG or ~/.kube/config (for {flag}): {source}", .space.title()
    )]
    ReadDefaultKubeconfig {
        /// `WDS` or `ITS`.
        space: Space,
        /// The flag that needs it.
        flag: &'static str,
        /// What is wrong with it (naming the file, never quoting it).
        source: KubeconfigFileError,
    },
    /// The context asked for is not in the kubeconfig.
    #[error("{}: no context {context:?} in {file} (it has: {})", .space.title(), list(.available))]
    UnknownContext {
        /// `WDS` or `ITS`.
        space: Space,
        /// The context asked for.
        context: String,
        /// The kubeconfig, for the message.
        file: String,
        /// The contexts it has.
        available: Vec<String>,
    },
    /// The kubeconfig names no current-context and none was asked for.
    #[error("{}: {file} has no current-context: pick one with {flag} (it has: {})", .space.title(), list(.available))]
    NoCurrentContext {
        /// `WDS` or `ITS`.
        space: Space,
        /// The kubeconfig, for the message.
        file: String,
        /// The flag that picks one.
        flag: &'static str,
        /// The contexts it has.
        available: Vec<String>,
    },
    /// The kubeconfig's context cannot be turned into a client configuration.
    #[error("{}: loading {file}: {source}", .space.title())]
    LoadKubeconfig {
        /// `WDS` or `ITS`.
        space: Space,
        /// The kubeconfig (and context), for the message.
        file: String,
        /// kube's error.
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor the in-cluster environment is there.
    #[error("{}: no kubeconfig (KUBECONFIG, ~/.kube/config: {kubeconfig}) and not in a cluster \
         ({in_cluster}); give --wds-kubeconfig FILE", .space.title()
    )]
    NoConfig {
        /// `WDS` or `ITS`.
        space: Space,
        /// Why no kubeconfig was found.
        kubeconfig: String,
        /// Why the in-cluster configuration failed.
        in_cluster: String,
    },
    /// The in-cluster ServiceAccount directory lacks a file or the environment a variable.
    #[error("{}: in-cluster configuration: {what}", .space.title())]
    InCluster {
        /// `WDS` or `ITS`.
        space: Space,
        /// What is missing or wrong.
        what: String,
    },
    /// The configuration does not make a client (e.g. an unusable TLS setting).
    #[error("{}: a client for {origin}: {source}", .space.title())]
    Client {
        /// `WDS` or `ITS`.
        space: Space,
        /// Where the configuration came from.
        origin: String,
        /// kube's error.
        source: kube::Error,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The clients of a run.
#[derive(Clone)]
pub struct Clients {
    /// The WDS, for watches and lists: kube's client retries a 429, 503 or 504 itself.
    pub wds: kube::Client,
    /// The WDS, for the sink (its writes and its watch of the stored Bindings) and the
    /// Lease: no retry inside the client, so that every write attempt passes the sink's
    /// rate limiter (`--qps`), is counted in
    /// `bindery_sink_retries_total` and follows the sink's backoff (which honours a
    /// server's `retryAfterSeconds`), and a Lease renewal is not held up past its deadline.
    pub wds_writer: kube::Client,
    /// The ITS (the WDS's server when no ITS flag is given).
    pub its: kube::Client,
}

/// A client configuration and where it came from (for logs and messages).
#[derive(Clone, Debug)]
pub struct Resolved {
    /// kube's configuration.
    pub config: kube::Config,
    /// `kubeconfig F (context C)`, `in-cluster`, ...
    pub origin: String,
}

impl Resolved {
    /// A client of this configuration.
    pub fn client(&self, space: Space) -> Result<kube::Client, ClientError> {
        kube::Client::try_from(self.config.clone()).map_err(|source| ClientError::Client {
            space,
            origin: self.origin.clone(),
            source,
        })
    }
}

impl ClientArgs {
    /// Both kubeconfig files given, their current-contexts (what tests and most callers
    /// of the library want).
    pub fn files(wds: impl Into<PathBuf>, its: impl Into<PathBuf>) -> ClientArgs {
        ClientArgs {
            wds_kubeconfig: Some(wds.into()),
            its_kubeconfig: Some(its.into()),
            ..ClientArgs::default()
        }
    }

    /// The WDS's configuration.
    pub async fn wds_config(&self) -> Result<Resolved, ClientError> {
        let space = Space::Wds;
        match (&self.wds_kubeconfig, &self.wds_context) {
            (Some(path), context) => {
                from_file(space, path, context.as_deref(), "--wds-context").await
            }
            (None, Some(context)) => from_default_file(space, context, "--wds-context").await,
            (None, None) => infer(space, self.serviceaccount_dir.as_deref()).await,
        }
    }

    /// The ITS's configuration, given the WDS's (used when the ITS is the same server).
    pub async fn its_config(&self, wds: &Resolved) -> Result<Resolved, ClientError> {
        let space = Space::Its;
        match (&self.its_kubeconfig, &self.its_context) {
            (Some(path), context) => {
                from_file(space, path, context.as_deref(), "--its-context").await
            }
            (None, Some(context)) => match &self.wds_kubeconfig {
                Some(path) => from_file(space, path, Some(context), "--its-context").await,
                None => from_default_file(space, context, "--its-context").await,
            },
            (None, None) => Ok(Resolved {
                config: wds.config.clone(),
                origin: format!("the WDS's server ({})", wds.origin),
            }),
        }
    }

    /// Clients of both spaces, each logged with where its configuration came from.
    pub async fn clients(&self) -> Result<Clients, ClientError> {
        let wds = self.wds_config().await?;
        let its = self.its_config(&wds).await?;
        tracing::info!(wds = %wds.origin, its = %its.origin, "clients configured");
        let mut writer = wds.clone();
        writer.config.default_retry = false;
        Ok(Clients {
            wds: wds.client(Space::Wds)?,
            wds_writer: writer.client(Space::Wds)?,
            its: its.client(Space::Its)?,
        })
    }

    /// `WDS <where>, ITS <where>` from the flags alone, for messages.
    pub fn describe(&self) -> (String, String) {
        let file = |f: &Option<PathBuf>, c: &Option<String>| match (f, c) {
            (Some(f), None) => Some(f.display().to_string()),
            (Some(f), Some(c)) => Some(format!("{} (context {c})", f.display())),
            (None, Some(c)) => Some(format!("context {c}")),
            (None, None) => None,
        };
        let wds = file(&self.wds_kubeconfig, &self.wds_context)
            .unwrap_or_else(|| "(KUBECONFIG, ~/.kube/config or in-cluster)".to_string());
        let its = match (
            &self.its_kubeconfig,
            &self.its_context,
            &self.wds_kubeconfig,
        ) {
            (None, Some(c), Some(w)) => format!("{} (context {c})", w.display()),
            (f, c, _) => file(f, c).unwrap_or_else(|| "(the WDS's server)".to_string()),
        };
        (wds, its)
    }
}

/// A kube client for the current-context of `kubeconfig` (as kube and kubectl choose;
/// `ClientArgs` picks another context).
pub async fn kube_client(kubeconfig: &Path) -> Result<kube::Client, ClientError> {
    let resolved = ClientArgs::files(kubeconfig, kubeconfig)
        .wds_config()
        .await?;
    resolved.client(Space::Wds)
}

/// The context names of `kc`.
fn contexts(kc: &Kubeconfig) -> Vec<String> {
    kc.contexts.iter().map(|c| c.name.clone()).collect()
}

/// `kc`'s `context` (or current-context), checked to exist, as a configuration.
async fn from_kubeconfig(
    space: Space,
    kc: Kubeconfig,
    file: String,
    context: Option<&str>,
    flag: &'static str,
) -> Result<Resolved, ClientError> {
    let available = contexts(&kc);
    let chosen = match context {
        Some(c) => c.to_string(),
        None => match kc.current_context.clone().filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => {
                return Err(ClientError::NoCurrentContext {
                    space,
                    file,
                    flag,
                    available,
                });
            }
        },
    };
    if !available.contains(&chosen) {
        return Err(ClientError::UnknownContext {
            space,
            context: chosen,
            file,
            available,
        });
    }
    let options = KubeConfigOptions {
        context: Some(chosen.clone()),
        ..KubeConfigOptions::default()
    };
    let origin = format!("kubeconfig {file} (context {chosen})");
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|source| ClientError::LoadKubeconfig {
            space,
            file: origin.clone(),
            source,
        })?;
    Ok(Resolved { config, origin })
}

/// The kubeconfig file `path`, its `context` or current-context.
async fn from_file(
    space: Space,
    path: &Path,
    context: Option<&str>,
    flag: &'static str,
) -> Result<Resolved, ClientError> {
    let kc =
        kubeconfig::read(path).map_err(|source| ClientError::ReadKubeconfig { space, source })?;
    from_kubeconfig(space, kc, path.display().to_string(), context, flag).await
}

/// Context `context` of the default kubeconfig (`KUBECONFIG`, else `~/.kube/config`).
async fn from_default_file(
    space: Space,
    context: &str,
    flag: &'static str,
) -> Result<Resolved, ClientError> {
    let (kc, name) =
        kubeconfig::read_default().map_err(|source| ClientError::ReadDefaultKubeconfig {
            space,
            flag,
            source,
        })?;
    from_kubeconfig(space, kc, name, Some(context), flag).await
}

/// As `kube::Config::infer`: the default kubeconfig's current-context if there is one,
/// else in-cluster (from `serviceaccount_dir` if given).
async fn infer(space: Space, serviceaccount_dir: Option<&Path>) -> Result<Resolved, ClientError> {
    let kubeconfig_error = match kubeconfig::read_default() {
        Ok((kc, name)) => {
            return from_kubeconfig(space, kc, name, None, "--wds-context").await;
        }
        Err(e) => e,
    };
    let in_cluster = match serviceaccount_dir {
        Some(dir) => {
            let var = |name: &str| std::env::var(name).ok();
            let service = (var(SERVICE_HOST_ENV), var(SERVICE_PORT_ENV));
            return in_cluster_from(space, dir, service).await;
        }
        None => kube::Config::incluster(),
    };
    match in_cluster {
        Ok(config) => Ok(Resolved {
            origin: format!("in-cluster ({})", config.cluster_url),
            config,
        }),
        Err(e) => Err(ClientError::NoConfig {
            space,
            kubeconfig: kubeconfig_error.to_string(),
            in_cluster: e.to_string(),
        }),
    }
}

/// The in-cluster configuration with the ServiceAccount files of `dir` (`token`,
/// `ca.crt`, optional `namespace`): the same as kube's, through a kubeconfig naming those
/// files, so the token is re-read as kubelet rotates it. `service`: the values of
/// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`.
async fn in_cluster_from(
    space: Space,
    dir: &Path,
    service: (Option<String>, Option<String>),
) -> Result<Resolved, ClientError> {
    let fail = |what: String| ClientError::InCluster { space, what };
    let unset = |name: &str| fail(format!("{name} is not set (not in a cluster?)"));
    let host = service.0.ok_or_else(|| unset(SERVICE_HOST_ENV))?;
    let port: u16 = service
        .1
        .ok_or_else(|| unset(SERVICE_PORT_ENV))?
        .parse()
        .map_err(|e| fail(format!("{SERVICE_PORT_ENV}: {e}")))?;
    let server = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => format!("https://{}", std::net::SocketAddr::new(ip, port)),
        Err(_) => format!("https://{host}:{port}"),
    };
    let (token, ca) = (dir.join("token"), dir.join("ca.crt"));
    for file in [&token, &ca] {
        if !file.is_file() {
            return Err(fail(format!("{} is missing", file.display())));
        }
    }
    // A namespace name is at most 63 bytes: anything much longer is not one.
    let namespace = crate::files::read_to_string(&dir.join("namespace"), 4096, "a namespace file")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let kc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "in-cluster", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "serviceaccount", "user": {"tokenFile": token}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "serviceaccount", "namespace": namespace}}],
        "current-context": "in-cluster",
    });
    let kc: Kubeconfig = serde_json::from_value(kc).map_err(|e| fail(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    Ok(Resolved {
        origin: format!(
            "in-cluster ({server}, ServiceAccount files in {})",
            dir.display()
        ),
        config,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        client: ClientArgs,
    }

    fn two_contexts(dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: one\n  cluster:\n    server: https://one.example:6443\n\
             - name: two\n  cluster:\n    server: https://two.example:7443\n\
             users:\n- name: u\n  user:\n    token: t\n\
             contexts:\n- name: first\n  context:\n    cluster: one\n    user: u\n\
             - name: second\n  context:\n    cluster: two\n    user: u\n    namespace: ns2\n\
             current-context: second\n",
        )
        .unwrap();
        path
    }

    fn host(r: &Resolved) -> String {
        r.config.cluster_url.authority().unwrap().to_string()
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bindery-client-args-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn the_current_context_is_used_and_a_context_flag_picks_another() {
        let dir = tempdir();
        let kc = two_contexts(&dir);
        let args = ClientArgs {
            wds_kubeconfig: Some(kc.clone()),
            ..ClientArgs::default()
        };
        let wds = args.wds_config().await.unwrap();
        assert_eq!(host(&wds), "two.example:7443");
        assert_eq!(wds.config.default_namespace, "ns2");
        // The ITS: the WDS's server unless told otherwise.
        assert_eq!(
            host(&args.its_config(&wds).await.unwrap()),
            "two.example:7443"
        );

        let args = ClientArgs {
            wds_kubeconfig: Some(kc.clone()),
            wds_context: Some("first".into()),
            its_context: Some("second".into()),
            ..ClientArgs::default()
        };
        let wds = args.wds_config().await.unwrap();
        assert_eq!(host(&wds), "one.example:6443");
        // --its-context alone: a context of the WDS's kubeconfig.
        assert_eq!(
            host(&args.its_config(&wds).await.unwrap()),
            "two.example:7443"
        );

        let args = ClientArgs {
            its_kubeconfig: Some(kc),
            its_context: Some("first".into()),
            ..args
        };
        assert_eq!(
            host(&args.its_config(&wds).await.unwrap()),
            "one.example:6443"
        );
    }

    #[tokio::test]
    async fn a_missing_file_or_context_is_an_error_naming_it() {
        let dir = tempdir();
        let kc = two_contexts(&dir);
        let missing = dir.join("nope.kubeconfig");
        let args = ClientArgs::files(&missing, &kc);
        let e = args.wds_config().await.unwrap_err().to_string();
        assert!(e.starts_with("WDS: reading the kubeconfig "), "{e}");
        assert!(e.contains("nope.kubeconfig"), "{e}");

        let args = ClientArgs {
            its_context: Some("third".into()),
            ..ClientArgs::files(&kc, &kc)
        };
        let wds = args.wds_config().await.unwrap();
        let e = args.its_config(&wds).await.unwrap_err().to_string();
        assert!(e.contains("ITS: no context \"third\" in"), "{e}");
        assert!(e.contains("(it has: first, second)"), "{e}");

        let no_current = dir.join("no-current");
        let text = std::fs::read_to_string(&kc).unwrap();
        std::fs::write(&no_current, text.replace("current-context: second\n", "")).unwrap();
        let args = ClientArgs::files(&no_current, &kc);
        let e = args.wds_config().await.unwrap_err().to_string();
        assert!(
            e.contains("has no current-context: pick one with --wds-context"),
            "{e}"
        );
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let mut names = Vec::new();
        for arg in cmd.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap();
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let want = format!("BINDERY_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(env.as_deref(), Some(want.as_str()), "--{long}");
            names.push(want);
        }
        assert_eq!(names.len(), 5, "{names:?}");
        // (Reading them is clap's; the e2e tests run bindery with them set.)
        let parsed = Cli::try_parse_from(["t", "--its-context", "its1"]).unwrap();
        assert_eq!(parsed.client.its_context.as_deref(), Some("its1"));
    }

    #[tokio::test]
    async fn an_in_cluster_environment_lacking_a_part_is_an_error_naming_it() {
        let dir = tempdir().join("sa");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), "").unwrap();
        let _ = std::fs::remove_file(dir.join("token"));
        let service = |h: Option<&str>, p: Option<&str>| (h.map(String::from), p.map(String::from));
        let e = in_cluster_from(Space::Wds, &dir, service(Some("10.0.0.1"), Some("443")))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("WDS: in-cluster configuration: "), "{e}");
        assert!(e.ends_with("sa/token is missing"), "{e}");
        let e = in_cluster_from(Space::Wds, &dir, service(None, Some("443")))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("KUBERNETES_SERVICE_HOST is not set"), "{e}");
        let e = in_cluster_from(Space::Wds, &dir, service(Some("h"), Some("x")))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("KUBERNETES_SERVICE_PORT: invalid digit"), "{e}");
    }

    #[test]
    fn describe_names_the_files_and_contexts() {
        assert_eq!(
            ClientArgs::files("w.kc", "i.kc").describe(),
            ("w.kc".to_string(), "i.kc".to_string())
        );
        let args = ClientArgs {
            wds_kubeconfig: Some("w.kc".into()),
            its_context: Some("its1".into()),
            ..ClientArgs::default()
        };
        assert_eq!(args.describe().1, "w.kc (context its1)");
        assert_eq!(
            ClientArgs::default().describe(),
            (
                "(KUBECONFIG, ~/.kube/config or in-cluster)".to_string(),
                "(the WDS's server)".to_string()
            )
        );
    }
}
