//! The timely workers that run the dataflow: worker 0 on the engine's thread, the
//! others (with [`Engine::with_workers`] or [`Engine::in_cluster`]) on threads of their
//! own or in other processes ([`serve_cluster`]), and stepping worker 0 until an epoch
//! is complete.

use std::any::Any;
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Instant;

use timely::communication::allocator::ProcessBuilder;
use timely::communication::allocator::thread::Thread;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::{Allocator, AllocatorBuilder, Hooks};
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

use super::Engine;
use super::arrangements::ArrangementLog;
use crate::dataflow::{self, Dataflow, Time, WellKnown};

impl Engine {
    /// A new engine with one timely worker on the calling thread.
    pub fn new() -> Engine {
        Engine::with_workers(1)
    }

    /// A new engine whose dataflow runs on `workers` timely workers (at least one):
    /// worker 0 on the calling thread, the others on threads of their own, which end
    /// when the engine is dropped.
    pub fn with_workers(workers: usize) -> Engine {
        let (builders, communication) = in_process(workers);
        Engine::from_builders(builders, communication)
    }

    /// The engine of process 0 of a timely cluster ([`ClusterLinks`] with `process` 0):
    /// its worker 0 is the engine's, fed on the calling thread; its other workers and
    /// those of the other processes ([`serve_cluster`]) hold their shares of the
    /// arrangements. Output does not depend on how the workers are spread.
    pub fn in_cluster(links: ClusterLinks) -> Result<Engine, ClusterError> {
        if links.process != 0 {
            return Err(ClusterError::NotProcessZero(links.process));
        }
        let (builders, communication) = links.builders()?;
        Ok(Engine::from_builders(builders, communication))
    }

    /// The number of timely workers running the dataflow (over every process).
    pub fn workers(&self) -> usize {
        self.workers.worker.peers()
    }
}

/// One process's place in a timely cluster: its index, its worker threads (the same in
/// every process) and a connected socket to each other process.
#[derive(Debug)]
pub struct ClusterLinks {
    /// This process's index (0 feeds the dataflow).
    pub process: usize,
    /// Timely worker threads in each process.
    pub threads: usize,
    /// A socket to each other process, in process order; `None` at `process`.
    pub sockets: Vec<Option<TcpStream>>,
}

/// A timely cluster that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Only process 0 runs the engine; the others serve it.
    #[error("process {0} cannot run the engine: only process 0 does (the others serve it)")]
    NotProcessZero(usize),
    /// The links do not describe a cluster.
    #[error("not a timely cluster: {0}")]
    Links(String),
    /// Timely's communication threads could not start.
    #[error("starting timely's communication threads: {0}")]
    Io(#[from] std::io::Error),
}

impl ClusterLinks {
    /// This process's worker builders (one per thread) and the guard of timely's send
    /// and receive threads.
    fn builders(self) -> Result<(Vec<AllocatorBuilder>, Box<dyn Any + Send>), ClusterError> {
        let processes = self.sockets.len();
        let wrong = self.process >= processes
            || self.threads == 0
            || self
                .sockets
                .iter()
                .enumerate()
                .any(|(i, s)| s.is_some() == (i == self.process));
        if wrong {
            return Err(ClusterError::Links(format!(
                "process {} with {} thread(s) and {} socket slot(s): want a socket for every other process",
                self.process, self.threads, processes
            )));
        }
        for socket in self.sockets.iter().flatten() {
            // Progress messages are small and wait on each other: no Nagle delays.
            socket.set_nodelay(true)?;
        }
        let hooks = Hooks::default();
        let local = ProcessBuilder::new_typed_vector(
            self.threads,
            hooks.refill.clone(),
            hooks.spill.clone(),
        );
        let (builders, guard) = initialize_networking_from_sockets(
            local,
            self.sockets,
            self.process,
            self.threads,
            hooks,
        )?;
        let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
        Ok((builders, Box::new(guard)))
    }
}

