//! The JSON API of `snapgit serve`, under `/v1`: repos, branches, commits, files, trees,
//! history, diffs, restores, retention and the store's upkeep.
//!
//! Every request body and response is core's serde form of the operation
//! ([`snapgit_core::api::Request`] and [`api::Output`]): a route takes the repo, branch
//! and other names from its path and query, adds them to the body's fields, and core
//! reads the whole as the operation's request, with core's defaults and core's checks.
//! Revisions (`?rev=main~2`, a tag, an abbreviated id) are resolved by core first.
//! Errors are `application/problem+json` with core's code. File contents in JSON are
//! `{"text": "…"}` when they are UTF-8, `{"base64": "…"}` otherwise; requests may also
//! give a plain string (its UTF-8 text).

use std::{io, sync::Arc};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{FromRequest, FromRequestParts, State},
    http::request::Parts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post},
};
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{Map, Value, json};
use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    api::{self, Op, Request},
    commit::Change,
    error::Code,
    repo::AdminOutput,
};

use super::{
    Shared,
    auth::{Access, Caller, Verdict},
    problem::Problem,
};
use crate::driver;

/// The revision a route reads when none is given.
pub const DEFAULT_REV: &str = "main";

/// Every route of the JSON API: method, path and operation id. The router and the
/// OpenAPI document ([`super::openapi`]) are both made from this list.
pub(super) const ROUTES: &[(Method, &str, &str)] = &[
    (Method::GET, "/v1/repos", "listRepos"),
    (Method::POST, "/v1/repos", "createRepo"),
    (Method::DELETE, "/v1/repos/{repo}", "deleteRepo"),
    (Method::GET, "/v1/repos/{repo}/branches", "listBranches"),
    (Method::POST, "/v1/repos/{repo}/branches", "createBranch"),
    (Method::GET, "/v1/repos/{repo}/branches/{branch}", "readHead"),
    (Method::DELETE, "/v1/repos/{repo}/branches/{branch}", "deleteBranch"),
    (Method::POST, "/v1/repos/{repo}/branches/{branch}/commits", "commit"),
    (Method::POST, "/v1/repos/{repo}/branches/{branch}/restore", "restore"),
    (Method::POST, "/v1/repos/{repo}/branches/{branch}/prune", "prune"),
    (Method::GET, "/v1/repos/{repo}/files/{path}", "readFile"),
    (Method::POST, "/v1/repos/{repo}/read", "readFiles"),
    (Method::GET, "/v1/repos/{repo}/tree", "listRoot"),
    (Method::GET, "/v1/repos/{repo}/tree/{path}", "listTree"),
    (Method::GET, "/v1/repos/{repo}/log", "log"),
    (Method::GET, "/v1/repos/{repo}/commits/{rev}", "show"),
    (Method::GET, "/v1/repos/{repo}/diff", "diff"),
    (Method::GET, "/v1/footprint", "footprint"),
    (Method::POST, "/v1/gc", "gc"),
    (Method::POST, "/v1/compact", "compact"),
    (Method::POST, "/v1/cap", "cap"),
];

/// The handler of a route of [`ROUTES`].
fn handler(id: &str) -> MethodRouter<Arc<Shared>> {
    match id {
        "listRepos" => get(list_repos),
        "createRepo" => post(create_repo),
        "deleteRepo" => delete(delete_repo),
        "listBranches" => get(list_branches),
        "createBranch" => post(create_branch),
        "readHead" => get(read_head),
        "deleteBranch" => delete(delete_branch),
        "commit" => post(commit),
        "restore" => post(restore),
        "prune" => post(prune),
        "readFile" => get(read_file),
        "readFiles" => post(read_many),
        "listRoot" => get(list_root),
        "listTree" => get(list_tree),
        "log" => get(log),
        "show" => get(show),
        "diff" => get(diff),
        "footprint" => get(footprint),
        "gc" => post(collect),
        "compact" => post(compact),
        "cap" => post(cap),
        other => unreachable!("no handler for the route {other}"),
    }
}

