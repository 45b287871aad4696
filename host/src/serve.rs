//! `snapgit serve`: every repo of a store as a git remote over smart HTTP, at
//! `/<repo>.git` (its branches as `refs/heads/*`, its tags as `refs/tags/*`).
//!
//! Fetches (`git clone`, `git fetch`, shallow and partial clones) speak protocol v2;
//! pushes speak v0/v1, as git's own pushes do. What to send and what to accept is
//! decided by core ([`snapgit_core::remote`]), run natively; this module only carries
//! HTTP, checks tokens and bounds request sizes.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use snapgit_core::Limits;

use crate::storage::Storage;

pub mod auth;
mod git;

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tokens: Tokens::default(),
            allow_non_fast_forward: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            limits: Limits::default(),
            policy: snapgit_core::policy::Policy::default(),
        }
    }
}

/// The default largest request: 1 GiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 30;

/// What every request shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: Config,
}

/// The server's routes over `storage`, for [`serve`] or any axum host.
pub fn router(storage: Arc<dyn Storage>, config: Config) -> Router {
    let limit = config.max_request_bytes;
    let shared = Arc::new(Shared { storage, config });
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// Serve `storage` on `addr` until `shutdown` resolves; requests in flight finish first.
/// Without tokens, only a loopback address is accepted.
pub async fn serve(
    storage: Arc<dyn Storage>,
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
    axum::serve(listener, router(storage, config))
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

/// Every response allows any origin, so a page (the npm package in a browser) may fetch
/// and push: credentials travel in `Authorization`, which a page must set itself, never in
/// cookies, so another origin gains nothing it could not send anyway.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        serve_git(shared, request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Type, WWW-Authenticate"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Content-Encoding, Accept, Git-Protocol"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

async fn serve_git(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
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
