//! repovault's own connection to a remote store, next to rustic's: leases, strict listings and
//! Object Lock probes need requests that rustic's backend does not make (conditional writes,
//! listings that fail on errors, HEAD responses with lock headers). It is built from the same
//! settings as rustic's backend, so it sees the same bucket and prefix.

use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};

use opendal::Operator;

use crate::{StoreError, StoreLocation};

/// An opendal operator for the store's root.
pub(crate) struct Remote {
    op: Operator,
    service: String,
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("repovault-store")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| StoreError::Backend {
            operation: "starting the I/O runtime".into(),
            message: "the runtime could not be created".into(),
            retryable: false,
        })
}

impl Remote {
    /// `None` for a local store.
    pub(crate) fn connect(location: &StoreLocation) -> Result<Option<Arc<Self>>, StoreError> {
        let Some((service, options)) = location.remote() else {
            return Ok(None);
        };
        let op = Operator::via_iter(&service, options)
            .map_err(|e| StoreError::backend("connecting to the store", &e))?
            .layer(opendal::layers::RetryLayer::new().with_jitter());
        Ok(Some(Arc::new(Self { op, service })))
    }

    pub(crate) fn op(&self) -> &Operator {
        &self.op
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// Runs one request to completion on repovault's I/O runtime. Callers are plain threads
    /// (the command's, rayon's), never a runtime's own.
    pub(crate) fn block_on<F: IntoFuture>(&self, f: F) -> Result<F::Output, StoreError> {
        Ok(runtime()?.block_on(f.into_future()))
    }
}