/// Serves the engine of process 0 from another process of its cluster: runs this
/// process's workers (each builds the same dataflow and does its share of each join)
/// until process 0's engine is dropped and the dataflow ends.
pub fn serve_cluster(links: ClusterLinks) -> Result<(), ClusterError> {
    if links.process == 0 {
        return Err(ClusterError::Links(
            "process 0 runs the engine (Engine::in_cluster), it does not serve it".into(),
        ));
    }
    let (builders, _communication) = links.builders()?;
    let (_, known) = super::initial_state();
    let threads: Vec<_> = builders
        .into_iter()
        .enumerate()
        .map(|(i, builder)| spawn_peer(i, builder, known, None))
        .collect::<Result<_, _>>()?;
    for thread in threads {
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
    Ok(())
}

/// Worker 0 and the threads of the others.
pub(super) struct Workers {
    worker: Worker,
    /// The threads of workers 1.. (empty with one worker).
    peers: Vec<JoinHandle<()>>,
    /// Keeps the communication threads of a multi-worker setup alive.
    _communication: Box<dyn Any + Send>,
}

impl Workers {
    /// Spawns a thread for each builder but the first, each building the dataflow on its
    /// worker, then builds it on worker 0 (the first builder) on the calling thread, and
    /// returns worker 0's dataflow. With `log`, every worker's arrangements are followed.
    pub(super) fn start(
        mut builders: Vec<AllocatorBuilder>,
        communication: Box<dyn Any + Send>,
        known: WellKnown,
        log: Option<&ArrangementLog>,
    ) -> (Workers, Dataflow) {
        let first = builders.remove(0);
        let peers = builders
            .into_iter()
            .enumerate()
            .map(|(i, builder)| {
                spawn_peer(i + 1, builder, known, log.cloned())
                    .expect("spawning a timely worker thread")
            })
            .collect();
        let mut worker = Worker::new(
            WorkerConfig::default(),
            allocator(first),
            Some(Instant::now()),
        );
        if let Some(log) = log {
            log.register(&mut worker);
        }
        let built = dataflow::build(&mut worker, known);
        let workers = Workers {
            worker,
            peers,
            _communication: communication,
        };
        (workers, built)
    }

    /// Steps worker 0 until `probe` has passed every time before `next`.
    pub(super) fn step_until(&mut self, probe: &ProbeHandle<Time>, next: Time) {
        while probe.less_than(&next) {
            self.worker.step();
        }
    }
}

impl Drop for Workers {
    /// With several workers, here or in other processes (the engine's inputs are closed
    /// by now): steps worker 0 until the dataflow has ended everywhere, so that every
    /// peer ends too, then joins the threads of this process's.
    fn drop(&mut self) {
        if self.worker.peers() == 1 || std::thread::panicking() {
            return;
        }
        while self.worker.has_dataflows() {
            self.worker.step_or_park(None);
        }
        for peer in self.peers.drain(..) {
            // A peer that panicked has already reported it.
            let _ = peer.join();
        }
    }
}

/// Starts a thread `bindery-worker-N` running [`serve_peer`] on `builder`.
fn spawn_peer(
    n: usize,
    builder: AllocatorBuilder,
    known: WellKnown,
    log: Option<ArrangementLog>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("bindery-worker-{n}"))
        .spawn(move || serve_peer(builder, known, log))
}

/// Runs worker `builder` of a multi-worker engine: builds the same dataflow, closes its
/// inputs (worker 0 alone feeds it) and does its share of the work until the dataflow
/// ends (when worker 0's engine is dropped). With `log`, its arrangements are followed.
fn serve_peer(builder: AllocatorBuilder, known: WellKnown, log: Option<ArrangementLog>) {
    let mut worker = Worker::new(
        WorkerConfig::default(),
        allocator(builder),
        Some(Instant::now()),
    );
    if let Some(log) = log {
        log.register(&mut worker);
    }
    let built = dataflow::build(&mut worker, known);
    drop(built.inputs);
    while worker.has_dataflows() {
        worker.step_or_park(None);
    }
}

/// The worker builders of `workers` timely workers (at least one) in this process, and
/// what keeps their communication alive: with one, the calling thread's alone.
pub(super) fn in_process(workers: usize) -> (Vec<AllocatorBuilder>, Box<dyn Any + Send>) {
    if workers <= 1 {
        let thread =
            AllocatorBuilder::Thread(timely::communication::allocator::thread::ThreadBuilder);
        return (vec![thread], Box::new(()));
    }
    CommunicationConfig::Process(workers)
        .try_build()
        .expect("an in-process timely configuration always builds")
}

/// The allocator `builder` makes (timely keeps its own builder trait private).
fn allocator(builder: AllocatorBuilder) -> Allocator {
    match builder {
        AllocatorBuilder::Thread(_) => Allocator::Thread(Thread::default()),
        AllocatorBuilder::Process(process) => Allocator::Process(process.build()),
        AllocatorBuilder::Tcp(tcp) => Allocator::Tcp(tcp.build()),
    }
}
