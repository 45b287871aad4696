//! git's smart HTTP: the advertisements, `git-upload-pack` (protocol v2: `ls-refs` and
//! `fetch`) and `git-receive-pack` (v0/v1). Core reads the requests, decides and writes
//! the answers; this module runs its operations against the store.

use axum::{
    body::Bytes,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use snapgit_core::{
    HashKind, ObjectCache, Operation,
    remote::{
        self, OpError,
        http::Service as Wire,
        receive::{Cut, PushRequest, Receive, RefUpdate},
        refs::{ListRefs, Refs},
        upload::{self, FetchRequest, Upload},
        v0, v2,
    },
};

use super::{Shared, text};
use crate::driver;

/// A response of git's smart HTTP, never cached.
fn respond(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    response
}

/// An `ERR <message>` line in a response of `service`: git shows it as
/// `remote error: <message>`.
fn git_error(service: Wire, message: &str) -> Response {
    let mut out = Vec::new();
    remote::write_error(&mut out, message);
    respond(service.result_type(), out)
}

fn cache(shared: &Shared) -> ObjectCache {
    ObjectCache::with_limits(HashKind::Sha1, shared.config.limits)
}

/// Run a core operation. Building a pack is CPU work: on a multi-threaded runtime the
/// worker hands its other tasks over first, so one large clone does not stall every
/// other request.
async fn run<O>(shared: &Shared, op: &mut O) -> Result<O::Output, O::Error>
where
    O: Operation,
    O::Error: From<snapgit_core::object::Error>,
{
    let mut cache = cache(shared);
    let run = driver::run(op, &mut cache, shared.storage.as_ref(), None);
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(run))
        }
        _ => run.await,
    }
}

async fn refs(shared: &Shared, repo: &str) -> Result<Refs, OpError> {
    run(shared, &mut ListRefs::new(repo)?).await
}

/// `GET /<repo>.git/info/refs?service=…`.
pub(super) async fn advertise(shared: &Shared, repo: &str, upload: bool, v2: bool) -> Response {
    let service = if upload { Wire::UploadPack } else { Wire::ReceivePack };
    if upload && !v2 {
        return text(
            StatusCode::FORBIDDEN,
            "snapgit serves fetches over git's protocol version 2 (git 2.18 or later, the default since 2.26; or -c protocol.version=2)",
        );
    }
    let refs = match refs(shared, repo).await {
        Ok(refs) => refs,
        Err(err) => return text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    // A push may create a repo; a fetch needs one.
    if upload && refs.refs.is_empty() {
        return text(StatusCode::NOT_FOUND, format!("repository {repo} not found"));
    }
    let mut out = Vec::new();
    if upload {
        v2::advertise(&mut out, &v2::Features::default());
    } else {
        service.write_header(&mut out);
        let advertisement = v0::Advertisement {
            refs: refs
                .refs
                .iter()
                .map(|r| v0::AdvertisedRef {
                    name: r.name.clone().into(),
                    id: r.id,
                    peeled: r.peeled,
                })
                .collect(),
            capabilities: v0::capabilities(),
            shallow: Vec::new(),
        };
        if let Err(err) = advertisement.write_to(&mut out) {
            return text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string());
        }
    }
    respond(service.advertisement_type(), out)
}

