//! `serve --metrics-listen ADDR`: DESIGN.md's figures as Prometheus text at `/metrics`, on a
//! listener of its own. It is unauthenticated (scrapers rarely carry tokens), so it stays off
//! unless asked for and binds where only the scraper reaches.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use domain::ports::Store;
use http_api::metrics::PrometheusRecorder;
use tokio::net::TcpListener;

use crate::serve::BoxError;

/// The process's one Prometheus recorder (installed as the domain's recorder on first use).
fn recorder() -> Arc<PrometheusRecorder> {
    static RECORDER: OnceLock<Arc<PrometheusRecorder>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let r = Arc::new(PrometheusRecorder::default());
            domain::metrics::install(r.clone());
            r
        })
        .clone()
}

/// Binds `addr` and serves `/metrics` until the process ends; answers where it listens.
pub async fn start(addr: SocketAddr, store: Arc<dyn Store>) -> Result<SocketAddr, BoxError> {
    let recorder = recorder();
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let (recorder, store) = (recorder.clone(), store.clone());
            async move {
                // The gauge is read at each scrape: it is what is owed now.
                domain::metrics::record_message_counts(store.as_ref()).await;
                ([(header::CONTENT_TYPE, PrometheusRecorder::CONTENT_TYPE)], recorder.render())
            }
        }),
    );
    let app = app.fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics here\n").into_response() });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!(%bound, "metrics at /metrics");
    Ok(bound)
}
