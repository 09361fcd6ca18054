//! The live dashboard's data: a sampler that turns [`Metrics`] into one [`Sample`] per
//! second (rates, latency quantiles, top churn over the last minutes, sizes), keeps the
//! last [`HISTORY`] of them for pages that connect later, and broadcasts each new one to
//! the pages connected (server-sent events, see [`crate::observe::server`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bindery_ingest::live::CancellationToken;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::observe::metrics::{Metrics, SizeFigures, Tick, Totals};

/// Samples kept (one per second: five minutes).
pub const HISTORY: usize = 300;

/// Entries of the top-churn tables.
const TOP: usize = 10;

/// Which command the dashboard shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `bindery run`.
    Run,
    /// `bindery replay --dashboard`.
    Replay,
}

/// Per-second rates over the last interval.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Rates {
    /// Watch events per second.
    pub events: f64,
    /// Watch events per second by space.
    pub events_by_space: BTreeMap<String, f64>,
    /// Watch events per second by resource (`deployments.apps`).
    pub events_by_resource: BTreeMap<String, f64>,
    /// Binding changes emitted per second.
    pub binding_changes: f64,
    /// Sink writes (applied or deleted) per second.
    pub sink_writes: f64,
    /// Sink writes failed per second.
    pub sink_errors: f64,
}

/// Event-to-Binding latency quantiles over the last interval, in seconds (`None`:
/// nothing observed).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// One row of a top-churn table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Churn {
    /// Policy or resource name.
    pub name: String,
    /// Binding entries added + removed (policies) or watch events (resources) in the
    /// last [`HISTORY`] seconds.
    pub churn: u64,
}

/// One dashboard sample: what a page draws for one second.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Unix milliseconds.
    pub t: i64,
    /// `run` or `replay`.
    pub mode: Mode,
    /// True once a replay has finished.
    pub done: bool,
    /// Totals since start.
    pub totals: Totals,
    /// Rates over the last interval.
    pub rates: Rates,
    /// Latency over the last interval.
    pub latency: Latency,
    /// The policies with the most churn in the last minutes.
    pub top_policies: Vec<Churn>,
    /// The resources with the most watch events in the last minutes.
    pub top_resources: Vec<Churn>,
    /// Sizes now.
    pub sizes: SizeFigures,
    /// Resident memory of the process, bytes.
    pub memory_bytes: Option<u64>,
}

/// The sampler's state between ticks.
struct SamplerState {
    last: Option<(Instant, Tick)>,
    /// Per tick: policy churn, resource events.
    window: VecDeque<(HashMap<String, u64>, HashMap<String, u64>)>,
}

/// The dashboard: samples, their history, and the broadcast to connected pages.
pub struct Dashboard {
    metrics: Arc<Metrics>,
    mode: Mode,
    done: AtomicBool,
    state: Mutex<SamplerState>,
    history: Mutex<VecDeque<Arc<str>>>,
    sender: broadcast::Sender<Arc<str>>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The `TOP` largest of `totals`, largest first (ties by name).
fn top(totals: HashMap<&str, u64>) -> Vec<Churn> {
    let mut rows: Vec<Churn> = totals
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, churn)| Churn {
            name: name.to_string(),
            churn,
        })
        .collect();
    rows.sort_by(|a, b| b.churn.cmp(&a.churn).then_with(|| a.name.cmp(&b.name)));
    rows.truncate(TOP);
    rows
}

fn per_second(now: u64, before: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs
}