/// The JSON API's routes. A `{path}` at the end of a route takes the rest of the URL,
/// slashes included.
pub(super) fn routes() -> Router<Arc<Shared>> {
    ROUTES.iter().fold(Router::new(), |router, (_, path, id)| {
        let path = path.replace("{path}", "{*path}");
        router.route(&path, handler(id))
    })
}

type Reply = Result<Response, Problem>;

/// The names in a route's path (percent-decoded), or a problem+json refusal.
struct Names<T>(T);

impl<T, S> FromRequestParts<S> for Names<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(names)| Names(names))
            .map_err(|err| Problem::invalid(format!("the path does not read: {}", err.body_text())))
    }
}

/// A request's body, at most the server's `max_request_bytes`, or a problem+json refusal.
struct Raw(Bytes);

impl FromRequest<Arc<Shared>> for Raw {
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, shared: &Arc<Shared>) -> Result<Self, Problem> {
        read_body(request.into_body(), shared.config.max_request_bytes)
            .await
            .map(Raw)
    }
}

/// A route's query parameters, or a problem+json refusal (unknown ones are refused).
struct Params<T>(T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(params)| Params(params))
            .map_err(|err| Problem::invalid(format!("the query does not read: {}", err.body_text())))
    }
}

// ---------------------------------------------------------------------------------------
// Running core's operations
// ---------------------------------------------------------------------------------------

/// Check that the caller may do `access` in `repo` (`None`: the whole store).
fn check(shared: &Shared, headers: &HeaderMap, repo: Option<&str>, access: Access) -> Result<(), Problem> {
    let caller = caller(shared, headers);
    verdict(caller.may(repo, access), repo, access)
}

fn caller<'a>(shared: &'a Shared, headers: &HeaderMap) -> Caller<'a> {
    shared
        .config
        .tokens
        .identify(headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes))
}

fn verdict(verdict: Verdict, repo: Option<&str>, access: Access) -> Result<(), Problem> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Unauthenticated => Err(Problem::unauthorized(
            "a token is required (Authorization: Bearer <token>), and this one is not known",
        )),
        Verdict::Forbidden => {
            let what = match access {
                Access::Read => "read",
                Access::Write => "write to",
                Access::Admin => "administer",
            };
            let detail = match repo {
                Some(repo) => format!("this token may not {what} the repo {repo}"),
                None => format!("this token may not {what} the whole store (it needs the repos [\"*\"])"),
            };
            let problem = Problem::forbidden(detail);
            Err(match repo {
                Some(repo) => problem.with("repo", repo),
                None => problem,
            })
        }
    }
}

/// Read `fields` as the request of operation `op` (its camelCase name).
fn request(op: &str, fields: Map<String, Value>) -> Result<Request, Problem> {
    let mut tagged = Map::new();
    tagged.insert(op.to_owned(), Value::Object(fields));
    serde_json::from_value(Value::Object(tagged))
        .map_err(|err| Problem::invalid(format!("the {op} request does not read: {err}")))
}

/// Run a request through core, natively, with the server's storage and locks.
pub(super) async fn run(shared: &Shared, request: Request) -> Result<api::Output, Problem> {
    let name = request.name();
    let mut cache = shared.caches.take(shared.config.limits);
    let mut op = match Op::new(&cache, request) {
        Ok(op) => op,
        Err(err) => {
            shared.caches.give(cache);
            return Err(Problem::from_core(&err));
        }
    };
    let locks = shared.locks.as_deref();
    let options = driver::Options::default();
    let started = std::time::Instant::now();
    let run = driver::run_with(&mut op, &mut cache, shared.storage.as_ref(), locks, &options);
    // Building packs, trees and diffs is CPU work: on a multi-threaded runtime the worker
    // hands its other tasks over first.
    let result = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(run))
        }
        _ => run.await,
    };
    let result = result.map_err(|err| Problem::from_core(&err));
    // A failed operation may leave what it read half provided: start the next afresh.
    if result.is_ok() {
        shared.caches.give(cache);
    }
    shared.metrics.operation(name, started.elapsed(), &result);
    result
}

