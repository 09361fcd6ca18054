//! A real control plane for end-to-end tests, as controller-runtime's envtest does it:
//! one etcd and two kube-apiservers (the WDS and the ITS, under separate etcd
//! prefixes) on free loopback ports, with admin kubeconfigs. No kubelet, no
//! controllers (so no garbage collector). Everything is stopped on drop, also when a
//! test panics, and killed with the test process if that dies (`PR_SET_PDEATHSIG`).
//!
//! The binaries come from `scripts/envtest-binaries.sh`, which builds them once
//! (through the Go module proxy) and caches them under `target/envtest/bin/`.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// Paths of the control-plane binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `etcd`.
    pub etcd: PathBuf,
}

/// Builds (first time) or finds the binaries, once per test process.
pub fn binaries() -> Result<Binaries> {
    static BINS: OnceLock<Result<Binaries, String>> = OnceLock::new();
    BINS.get_or_init(|| {
        let script = workspace_root().join("scripts/envtest-binaries.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed: {}", script.display(), out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(PathBuf::from)
                .ok_or_else(|| format!("{} did not print {key}", script.display()))
        };
        Ok(Binaries {
            kube_apiserver: get("KUBE_APISERVER_BIN")?,
            etcd: get("ETCD_BIN")?,
        })
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// A free loopback port, never the same one twice in this process (bound and
/// released: another process may still take it first, which [`Envtest::start`]
/// survives by starting again).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Process> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdout(log_file.try_clone()?)
            .stderr(log_file)
            .stdin(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child
        // when this (test) process dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Process {
            name: name.to_string(),
            child,
        })
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stop(&mut self) {
        if !self.running() {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("envtest: {} did not stop in 10 s, killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One kube-apiserver of the test control plane.
pub struct ApiServer {
    /// `wds` or `its`.
    pub name: String,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Admin bearer token (group `system:masters`).
    pub token: String,
    /// An admin kubeconfig for it.
    pub kubeconfig: PathBuf,
    port: u16,
    etcd_prefix: String,
    extra_args: Vec<String>,
    dir: PathBuf,
    process: Option<Process>,
}

/// How to start an [`Envtest`] other than [`Envtest::start`] does.
#[derive(Clone, Debug, Default)]
pub struct EnvtestOptions {
    /// Extra flags of the WDS kube-apiserver (`--max-mutating-requests-inflight=1`, ...),
    /// after the standard ones (a flag given twice takes the later value); kept across
    /// [`Envtest::restart_wds`].
    pub wds_extra_args: Vec<String>,
}

/// etcd plus the WDS and ITS API servers.
pub struct Envtest {
    /// The workload description space.
    pub wds: ApiServer,
    /// The inventory and transport space.
    pub its: ApiServer,
    etcd: Process,
    etcd_url: String,
    bins: Binaries,
    dir: tempfile::TempDir,
}

impl Envtest {
    /// Starts etcd and both API servers and waits until they are ready. A start
    /// that loses a port to another process (the ports are picked free, then
    /// released) is tried again on new ports, up to three times.
    pub fn start() -> Result<Envtest> {
        Envtest::start_with(EnvtestOptions::default())
    }

    /// [`Envtest::start`] with `options`.
    pub fn start_with(options: EnvtestOptions) -> Result<Envtest> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            match Envtest::start_once(&options) {
                Err(e) if attempt < ATTEMPTS && e.to_string().contains(PORT_TAKEN) => {
                    eprintln!(
                        "envtest: attempt {attempt} lost a port race ({e:#}); starting again"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(options: &EnvtestOptions) -> Result<Envtest> {
        let bins = binaries()?;
        let mut dir = tempfile::Builder::new()
            .prefix("bindery-envtest-")
            .tempdir()?;
        // Kept unless everything works: logs of a failed start stay for reading.
        dir.disable_cleanup(true);
        let (client_port, peer_port) = (free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data = dir.path().join("etcd-data");
        std::fs::create_dir_all(&data)?;
        let mut cmd = Command::new(&bins.etcd);
        cmd.arg("--name=envtest")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=envtest={peer_url}"));
        if etcd_supports_no_fsync(&bins.etcd) {
            cmd.arg("--unsafe-no-fsync=true");
        }
        let mut etcd = Process::spawn("etcd", cmd, &dir.path().join("etcd.log"))?;
        wait_for(
            &format!("etcd at {etcd_url}"),
            Duration::from_secs(30),
            || {
                if !etcd.running() {
                    return Err(exited("etcd", &dir.path().join("etcd.log")));
                }
                Ok(http_get_plain(client_port, "/health")
                    .is_some_and(|b| b.contains("\"health\":\"true\"")))
            },
        )?;
        let mut wds = ApiServer::new("wds", dir.path())?;
        wds.extra_args = options.wds_extra_args.clone();
        let mut env = Envtest {
            wds,
            its: ApiServer::new("its", dir.path())?,
            etcd,
            etcd_url,
            bins,
            dir,
        };
        env.wds.start(&env.bins, &env.etcd_url)?;
        env.its.start(&env.bins, &env.etcd_url)?;
        env.wds.wait_ready()?;
        env.its.wait_ready()?;
        env.dir.disable_cleanup(false);
        Ok(env)
    }

    /// Stops the WDS API server and starts it again on the same port and data.
    pub fn restart_wds(&mut self) -> Result<()> {
        self.wds.process.take();
        self.wds.start(&self.bins, &self.etcd_url)?;
        self.wds.wait_ready()
    }

    /// Stops the WDS API server (its data stays in etcd).
    pub fn stop_wds(&mut self) {
        self.wds.process.take();
    }

    /// Starts the WDS API server again on the same port and data.
    pub fn start_wds(&mut self) -> Result<()> {
        self.wds.start(&self.bins, &self.etcd_url)?;
        self.wds.wait_ready()
    }

    /// Stops the ITS API server (its data stays in etcd).
    pub fn stop_its(&mut self) {
        self.its.process.take();
    }

    /// Starts the ITS API server again on the same port and data.
    pub fn start_its(&mut self) -> Result<()> {
        self.its.start(&self.bins, &self.etcd_url)?;
        self.its.wait_ready()
    }

    /// The directory holding logs and kubeconfigs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// etcd's current revision (the header of a range request through its v3 HTTP
    /// gateway).
    pub fn etcd_revision(&self) -> Result<i64> {
        // Any key: the header carries the store's revision whether or not it exists.
        let answer = self.etcd_post("/v3/kv/range", r#"{"key": "Lw=="}"#)?;
        let revision = answer["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .with_context(|| format!("no revision in etcd's answer {answer}"))?;
        Ok(revision)
    }

    /// Compacts etcd at `revision` (physically: the older revisions are gone, and a watch
    /// or read from before it is answered "required revision has been compacted").
    pub fn compact_etcd(&self, revision: i64) -> Result<()> {
        let body = format!(r#"{{"revision": "{revision}", "physical": true}}"#);
        let answer = self.etcd_post("/v3/kv/compaction", &body)?;
        if answer.get("header").is_none() {
            bail!("etcd refused the compaction at {revision}: {answer}");
        }
        Ok(())
    }

    /// Compacts etcd at its current revision; returns that revision.
    pub fn compact_etcd_now(&self) -> Result<i64> {
        let revision = self.etcd_revision()?;
        self.compact_etcd(revision)?;
        Ok(revision)
    }

    fn etcd_post(&self, path: &str, body: &str) -> Result<serde_json::Value> {
        let port: u16 = self
            .etcd_url
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .context("etcd's port")?;
        let text = http_post_plain(port, path, body)
            .with_context(|| format!("POST {}{path}", self.etcd_url))?;
        let (_, json) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("no body in etcd's answer {text:?}"))?;
        serde_json::from_str(json).with_context(|| format!("etcd's answer {json:?}"))
    }
}

impl Drop for Envtest {
    fn drop(&mut self) {
        self.wds.process.take();
        self.its.process.take();
        self.etcd.stop();
        if std::thread::panicking() {
            // Keep the logs of a failed test.
            eprintln!(
                "envtest: keeping {} for its logs",
                self.dir.path().display()
            );
            self.dir.disable_cleanup(true);
        }
    }
}

impl ApiServer {
    fn new(name: &str, root: &Path) -> Result<ApiServer> {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("certs"))?;
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let token = format!("{name}-{:016x}{:016x}", rand_u64(), rand_u64());
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{token},envtest-admin,envtest-admin,\"system:masters\"\n"),
        )?;
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(dir.join("sa.key"))
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .context("running openssl (needed to make the service-account key)")?;
        if !status.success() {
            bail!("openssl genrsa failed");
        }
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, admin_kubeconfig(name, &url, &token))?;
        std::fs::write(dir.join("audit-policy.yaml"), AUDIT_POLICY)?;
        Ok(ApiServer {
            name: name.to_string(),
            url,
            token,
            kubeconfig,
            port,
            etcd_prefix: format!("/{name}"),
            extra_args: Vec::new(),
            dir,
            process: None,
        })
    }

    fn start(&mut self, bins: &Binaries, etcd_url: &str) -> Result<()> {
        let d = &self.dir;
        let mut cmd = Command::new(&bins.kube_apiserver);
        cmd.arg(format!("--etcd-servers={etcd_url}"))
            .arg(format!("--etcd-prefix={}", self.etcd_prefix))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            // Loopback advertise addresses are refused by the endpoint reconciler.
            .arg("--endpoint-reconciler-type=none")
            .arg(format!("--secure-port={}", self.port))
            .arg(format!("--cert-dir={}", d.join("certs").display()))
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--allow-privileged=true")
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--token-auth-file={}",
                d.join("tokens.csv").display()
            ))
            .arg(format!("--service-account-issuer={}/", self.url))
            .arg(format!(
                "--service-account-key-file={}",
                d.join("sa.key").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                d.join("sa.key").display()
            ))
            .arg(format!(
                "--audit-policy-file={}",
                d.join("audit-policy.yaml").display()
            ))
            .arg(format!("--audit-log-path={}", self.audit_log().display()))
            .args(&self.extra_args);
        self.process = Some(Process::spawn(
            &format!("kube-apiserver ({})", self.name),
            cmd,
            &d.join("kube-apiserver.log"),
        )?);
        Ok(())
    }

    /// Its Prometheus metrics (`GET /metrics` as the admin).
    pub fn metrics(&self) -> Result<String> {
        let out = Command::new("curl")
            .args(["-ksS", "--max-time", "30", "-H"])
            .arg(format!("Authorization: Bearer {}", self.token))
            .arg(format!("{}/metrics", self.url))
            .output()
            .context("running curl")?;
        if !out.status.success() {
            bail!(
                "GET {}/metrics: {}",
                self.url,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8(out.stdout).context("metrics in UTF-8")
    }

    /// The audit log (JSON lines): every request of [`AUDITED_USER`], with its response.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn wait_ready(&mut self) -> Result<()> {
        let log = self.dir.join("kube-apiserver.log");
        let (url, token) = (self.url.clone(), self.token.clone());
        let process = self.process.as_mut().expect("started");
        wait_for(
            &format!("kube-apiserver {} at {url}", self.name),
            Duration::from_secs(180),
            || {
                if !process.running() {
                    return Err(exited("kube-apiserver", &log));
                }
                Ok(curl_readyz(&url, &token))
            },
        )
    }
}

/// The user whose requests the API servers audit: Bindery as the ServiceAccount of
/// the WDS RBAC of the Helm chart (`deploy/chart/bindery`).
pub const AUDITED_USER: &str = "system:serviceaccount:bindery-system:bindery";

/// Audit only [`AUDITED_USER`], with request and response bodies (a list's response shows
/// whether it was metadata-only); nothing else, so other tests pay nothing.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: RequestResponse
    users: [\"system:serviceaccount:bindery-system:bindery\"]
  - level: None
";

/// What [`exited`] says when a process died because its port was taken.
const PORT_TAKEN: &str = "its port was taken";

/// The error for a control-plane process that exited while starting, naming its
/// log, and saying so when the log shows a lost port race.
fn exited(what: &str, log: &Path) -> anyhow::Error {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if text.contains("address already in use") {
        anyhow::anyhow!("{what} exited: {PORT_TAKEN}; see {}", log.display())
    } else {
        anyhow::anyhow!("{what} exited; see {}", log.display())
    }
}

/// etcd 3.5+ has `--unsafe-no-fsync` (fast, fine for tests); Debian's 3.4 fallback does not.
fn etcd_supports_no_fsync(etcd: &Path) -> bool {
    Command::new(etcd)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .is_some_and(|l| !l.contains("Version: 3.4"))
        })
        .unwrap_or(false)
}

fn admin_kubeconfig(name: &str, url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: admin\n\
         current-context: {name}\n"
    )
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} not ready after {timeout:?}")
}

/// GET over plain HTTP on loopback (etcd's health endpoint).
fn http_get_plain(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// POST a JSON `body` over plain HTTP on loopback (etcd's v3 gateway): the whole answer,
/// head and body.
fn http_post_plain(port: u16, path: &str, body: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

fn curl_readyz(url: &str, token: &str) -> bool {
    Command::new("curl")
        .args(["-ksS", "--max-time", "2", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{url}/readyz"))
        .output()
        .is_ok_and(|o| o.stdout == b"ok")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
