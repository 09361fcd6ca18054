//! Leader election for `bindery run --leader-elect`: a Lease (`coordination.k8s.io/v1`)
//! in the WDS, taken and renewed as client-go's leader election does, with
//! `resourceVersion` preconditions (every update is a PUT of the version read: of two
//! candidates, one wins and the other gets a 409).
//!
//! - A candidate takes the Lease when it has no holder, or when its record has not changed
//!   for its `leaseDurationSeconds` as measured on the candidate's own clock (no clock
//!   comparison between machines).
//! - The leader renews it every `retry_period`. If it has not renewed for `renew_deadline`
//!   (shorter than the lease duration), it stops leading *at that instant* (a hung request
//!   does not delay it), so its writes have stopped before any other candidate can see the
//!   Lease expire; then it competes again.
//! - [`Elector::release`] (at a clean shutdown, after the sink has drained) stops leading
//!   and clears the holder, so a follower takes over at its next try instead of after the
//!   lease duration.
//!
//! [`Elector::leading`] tells whether this process holds the Lease; the sink follows it
//! (`BindingSink::start_elected`).

use std::hash::BuildHasher;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use stop_signal::Stop;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The Lease and the timings of an election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace (in the WDS).
    pub lease_namespace: String,
    /// This candidate's identity (the Lease's `holderIdentity` while it leads).
    pub identity: String,
    /// How long a Lease not renewed stays its holder's, for the other candidates.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often candidates try to take the Lease and the leader renews it.
    pub retry_period: Duration,
}

/// Why an election cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The timings or names are unusable.
    #[error("leader election: {0}")]
    Config(String),
}

impl LeaderConfig {
    /// Checks what client-go checks: lease duration > renew deadline > retry period > 0,
    /// and names that are not empty.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let bad = |m: &str| Err(LeaderError::Config(m.to_string()));
        if self.lease_name.is_empty() || self.lease_namespace.is_empty() {
            return bad("the lease name and namespace must not be empty");
        }
        if self.identity.is_empty() {
            return bad("the identity must not be empty");
        }
        if self.retry_period.is_zero() {
            return bad("--leader-elect-retry-period must be more than 0");
        }
        if self.renew_deadline <= self.retry_period {
            return bad(
                "--leader-elect-renew-deadline must be longer than --leader-elect-retry-period",
            );
        }
        if self.lease_duration <= self.renew_deadline {
            return bad(
                "--leader-elect-lease-duration must be longer than --leader-elect-renew-deadline",
            );
        }
        if self.lease_duration.as_secs() > i32::MAX as u64
            || self.lease_duration.subsec_nanos() != 0
        {
            return bad("--leader-elect-lease-duration must be a whole number of seconds");
        }
        Ok(())
    }
}

/// This candidate's default identity: `POD_NAME` if set (a Deployment's pods have
/// unique names), else the hostname with a random suffix (two processes on one host
/// must not share an identity: both would think they hold the Lease).
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "bindery".into());
    // A per-process random seed, hashed: no extra dependency for a few random bits.
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!("{host}_{:08x}", random as u32)
}

/// A running election. Dropping it stops the election without releasing the Lease.
#[derive(Debug)]
pub struct Elector {
    leading: watch::Receiver<bool>,
    stop: Stop,
    task: JoinHandle<()>,
}

impl Elector {
    /// Starts competing for the Lease described by `config` (validated before).
    pub fn start(client: kube::Client, config: LeaderConfig) -> Elector {
        let api = Api::namespaced(client, &config.lease_namespace);
        let (tx, leading) = watch::channel(false);
        let stop = Stop::default();
        let task = tokio::spawn(campaign(api, config, tx, stop.clone()));
        Elector {
            leading,
            stop,
            task,
        }
    }

    /// True while this process holds the Lease; changes as it wins and loses it.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops competing: stops leading, and clears the Lease's holder if it was this
    /// process, so another candidate can take it at once. Call once nothing more is
    /// written.
    pub async fn release(mut self) {
        self.stop.stop();
        if let Err(e) = (&mut self.task).await {
            tracing::error!(error = %e, "the leader election task failed");
        }
    }
}

impl Drop for Elector {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A stop signal that can be awaited (a `watch` holding whether to stop).
mod stop_signal {
    use tokio::sync::watch;

    #[derive(Clone, Debug)]
    pub(super) struct Stop(watch::Sender<bool>);

