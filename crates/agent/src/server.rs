//! The agent's HTTP endpoints: `/metrics` (Prometheus text 0.0.4), `/healthz` (the loop is
//! alive), `/readyz` (the first full evaluation is done), `/findings` (the `check` JSON of
//! the latest runs).

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub findings: Mutex<String>,
    pub ready: AtomicBool,
    /// When the engine last finished a tick (ms), and how late is too late.
    pub last_tick_ms: AtomicU64,
    pub stale_after_ms: u64,
    pub now_ms: fn() -> u64,
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        s.metrics.encode(),
    )
}

async fn healthz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let last = s.last_tick_ms.load(Ordering::Relaxed);
    let now = (s.now_ms)();
    // Alive from the start (the first tick may take a while) until the loop stalls.
    if last == 0 || now.saturating_sub(last) <= s.stale_after_ms {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the check loop has not run for {} ms\n",
                now.saturating_sub(last)
            ),
        )
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the first evaluation is not done\n",
        )
    }
}

async fn findings(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let body = s.findings.lock().map(|f| f.clone()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/findings", get(findings))
        .with_state(shared)
}