/// Object caches kept between requests: objects never change under their ids, so a warm
/// cache spares the next request the reads of the commits, trees and blobs it shares with
/// earlier ones (a branch's head, the trees above a file). Each request takes its own.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    idle: std::sync::Mutex<Vec<(ObjectCache, std::time::Instant)>>,
}

/// The most caches kept idle, and what each may hold: at most 8 x 32 MiB.
const IDLE_CACHES: usize = 8;
const CACHE_BYTES: usize = 32 << 20;

/// How long a pack listing is trusted: far below the grace period before compaction
/// deletes loose objects it packed, so an object is always where one listing says.
const PACKS_FRESH: std::time::Duration = std::time::Duration::from_secs(2);

impl Caches {
    fn take(&self, limits: snapgit_core::Limits) -> ObjectCache {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        match idle {
            Some((mut cache, since)) => {
                if since.elapsed() > PACKS_FRESH {
                    cache.forget_packs();
                }
                cache
            }
            None => {
                let mut cache = ObjectCache::with_limits(HashKind::Sha1, limits);
                cache.set_capacity(CACHE_BYTES);
                cache
            }
        }
    }

    fn give(&self, cache: ObjectCache) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE_CACHES {
            idle.push((cache, std::time::Instant::now()));
        }
    }
}

/// Run a request whose output is of type `T`.
async fn call<T: TryFrom<api::Output>>(shared: &Shared, request: Request) -> Result<T, Problem> {
    let name = request.name();
    let output = run(shared, request).await?;
    T::try_from(output)
        .map_err(|_| Problem::new(Code::Misuse, format!("the {name} operation returned another's output")))
}

/// The commit `rev` names in `repo`.
async fn resolve(shared: &Shared, repo: &str, rev: Option<&str>) -> Result<ObjectId, Problem> {
    let rev = rev.unwrap_or(DEFAULT_REV).to_owned();
    call(
        shared,
        Request::Resolve {
            repo: repo.to_owned(),
            rev,
        },
    )
    .await
}