    impl Default for Stop {
        fn default() -> Self {
            Stop(watch::Sender::new(false))
        }
    }

    impl Stop {
        pub(super) fn stop(&self) {
            self.0.send_replace(true);
        }

        pub(super) async fn stopped(&self) {
            let mut rx = self.0.subscribe();
            // The sender is `self`: it outlives this wait.
            let _ = rx.wait_for(|&stop| stop).await;
        }
    }
}

/// What a candidate last saw of the Lease: its `resourceVersion` and when (on this
/// candidate's clock) it last changed.
#[derive(Debug, Default)]
struct Observed {
    version: Option<String>,
    at: Option<Instant>,
}

impl Observed {
    fn saw(&mut self, lease: &Lease) {
        let version = lease.metadata.resource_version.clone();
        if version != self.version || self.at.is_none() {
            self.version = version;
            self.at = Some(Instant::now());
        }
    }
}

/// Competes for the Lease until stopped: takes it, renews it, and on losing it
/// competes again.
async fn campaign(api: Api<Lease>, config: LeaderConfig, tx: watch::Sender<bool>, stop: Stop) {
    let mut observed = Observed::default();
    let mut first = true;
    loop {
        // Candidate: try now, then every retry period.
        let acquired_at = loop {
            if !first {
                tokio::select! {
                    _ = stop.stopped() => return,
                    _ = tokio::time::sleep(config.retry_period) => {}
                }
            }
            first = false;
            let started = Instant::now();
            match try_take_or_renew(&api, &config, &mut observed).await {
                Ok(true) => break started,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    lease = %config.lease_name,
                    "leader election: cannot read or take the Lease (retrying)"
                ),
            }
        };
        tracing::info!(
            identity = %config.identity,
            lease = format!("{}/{}", config.lease_namespace, config.lease_name),
            "leader election: took the Lease, leading"
        );
        tx.send_replace(true);
        // Leader: renew every retry period; stop leading at the renew deadline.
        let mut renewed = acquired_at;
        let lost = loop {
            let deadline = renewed + config.renew_deadline;
            tokio::select! {
                _ = stop.stopped() => {
                    tx.send_replace(false);
                    release(&api, &config).await;
                    return;
                }
                _ = tokio::time::sleep_until(deadline) => break "not renewed within the renew deadline",
                _ = tokio::time::sleep(config.retry_period) => {}
            }
            let started = Instant::now();
            match tokio::time::timeout_at(deadline, try_take_or_renew(&api, &config, &mut observed))
                .await
            {
                Ok(Ok(true)) => renewed = started,
                Ok(Ok(false)) => break "another candidate holds the Lease",
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "leader election: renewing the Lease failed (retrying until the renew deadline)"
                ),
                Err(_) => break "not renewed within the renew deadline",
            }
        };
        tx.send_replace(false);
        tracing::warn!(
            reason = lost,
            "leader election: lost the Lease, writing nothing"
        );
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn duration_seconds(config: &LeaderConfig) -> i32 {
    i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX)
}

