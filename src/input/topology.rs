//! Timely's cluster mode for `bindery replay` and `bindery run`: `--processes N
//! --process-index I --hosts FILE`, the same command in every process.
//!
//! Process 0 reads the log or watches the API servers, feeds the engine (object ids and
//! interned strings are assigned there, once, for every worker) and writes the output;
//! every other process serves the dataflow: its workers hold their shares of the
//! arrangements and do their part of each join ([`bindery_engine::serve_cluster`]).
//! This module reads the hosts file, connects the processes to each other with a
//! handshake that checks they agree on the cluster, then hands the sockets to timely.
//!
//! Timely's cluster membership is fixed: when a process is lost, the others cannot go
//! on. [`exit_on_panic`] makes every process exit then (timely's receive threads panic
//! on a lost connection), so that all restart and rebuild from the API servers' state.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bindery_engine::{ClusterError, ClusterLinks, Engine};

use crate::files::{self, FileError};
use crate::input::pipeline::Pipeline;

/// The largest hosts file read (a line per process).
const MAX_HOSTS_FILE_BYTES: u64 = 1 << 20;

/// The most processes in a cluster.
pub const MAX_PROCESSES: usize = 1024;

/// How long a process waits for the others to connect before it gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

/// The first bytes each process sends the other: "bindery", then the protocol version.
const MAGIC: [u8; 8] = *b"bindery\x01";

/// The most `--workers`: timely threads in one process (more than the cores only adds
/// scheduling).
pub const MAX_WORKERS: usize = 64;

/// Where `bindery run` and `bindery replay` run the engine's dataflow: worker threads,
/// and timely's cluster mode (the same command in every process).
#[derive(clap::Args, Clone, Debug)]
pub struct TopologyArgs {
    /// Timely worker threads running the engine's dataflow in each process (1 to 64); the
    /// Bindings do not depend on how many.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_workers, env = "BINDERY_WORKERS")]
    pub workers: usize,
    /// Processes in the timely cluster, each running the same command with its own
    /// --process-index (1: no cluster).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_processes, env = "BINDERY_PROCESSES")]
    pub processes: usize,
    /// This process's index, 0 to N-1 (its line in --hosts): process 0 reads the input
    /// and writes the output, the others serve its dataflow.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "I",
        env = "BINDERY_PROCESS_INDEX"
    )]
    pub process_index: usize,
    /// The processes' addresses, `HOST:PORT`, one per line in process order (blank
    /// lines and `#` comments skipped); each process listens on its own line's port.
    #[arg(long, value_name = "FILE", env = "BINDERY_HOSTS")]
    pub hosts: Option<PathBuf>,
}

impl Default for TopologyArgs {
    fn default() -> Self {
        TopologyArgs {
            workers: 1,
            processes: 1,
            process_index: 0,
            hosts: None,
        }
    }
}

/// A number of timely workers: 1 to [`MAX_WORKERS`].
fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of workers (1 to {MAX_WORKERS}: timely threads in this process)"
        )),
    }
}

/// A number of processes: 1 to [`MAX_PROCESSES`].
fn parse_processes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_PROCESSES).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of processes (1 to {MAX_PROCESSES})"
        )),
    }
}

/// A cluster that could not be set up: what and where.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The options do not describe a cluster.
    #[error("{0}")]
    Options(String),
    /// The hosts file could not be read.
    #[error("reading the hosts file {source}")]
    HostsFile {
        /// Why (naming the file).
        source: FileError,
    },
    /// A process could not listen on its address.
    #[error("process {process} listening on {address}: {source}")]
    Listen {
        /// This process.
        process: usize,
        /// Where it tried.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A connection accepted from or made to another process could not be set up.
    #[error("process {process}: setting up the connection with {address}: {source}")]
    Socket {
        /// This process.
        process: usize,
        /// The other end of the connection.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A connection to or from another process failed or disagreed.
    #[error("process {process} and process {peer} ({address}): {reason}")]
    Peer {
        /// This process.
        process: usize,
        /// The other process.
        peer: usize,
        /// The other process's address (from the hosts file).
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// Some processes did not connect in time.
    #[error(
        "process {process}: processes {missing:?} did not connect within {timeout_secs} s (is every process started with the same --processes and --hosts?)"
    )]
    Timeout {
        /// This process.
        process: usize,
        /// The processes still missing.
        missing: Vec<usize>,
        /// How long it waited.
        timeout_secs: u64,
    },
    /// Timely could not take the connections.
    #[error(transparent)]
    Engine(#[from] ClusterError),
}

/// A checked cluster: every process's address and this process's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessPlan {
    /// This process's index in `hosts`.
    pub process: usize,
    /// `HOST:PORT` of each process, in process order.
    pub hosts: Vec<String>,
}