/// A body's JSON object; an empty body is an empty object.
fn object(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(Problem::invalid(format!(
            "the body must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(err) => Err(Problem::invalid(format!("the body is not JSON: {err}"))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Put the path's names into the body's fields; a body that names another is refused.
fn set(fields: &mut Map<String, Value>, name: &str, value: &str) -> Result<(), Problem> {
    match fields.insert(name.to_owned(), value.into()) {
        Some(Value::String(given)) if given != value => Err(Problem::invalid(format!(
            "the body's {name} {given:?} is not the route's {value:?}"
        ))
        .with("value", given)),
        Some(Value::String(_)) | None => Ok(()),
        Some(other) => Err(Problem::invalid(format!(
            "{name} must be a string, not {}",
            kind(&other)
        ))),
    }
}

/// A signature without a `time` is stamped with the server's clock, in UTC.
fn stamp(fields: &mut Map<String, Value>, names: &[&str]) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for name in names {
        if let Some(Value::Object(signature)) = fields.get_mut(*name) {
            signature
                .entry("time")
                .or_insert_with(|| json!({ "seconds": seconds, "offsetMinutes": 0 }));
        }
    }
}

/// Give a write that moves a branch the server's lock, unless the request chose.
fn lock(shared: &Shared, fields: &mut Map<String, Value>) {
    if let Some(ttl) = shared.config.lock_ttl_ms.filter(|_| shared.locks.is_some()) {
        fields.entry("lockTtlMs").or_insert(ttl.into());
    }
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// A JSON response: core's serde form, byte strings as `{"text"}` or `{"base64"}`.
pub(super) fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    let mut out = Vec::with_capacity(1024);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, BytesAsText);
    if let Err(err) = value.serialize(&mut serializer) {
        return Problem::new(Code::Misuse, format!("the response does not serialize: {err}")).into_response();
    }
    let mut response = (status, out).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn ok(value: &impl Serialize) -> Reply {
    Ok(json_response(StatusCode::OK, value))
}

/// serde_json's compact form, except byte strings: `{"text": "…"}` when they are UTF-8,
/// `{"base64": "…"}` otherwise (what core's requests read back).
struct BytesAsText;

impl serde_json::ser::Formatter for BytesAsText {
    fn write_byte_array<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: &[u8]) -> io::Result<()> {
        match std::str::from_utf8(value) {
            Ok(text) => {
                writer.write_all(b"{\"text\":")?;
                serde_json::to_writer(&mut *writer, text).map_err(io::Error::other)?;
            }
            Err(_) => {
                use base64::Engine as _;
                writer.write_all(b"{\"base64\":\"")?;
                writer.write_all(base64::engine::general_purpose::STANDARD.encode(value).as_bytes())?;
                writer.write_all(b"\"")?;
            }
        }
        writer.write_all(b"}")
    }
}

// ---------------------------------------------------------------------------------------
// Repos and branches
// ---------------------------------------------------------------------------------------

/// `GET /v1/repos`: the repos the token may read.
async fn list_repos(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Reply {
    let caller = caller(&shared, &headers);
    if matches!(caller, Caller::Unknown) {
        verdict(Verdict::Unauthenticated, None, Access::Read)?;
    }
    let output: AdminOutput = call(&shared, Request::ListRepos).await?;
    let output = match output {
        AdminOutput::Repos(repos) => AdminOutput::Repos(repos.into_iter().filter(|repo| caller.sees(repo)).collect()),
        other => other,
    };
    ok(&output)
}

/// `POST /v1/repos`: `{repo, branch, files, author, message}`.
async fn create_repo(State(shared): State<Arc<Shared>>, headers: HeaderMap, Raw(body): Raw) -> Reply {
    let mut fields = object(&body)?;
    let repo = match fields.get("repo") {
        Some(Value::String(repo)) => repo.clone(),
        Some(other) => return Err(Problem::invalid(format!("repo must be a string, not {}", kind(other)))),
        None => return Err(Problem::invalid("the create-repo request needs a repo")),
    };
    check(&shared, &headers, Some(&repo), Access::Write)?;
    fields.entry("branch").or_insert(DEFAULT_REV.into());
    fields.entry("files").or_insert(json!([]));
    fields.entry("message").or_insert("Create the repo".into());
    stamp(&mut fields, &["author"]);
    let output = run(&shared, request("createRepo", fields)?).await?;
    Ok(json_response(StatusCode::CREATED, &output))
}

/// `DELETE /v1/repos/{repo}`: every ref of the repo (its objects go at the next GC).
async fn delete_repo(State(shared): State<Arc<Shared>>, Names(repo): Names<String>, headers: HeaderMap) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Admin)?;
    let output = run(&shared, Request::DeleteRepo { repo }).await?;
    ok(&output)
}

/// `GET /v1/repos/{repo}/branches`.
async fn list_branches(State(shared): State<Arc<Shared>>, Names(repo): Names<String>, headers: HeaderMap) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Read)?;
    ok(&run(&shared, Request::ListBranches { repo }).await?)
}

/// `POST /v1/repos/{repo}/branches`: `{branch, start: {branch: "main"} | {commit: id} |
/// {rev: "main~2"}}`.
async fn create_branch(
    State(shared): State<Arc<Shared>>,
    Names(repo): Names<String>,
    headers: HeaderMap,
    Raw(body): Raw,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Write)?;
    let mut fields = object(&body)?;
    set(&mut fields, "repo", &repo)?;
    // A start at a commit or revision is resolved first: an unknown one is NOT_FOUND.
    let rev = match fields.get("start") {
        Some(Value::Object(start)) => match (start.get("commit"), start.get("rev")) {
            (Some(Value::String(rev)), None) | (None, Some(Value::String(rev))) => Some(rev.clone()),
            _ => None,
        },
        _ => None,
    };
    if let Some(rev) = rev {
        let commit = resolve(&shared, &repo, Some(&rev)).await?;
        fields.insert("start".into(), json!({ "commit": commit.to_string() }));
    }
    fields.entry("start").or_insert(json!({ "branch": DEFAULT_REV }));
    let output = run(&shared, request("createBranch", fields)?).await?;
    Ok(json_response(StatusCode::CREATED, &output))
}

