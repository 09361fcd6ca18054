//! The timely workers that run the dataflow: worker 0 on the engine's thread, the
//! others (with [`Engine::with_workers`]) on threads of their own, and stepping worker 0
//! until an epoch is complete.

use std::any::Any;
use std::thread::JoinHandle;
use std::time::Instant;

use timely::communication::allocator::thread::Thread;
use timely::communication::{Allocator, AllocatorBuilder};
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

use super::Engine;
use crate::dataflow::{self, Dataflow, Time};
use crate::intern::Sym;

impl Engine {
    /// A new engine with one timely worker on the calling thread.
    pub fn new() -> Engine {
        let thread =
            AllocatorBuilder::Thread(timely::communication::allocator::thread::ThreadBuilder);
        Engine::from_builders(vec![thread], Box::new(()))
    }

    /// A new engine whose dataflow runs on `workers` timely workers (at least one):
    /// worker 0 on the calling thread, the others on threads of their own, which end
    /// when the engine is dropped.
    pub fn with_workers(workers: usize) -> Engine {
        if workers <= 1 {
            return Engine::new();
        }
        let (builders, communication) = CommunicationConfig::Process(workers)
            .try_build()
            .expect("an in-process timely configuration always builds");
        Engine::from_builders(builders, communication)
    }

    /// The number of timely workers running the dataflow.
    pub fn workers(&self) -> usize {
        self.workers.worker.peers()
    }
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
    /// returns worker 0's dataflow.
    pub(super) fn start(
        mut builders: Vec<AllocatorBuilder>,
        communication: Box<dyn Any + Send>,
        namespaces: Sym,
    ) -> (Workers, Dataflow) {
        let first = builders.remove(0);
        let peers = builders
            .into_iter()
            .enumerate()
            .map(|(i, builder)| {
                std::thread::Builder::new()
                    .name(format!("bindery-worker-{}", i + 1))
                    .spawn(move || serve_peer(builder, namespaces))
                    .expect("spawning a timely worker thread")
            })
            .collect();
        let mut worker = Worker::new(
            WorkerConfig::default(),
            allocator(first),
            Some(Instant::now()),
        );
        let built = dataflow::build(&mut worker, namespaces);
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
    /// With several workers (the engine's inputs are closed by now): steps worker 0
    /// until the dataflow has ended everywhere, so that every peer thread ends too, then
    /// joins them.
    fn drop(&mut self) {
        if self.peers.is_empty() || std::thread::panicking() {
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

/// Runs worker `builder` of a multi-worker engine: builds the same dataflow, closes its
/// inputs (worker 0 alone feeds it) and does its share of the work until the dataflow
/// ends (when worker 0's engine is dropped).
fn serve_peer(builder: AllocatorBuilder, namespaces: Sym) {
    let mut worker = Worker::new(
        WorkerConfig::default(),
        allocator(builder),
        Some(Instant::now()),
    );
    let built = dataflow::build(&mut worker, namespaces);
    drop(built.inputs);
    while worker.has_dataflows() {
        worker.step_or_park(None);
    }
}

/// The allocator `builder` makes (timely keeps its own builder trait private).
fn allocator(builder: AllocatorBuilder) -> Allocator {
    match builder {
        AllocatorBuilder::Thread(_) => Allocator::Thread(Thread::default()),
        AllocatorBuilder::Process(process) => Allocator::Process(process.build()),
        AllocatorBuilder::Tcp(tcp) => Allocator::Tcp(tcp.build()),
    }
}