impl TopologyArgs {
    /// The topology these flags describe, checked.
    pub fn topology(&self) -> Result<Topology, TopologyError> {
        Ok(Topology {
            workers: self.workers,
            processes: self.plan()?,
        })
    }

    /// The cluster these options describe (`None`: one process), after checking them:
    /// the hosts file has one address per process, the index is one of them.
    fn plan(&self) -> Result<Option<ProcessPlan>, TopologyError> {
        let bad = |m: String| Err(TopologyError::Options(m));
        let Some(path) = &self.hosts else {
            if self.processes > 1 {
                return bad(format!(
                    "--processes {} needs --hosts: a file with each process's HOST:PORT",
                    self.processes
                ));
            }
            if self.process_index != 0 {
                return bad(format!(
                    "--process-index {} needs --processes and --hosts",
                    self.process_index
                ));
            }
            return Ok(None);
        };
        let text = files::read_to_string(path, MAX_HOSTS_FILE_BYTES, "a hosts file")
            .map_err(|source| TopologyError::HostsFile { source })?;
        let mut hosts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if port_of(line).is_none() || line.contains(char::is_whitespace) {
                return bad(format!(
                    "{} line {}: {line:?} is not HOST:PORT",
                    path.display(),
                    i + 1
                ));
            }
            hosts.push(line.to_string());
        }
        if hosts.len() != self.processes {
            return bad(format!(
                "{} lists {} process address(es), but --processes is {}",
                path.display(),
                hosts.len(),
                self.processes
            ));
        }
        if self.process_index >= self.processes {
            return bad(format!(
                "--process-index {} is not one of the {} processes (0 to {})",
                self.process_index,
                self.processes,
                self.processes - 1
            ));
        }
        if self.processes == 1 {
            return Ok(None);
        }
        Ok(Some(ProcessPlan {
            process: self.process_index,
            hosts,
        }))
    }
}

/// The port of `HOST:PORT` (`[v6]:PORT` too).
fn port_of(address: &str) -> Option<u16> {
    let (host, port) = address.rsplit_once(':')?;
    if host.is_empty() {
        return None;
    }
    port.parse().ok()
}

/// Where the engine's timely workers run: threads in this process, and the cluster of
/// processes if there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Timely worker threads in each process.
    pub workers: usize,
    /// The cluster (`None`: this process alone).
    pub processes: Option<ProcessPlan>,
}

impl Topology {
    /// The processes running the dataflow.
    pub fn process_count(&self) -> usize {
        self.processes.as_ref().map_or(1, |c| c.hosts.len())
    }

    /// What every process of a cluster does first: a panic then ends the process
    /// (`exit_on_panic`); and a process other than 0 serves process 0's dataflow until
    /// it ends, and returns true (its command is done). False: run the engine here.
    pub fn serve_if_peer(&self) -> Result<bool, TopologyError> {
        let Some(plan) = &self.processes else {
            return Ok(false);
        };
        exit_on_panic();
        if plan.process == 0 {
            return Ok(false);
        }
        // Every log of a peer process carries its index.
        let _span = tracing::info_span!("peer", process = plan.process).entered();
        self.serve()?;
        Ok(true)
    }

    /// Process 0's pipeline: with a cluster, once every process has connected.
    pub fn pipeline(&self) -> Result<Pipeline, TopologyError> {
        match &self.processes {
            None => Ok(Pipeline::with_workers(self.workers)),
            Some(plan) => {
                let links = plan.connect(self.workers, CONNECT_TIMEOUT)?;
                let engine = Engine::in_cluster(links)?;
                tracing::info!(
                    processes = plan.hosts.len(),
                    workers = self.workers,
                    "timely cluster connected: this is process 0"
                );
                Ok(Pipeline::with_engine(engine))
            }
        }
    }