/// `GET /v1/repos/{repo}/branches/{branch}`: its head.
async fn read_head(
    State(shared): State<Arc<Shared>>,
    Names((repo, branch)): Names<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Read)?;
    ok(&run(&shared, Request::ReadHead { repo, branch }).await?)
}

/// `DELETE /v1/repos/{repo}/branches/{branch}`.
async fn delete_branch(
    State(shared): State<Arc<Shared>>,
    Names((repo, branch)): Names<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Write)?;
    ok(&run(&shared, Request::DeleteBranch { repo, branch }).await?)
}

// ---------------------------------------------------------------------------------------
// Writes to a branch
// ---------------------------------------------------------------------------------------

/// `POST /v1/repos/{repo}/branches/{branch}/commits`: core's commit request
/// (`changes`, `author`, `message`, `expectedHead`, `onConflict`...). With
/// `Content-Type: application/x-ndjson` the body is streamed: the first line is the
/// request without its changes, each further line one change.
async fn commit(
    State(shared): State<Arc<Shared>>,
    Names((repo, branch)): Names<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Write)?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let limit = shared.config.max_request_bytes;
    let (mut fields, streamed) = if ndjson {
        let (fields, changes) = read_ndjson(body, limit).await?;
        (fields, Some(changes))
    } else {
        (object(&read_body(body, limit).await?)?, None)
    };
    set(&mut fields, "repo", &repo)?;
    set(&mut fields, "branch", &branch)?;
    stamp(&mut fields, &["author", "committer"]);
    lock(&shared, &mut fields);
    if streamed.is_some() {
        fields.entry("changes").or_insert(json!([]));
    }
    let mut request = request("commit", fields)?;
    if let Request::Commit(commit) = &mut request {
        commit.changes.extend(streamed.unwrap_or_default());
        // The server's write policy holds for every commit, beside the request's own.
        shared
            .config
            .policy
            .check(&commit.changes)
            .map_err(|violation| Problem::from_core(&violation))?;
    }
    ok(&run(&shared, request).await?)
}

/// A body of at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Problem> {
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large(limit))
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        Code::Limit,
        format!("the request is over the server's limit of {limit} bytes"),
    )
    .with("limit", limit as u64)
}

/// An NDJSON commit: the request's fields on the first line, one change per line after.
/// Each line is read as it arrives, so the body is never held whole beside its changes.
async fn read_ndjson(body: Body, limit: usize) -> Result<(Map<String, Value>, Vec<Change>), Problem> {
    let mut stream = body.into_data_stream();
    let (mut pending, mut total) = (Vec::new(), 0usize);
    let mut fields = None;
    let mut changes = Vec::new();
    let mut line_no = 0usize;
    let mut take = |line: &[u8], fields: &mut Option<Map<String, Value>>| -> Result<(), Problem> {
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if fields.is_none() {
            *fields = Some(object(line).map_err(|p| Problem::invalid(format!("line {line_no}: {}", p.detail)))?);
        } else {
            let change = serde_json::from_slice(line)
                .map_err(|err| Problem::invalid(format!("line {line_no}: the change does not read: {err}")))?;
            changes.push(change);
        }
        Ok(())
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| Problem::invalid(format!("the body broke off: {err}")))?;
        total += chunk.len();
        if total > limit {
            return Err(too_large(limit));
        }
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            take(&pending[start..start + end], &mut fields)?;
            start += end + 1;
        }
        pending.drain(..start);
    }
    take(&pending, &mut fields)?;
    let fields = fields.ok_or_else(|| Problem::invalid("the NDJSON body is empty: its first line is the commit"))?;
    Ok((fields, changes))
}

