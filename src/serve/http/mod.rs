//! `wgrec serve`: recommendations and predictions over HTTP (tokio + axum), with concurrent requests
//! batched into one GPU pass (`batcher`), Prometheus metrics, model reload (POST /v1/admin/reload, SIGHUP)
//! and graceful shutdown (SIGTERM, ctrl-c). `page` is the page at `/`.

pub mod api;
pub mod batcher;
pub mod metrics;
pub mod page;

use crate::checkpoint::Checkpoint;
use crate::gpu::AdapterChoice;
use crate::kernels::Choice;
use anyhow::{Context, Result};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use batcher::{Batcher, Limits};
use metrics::{EndpointLabels, Metrics, RequestLabels};
use prometheus_client::registry::Registry;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct ServeOptions {
    pub model: PathBuf,
    pub addr: SocketAddr,
    pub max_batch: usize,
    pub max_wait: Duration,
    pub adapter: AdapterChoice,
    /// The kernel family to rank and predict with (`--kernels`).
    pub kernels: Choice,
    pub quiet: bool,
}

/// How long shutdown waits for open connections after the signal before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Shared {
    pub batcher: Batcher,
    pub metrics: Metrics,
    registry: Registry,
    pub model_path: PathBuf,
    pub max_batch: usize,
    pub max_wait_us: u128,
    /// Reloads run one at a time.
    pub reloading: tokio::sync::Mutex<()>,
}

pub type State = Arc<Shared>;

/// The endpoints, by path (the metrics label); anything else is "other".
const ENDPOINTS: &[&str] = &[
    "/",
    "/healthz",
    "/metrics",
    "/v1/recommend",
    "/v1/predict",
    "/v1/model",
    "/v1/seen",
    "/v1/users",
    "/v1/admin/reload",
];

pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics_text))
        .route(
            "/v1/recommend",
            get(api::recommend_get).post(api::recommend_post),
        )
        .route("/v1/predict", get(api::predict_get).post(api::predict_post))
        .route("/v1/model", get(api::model))
        .route("/v1/seen", get(api::seen))
        .route("/v1/users", get(api::users))
        .route("/v1/admin/reload", post(api::reload_post))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts every request by endpoint and status and times it.
async fn track(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    let t0 = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path();
    let endpoint = ENDPOINTS
        .iter()
        .find(|&&e| e == path)
        .copied()
        .unwrap_or("other")
        .to_string();
    let mut response = next.run(req).await;
    // axum answers a wrong method with an empty 405; clients get the same JSON error shape as elsewhere.
    if response.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = response.headers().get(axum::http::header::ALLOW).cloned();
        response = api::ApiError {
            status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{method} is not allowed on {endpoint}"),
        }
        .into_response();
        if let Some(allow) = allow {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
    }
    let m = &state.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&EndpointLabels { endpoint })
        .observe(t0.elapsed().as_secs_f64());
    response
}

async fn metrics_text(axum::extract::State(state): axum::extract::State<State>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        return api::ApiError {
            status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        }
        .into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Resolves on SIGTERM or ctrl-c.
async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Reloads the model on every SIGHUP, saying how it went on stderr.
#[cfg(unix)]
async fn reload_on_hangup(state: State) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        eprintln!("warning: cannot listen for SIGHUP; reload with POST /v1/admin/reload");
        return;
    };
    while hup.recv().await.is_some() {
        match api::reload(&state).await {
            Ok(doc) => eprintln!(
                "SIGHUP: reloaded {} (model version {})",
                state.model_path.display(),
                doc["model_version"]
            ),
            Err(e) => eprintln!("SIGHUP: {}", e.message),
        }
    }
}

/// Runs the server until SIGTERM or ctrl-c; in-flight requests finish first.
pub fn run(opts: ServeOptions) -> Result<()> {
    // A bad file fails before the adapter is opened.
    let ck = Checkpoint::load(&opts.model)?;
    let (users, movies, dim) = (ck.cfg.users, ck.cfg.movies, ck.cfg.embedding_dim);
    let (metrics, registry) = Metrics::new();
    let batcher = Batcher::spawn(
        &opts.adapter,
        opts.kernels,
        ck,
        Limits {
            max_batch: opts.max_batch.max(1),
            max_wait: opts.max_wait,
        },
        metrics.clone(),
    )?;
    eprintln!("{}", batcher.family.adapter_line(&batcher.adapter));
    eprintln!(
        "model: {} ({} users, {} movies, D {dim})",
        opts.model.display(),
        users - 1,
        movies - 1
    );
    let state = Arc::new(Shared {
        batcher,
        metrics,
        registry,
        model_path: opts.model.clone(),
        max_batch: opts.max_batch.max(1),
        max_wait_us: opts.max_wait.as_micros(),
        reloading: tokio::sync::Mutex::new(()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wgrec-http")
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(serve(state.clone(), opts.addr, opts.quiet));
    // The handlers are done; let the GPU thread finish what is queued and stop.
    rt.shutdown_background();
    state.batcher.stop();
    served
}

async fn serve(state: State, addr: SocketAddr, quiet: bool) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!("listening on http://{local}");
    #[cfg(unix)]
    let hup = tokio::spawn(reload_on_hangup(state.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        terminated().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|&s| s).await;
    };
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(stopped(stop_rx.clone()))
        .into_future();
    let grace = async {
        stopped(stop_rx).await;
        if !quiet {
            eprintln!("shutting down: finishing the requests in flight");
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = server => r.context("serving")?,
        _ = grace => eprintln!(
            "shutdown: connections still open after {} s; closing them",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
    #[cfg(unix)]
    hup.abort();
    Ok(())
}