    /// Serves process 0's dataflow from this process until it ends (process 0 done).
    fn serve(&self) -> Result<(), TopologyError> {
        let Some(plan) = &self.processes else {
            return Err(TopologyError::Options(
                "only a process of a cluster serves another's dataflow".into(),
            ));
        };
        let links = plan.connect(self.workers, CONNECT_TIMEOUT)?;
        tracing::info!(
            processes = plan.hosts.len(),
            workers = self.workers,
            "timely cluster connected: serving process 0's dataflow"
        );
        bindery_engine::serve_cluster(links)?;
        tracing::info!("process 0 closed the dataflow: done");
        Ok(())
    }
}

/// What each process tells the other when they connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hello {
    processes: u32,
    threads: u32,
    /// The sender's index.
    from: u32,
    /// The index the sender believes the receiver has.
    to: u32,
}

impl Hello {
    const LEN: usize = 8 + 16;

    fn write(&self, socket: &mut TcpStream) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(Self::LEN);
        bytes.extend_from_slice(&MAGIC);
        for n in [self.processes, self.threads, self.from, self.to] {
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        socket.write_all(&bytes)
    }

    fn read(socket: &mut TcpStream) -> Result<Hello, String> {
        let mut bytes = [0u8; Self::LEN];
        socket.read_exact(&mut bytes).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the connection closed during the handshake (the other process's log says why)"
                    .to_string()
            }
            _ => format!("reading the handshake: {e}"),
        })?;
        if bytes[..8] != MAGIC {
            return Err("not a bindery cluster process (or another protocol version)".into());
        }
        let n = |i: usize| u32::from_be_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap());
        Ok(Hello {
            processes: n(0),
            threads: n(1),
            from: n(2),
            to: n(3),
        })
    }

    /// Why `theirs`, received from process `peer`, does not fit `self` (sent back).
    fn mismatch(&self, theirs: &Hello, peer: usize) -> Option<String> {
        if theirs.processes != self.processes {
            Some(format!(
                "it runs with --processes {}, this one with {}",
                theirs.processes, self.processes
            ))
        } else if theirs.threads != self.threads {
            Some(format!(
                "it runs {} worker(s), this one {} (every process needs the same --workers)",
                theirs.threads, self.threads
            ))
        } else if theirs.from as usize != peer || theirs.to != self.from {
            Some(format!(
                "it says it is process {} and calls this one process {} (check each --process-index)",
                theirs.from, theirs.to
            ))
        } else {
            None
        }
    }
}

