//! `snapgit serve`: every repo of a store as a git remote over smart HTTP, at
//! `/<repo>.git` (its branches as `refs/heads/*`, its tags as `refs/tags/*`), and the
//! JSON API agent servers call, under `/v1` ([`api`]); `/healthz`, `/metrics`
//! (Prometheus) and `/openapi.json` beside them.
//!
//! Fetches (`git clone`, `git fetch`, shallow and partial clones) speak protocol v2;
//! pushes speak v0/v1, as git's own pushes do. What to send and what to accept is
//! decided by core ([`snapgit_core::remote`]), run natively; every JSON route runs one of
//! core's operations ([`snapgit_core::api`]). This module only carries HTTP, checks
//! tokens and bounds request sizes and times.
//!
//! The server keeps no state between requests: any number of them may serve one store
//! (a bucket), the compare-and-swap of refs is the fence, and a lock service (Redis)
//! only spares writers retries.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use snapgit_core::Limits;

use crate::{lock::Locks, storage::Storage};

pub mod api;
pub mod auth;
mod git;
pub mod metrics;
pub mod openapi;
pub mod problem;

pub use auth::{Access, Tokens};

/// How a server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Who may read and write.
    pub tokens: Tokens,
    /// Whether a push may move a branch to a commit that does not descend from its old
    /// one (`git push --force`).
    pub allow_non_fast_forward: bool,
    /// The largest request body accepted (a push's pack), in bytes.
    pub max_request_bytes: usize,
    /// Core's limits: object and file sizes.
    pub limits: Limits,
    /// The write policy every push must respect: excluded paths, the largest file.
    pub policy: snapgit_core::policy::Policy,
    /// How long a commit through the API holds its branch's lock, when the server has a
    /// lock service; `None` for no lock.
    pub lock_ttl_ms: Option<u64>,
    /// The longest a JSON API request may take before it is answered 503.
    pub request_timeout: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tokens: Tokens::default(),
            allow_non_fast_forward: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            limits: Limits::default(),
            policy: snapgit_core::policy::Policy::default(),
            lock_ttl_ms: Some(DEFAULT_LOCK_TTL_MS),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// How long a commit holds its branch's lock by default: 10 s.
pub const DEFAULT_LOCK_TTL_MS: u64 = 10_000;

/// The longest a JSON API request may take by default: 5 minutes.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The default largest request: 1 GiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 30;

/// What every request shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) locks: Option<Arc<dyn Locks>>,
    pub(crate) config: Config,
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) caches: api::Caches,
}

/// The server's routes over `storage`, for [`serve`] or any axum host. `locks` (Redis,
/// shared by every server of the store) spares concurrent commits to one branch their
/// retries; without it the server queues them with an in-process lock.
pub fn router(storage: Arc<dyn Storage>, locks: Option<Arc<dyn Locks>>, config: Config) -> Router {
    let limit = config.max_request_bytes;
    let timeout = config.request_timeout;
    let metrics = Arc::new(metrics::Metrics::default());
    let storage: Arc<dyn Storage> = Arc::new(metrics::Metered::new(storage, metrics.clone()));
    let locks = locks.or_else(|| Some(Arc::new(crate::lock::memory::MemoryLocks::default()) as Arc<dyn Locks>));
    let shared = Arc::new(Shared {
        storage,
        locks,
        config,
        metrics,
        caches: api::Caches::default(),
    });
    let json = api::routes().layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        timeout,
    ));
    Router::new()
        .merge(json)
        .route("/healthz", axum::routing::get(healthz))
        .route("/metrics", axum::routing::get(render_metrics))
        .route("/openapi.json", axum::routing::get(openapi))
        .fallback(serve_git)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), around))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// `GET /healthz`: the server answers (storage is not called).
