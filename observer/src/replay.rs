//! `kdump-dma-observer replay`: serve a recorded timeline (or any `report` input) over HTTP as
//! if it were live: `/metrics`, `/events`, `/healthz`. For dashboards and alert rules against
//! a real Prometheus without a crashing machine, and for looking at a past capture.
use std::{future::Future, net::SocketAddr, path::Path, sync::Arc};

use crate::{
    event::Detail,
    report::input::{self, InputError},
    sinks::{http, metrics::Metrics},
};

/// Replay failures.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Loads `input`, then serves it on `addr` until `shutdown` resolves. `on_ready` receives the
/// number of events loaded and the bound address.
pub async fn run(
    input: &Path,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(usize, SocketAddr),
) -> Result<Arc<Metrics>, ReplayError> {
    let loaded = input::load(input)?;
    let capture = loaded.events.iter().any(|e| {
        matches!(
            e.detail,
            Detail::ObserverStarted {
                capture_kernel: true,
                ..
            } | Detail::CaptureKernelMarker { .. }
        )
    });
    let metrics = Metrics::new(capture, 0.0);
    if let Some(Detail::ObserverStarted { probes, .. }) = loaded
        .events
        .iter()
        .map(|e| &e.detail)
        .find(|d| matches!(d, Detail::ObserverStarted { .. }))
    {
        metrics.set_probes(probes);
    }
    metrics.observe(&loaded.events);
    metrics.set_verdict(&crate::verdict::judge(&loaded.events));
    let lines = loaded.events.len() as u64;
    metrics.written(lines, 0, 0);
    let feed = http::Feed::new();
    feed.publish(&loaded.events);
    let listener = http::bind(addr)
        .await
        .map_err(|source| ReplayError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let server = tokio::spawn(http::serve(listener, feed, Some(Arc::clone(&metrics))));
    on_ready(loaded.events.len(), bound);
    shutdown.await;
    server.abort();
    Ok(metrics)
}