impl Dashboard {
    /// A dashboard over `metrics` for `mode`, with no samples yet.
    pub fn new(metrics: Arc<Metrics>, mode: Mode) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            metrics,
            mode,
            done: AtomicBool::new(false),
            state: Mutex::new(SamplerState {
                last: None,
                window: VecDeque::new(),
            }),
            history: Mutex::new(VecDeque::new()),
            sender: broadcast::channel(64).0,
        })
    }

    /// Marks the replay finished (shown by the page).
    pub fn set_done(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Takes one sample now: adds it to the history and sends it to connected pages.
    pub fn sample(&self) -> Sample {
        let memory_bytes = self.metrics.refresh();
        let mut tick = self.metrics.take_tick();
        let mut latencies = std::mem::take(&mut tick.latencies);
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (rates, resource_events) = match &state.last {
            Some((at, before)) => {
                let secs = now.duration_since(*at).as_secs_f64().max(1e-3);
                rates(&tick, before, secs)
            }
            None => (
                Rates::default(),
                tick.events_by_resource.clone().into_iter().collect(),
            ),
        };
        state
            .window
            .push_back((tick.policy_churn.clone(), resource_events));
        while state.window.len() > HISTORY {
            state.window.pop_front();
        }
        let (mut policies, mut resources) = (HashMap::new(), HashMap::new());
        for (p, r) in &state.window {
            for (name, n) in p {
                *policies.entry(name.as_str()).or_default() += n;
            }
            for (name, n) in r {
                *resources.entry(name.as_str()).or_default() += n;
            }
        }
        latencies.sort_by(f64::total_cmp);
        let sample = Sample {
            t: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            mode: self.mode,
            done: self.done.load(Ordering::Relaxed),
            totals: tick.totals,
            rates,
            latency: Latency {
                p50: quantile(&latencies, 0.5),
                p99: quantile(&latencies, 0.99),
            },
            top_policies: top(policies),
            top_resources: top(resources),
            sizes: tick.sizes,
            memory_bytes,
        };
        state.last = Some((now, tick));
        drop(state);
        let json: Arc<str> = serde_json::to_string(&sample)
            .expect("a sample serializes")
            .into();
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.push_back(json.clone());
        while history.len() > HISTORY {
            history.pop_front();
        }
        drop(history);
        // No page connected is fine.
        let _ = self.sender.send(json);
        sample
    }

    /// The samples kept, oldest first, as a JSON array.
    pub fn history_json(&self) -> String {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        format!(
            "[{}]",
            history.iter().map(|s| &**s).collect::<Vec<_>>().join(",")
        )
    }

    /// The latest sample as JSON (`null` before the first).
    pub fn latest_json(&self) -> String {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history
            .back()
            .map_or_else(|| "null".into(), |s| s.to_string())
    }

    /// New samples as they are taken (JSON).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }

    /// Samples once a second until `shutdown`.
    pub async fn run_sampler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {
                    self.sample();
                }
            }
        }
    }
}

/// Rates from two ticks `secs` apart, and the events per resource in between.
fn rates(now: &Tick, before: &Tick, secs: f64) -> (Rates, HashMap<String, u64>) {
    let (a, b) = (&now.totals, &before.totals);
    let delta = |map_now: &BTreeMap<String, u64>, map_before: &BTreeMap<String, u64>| {
        map_now
            .iter()
            .map(|(k, n)| {
                (
                    k.clone(),
                    n.saturating_sub(*map_before.get(k).unwrap_or(&0)),
                )
            })
            .collect::<BTreeMap<String, u64>>()
    };
    let by_resource = delta(&now.events_by_resource, &before.events_by_resource);
    let rates = Rates {
        events: per_second(a.events, b.events, secs),
        events_by_space: delta(&now.events_by_space, &before.events_by_space)
            .into_iter()
            .map(|(k, n)| (k, n as f64 / secs))
            .collect(),
        events_by_resource: by_resource
            .iter()
            .map(|(k, n)| (k.clone(), *n as f64 / secs))
            .collect(),
        binding_changes: per_second(a.binding_changes, b.binding_changes, secs),
        sink_writes: per_second(a.sink_writes, b.sink_writes, secs),
        sink_errors: per_second(a.sink_errors, b.sink_errors, secs),
    };
    (rates, by_resource.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn top_keeps_the_ten_largest_by_churn_then_name() {
        let mut totals = HashMap::new();
        let names: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
        for (i, name) in names.iter().enumerate() {
            totals.insert(name.as_str(), (i % 6) as u64);
        }
        let rows = top(totals);
        assert_eq!(rows.len(), 10);
        assert_eq!(
            rows[0],
            Churn {
                name: "p05".into(),
                churn: 5
            }
        );
        assert_eq!(
            rows[1],
            Churn {
                name: "p11".into(),
                churn: 5
            }
        );
        assert!(rows.iter().all(|r| r.churn > 0));
    }

    #[test]
    fn rates_are_per_second_differences() {
        let mut before = Tick::default();
        before.totals.events = 10;
        before.events_by_resource.insert("pods".into(), 10);
        let mut now = before.clone();
        now.totals.events = 30;
        now.events_by_resource.insert("pods".into(), 25);
        now.events_by_resource.insert("namespaces".into(), 5);
        let (r, by_resource) = rates(&now, &before, 2.0);
        assert_eq!(r.events, 10.0);
        assert_eq!(r.events_by_resource["pods"], 7.5);
        assert_eq!(by_resource["namespaces"], 5);
    }
}
