//! HTTP for core's [`Step::Http`](snapgit_core::Step): the requests a push or fetch
//! sends to a git remote, over one shared client (connections and TLS sessions reused).

use std::sync::{Arc, OnceLock};

use snapgit_core::{
    StorageError,
    step::{HttpMethod, HttpRequest, HttpResponse},
};

/// An HTTP request to a remote failed before any response, or its body was too large.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be sent or its response read.
    #[error("HTTP {method} {url} failed: {reason}")]
    Failed {
        /// `GET` or `POST`.
        method: &'static str,
        /// The URL (credentials are never in it: core sends them as a header).
        url: String,
        /// Why.
        reason: String,
    },
    /// The response body is larger than the operation accepts.
    #[error("the response to {url} is over the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
}

/// How far one HTTP transfer to a remote has come: reported as the request goes out, as
/// each part of the response arrives, and at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL (never with credentials: core sends them as a header).
    pub url: String,
    /// Bytes of the request body sent.
    pub sent: u64,
    /// Bytes of the response body received so far.
    pub received: u64,
    /// The response's declared length, if it declared one.
    pub expected: Option<u64>,
    /// The response is whole.
    pub done: bool,
}

/// Where [`with_progress`] reports transfers.
pub type OnTransfer = Arc<dyn Fn(&Transfer) + Send + Sync>;

tokio::task_local! {
    static PROGRESS: OnTransfer;
}

/// Run `work`, reporting every HTTP transfer it makes (a push's pack going out, a fetch's
/// coming in) to `progress` as it goes: under either engine, since the component's HTTP
/// import is answered by [`send`] on the same task.
pub async fn with_progress<F: std::future::Future>(progress: OnTransfer, work: F) -> F::Output {
    PROGRESS.scope(progress, work).await
}

fn report(transfer: &Transfer) {
    let _ = PROGRESS.try_with(|progress| progress(transfer));
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .unwrap_or_default()
    })
}

/// Send `request` and read the whole response, at most `max_response_bytes` of body.
pub async fn send(request: HttpRequest) -> Result<HttpResponse, StorageError> {
    let method = request.method.as_str();
    let failed = |reason: String| Error::Failed {
        method,
        url: request.url.clone(),
        reason,
    };
    let mut builder = match request.method {
        HttpMethod::Get => client().get(&request.url),
        HttpMethod::Post => client().post(&request.url).body(request.body.clone()),
    };
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    // Objects a partial fetch left out are fetched from the promisor remote the store's
    // config names, by core, with no credentials of its own: the token the command line
    // takes for remotes (`SNAPGIT_REMOTE_TOKEN`) goes with them.
    if !request
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        && let Ok(token) = std::env::var("SNAPGIT_REMOTE_TOKEN")
        && !token.is_empty()
    {
        builder = builder.bearer_auth(token);
    }
    let mut transfer = Transfer {
        method,
        url: request.url.clone(),
        sent: request.body.len() as u64,
        received: 0,
        expected: None,
        done: false,
    };
    report(&transfer);
    let mut response = builder.send().await.map_err(|err| failed(source_chain(&err)))?;
    transfer.expected = response.content_length();
    report(&transfer);
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = request.max_response_bytes;
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(Error::TooLarge {
            url: request.url,
            limit,
        }
        .into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| failed(source_chain(&err)))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::TooLarge {
                url: request.url,
                limit,
            }
            .into());
        }
        body.extend_from_slice(&chunk);
        transfer.received = body.len() as u64;
        report(&transfer);
    }
    transfer.done = true;
    report(&transfer);
    Ok(HttpResponse {
        status,
        content_type,
        body,
    })
}

/// An error with its causes, which reqwest keeps apart ("error sending request: connection refused").
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