/// `POST /v1/repos/{repo}/branches/{branch}/restore`: `{rev, path?, author, message?}`,
/// a new commit whose tree (or one path) is the revision's.
async fn restore(
    State(shared): State<Arc<Shared>>,
    Names((repo, branch)): Names<(String, String)>,
    headers: HeaderMap,
    Raw(body): Raw,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Write)?;
    let mut fields = object(&body)?;
    let rev = match fields.remove("rev") {
        Some(Value::String(rev)) => rev,
        Some(other) => return Err(Problem::invalid(format!("rev must be a string, not {}", kind(&other)))),
        None if fields.contains_key("target") => String::new(),
        None => return Err(Problem::invalid("the restore request needs the rev to bring back")),
    };
    if !rev.is_empty() {
        let target = resolve(&shared, &repo, Some(&rev)).await?;
        fields.insert("target".into(), target.to_string().into());
    }
    set(&mut fields, "repo", &repo)?;
    set(&mut fields, "branch", &branch)?;
    stamp(&mut fields, &["author"]);
    lock(&shared, &mut fields);
    ok(&run(&shared, request("restore", fields)?).await?)
}

/// `POST /v1/repos/{repo}/branches/{branch}/prune`: `{retention, countDropped?}`.
async fn prune(
    State(shared): State<Arc<Shared>>,
    Names((repo, branch)): Names<(String, String)>,
    headers: HeaderMap,
    Raw(body): Raw,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Write)?;
    let mut fields = object(&body)?;
    set(&mut fields, "repo", &repo)?;
    set(&mut fields, "branch", &branch)?;
    ok(&run(&shared, request("prune", fields)?).await?)
}

// ---------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevQuery {
    rev: Option<String>,
}

/// `GET /v1/repos/{repo}/files/{path}?rev=`: the file's bytes, with its blob id as ETag
/// (`If-None-Match` answers 304).
async fn read_file(
    State(shared): State<Arc<Shared>>,
    Names((repo, path)): Names<(String, String)>,
    Params(query): Params<RevQuery>,
    headers: HeaderMap,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Read)?;
    let commit = resolve(&shared, &repo, query.rev.as_deref()).await?;
    let file: snapgit_core::read::File = call(
        &shared,
        Request::ReadFile {
            commit,
            path: path.into(),
        },
    )
    .await?;
    let etag = format!("\"{}\"", file.id);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data).into_response()
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&commit.to_string()) {
        out.insert("x-snapgit-commit", value);
    }
    let mode = serde_json::to_value(file.mode).ok();
    if let Some(value) = mode
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|m| HeaderValue::from_str(m).ok())
    {
        out.insert("x-snapgit-mode", value);
    }
    Ok(response)
}

/// `POST /v1/repos/{repo}/read`: `{rev?, paths: [...]}`, each file's id, mode and content,
/// or every file below a folder with `{rev?, folder: "notes"}`.
async fn read_many(
    State(shared): State<Arc<Shared>>,
    Names(repo): Names<String>,
    headers: HeaderMap,
    Raw(body): Raw,
) -> Reply {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ReadMany {
        rev: Option<String>,
        #[serde(default)]
        paths: Vec<String>,
        folder: Option<String>,
    }
    check(&shared, &headers, Some(&repo), Access::Read)?;
    let body: ReadMany = serde_json::from_slice(&body)
        .map_err(|err| Problem::invalid(format!("the read request does not read: {err}")))?;
    let commit = resolve(&shared, &repo, body.rev.as_deref()).await?;
    if let Some(folder) = body.folder {
        if !body.paths.is_empty() {
            return Err(Problem::invalid("give paths or a folder, not both"));
        }
        let files = run(
            &shared,
            Request::ReadFiles {
                commit,
                path: folder.into(),
            },
        )
        .await?;
        return ok(&Files {
            commit: commit.to_string(),
            files: &files,
        });
    }
    const MAX_PATHS: usize = 1000;
    if body.paths.len() > MAX_PATHS {
        return Err(
            Problem::new(Code::Limit, format!("at most {MAX_PATHS} paths in one read"))
                .with("value", body.paths.len() as u64)
                .with("limit", MAX_PATHS as u64),
        );
    }
    let mut files = Vec::with_capacity(body.paths.len());
    for path in body.paths {
        let file: snapgit_core::read::File = call(
            &shared,
            Request::ReadFile {
                commit,
                path: path.clone().into(),
            },
        )
        .await?;
        files.push(snapgit_core::read::FileWithPath {
            path: path.into(),
            file,
        });
    }
    ok(&Files {
        commit: commit.to_string(),
        files: &files,
    })
}