/// One try: creates the Lease if there is none; takes it if it is free or expired;
/// renews it if this candidate holds it. True when this candidate holds it now.
async fn try_take_or_renew(
    api: &Api<Lease>,
    config: &LeaderConfig,
    observed: &mut Observed,
) -> Result<bool, kube::Error> {
    let me = config.identity.as_str();
    let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.lease_name.clone()),
                namespace: Some(config.lease_namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(me.to_string()),
                lease_duration_seconds: Some(duration_seconds(config)),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                observed.saw(&created);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    observed.saw(&lease);
    let spec = lease.spec.take().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if let Some(holder) = &holder
        && holder != me
    {
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(config.lease_duration, Duration::from_secs);
        let since = observed.at.map_or(Duration::ZERO, |at| at.elapsed());
        if since < duration {
            return Ok(false);
        }
        tracing::info!(
            previous = %holder,
            unrenewed_for = ?since,
            "leader election: the Lease expired, taking it"
        );
    }
    let taking = holder.as_deref() != Some(me);
    let renewed = LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration_seconds(config)),
        acquire_time: if taking {
            Some(now())
        } else {
            spec.acquire_time.clone()
        },
        renew_time: Some(now()),
        lease_transitions: Some(
            spec.lease_transitions.unwrap_or(0) + i32::from(taking && holder.is_some()),
        ),
        ..spec
    };
    lease.spec = Some(renewed);
    // `metadata.resourceVersion` is the one read: a precondition of the update.
    match api
        .replace(&config.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(updated) => {
            observed.saw(&updated);
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Clears the holder of a Lease this candidate holds (with a precondition: a Lease
/// another has taken meanwhile is left alone), leaving one second of duration.
async fn release(api: &Api<Lease>, config: &LeaderConfig) {
    let result = async {
        let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
            return Ok(false);
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.spec = Some(spec);
        api.replace(&config.lease_name, &PostParams::default(), &lease)
            .await
            .map(|_| true)
    };
    match tokio::time::timeout(config.renew_deadline, result).await {
        Ok(Ok(true)) => tracing::info!("leader election: released the Lease"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "leader election: releasing the Lease failed"),
        Err(_) => tracing::warn!("leader election: releasing the Lease timed out"),
    }
}

/// Parses a duration as client-go's flags write them (`15s`, `500ms`, `1m30s`, `2h`), or
/// a bare number of seconds (`15`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 15s, 500ms, 1m)");
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(Duration::try_from_secs_f64(value * unit).map_err(|_| bad())?)
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// The leader-election flags of `bindery run`.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderArgs {
    /// Run as one of several replicas: only the holder of a Lease in the WDS writes;
    /// the others keep their watches and engine hot and take over when it goes
    /// (`--leader-elect`, `--leader-elect=true|false`). Identity: `POD_NAME`, else the
    /// hostname with a random suffix.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL",
          env = "BINDERY_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(
        long,
        default_value = "bindery",
        value_name = "NAME",
        env = "BINDERY_LEADER_ELECT_LEASE_NAME"
    )]
    pub leader_elect_lease_name: String,
    /// The Lease's namespace in the WDS.
    #[arg(
        long,
        default_value = "kube-system",
        value_name = "NAMESPACE",
        env = "BINDERY_LEADER_ELECT_LEASE_NAMESPACE"
    )]
    pub leader_elect_lease_namespace: String,
    /// How long a Lease not renewed stays its holder's, for the other replicas.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION", env = "BINDERY_LEADER_ELECT_LEASE_DURATION")]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps writing without renewing its Lease (below the lease
    /// duration, so it has stopped before another replica can take over).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION", env = "BINDERY_LEADER_ELECT_RENEW_DEADLINE")]
    pub leader_elect_renew_deadline: Duration,
    /// How often replicas try to take the Lease and the leader renews it.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION", env = "BINDERY_LEADER_ELECT_RETRY_PERIOD")]
    pub leader_elect_retry_period: Duration,
}

impl LeaderArgs {
    /// The election to run, if `--leader-elect`; checked.
    pub fn config(&self) -> Result<Option<LeaderConfig>, LeaderError> {
        if !self.leader_elect {
            return Ok(None);
        }
        let config = LeaderConfig {
            lease_name: self.leader_elect_lease_name.clone(),
            lease_namespace: self.leader_elect_lease_namespace.clone(),
            identity: default_identity(),
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        };
        config.validate()?;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_client_go_writes_them() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("15s"), Ok(ms(15_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("4"), Ok(ms(4_000)));
        for bad in ["", "s", "15x", "-1s", "1e400", "-2", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    fn config() -> LeaderConfig {
        LeaderConfig {
            lease_name: "bindery".into(),
            lease_namespace: "kube-system".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    #[test]
    fn timings_must_nest_as_client_go_requires() {
        assert!(config().validate().is_ok());
        let with = |f: fn(&mut LeaderConfig)| {
            let mut c = config();
            f(&mut c);
            c.validate()
        };
        assert!(with(|c| c.renew_deadline = c.lease_duration).is_err());
        assert!(with(|c| c.retry_period = c.renew_deadline).is_err());
        assert!(with(|c| c.retry_period = Duration::ZERO).is_err());
        assert!(with(|c| c.lease_duration = Duration::from_millis(15_500)).is_err());
        assert!(with(|c| c.identity.clear()).is_err());
    }

    #[test]
    fn the_identity_is_the_pod_name_or_unique_per_process() {
        // POD_NAME is not set in tests (nothing sets it); two calls stand for two
        // processes on one host: a fresh random seed each.
        if std::env::var_os("POD_NAME").is_none() {
            assert_ne!(default_identity(), default_identity());
        }
    }
}
