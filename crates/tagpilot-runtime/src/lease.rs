//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` (what Flux's
//! controllers run) does it, with Flux's flags:
//!
//! - a candidate tries every `--leader-election-retry-period` (5 s, with up to 20 % jitter): it takes the Lease
//!   when it is free (no holder) or when its record has not changed for `--leader-election-lease-duration`
//!   (35 s) of this process's own clock (no trust in other clocks);
//! - the leader renews every retry period; when renewing has failed for `--leader-election-renew-deadline`
//!   (30 s), leadership is lost and the process exits (`leader election lost`, exit 1);
//! - at shutdown (`--leader-election-release-on-cancel`, on by default) the leader empties the holder and sets
//!   the duration to 1 s, so a standby takes over at its next try;
//! - every write is an update on the read `resourceVersion`: two candidates never both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

/// The timing of an election (Flux's `--leader-election-*` flags).
#[derive(Clone, Copy, Debug)]
pub struct LeaseTiming {
    /// How long a record may stay unchanged before a candidate takes the Lease.
    pub lease_duration: Duration,
    /// How long the leader may fail to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    pub retry_period: Duration,
    /// Whether leadership is given up at shutdown.
    pub release_on_cancel: bool,
}

/// One candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    /// The last record seen and when this process first saw it.
    observed: Option<(LeaseSpec, Instant)>,
}

impl Elector {
    /// A candidate `identity` for the Lease `name` of `api`'s namespace.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: LeaseTiming) -> Elector {
        Elector {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            observed: None,
        }
    }

    /// Tries once to take or renew the Lease; returns whether this candidate holds it.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let secs = self
            .timing
            .lease_duration
            .as_secs()
            .clamp(1, i32::MAX as u64) as i32;
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(l) => {
                    self.observe(l.spec.unwrap_or_default());
                    Ok(true)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        self.observe(spec.clone());
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        if !holder.is_empty() && !ours {
            let held_for =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
            let seen_at = self
                .observed
                .as_ref()
                .map(|(_, t)| *t)
                .unwrap_or_else(Instant::now);
            if seen_at.elapsed() < held_for {
                return Ok(false);
            }
        }
        let mut next = spec.clone();
        next.holder_identity = Some(self.identity.clone());
        next.lease_duration_seconds = Some(secs);
        next.renew_time = Some(now.clone());
        if !ours {
            next.acquire_time = Some(now);
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        let mut updated = current;
        updated.spec = Some(next);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &updated)
            .await
        {
            Ok(l) => {
                self.observe(l.spec.unwrap_or_default());
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, spec: LeaseSpec) {
        if self.observed.as_ref().map(|(s, _)| s) != Some(&spec) {
            self.observed = Some((spec, Instant::now()));
        }
    }

    /// Waits until this candidate holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "cannot read or write the Lease")
                }
            }
            tokio::time::sleep(jittered(self.timing.retry_period)).await;
        }
    }

    /// Renews the Lease every retry period; returns when renewing has failed for the renew deadline
    /// (leadership lost).
    pub async fn keep(&mut self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "cannot renew the Lease"),
            }
            if last_renewed.elapsed() >= self.timing.renew_deadline {
                return;
            }
        }
    }

    /// Gives the Lease up, if held: no holder, a duration of 1 s.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut current) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let mut spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        current.spec = Some(spec);
        self.api
            .replace(&self.name, &PostParams::default(), &current)
            .await
            .map(|_| ())
    }
}

/// `d` plus up to 20 % (client-go's jitter factor 1.2).
fn jittered(d: Duration) -> Duration {
    d + d.mul_f64(rand::random::<f64>() * 0.2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_stays_within_a_fifth() {
        let d = std::time::Duration::from_secs(5);
        for _ in 0..100 {
            let j = super::jittered(d);
            assert!(j >= d && j <= d.mul_f64(1.2), "{j:?}");
        }
    }
}
