//! Causeway's HTTP API and web UI server: `/api/v1` (incidents with their causal traces,
//! events, processes, health, rules, policies), a live incident stream (server-sent events),
//! Prometheus `/metrics`, an OpenAPI document, and the web UI embedded at compile time.
//!
//! Key design choice: the server owns no data. Everything it shows comes through the
//! object-safe, synchronous [`Backend`] trait (the store is SQLite, so calls run on tokio's
//! blocking pool), which the node implements over the store, graph and rules crates (its
//! tests run the real `causeway server` over recorded fixtures). What the server
//! does itself is what every backend would otherwise repeat: input validation, auth, error
//! hygiene (JSON `{"error": ...}`, no internals), and aggregation of large traces so the
//! browser never lays out thousands of nodes.

pub mod aggregate;
pub mod api;
pub mod backend;
pub mod error;
pub mod http;
pub mod openapi;
pub mod types;

pub use backend::{Backend, BackendError, Direction, EventQuery, IncidentQuery};
pub use error::{ApiError, ServeError};
pub use http::{resolve_token, TokenSource};

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The bearer token. `None`: none on loopback; elsewhere one is read from (or generated
    /// into) `data_dir/api-token`.
    pub token: Option<String>,
    /// Where a generated token is kept (0600).
    pub data_dir: Option<PathBuf>,
    /// Require a token on loopback too.
    pub require_token_on_loopback: bool,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            token: None,
            data_dir: None,
            require_token_on_loopback: false,
        }
    }
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    /// `None`: no auth (loopback only, see [`resolve_token`]).
    pub token: Option<Arc<str>>,
}

impl AppState {
    pub fn new(backend: Arc<dyn Backend>, token: Option<String>) -> Self {
        AppState {
            backend,
            token: token.map(Arc::from),
        }
    }
}

/// The whole application: every route of [`api::routes`], the UI fallback, auth and
/// security headers. Tests drive it without a socket.
pub fn router(state: AppState) -> Router {
    let mut r: Router<AppState> = Router::new();
    for (path, handler) in api::routes() {
        r = r.route(path, handler);
    }
    r.fallback(http::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::auth,
        ))
        .layer(axum::middleware::from_fn(http::security_headers))
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed".into(),
    }
}

/// Serve until Ctrl-C / SIGTERM.
pub async fn serve(config: ServerConfig, backend: Arc<dyn Backend>) -> Result<(), ServeError> {
    serve_with_shutdown(config, backend, shutdown_signal()).await
}

/// Serve until `shutdown` completes. Prints the URL, and the token if one was generated.
pub async fn serve_with_shutdown(
    config: ServerConfig,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (token, source) = resolve_token(
        config.listen,
        config.token.as_deref(),
        config.data_dir.as_deref(),
        config.require_token_on_loopback,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    eprintln!("causeway: serving http://{addr}/");
    match (&token, &source) {
        (Some(t), TokenSource::Generated) => {
            eprintln!("causeway: generated API token (stored in the data directory): {t}");
        }
        (Some(_), _) => eprintln!("causeway: API requires a bearer token"),
        (None, _) => eprintln!("causeway: loopback listener, no token required"),
    }
    if !http::ui_embedded() {
        eprintln!("causeway: web UI not built in (cd ui && npm ci && npm run build, then rebuild)");
    }
    let app = router(AppState::new(backend, token));
    // Live streams never end by themselves, so a graceful shutdown gets a grace period and
    // then the remaining connections are dropped.
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let mut rx2 = rx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = rx.changed().await;
    });
    tokio::select! {
        r = server => r?,
        _ = async {
            let _ = rx2.changed().await;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        } => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
