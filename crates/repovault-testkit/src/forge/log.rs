//! Request accounting: every request the simulator answered, for tests to count.

use serde::Serialize;

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// REST API (root or `/api/v3`).
    Api,
    GraphQl,
    /// Git smart HTTP.
    Git,
    /// LFS batch API and object downloads.
    Lfs,
    /// Release asset downloads (signed URLs and `browser_download_url`).
    Download,
}

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Position in the log; a [`crate::ForgeSim::mark`] is the next one.
    pub seq: u64,
    pub method: String,
    /// Path and query as received (secrets never appear there: tokens travel in headers).
    pub path: String,
    pub kind: RequestKind,
    /// Sent `If-None-Match` or `If-Modified-Since`.
    pub conditional: bool,
    pub status: u16,
    /// Spent one unit of a primary rate-limit budget.
    pub counted: bool,
    /// `anonymous`, `user:<login>`, `installation:<id>` or `app:<id>`.
    pub identity: String,
    /// `owner/name` when the request concerned one repository.
    pub repo: Option<String>,
}

/// Totals over a stretch of the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestSummary {
    pub total: u64,
    pub api: u64,
    pub conditional: u64,
    pub not_modified: u64,
    pub non_conditional_api: u64,
    pub counted: u64,
    pub git: u64,
    pub lfs: u64,
    pub downloads: u64,
    pub server_errors: u64,
    pub rate_limited: u64,
}

impl RequestSummary {
    pub(crate) fn of(records: &[RequestRecord]) -> RequestSummary {
        let mut s = RequestSummary::default();
        for r in records {
            s.total += 1;
            match r.kind {
                RequestKind::Api | RequestKind::GraphQl => {
                    s.api += 1;
                    if !r.conditional {
                        s.non_conditional_api += 1;
                    }
                }
                RequestKind::Git => s.git += 1,
                RequestKind::Lfs => s.lfs += 1,
                RequestKind::Download => s.downloads += 1,
            }
            s.conditional += u64::from(r.conditional);
            s.not_modified += u64::from(r.status == 304);
            s.counted += u64::from(r.counted);
            s.server_errors += u64::from(r.status >= 500);
            s.rate_limited += u64::from(r.status == 403 || r.status == 429);
        }
        s
    }
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    records: Vec<RequestRecord>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, mut r: RequestRecord) {
        r.seq = self.records.len() as u64;
        self.records.push(r);
    }

    pub(crate) fn mark(&self) -> u64 {
        self.records.len() as u64
    }

    pub(crate) fn since(&self, mark: u64) -> &[RequestRecord] {
        let start = (mark as usize).min(self.records.len());
        &self.records[start..]
    }
}