impl ProcessPlan {
    /// Connects this process to every other: it listens on its own address's port for
    /// the processes after it and connects to those before it (retrying until they
    /// listen), exchanging a `Hello` each way, for at most `timeout`.
    pub fn connect(
        &self,
        threads: usize,
        timeout: Duration,
    ) -> Result<ClusterLinks, TopologyError> {
        let me = self.process;
        let processes = self.hosts.len();
        let hello_to = |peer: usize| Hello {
            processes: processes as u32,
            threads: threads as u32,
            from: me as u32,
            to: peer as u32,
        };
        let peer_error = |peer: usize, reason: String| TopologyError::Peer {
            process: me,
            peer,
            address: self.hosts[peer].clone(),
            reason,
        };
        let deadline = Instant::now() + timeout;
        let mut sockets: Vec<Option<TcpStream>> = (0..processes).map(|_| None).collect();
        let listener = (me + 1 < processes).then(|| self.listen()).transpose()?;
        let mut waiting = Waiting {
            process: me,
            deadline,
            timeout,
            last_report: Instant::now(),
        };
        let missing = |sockets: &[Option<TcpStream>]| -> Vec<usize> {
            (0..processes)
                .filter(|&i| i != me && sockets[i].is_none())
                .collect()
        };
        // The processes before this one listen: connect to each.
        for peer in 0..me {
            let mut socket = loop {
                match connect_once(&self.hosts[peer]) {
                    Ok(socket) => break socket,
                    Err(e) => {
                        waiting.pause(missing(&sockets), Duration::from_millis(200), || {
                            format!("waiting for process {peer} at {} ({e})", self.hosts[peer])
                        })?
                    }
                }
            };
            // Process `peer` answers once it has connected to those before it.
            let left = deadline.saturating_duration_since(Instant::now());
            socket
                .set_read_timeout(Some(left.max(Duration::from_secs(1))))
                .map_err(|e| peer_error(peer, e.to_string()))?;
            hello_to(peer)
                .write(&mut socket)
                .map_err(|e| peer_error(peer, format!("sending the handshake: {e}")))?;
            let theirs = Hello::read(&mut socket).map_err(|r| peer_error(peer, r))?;
            if let Some(reason) = hello_to(peer).mismatch(&theirs, peer) {
                return Err(peer_error(peer, reason));
            }
            sockets[peer] = Some(socket);
        }
        // The processes after this one connect to it.
        if let Some(listener) = listener {
            while !missing(&sockets).is_empty() {
                match listener.accept() {
                    Ok((mut socket, from)) => {
                        socket
                            .set_nonblocking(false)
                            .and_then(|()| socket.set_read_timeout(Some(Duration::from_secs(30))))
                            .map_err(|source| TopologyError::Socket {
                                process: me,
                                address: from.to_string(),
                                source,
                            })?;
                        let theirs = match Hello::read(&mut socket) {
                            Ok(hello) => hello,
                            Err(reason) => {
                                tracing::warn!(%from, reason, "ignored a connection");
                                continue;
                            }
                        };
                        let peer = theirs.from as usize;
                        if peer <= me || peer >= processes {
                            return Err(TopologyError::Options(format!(
                                "process {me}: {from} says it is process {} of {}, which does not connect to this one (check each --process-index)",
                                theirs.from, theirs.processes
                            )));
                        }
                        if sockets[peer].is_some() {
                            return Err(peer_error(
                                peer,
                                format!("a second process says it is process {peer} (from {from})"),
                            ));
                        }
                        // Answered even when they disagree, so that both can say how.
                        hello_to(peer).write(&mut socket).map_err(|e| {
                            peer_error(peer, format!("answering the handshake: {e}"))
                        })?;
                        if let Some(reason) = hello_to(peer).mismatch(&theirs, peer) {
                            return Err(peer_error(peer, reason));
                        }
                        sockets[peer] = Some(socket);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let waiting_for = missing(&sockets);
                        let report = format!("waiting for processes {waiting_for:?} to connect");
                        waiting.pause(waiting_for, Duration::from_millis(50), || report)?;
                    }
                    Err(source) => {
                        return Err(TopologyError::Listen {
                            process: me,
                            address: self.hosts[me].clone(),
                            source,
                        });
                    }
                }
            }
        }
        for (peer, socket) in sockets.iter().enumerate() {
            let Some(socket) = socket else { continue };
            // Timely's receive threads block on these for good.
            socket
                .set_read_timeout(None)
                .map_err(|source| TopologyError::Socket {
                    process: me,
                    address: self.hosts[peer].clone(),
                    source,
                })?;
        }
        Ok(ClusterLinks {
            process: me,
            threads,
            sockets,
        })
    }

    /// Listens on this process's port: on its address when that is an IP address, else
    /// on every interface (a pod's own DNS name may not resolve before it is ready).
    fn listen(&self) -> Result<TcpListener, TopologyError> {
        let own = &self.hosts[self.process];
        let address: SocketAddr = own.parse().unwrap_or_else(|_| {
            SocketAddr::from(([0, 0, 0, 0], port_of(own).expect("checked by plan")))
        });
        let listener = TcpListener::bind(address)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| TopologyError::Listen {
                process: self.process,
                address: address.to_string(),
                source,
            })?;
        Ok(listener)
    }
}

/// The wait of [`ProcessPlan::connect`] for the other processes.
struct Waiting {
    process: usize,
    deadline: Instant,
    timeout: Duration,
    last_report: Instant,
}

impl Waiting {
    /// Sleeps `pause` before the next attempt, logging `report()` every 10 s; past the
    /// deadline, the error naming the processes still `missing`.
    fn pause(
        &mut self,
        missing: Vec<usize>,
        pause: Duration,
        report: impl FnOnce() -> String,
    ) -> Result<(), TopologyError> {
        if Instant::now() >= self.deadline {
            return Err(TopologyError::Timeout {
                process: self.process,
                missing,
                timeout_secs: self.timeout.as_secs(),
            });
        }
        if self.last_report.elapsed() >= Duration::from_secs(10) {
            tracing::info!(status = %report(), "waiting for the other processes");
            self.last_report = Instant::now();
        }
        std::thread::sleep(pause);
        Ok(())
    }
}

