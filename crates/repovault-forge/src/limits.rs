//! Rate-limit budgets, pacing and retry back-off, and the per-source request figures.
//!
//! GitHub counts requests per credential (a token, or each App installation). Every response
//! carries `X-RateLimit-Remaining` and `X-RateLimit-Reset`; the budget below keeps the latest
//! figures per credential and spaces requests out when little is left, so a long run reaches the
//! reset instead of hitting the wall. A 304 does not count against the budget, so the local
//! estimate is corrected by every response.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How requests are retried and paced. The defaults suit GitHub; tests shorten them.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of a request after a 5xx or a connection error.
    pub max_retries: u32,
    /// First back-off; doubled per retry, with full jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Waits for a primary or secondary rate limit one request may sit through.
    pub max_rate_limit_waits: u32,
    /// The longest single rate-limit wait (GitHub resets hourly).
    pub max_wait: Duration,
    /// Start pacing when less than this share of the budget is left.
    pub slow_down_below: f64,
    /// Time limit of one HTTP request.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_rate_limit_waits: 8,
            max_wait: Duration::from_secs(3700),
            slow_down_below: 0.05,
            request_timeout: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Exponential back-off with full jitter for retry number `attempt` (0-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
        // Half fixed, half random: never zero, still spread out across workers.
        Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
    }
}

/// The figures the run report shows per source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApiStats {
    /// HTTP requests sent, 304s and retries included.
    pub requests: u64,
    /// Answers `304 Not Modified` (free on GitHub).
    pub not_modified: u64,
    /// Requests sent again after a 5xx, a connection error or a rate-limit wait.
    pub retries: u64,
    /// Times the client waited for a primary or secondary rate limit, and for how long.
    pub rate_limit_waits: u64,
    pub rate_limit_wait_ms: u64,
    /// The lowest remaining budget seen at the end of the run, per the last response of each
    /// credential; absent when the forge sent no rate-limit headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub not_modified: AtomicU64,
    pub retries: AtomicU64,
    pub waits: AtomicU64,
    pub wait_ms: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn waited(&self, d: Duration) {
        Self::add(&self.waits, 1);
        Self::add(
            &self.wait_ms,
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        );
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u64,
    limit: u64,
    reset: SystemTime,
}

/// Latest known budget per credential key.
#[derive(Debug, Default)]
pub(crate) struct Budgets {
    windows: Mutex<HashMap<String, Window>>,
}

/// What a response said about the budget.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reading {
    pub remaining: Option<u64>,
    pub limit: Option<u64>,
    pub reset: Option<SystemTime>,
}

impl Reading {
    pub fn from_headers(h: &reqwest::header::HeaderMap) -> Self {
        let num = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        Self {
            remaining: num("x-ratelimit-remaining"),
            limit: num("x-ratelimit-limit"),
            reset: num("x-ratelimit-reset").map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        }
    }

    /// How long until the reset this reading announces (at least a second: the reset second
    /// itself must have passed).
    pub fn until_reset(&self) -> Option<Duration> {
        self.reset.map(|r| {
            r.duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_add(Duration::from_secs(1))
        })
    }
}

impl Budgets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records what a response said.
    pub fn update(&self, key: &str, r: &Reading) {
        if let (Some(remaining), Some(reset)) = (r.remaining, r.reset) {
            let limit = r.limit.unwrap_or(remaining.max(1));
            self.lock().insert(
                key.to_owned(),
                Window {
                    remaining,
                    limit,
                    reset,
                },
            );
        }
    }

    /// How long to wait before the next request on `key`, and takes one unit of budget for it.
    /// Nothing left: wait for the reset. Little left: spread what is left over the time to the
    /// reset. A window whose reset has passed is forgotten.
    pub fn before_request(&self, key: &str, policy: &RetryPolicy) -> Duration {
        let mut windows = self.lock();
        let Some(w) = windows.get_mut(key) else {
            return Duration::ZERO;
        };
        let now = SystemTime::now();
        let Ok(to_reset) = w.reset.duration_since(now) else {
            windows.remove(key);
            return Duration::ZERO;
        };
        let to_reset = to_reset + Duration::from_secs(1);
        if w.remaining == 0 {
            // Everyone waiting for the same reset: the first response after it corrects this.
            return to_reset.min(policy.max_wait);
        }
        let share = w.remaining as f64 / w.limit.max(1) as f64;
        let delay = if share < policy.slow_down_below {
            to_reset / u32::try_from(w.remaining + 1).unwrap_or(u32::MAX)
        } else {
            Duration::ZERO
        };
        w.remaining -= 1;
        delay.min(policy.max_wait)
    }

    /// The lowest remaining figure and its limit among all credentials.
    pub fn lowest(&self) -> (Option<u64>, Option<u64>) {
        self.lock()
            .values()
            .min_by_key(|w| w.remaining)
            .map_or((None, None), |w| (Some(w.remaining), Some(w.limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(remaining: u64, limit: u64, secs: u64) -> Reading {
        Reading {
            remaining: Some(remaining),
            limit: Some(limit),
            reset: Some(SystemTime::now() + Duration::from_secs(secs)),
        }
    }

    #[test]
    fn paces_when_low_and_waits_when_empty() {
        let p = RetryPolicy::default();
        let b = Budgets::default();
        assert_eq!(b.before_request("t", &p), Duration::ZERO);
        b.update("t", &reading(4000, 5000, 100));
        assert_eq!(b.before_request("t", &p), Duration::ZERO);
        b.update("t", &reading(9, 5000, 100));
        let d = b.before_request("t", &p);
        assert!(
            d > Duration::from_secs(5) && d <= Duration::from_secs(11),
            "{d:?}"
        );
        b.update("t", &reading(0, 5000, 100));
        assert!(b.before_request("t", &p) >= Duration::from_secs(100));
        // Other credentials have their own budget.
        assert_eq!(b.before_request("other", &p), Duration::ZERO);
        assert_eq!(b.lowest(), (Some(0), Some(5000)));
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = RetryPolicy::default();
        for attempt in 0..20 {
            let d = p.backoff(attempt);
            assert!(d >= Duration::from_millis(1) && d <= p.max_backoff);
        }
        assert!(p.backoff(6) >= Duration::from_secs(15));
    }
}