/// Files read at a commit.
#[derive(Serialize)]
struct Files<'a, T> {
    commit: String,
    files: &'a T,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeQuery {
    rev: Option<String>,
    recursive: Option<bool>,
}

/// `GET /v1/repos/{repo}/tree?rev=&recursive=`: the root folder.
async fn list_root(
    State(shared): State<Arc<Shared>>,
    Names(repo): Names<String>,
    Params(query): Params<TreeQuery>,
    headers: HeaderMap,
) -> Reply {
    tree(&shared, &headers, repo, String::new(), query).await
}

/// `GET /v1/repos/{repo}/tree/{path}?rev=&recursive=`: a folder, without reading blobs.
async fn list_tree(
    State(shared): State<Arc<Shared>>,
    Names((repo, path)): Names<(String, String)>,
    Params(query): Params<TreeQuery>,
    headers: HeaderMap,
) -> Reply {
    tree(&shared, &headers, repo, path, query).await
}

async fn tree(shared: &Shared, headers: &HeaderMap, repo: String, path: String, query: TreeQuery) -> Reply {
    check(shared, headers, Some(&repo), Access::Read)?;
    let commit = resolve(shared, &repo, query.rev.as_deref()).await?;
    let entries = run(
        shared,
        Request::ListTree {
            commit,
            path: path.into(),
            recursive: query.recursive.unwrap_or(true),
        },
    )
    .await?;
    #[derive(Serialize)]
    struct Entries<'a> {
        commit: String,
        entries: &'a api::Output,
    }
    ok(&Entries {
        commit: commit.to_string(),
        entries: &entries,
    })
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LogQuery {
    rev: Option<String>,
    path: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    first_parent: Option<bool>,
}

/// `GET /v1/repos/{repo}/log?rev=&path=&limit=&cursor=&firstParent=`: a page of history,
/// newest first; `next` is the cursor of the next page.
async fn log(
    State(shared): State<Arc<Shared>>,
    Names(repo): Names<String>,
    Params(query): Params<LogQuery>,
    headers: HeaderMap,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Read)?;
    let start = resolve(&shared, &repo, query.rev.as_deref()).await?;
    let mut fields = Map::new();
    fields.insert("start".into(), start.to_string().into());
    if let Some(path) = query.path {
        fields.insert("path".into(), path.into());
    }
    if let Some(limit) = query.limit {
        fields.insert("limit".into(), limit.into());
    }
    if let Some(cursor) = query.cursor {
        fields.insert("cursor".into(), cursor.into());
    }
    if let Some(first_parent) = query.first_parent {
        fields.insert("firstParent".into(), first_parent.into());
    }
    ok(&run(&shared, request("log", fields)?).await?)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
    path: Option<String>,
    format: Option<String>,
    renames: Option<bool>,
}

/// `GET /v1/repos/{repo}/commits/{rev}`: the commit and what it changed from its first
/// parent (`git show --stat`), with `?format=patch` its patch too.
async fn show(
    State(shared): State<Arc<Shared>>,
    Names((repo, rev)): Names<(String, String)>,
    Params(query): Params<DiffQuery>,
    headers: HeaderMap,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Read)?;
    if query.from.is_some() || query.to.is_some() {
        return Err(Problem::invalid("show takes the commit from the path: no from or to"));
    }
    let commit = resolve(&shared, &repo, Some(&rev)).await?;
    let info = run(&shared, Request::ReadCommit { commit }).await?;
    let diff = diff_request(commit, None, &query)?;
    let changes = run(&shared, diff).await?;
    #[derive(Serialize)]
    struct Show<'a> {
        commit: &'a api::Output,
        diff: &'a api::Output,
    }
    ok(&Show {
        commit: &info,
        diff: &changes,
    })
}