/// One attempt to connect to `address` (each of its resolved addresses in turn).
fn connect_once(address: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for resolved in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&resolved, Duration::from_secs(5)) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("resolves to no address")))
}

/// In a cluster, a panic on any thread ends the process (exit code 1) after it is
/// logged: timely's receive threads panic when another process is lost, and the
/// cluster cannot go on without it; every process exits, and restarted, rebuilds from
/// the log or the API servers.
pub fn exit_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("timely communication error") {
            tracing::error!(
                panic = message,
                "lost the connection to another process of the timely cluster: exiting; every process must be restarted"
            );
        } else {
            tracing::error!(
                panic = message,
                "a thread panicked in a timely cluster process: exiting"
            );
        }
        std::process::exit(1);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options with `hosts` (if any) written to a file of this test's own.
    fn args(processes: usize, index: usize, hosts: Option<&str>) -> TopologyArgs {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = hosts.map(|text| {
            let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("bindery-hosts-{}-{n}", std::process::id()));
            std::fs::write(&p, text).unwrap();
            p
        });
        TopologyArgs {
            processes,
            process_index: index,
            hosts: path,
            ..TopologyArgs::default()
        }
    }

    #[test]
    fn plans_are_checked_with_what_and_where() {
        let a = args(1, 0, None);
        assert_eq!(a.plan().unwrap(), None);
        let a = args(
            2,
            1,
            Some("# cluster\nbindery-0.bindery:9478\n\n[::1]:9479 # me\n"),
        );
        assert_eq!(
            a.plan().unwrap(),
            Some(ProcessPlan {
                process: 1,
                hosts: vec!["bindery-0.bindery:9478".into(), "[::1]:9479".into()],
            })
        );
        let cases: &[(usize, usize, Option<&str>, &str)] = &[
            (2, 0, None, "--processes 2 needs --hosts"),
            (
                1,
                1,
                None,
                "--process-index 1 needs --processes and --hosts",
            ),
            (
                3,
                0,
                Some("a:1\nb:2\n"),
                "lists 2 process address(es), but --processes is 3",
            ),
            (
                2,
                2,
                Some("a:1\nb:2\n"),
                "--process-index 2 is not one of the 2 processes (0 to 1)",
            ),
            (2, 0, Some("a:1\nb\n"), "line 2: \"b\" is not HOST:PORT"),
            (
                2,
                0,
                Some("a:1\nb:99999\n"),
                "line 2: \"b:99999\" is not HOST:PORT",
            ),
            (
                2,
                0,
                Some("a:1 b:2\n"),
                "line 1: \"a:1 b:2\" is not HOST:PORT",
            ),
        ];
        for (processes, index, hosts, want) in cases {
            let a = args(*processes, *index, *hosts);
            let err = a.plan().unwrap_err().to_string();
            assert!(err.contains(want), "{processes} {index} {hosts:?}: {err}");
        }
        let a = TopologyArgs {
            processes: 2,
            hosts: Some("/nonexistent/hosts".into()),
            ..TopologyArgs::default()
        };
        let err = a.plan().unwrap_err().to_string();
        assert!(
            err.contains("reading the hosts file /nonexistent/hosts"),
            "{err}"
        );
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Two processes that disagree on --workers are told so, naming each other.
    #[test]
    fn processes_that_disagree_are_refused_by_the_handshake() {
        let hosts = vec![
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        ];
        let plan = |process| ProcessPlan {
            process,
            hosts: hosts.clone(),
        };
        let one = plan(1);
        let peer = std::thread::spawn(move || one.connect(2, Duration::from_secs(20)));
        let err = plan(0)
            .connect(1, Duration::from_secs(20))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("process 0 and process 1")
                && err.contains("it runs 2 worker(s), this one 1"),
            "{err}"
        );
        let err = peer.join().unwrap().unwrap_err().to_string();
        assert!(
            err.contains("process 1 and process 0")
                && err.contains("it runs 1 worker(s), this one 2"),
            "{err}"
        );
    }

    /// A process nobody connects to gives up after its timeout, naming who is missing.
    #[test]
    fn a_missing_process_times_out_with_its_index() {
        let hosts = vec![
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        ];
        let err = ProcessPlan { process: 0, hosts }
            .connect(1, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("processes [1, 2] did not connect within 0 s"),
            "{err}"
        );
    }
}