/// `POST /<repo>.git/git-upload-pack`: one v2 command.
pub(super) async fn upload_pack(shared: &Shared, repo: &str, body: &[u8]) -> Response {
    let wire = Wire::UploadPack;
    let request = match v2::Request::from_bytes(body, &v2::Features::default(), &remote::Limits::default()) {
        Ok(Some(request)) => request,
        // A request that is only a flush asks for nothing.
        Ok(None) => return respond(wire.result_type(), Vec::new()),
        Err(err) => return git_error(wire, &err.to_string()),
    };
    let mut out = Vec::new();
    let written = match request.command {
        v2::Command::LsRefs(ls) => {
            let refs = match refs(shared, repo).await {
                Ok(refs) => refs,
                Err(err) => return git_error(wire, &err.to_string()),
            };
            let mut listed: Vec<v2::Ref> = Vec::with_capacity(refs.refs.len() + 1);
            if let Some(head) = &refs.head {
                listed.push(v2::Ref {
                    name: "HEAD".into(),
                    id: refs.head_id(),
                    symref_target: Some(head.clone().into()),
                    peeled: None,
                });
            }
            listed.extend(refs.refs.iter().map(|r| v2::Ref {
                name: r.name.clone().into(),
                id: Some(r.id),
                symref_target: None,
                peeled: r.peeled,
            }));
            v2::write_refs(&mut out, &ls, &listed)
        }
        v2::Command::Fetch(fetch) => {
            let request = match fetch_request(repo, &fetch) {
                Ok(request) => request,
                Err(message) => return git_error(wire, &message),
            };
            let shallow_asked = request.depth.is_some() || !request.shallows.is_empty();
            let done = request.done;
            let fetched = match Upload::new(request) {
                Ok(mut op) => run(shared, &mut op).await,
                Err(err) => Err(err),
            };
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(err) => return git_error(wire, &err.to_string()),
            };
            let response = match fetched.pack {
                None => v2::FetchResponse::Acknowledgments { common: fetched.common },
                Some(pack) => v2::FetchResponse::Pack(v2::PackResponse {
                    progress: if fetch.no_progress {
                        Vec::new()
                    } else {
                        format!(
                            "snapgit: {} objects ({} deltas, {} copied from stored packs) in {} rounds of reads\n",
                            pack.objects, pack.deltas, pack.copied, pack.rounds
                        )
                        .into_bytes()
                    },
                    acknowledgments: (!done).then_some(fetched.common),
                    shallow_info: (shallow_asked || !pack.shallow.is_empty()).then_some(v2::ShallowInfo {
                        shallow: pack.shallow,
                        unshallow: pack.unshallow,
                    }),
                    wanted_refs: Vec::new(),
                    pack: pack.bytes,
                }),
            };
            response.write_to(&mut out, fetch.sideband_all)
        }
        _ => return git_error(wire, "snapgit serves the commands ls-refs and fetch"),
    };
    match written {
        Ok(()) => respond(wire.result_type(), out),
        Err(err) => git_error(wire, &err.to_string()),
    }
}

/// A v2 `fetch` as core's upload request; what snapgit does not serve is refused.
fn fetch_request(repo: &str, fetch: &v2::Fetch) -> Result<FetchRequest, String> {
    let mut request = FetchRequest::new(repo, fetch.wants.clone());
    request.haves.clone_from(&fetch.haves);
    request.done = fetch.done;
    request.shallows.clone_from(&fetch.shallows);
    request.include_tag = fetch.include_tag;
    match &fetch.deepen {
        None => {}
        Some(v2::Deepen::Depth { depth, relative }) => {
            request.depth = Some(*depth);
            request.relative = *relative;
        }
        Some(v2::Deepen::Cut { .. }) => {
            return Err("snapgit does not serve deepen-since or deepen-not; use --depth or --deepen".into());
        }
    }
    request.filter = match fetch.filter {
        None => None,
        Some(v2::Filter::BlobNone) => Some(upload::Filter::BlobNone),
        Some(v2::Filter::BlobLimit(limit)) => Some(upload::Filter::BlobLimit(limit)),
        Some(other) => {
            return Err(format!(
                "snapgit serves the filters blob:none and blob:limit=<n>, not {other}"
            ));
        }
    };
    Ok(request)
}

/// `POST /<repo>.git/git-receive-pack`: one push.
pub(super) async fn receive_pack(shared: &Shared, repo: &str, body: Bytes) -> Response {
    let wire = Wire::ReceivePack;
    let push = match v0::PushRequest::from_bytes(&body, &v0::capabilities(), &remote::Limits::default()) {
        Ok(push) => push,
        Err(err) => return git_error(wire, &err.to_string()),
    };
    let sideband = push.capabilities.contains("side-band-64k");
    let updates: Vec<RefUpdate> = push
        .commands
        .iter()
        .map(|c| RefUpdate {
            // Core's parser refuses a name that is not UTF-8: nothing is replaced here.
            name: String::from_utf8_lossy(&c.name).into_owned(),
            old: c.old,
            new: c.new,
        })
        .collect();
    let request = PushRequest {
        repo: repo.to_owned(),
        updates,
        pack: push.pack.to_vec(),
        allow_non_fast_forward: shared.config.allow_non_fast_forward,
        policy: shared.config.policy.clone(),
        cut: Cut::default(),
    };
    drop(body);
    let pushed = match Receive::new(request) {
        Ok(mut op) => run(shared, &mut op).await,
        Err(err) => Err(err),
    };
    let pushed = match pushed {
        Ok(pushed) => pushed,
        Err(err) => return git_error(wire, &err.to_string()),
    };
    let status = |outcome: &Result<(), String>| match outcome {
        Ok(()) => v0::Status::Ok,
        Err(reason) => v0::Status::Failed(reason.clone()),
    };
    let report = v0::Report {
        unpack: status(&pushed.unpack),
        refs: pushed
            .refs
            .iter()
            .map(|(name, outcome)| v0::RefStatus {
                name: name.clone().into(),
                status: status(outcome),
            })
            .collect(),
    };
    let mut out = Vec::new();
    match report.write_to(&mut out, sideband) {
        Ok(()) => respond(wire.result_type(), out),
        Err(err) => git_error(wire, &err.to_string()),
    }
}