fn diff_request(to: ObjectId, from: Option<ObjectId>, query: &DiffQuery) -> Result<Request, Problem> {
    let mut fields = Map::new();
    fields.insert("to".into(), to.to_string().into());
    if let Some(from) = from {
        fields.insert("from".into(), from.to_string().into());
    }
    if let Some(path) = &query.path {
        fields.insert("path".into(), path.clone().into());
    }
    if let Some(renames) = query.renames {
        fields.insert("renames".into(), renames.into());
    }
    match query.format.as_deref() {
        None | Some("json" | "name-status" | "numstat") => {}
        Some("patch") => {
            fields.insert("patch".into(), true.into());
        }
        Some(other) => {
            return Err(
                Problem::invalid(format!("unknown format {other:?}: json, name-status, numstat or patch"))
                    .with("value", other),
            );
        }
    }
    request("diff", fields)
}

/// `GET /v1/repos/{repo}/diff?from=&to=&path=&format=`: the difference between two
/// revisions (`from` defaults to `to`'s first parent, `to` to `main`). `format` is `json`
/// (core's form), or git's text: `name-status`, `numstat` or `patch`.
async fn diff(
    State(shared): State<Arc<Shared>>,
    Names(repo): Names<String>,
    Params(query): Params<DiffQuery>,
    headers: HeaderMap,
) -> Reply {
    check(&shared, &headers, Some(&repo), Access::Read)?;
    let to = resolve(&shared, &repo, query.to.as_deref()).await?;
    let from = match query.from.as_deref() {
        Some(rev) => Some(resolve(&shared, &repo, Some(rev)).await?),
        None => None,
    };
    let output: snapgit_core::diff::tree::Output = call(&shared, diff_request(to, from, &query)?).await?;
    let text = |body: Vec<u8>, kind: &'static str| {
        let mut response = (StatusCode::OK, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        Ok(response)
    };
    let files: Vec<crate::cli::output::FileJson> = output.files.iter().map(Into::into).collect();
    match query.format.as_deref() {
        Some("name-status") => {
            let mut out = Vec::new();
            crate::cli::output::write_name_status(&mut out, &files);
            text(out, "text/plain; charset=utf-8")
        }
        Some("numstat") => {
            let mut out = Vec::new();
            crate::cli::output::write_numstat(&mut out, &files);
            text(out, "text/plain; charset=utf-8")
        }
        Some("patch") => text(output.patch.map(Vec::from).unwrap_or_default(), "text/x-diff"),
        _ => ok(&output),
    }
}

// ---------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------

/// `GET /v1/footprint`: what the store holds.
async fn footprint(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Reply {
    check(&shared, &headers, None, Access::Admin)?;
    ok(&run(&shared, Request::Footprint).await?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `POST /v1/gc`: `{graceMs?}`; garbage collection of the whole store.
async fn collect(State(shared): State<Arc<Shared>>, headers: HeaderMap, Raw(body): Raw) -> Reply {
    check(&shared, &headers, None, Access::Admin)?;
    let mut fields = object(&body)?;
    fields.entry("nowMs").or_insert(now_ms().into());
    ok(&run(&shared, request("gc", fields)?).await?)
}

/// `POST /v1/cap`: `{maxBytes, keepLast?}`; the store-wide size cap.
async fn cap(State(shared): State<Arc<Shared>>, headers: HeaderMap, Raw(body): Raw) -> Reply {
    check(&shared, &headers, None, Access::Admin)?;
    let fields = object(&body)?;
    ok(&run(&shared, request("cap", fields)?).await?)
}

/// `POST /v1/compact`: `{graceMs?, window?, depth?}`; loose objects into packs.
async fn compact(State(shared): State<Arc<Shared>>, headers: HeaderMap, Raw(body): Raw) -> Reply {
    check(&shared, &headers, None, Access::Admin)?;
    let mut fields = object(&body)?;
    fields.entry("nowMs").or_insert(now_ms().into());
    ok(&run(&shared, request("compact", fields)?).await?)
}
