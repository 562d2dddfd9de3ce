//! Rate limits and fault knobs.
//!
//! Primary limit: one budget per identity and resource (`core`, `graphql`), a window that
//! starts with the first request after a reset and lasts `window_secs` (GitHub: an hour; tests
//! make it seconds). Every counted request spends one; 304s and `/rate_limit` are free.
//! Exhausted budgets get 403 (or 429, a knob) with `x-ratelimit-remaining: 0` until `reset`.
//! Secondary limits and the other faults are switched on by tests.

use std::collections::HashMap;
use std::time::Duration;

use crate::forge::util::{now, Epoch};

/// The documented primary budgets per hour.
pub(crate) const USER_LIMIT: u64 = 5_000;
pub(crate) const INSTALLATION_LIMIT: u64 = 5_000;
pub(crate) const ANONYMOUS_LIMIT: u64 = 60;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub limit: u64,
    pub used: u64,
    pub reset: Epoch,
}

impl Bucket {
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// A burst of secondary-rate-limit responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondaryLimit {
    /// How many of the next API requests are refused.
    pub requests: u32,
    /// The `retry-after` header in seconds; `None` sends none (clients must then wait at least
    /// a minute, per GitHub's docs, or use their own backoff).
    pub retry_after: Option<u64>,
    /// 403 (GitHub's usual answer) or 429.
    pub status: u16,
}

#[derive(Debug)]
pub(crate) struct Limits {
    pub window_secs: u64,
    /// Status of exhausted-primary responses: 403 or 429.
    pub primary_status: u16,
    pub secondary: Option<SecondaryLimit>,
    buckets: HashMap<String, Bucket>,
    /// Remaining budgets set ahead for buckets that do not exist yet.
    preset: HashMap<String, u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window_secs: 3600,
            primary_status: 403,
            secondary: None,
            buckets: HashMap::new(),
            preset: HashMap::new(),
        }
    }
}

fn limit_for(key: &str) -> u64 {
    if key.starts_with("anonymous") {
        ANONYMOUS_LIMIT
    } else if key.starts_with("installation:") {
        INSTALLATION_LIMIT
    } else {
        USER_LIMIT
    }
}

impl Limits {
    /// The current bucket of `identity` for `resource`, started or renewed if its window ended.
    pub(crate) fn bucket(&mut self, identity: &str, resource: &str) -> Bucket {
        let key = format!("{identity}/{resource}");
        let t = now();
        let window = self.window_secs as i64;
        let preset = self.preset.remove(&key);
        let b = self.buckets.entry(key.clone()).or_insert_with(|| {
            let limit = limit_for(&key);
            Bucket {
                limit,
                used: 0,
                reset: t + window,
            }
        });
        if t >= b.reset {
            b.used = 0;
            b.reset = t + window;
        }
        if let Some(remaining) = preset {
            b.used = b.limit.saturating_sub(remaining);
        }
        *b
    }

    pub(crate) fn spend(&mut self, identity: &str, resource: &str) -> Bucket {
        self.bucket(identity, resource);
        let key = format!("{identity}/{resource}");
        match self.buckets.get_mut(&key) {
            Some(b) => {
                b.used = (b.used + 1).min(b.limit);
                *b
            }
            None => self.bucket(identity, resource),
        }
    }

    /// Sets the remaining `core` budget of `identities` now (the window keeps its reset time).
    pub(crate) fn set_remaining(&mut self, identities: &[String], remaining: u64) {
        for id in identities {
            let key = format!("{id}/core");
            match self.buckets.get_mut(&key) {
                Some(b) if now() < b.reset => b.used = b.limit.saturating_sub(remaining),
                _ => {
                    self.buckets.remove(&key);
                    self.preset.insert(key, remaining);
                }
            }
        }
    }

    /// Changes the window length; a running window ends no later than one new window from now.
    pub(crate) fn set_window(&mut self, window: Duration) {
        self.window_secs = window.as_secs().max(1);
        let latest = now() + self.window_secs as i64;
        for b in self.buckets.values_mut() {
            b.reset = b.reset.min(latest);
        }
    }

    /// Takes one request out of an active secondary-limit burst.
    pub(crate) fn take_secondary(&mut self) -> Option<SecondaryLimit> {
        let s = self.secondary.as_mut()?;
        if s.requests == 0 {
            self.secondary = None;
            return None;
        }
        s.requests -= 1;
        let out = *s;
        if s.requests == 0 {
            self.secondary = None;
        }
        Some(out)
    }
}

/// How one repository misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoFault {
    /// 500 Internal Server Error.
    ServerError,
    /// 404 Not Found (as if deleted after it was listed).
    NotFound,
    /// 451 "Repository access blocked" (a DMCA takedown).
    Blocked,
}

/// Where a repository fault applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultScope {
    /// REST calls under `/repos/{owner}/{repo}` only.
    Api,
    /// Git and LFS over HTTPS only.
    Git,
    Both,
}

impl FaultScope {
    pub(crate) fn api(self) -> bool {
        matches!(self, FaultScope::Api | FaultScope::Both)
    }

    pub(crate) fn git(self) -> bool {
        matches!(self, FaultScope::Git | FaultScope::Both)
    }
}

/// How one LFS object is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfsBreak {
    /// Served with one byte changed (the client's sha256 check must catch it).
    Corrupt,
    /// The batch API answers 404 "Object does not exist" for it.
    Missing,
    /// Its download answers 500.
    ServerError,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Every Nth API request answers 500.
    pub fail_every_nth: Option<u64>,
    pub api_requests_seen: u64,
    /// By lower-case full name.
    pub repos: HashMap<String, (RepoFault, FaultScope)>,
    /// Delay before every response.
    pub slow: Option<Duration>,
    /// By oid.
    pub lfs: HashMap<String, LfsBreak>,
    /// Whether downloads raise `download_count` (GitHub does; off so that captures compare
    /// equal to a dump taken after them).
    pub count_downloads: bool,
}

impl Faults {
    /// Counts an API request and says whether it is one of the every-Nth failures.
    pub(crate) fn nth_fails(&mut self) -> bool {
        self.api_requests_seen += 1;
        self.fail_every_nth
            .is_some_and(|n| n > 0 && self.api_requests_seen.is_multiple_of(n))
    }

    pub(crate) fn repo(&self, full_name: &str) -> Option<(RepoFault, FaultScope)> {
        self.repos.get(&full_name.to_ascii_lowercase()).copied()
    }
}
