//! Store URLs as users write them, translated into rustic backend options.
//!
//! Accepted forms:
//! - a local path (`/var/lib/repovault/store`, `./store`, `local:/path`);
//! - `s3:https://host[:port]/bucket[/prefix]` (S3-compatible, path-style; credentials come from
//!   the usual `AWS_*` environment variables or the `options` map, never from the URL);
//! - `opendal:<service>` with every setting in the `options` map, for any other opendal service.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::StoreError;

/// Where a store lives. Displays without any secret it may carry in its options.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreLocation {
    url: String,
    kind: LocationKind,
    options: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum LocationKind {
    Local(PathBuf),
    S3 {
        endpoint: String,
        bucket: String,
        root: String,
    },
    OpenDal(String),
}

/// Option names that hold secrets; they are never displayed or logged.
const SECRET_OPTIONS: &[&str] = &[
    "secret_access_key",
    "access_key_id",
    "session_token",
    "password",
    "token",
    "account_key",
    "credential",
];

impl StoreLocation {
    /// Parses a store URL; `options` are extra backend settings (for example S3 credentials
    /// resolved from files).
    pub fn parse(url: &str, options: BTreeMap<String, String>) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        let kind = if let Some(rest) = url.strip_prefix("s3:") {
            let (scheme, after) = rest
                .split_once("://")
                .ok_or_else(|| invalid("expected s3:https://host/bucket/prefix"))?;
            if scheme != "https" && scheme != "http" {
                return Err(invalid("the endpoint must be http:// or https://"));
            }
            let mut parts = after.splitn(3, '/');
            let host = parts.next().unwrap_or_default();
            if host.is_empty() {
                return Err(invalid("no host"));
            }
            if host.contains('@') {
                return Err(invalid(
                    "credentials do not belong in the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the store options",
                ));
            }
            let bucket = parts.next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(invalid("no bucket"));
            }
            let prefix = parts.next().unwrap_or_default().trim_matches('/');
            LocationKind::S3 {
                endpoint: format!("{scheme}://{host}"),
                bucket: bucket.to_owned(),
                root: format!("/{prefix}"),
            }
        } else if let Some(service) = url.strip_prefix("opendal:") {
            if service.is_empty() {
                return Err(invalid("no opendal service named"));
            }
            LocationKind::OpenDal(service.to_owned())
        } else if url.contains("://") {
            return Err(invalid(
                "unknown scheme; use a local path, s3:https://host/bucket/prefix or opendal:<service>",
            ));
        } else {
            LocationKind::Local(PathBuf::from(url.strip_prefix("local:").unwrap_or(url)))
        };
        Ok(Self {
            url: url.to_owned(),
            kind,
            options,
        })
    }

    /// The local directory, when the store is on a local file system.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.kind {
            LocationKind::Local(p) => Some(p),
            _ => None,
        }
    }

    /// The opendal service and its options, for stores that are not a local directory. The same
    /// settings build rustic's backend and repovault's own operator (leases, listings, locks).
    pub(crate) fn remote(&self) -> Option<(String, BTreeMap<String, String>)> {
        let mut options = self.options.clone();
        match &self.kind {
            LocationKind::Local(_) => None,
            LocationKind::S3 {
                endpoint,
                bucket,
                root,
            } => {
                options
                    .entry("endpoint".into())
                    .or_insert_with(|| endpoint.clone());
                options
                    .entry("bucket".into())
                    .or_insert_with(|| bucket.clone());
                options.entry("root".into()).or_insert_with(|| root.clone());
                let region = std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".to_owned());
                options.entry("region".into()).or_insert(region);
                // Most self-hosted S3 servers only speak path-style requests.
                options
                    .entry("enable_virtual_host_style".into())
                    .or_insert_with(|| "false".to_owned());
                // Buckets with Object Lock refuse uploads without a checksum header, and an MD5
                // lets every server verify what arrived. Packs are written in one PUT each, so
                // MD5 (which opendal cannot use for multipart uploads) always applies.
                options
                    .entry("checksum_algorithm".into())
                    .or_insert_with(|| "md5".to_owned());
                Some(("s3".to_owned(), options))
            }
            LocationKind::OpenDal(service) => Some((service.clone(), options)),
        }
    }

    /// Whether the store is in an S3 bucket (Object Lock applies).
    pub(crate) fn is_s3(&self) -> bool {
        matches!(self.kind, LocationKind::S3 { .. })
            || matches!(&self.kind, LocationKind::OpenDal(s) if s == "s3")
    }

    pub(crate) fn backend_options(&self) -> rustic_backend::BackendOptions {
        let (repository, options) = match &self.kind {
            LocationKind::Local(p) => (format!("local:{}", p.display()), self.options.clone()),
            _ => {
                let (service, options) = self.remote().unwrap_or_default();
                (format!("opendal:{service}"), options)
            }
        };
        rustic_backend::BackendOptions::default()
            .repository(repository)
            .options(options)
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                let secret = SECRET_OPTIONS.iter().any(|s| k.contains(s));
                (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("StoreLocation")
            .field("url", &self.url)
            .field("options", &shown)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_url_splits_into_endpoint_bucket_and_root() {
        let loc = StoreLocation::parse("s3:http://127.0.0.1:9000/bkt/some/prefix", BTreeMap::new())
            .expect("valid");
        assert_eq!(
            loc.kind,
            LocationKind::S3 {
                endpoint: "http://127.0.0.1:9000".into(),
                bucket: "bkt".into(),
                root: "/some/prefix".into()
            }
        );
    }

    #[test]
    fn bad_urls_are_rejected_with_a_reason() {
        for url in [
            "",
            "s3:",
            "s3:https://",
            "s3:https://host",
            "s3:ftp://h/b",
            "s3:https://ak:sk@host/b",
            "ftp://x/y",
            "opendal:",
        ] {
            assert!(
                matches!(
                    StoreLocation::parse(url, BTreeMap::new()),
                    Err(StoreError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn debug_hides_secret_options() {
        let mut o = BTreeMap::new();
        o.insert("secret_access_key".to_owned(), "SUPERSECRET".to_owned());
        let loc = StoreLocation::parse("s3:https://h/b", o).expect("valid");
        assert!(!format!("{loc:?}").contains("SUPERSECRET"));
    }
}