async fn healthz() -> Response {
    api::json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// `GET /metrics`.
async fn render_metrics(axum::extract::State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
async fn openapi() -> Response {
    api::json_response(StatusCode::OK, &openapi::json())
}

/// Serve `storage` on `addr` until `shutdown` resolves; requests in flight finish first.
/// Without tokens, only a loopback address is accepted.
pub async fn serve(
    storage: Arc<dyn Storage>,
    locks: Option<Arc<dyn Locks>>,
    config: Config,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    config.tokens.check_listen(addr)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_listen(local);
    axum::serve(listener, router(storage, locks, config))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Why a server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The tokens or the address are refused.
    #[error(transparent)]
    Config(#[from] auth::ConfigError),
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }

    fn access(self) -> Access {
        match self {
            Service::UploadPack => Access::Read,
            Service::ReceivePack => Access::Write,
        }
    }
}

/// A plain-text error response (git shows its body).
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
}

/// Around every request: CORS, metrics and a log line.
///
/// Every response allows any origin, so a page (the npm package in a browser) may fetch,
/// push and call the API: credentials travel in `Authorization`, which a page must set
/// itself, never in cookies, so another origin gains nothing it could not send anyway.
async fn around(State(shared): State<Arc<Shared>>, request: Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "git".to_owned(), |path| path.as_str().to_owned());
    let path = request.uri().path().to_owned();
    let preflight = method == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Type, WWW-Authenticate, ETag, X-Snapgit-Commit, X-Snapgit-Mode"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Authorization, Content-Type, Content-Encoding, Accept, Git-Protocol, If-None-Match",
            ),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    shared.metrics.request(method.as_str(), &route, status, elapsed);
    tracing::info!(
        target: "snapgit::serve",
        method = %method,
        path = %path,
        route = %route,
        status,
        ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn serve_git(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if path == "/v1" || path.starts_with("/v1/") {
        return problem::Problem::new(
            snapgit_core::error::Code::NotFound,
            format!("no such route: {} {path} (see /openapi.json)", parts.method),
        )
        .with("value", path)
        .into_response();
    }
    let query = parts.uri.query().unwrap_or_default().to_owned();
    // `/<repo>.git/info/refs`, `/<repo>.git/git-upload-pack`, `/<repo>.git/git-receive-pack`.
    let Some((repo, rest)) = path.strip_prefix('/').and_then(|p| p.split_once(".git/")) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no such route: {path} (repos are at /<repo>.git)"),
        );
    };
    let repo = repo.to_owned();
    if let Err(err) = snapgit_core::store::RepoName::new(&repo) {
        return text(StatusCode::NOT_FOUND, err.to_string());
    }
    let (service, advertise) = match (&parts.method, rest) {
        (&Method::GET, "info/refs") => {
            let service = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("service="))
                .and_then(Service::parse);
            match service {
                Some(service) => (service, true),
                None => {
                    return text(
                        StatusCode::FORBIDDEN,
                        "snapgit serves git's smart HTTP protocol only (?service=git-upload-pack or git-receive-pack)",
                    );
                }
            }
        }
        (&Method::POST, name) => match Service::parse(name) {
            Some(service) => (service, false),
            None => return text(StatusCode::NOT_FOUND, format!("no such route: {path}")),
        },
        _ => return text(StatusCode::NOT_FOUND, format!("no such route: {} {path}", parts.method)),
    };
    let authorization = parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    match shared.config.tokens.allows(authorization, &repo, service.access()) {
        auth::Verdict::Allowed => {}
        auth::Verdict::Unauthenticated => {
            let message = match authorization {
                None => "a token is required",
                Some(_) => "the token is not one this server accepts",
            };
            let mut response = text(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"snapgit\", charset=\"UTF-8\""),
            );
            return response;
        }
        auth::Verdict::Forbidden => {
            let what = match service {
                Service::UploadPack => "read",
                Service::ReceivePack => "write to",
            };
            return text(
                StatusCode::FORBIDDEN,
                format!("this token may not {what} the repo {repo}"),
            );
        }
    }
    let v2 = protocol_v2(&parts.headers);
    if advertise {
        return git::advertise(&shared, &repo, service == Service::UploadPack, v2).await;
    }
    let body = match read_body(&parts.headers, body, shared.config.max_request_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match service {
        Service::UploadPack => git::upload_pack(&shared, &repo, &body).await,
        Service::ReceivePack => git::receive_pack(&shared, &repo, body).await,
    }
}

/// The client asked for protocol v2 (`Git-Protocol: version=2`).
fn protocol_v2(headers: &HeaderMap) -> bool {
    headers
        .get_all("git-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(':'))
        .any(|p| p.trim() == "version=2")
}

/// The request body, inflated if git gzipped it, at most `limit` bytes either way.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Response> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request is over the server's limit of {limit} bytes"),
        )
    };
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"));
    if !gzip {
        return Ok(bytes);
    }
    use std::io::Read as _;
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|err| {
            text(
                StatusCode::BAD_REQUEST,
                format!("the gzip body does not inflate: {err}"),
            )
        })?;
    if inflated.len() > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(inflated))
}

/// The address to listen on when none is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
