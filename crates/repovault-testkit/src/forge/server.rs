//! The HTTPS listener and the first routing decision: admin API, downloads, GraphQL, the REST
//! API (Enterprise `/api/v3/…` or api.github.com-style root), or git.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::forge::http::Body;
use crate::forge::state::Shared;
use crate::forge::{admin, api, git, objects};

/// Accepts connections until the runtime shuts down.
pub(crate) async fn run(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(dispatch(shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn dispatch(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return admin::serve(shared, req).await;
    }
    if let Some(id) = path.strip_prefix("/_objects/release-assets/") {
        let id = id.to_owned();
        return objects::asset_download(shared, req, &id).await;
    }
    if let Some(oid) = path.strip_prefix("/_lfs/objects/") {
        let oid = oid.to_owned();
        return objects::lfs_download(shared, req, &oid).await;
    }
    if path == "/api/graphql" {
        return api::serve(shared, req, true, "/graphql".to_owned()).await;
    }
    if let Some(rest) = path.strip_prefix("/api/v3") {
        if rest.is_empty() || rest.starts_with('/') {
            let rest = if rest.is_empty() { "/" } else { rest }.to_owned();
            return api::serve(shared, req, true, rest).await;
        }
    }
    if let Some(gp) = git::parse_path(&path) {
        if gp.rest.starts_with("info/lfs/") {
            return objects::batch(shared, req, gp).await;
        }
        return git::serve(shared, req, gp).await;
    }
    if let Some(target) = objects::browser_download_path(&path) {
        return objects::browser_download(shared, req, target).await;
    }
    api::serve(shared, req, false, path).await
}
