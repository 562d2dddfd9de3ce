//! S3 Object Lock, read from an object's HEAD response (opendal does not expose the lock
//! headers, so the HEAD is presigned by opendal and sent by repovault).
//!
//! Maintenance asks before every delete: a locked object is kept and reported. Deleting it
//! without a version id would "succeed" on a versioned bucket by adding a delete marker, and
//! the locked data would stay, invisible and still paid for.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::remote::Remote;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectLock {
    pub mode: Option<String>,
    pub retain_until: Option<Timestamp>,
    pub legal_hold: bool,
}

impl ObjectLock {
    pub(crate) fn is_active(&self) -> bool {
        self.legal_hold || self.retain_until.is_some_and(|t| t > Timestamp::now())
    }

    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(until) = self.retain_until.filter(|t| *t > Timestamp::now()) {
            parts.push(format!(
                "{} retention until {until}",
                self.mode.as_deref().unwrap_or("Object Lock")
            ));
        }
        if self.legal_hold {
            parts.push("legal hold".to_owned());
        }
        format!("locked by the bucket ({})", parts.join(", "))
    }

    fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mode = text("x-amz-object-lock-mode");
        let retain_until =
            text("x-amz-object-lock-retain-until-date").and_then(|t| t.parse::<Timestamp>().ok());
        let legal_hold =
            text("x-amz-object-lock-legal-hold").is_some_and(|v| v.eq_ignore_ascii_case("on"));
        (mode.is_some() || retain_until.is_some() || legal_hold).then_some(Self {
            mode,
            retain_until,
            legal_hold,
        })
    }
}

/// Reads lock state of objects in an S3 store.
#[derive(Clone)]
pub(crate) struct LockProbe {
    remote: Arc<Remote>,
}

impl LockProbe {
    pub(crate) fn new(remote: Arc<Remote>) -> Self {
        Self { remote }
    }

    /// The lock of the object at `path` (relative to the store root); `None` when it has none
    /// or does not exist.
    pub(crate) fn lock_of(&self, path: &str) -> Result<Option<ObjectLock>, StoreError> {
        let op = self.remote.op().clone();
        let path = path.to_owned();
        let response = self.remote.block_on(async move {
            let signed = op.presign_stat(&path, Duration::from_secs(300)).await?;
            let mut req = http::Request::builder()
                .method(signed.method().clone())
                .uri(signed.uri().clone());
            for (name, value) in signed.header() {
                req = req.header(name, value);
            }
            let req = req.body(opendal::Buffer::new()).map_err(|e| {
                opendal::Error::new(opendal::ErrorKind::Unexpected, "building a HEAD request")
                    .set_source(e)
            })?;
            opendal::HttpTransporter::default().send(req).await
        })?;
        // Only kind and message: the error's context would show the presigned URL.
        let response = response.map_err(|e| StoreError::Backend {
            operation: "reading an object's lock".into(),
            message: format!("{}: {}", e.kind(), e.message()),
            retryable: e.is_temporary(),
        })?;
        match response.status().as_u16() {
            404 => Ok(None),
            200..=299 => Ok(ObjectLock::from_headers(response.headers())),
            status => Err(StoreError::Backend {
                operation: "reading an object's lock".into(),
                message: format!("HEAD answered HTTP {status}"),
                retryable: status >= 500,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_headers_are_read() {
        let mut h = http::HeaderMap::new();
        assert_eq!(ObjectLock::from_headers(&h), None);
        h.insert(
            "x-amz-object-lock-mode",
            http::HeaderValue::from_static("COMPLIANCE"),
        );
        h.insert(
            "x-amz-object-lock-retain-until-date",
            http::HeaderValue::from_static("2999-01-01T00:00:00.000Z"),
        );
        let lock = ObjectLock::from_headers(&h).expect("locked");
        assert!(lock.is_active());
        assert!(lock.describe().contains("COMPLIANCE retention until 2999"));
        h.insert(
            "x-amz-object-lock-retain-until-date",
            http::HeaderValue::from_static("2001-01-01T00:00:00Z"),
        );
        assert!(!ObjectLock::from_headers(&h)
            .expect("has lock fields")
            .is_active());
        h.insert(
            "x-amz-object-lock-legal-hold",
            http::HeaderValue::from_static("ON"),
        );
        assert!(ObjectLock::from_headers(&h).expect("held").is_active());
    }
}
