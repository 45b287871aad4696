//! The wasm-bindgen exports: an [`Engine`] that holds the object cache of one store, and
//! an [`Op`] handle per running operation that a JS driver polls.

pub mod error;
mod json;
mod output;
mod packed;
mod stat;

use std::{cell::RefCell, rc::Rc};

use snapgit_core::{
    HashKind, Limits, ObjectCache, Operation, Step, api,
    diff::tree as diff,
    gc, history,
    object::{NewObject, loose_key},
    pack::Packed,
    remote::client::{FetchRequest, PushRequest, Remote},
    repo::{self, Start},
    step::{Answer, CasOutcome, HttpResponse, Listed, RefState},
    worktree,
};
use wasm_bindgen::prelude::*;

type JsResult<T> = Result<T, JsValue>;

/// A core result's error as its JS error.
fn core<T, E: error::ToJs>(result: Result<T, E>) -> JsResult<T> {
    result.map_err(|e| error::to_js(&e))
}
use json::Json;
use packed::Reader;

/// The engine of one store: it holds the object cache every operation shares, so that a
/// commit on top of the last one reads nothing. Keep one per store for as long as the
/// isolate or process lives.
///
/// Each method reads a packed request (`js/src/pack.ts`) and returns an [`Op`] to
/// drive; nothing is read or written before the first `poll`. Ids are full lowercase
/// hex; names follow git's ref-name rules; paths are relative and `/`-separated.
#[wasm_bindgen]
pub struct Engine {
    cache: Rc<RefCell<ObjectCache>>,
}

/// What the last `poll` asked for, so each answer can be checked against it.
#[derive(Debug, Clone)]
enum Pending {
    Nothing,
    Get(usize),
    /// A `Read` of keys, carried out as a `get`: its answer goes to `answer`.
    Read(usize),
    /// A `ReadRanges`, answered through `provide` like a `get`.
    Ranges(usize),
    Put,
    Ref(String),
    Cas(String),
    Swap,
    List,
    Delete,
    Lock,
    Unlock,
    Wait,
    Http,
}

/// A running operation. Call `poll()` until the step it returns is `done`, carry out
/// every other step against storage, and hand the result back. `poll()` returns the step
/// as JSON text (parse it with `JSON.parse`):
///
/// - `{ type: 'get', keys }`: `provide(bytes, lens)` with the objects found end to end
///   and each key's object length (negative if absent), in order. Fetch them in parallel.
/// - `{ type: 'put', keys, ends }`: `bytes()` gives the objects' bytes end to end,
///   object `i` ending at `ends[i]`; store each at its key unless present, then `answer()`.
/// - `{ type: 'readRef', key }`: `answerRef(value, version)`, neither if absent.
/// - `{ type: 'cas', key, expected, value }`: compare-and-swap, then `answerWon(version)`
///   or `answerLost(value, version)` with the current state (neither if absent).
/// - `{ type: 'swap', key, expected, new }`: replace the file at `key` (`shallow` or
///   `config`) only if it still holds exactly the expected bytes. `bytes()` gives the
///   expected bytes then the new ones, end to end; `expected` and `new` are their lengths,
///   `null` for "absent" (and for "delete" as the new value). Then `answerSwapped(true)`
///   if it was replaced, `answerSwapped(false)` if it held something else.
/// - `{ type: 'list', prefix }`: `answerList(listed)`, the keys with their sizes and
///   `modifiedMs`, packed.
/// - `{ type: 'delete', keys }`: delete them, then `answer()`.
/// - `{ type: 'lock', name, ttlMs }`: `answerLock(token)`, no token if busy.
/// - `{ type: 'unlock', name, token }`: release, then `answer()`.
/// - `{ type: 'wait', ms }`: wait that many milliseconds, then `answer()`. The engine
///   asks it after contention (a lost compare-and-swap, a busy lock) and chose the wait;
///   the driver only sleeps.
/// - `{ type: 'http', method, url, headers, maxResponseBytes }`: send the request to a
///   git remote (`method` is `GET` or `POST`, `headers` a list of `[name, value]`,
///   `bytes()` the body, empty for a `GET`), then `answerHttp(status, contentType,
///   body)` with the response whatever its status. A body over `maxResponseBytes` is
///   the driver's failure, not an answer.
/// - `{ type: 'done', value, ends? }`: the result, in core's serde form (`api::Output`:
///   ids as hex, names and paths as text). With `ends`, it carries byte strings (files'
///   `data`, a diff's `patch`): each is written as its index `i`, and `bytes()` gives
///   them end to end, string `i` ending at `ends[i]`.
///
/// A storage failure ends the operation: drop the handle (`free()`).
#[wasm_bindgen]
pub struct Op {
    /// Any operation of core, reading packed objects as well as loose ones.
    inner: Packed<api::Op>,
    cache: Rc<RefCell<ObjectCache>>,
    pending: Pending,
    /// The bytes of the last `put` or `done` step, until `bytes` takes them.
    bytes: Vec<u8>,
}

use output::Output;

/// What one `poll` produced.
struct Polled {
    step: Json,
    pending: Pending,
    bytes: Vec<u8>,
}

fn ref_state(json: &mut Json, state: &RefState) {
    json.open()
        .field("value")
        .id(&state.value)
        .field("version")
        .string(&state.version)
        .close();
}

/// A step as JSON text, the bytes of a `put`, and what its answer will be.
fn step(step: Step<Output>) -> JsResult<Polled> {
    let mut json = Json::with_capacity(128);
    let mut put = Vec::new();
    json.open().field("type");
    let pending = match step {
        Step::Get(ids) => {
            json.string("get").field("keys").strings(ids.iter().map(loose_key));
            Pending::Get(ids.len())
        }
        // Reading a file that is not an object is the same storage call as an object.
        Step::Read(keys) => {
            json.string("get").field("keys").strings(&keys);
            Pending::Read(keys.len())
        }
        Step::ReadRanges(ranges) => {
            json.string("getRanges").field("ranges").open_array();
            for range in &ranges {
                json.item()
                    .open()
                    .field("key")
                    .string(&range.key)
                    .field("start")
                    .number(range.start)
                    .field("len")
                    .number(range.len)
                    .close();
            }
            json.close_array();
            Pending::Ranges(ranges.len())
        }
        Step::Put(objects) => {
            put.reserve_exact(objects.iter().map(|o| o.loose.len()).sum());
            json.string("put")
                .field("keys")
                .strings(objects.iter().map(NewObject::key));
            json.field("ends").open_array();
            for object in &objects {
                put.extend_from_slice(&object.loose);
                json.item().number(put.len() as u64);
            }
            json.close_array();
            Pending::Put
        }
        Step::Write(files) => {
            put.reserve_exact(files.iter().map(|f| f.bytes.len()).sum());
            json.string("put")
                .field("keys")
                .strings(files.iter().map(|f| f.key.as_str()));
            json.field("ends").open_array();
            for file in &files {
                put.extend_from_slice(&file.bytes);
                json.item().number(put.len() as u64);
            }
            json.close_array();
            Pending::Put
        }
        Step::ReadRef(key) => {
            json.string("readRef").field("key").string(&key);
            Pending::Ref(key)
        }
        Step::CasRef(cas) => {
            json.string("cas").field("key").string(&cas.key).field("expected");
            match &cas.expected {
                Some(state) => ref_state(&mut json, state),
                None => {
                    json.null();
                }
            }
            json.field("value").opt_id(cas.new.as_ref());
            Pending::Cas(cas.key)
        }
        Step::Swap(swap) => {
            json.string("swap").field("key").string(&swap.key);
            json.field("expected");
            match &swap.expected {
                Some(bytes) => json.number(bytes.len() as u64),
                None => json.null(),
            };
            json.field("new");
            match &swap.new {
                Some(bytes) => json.number(bytes.len() as u64),
                None => json.null(),
            };
            put.extend_from_slice(swap.expected.as_deref().unwrap_or_default());
            put.extend_from_slice(swap.new.as_deref().unwrap_or_default());
            Pending::Swap
        }
        Step::List(prefix) => {
            json.string("list").field("prefix").string(&prefix);
            Pending::List
        }
        Step::Delete(keys) => {
            json.string("delete").field("keys").strings(&keys);
            Pending::Delete
        }
        Step::Lock(lock) => {
            json.string("lock")
                .field("name")
                .string(&lock.name)
                .field("ttlMs")
                .number(lock.ttl_ms);
            Pending::Lock
        }
        Step::Unlock { name, token } => {
            json.string("unlock")
                .field("name")
                .string(&name)
                .field("token")
                .string(&token);
            Pending::Unlock
        }
        Step::Wait { ms } => {
            json.string("wait").field("ms").number(ms);
            Pending::Wait
        }
        Step::Http(request) => {
            json.string("http")
                .field("method")
                .string(request.method.as_str())
                .field("url")
                .string(&request.url)
                .field("headers")
                .open_array();
            for (name, value) in &request.headers {
                json.item().strings([name, value]);
            }
            json.close_array()
                .field("maxResponseBytes")
                .number(request.max_response_bytes);
            put = request.body;
            Pending::Http
        }
        Step::Done(out) => {
            json.string("done").field("value").raw(&out.json);
            if !out.ends.is_empty() {
                json.field("ends").open_array();
                for end in out.ends {
                    json.item().number(end as u64);
                }
                json.close_array();
            }
            put = out.data;
            Pending::Nothing
        }
        _ => return Err(error::misuse("core asked for a step this binding does not know")),
    };
    json.close();
    Ok(Polled {
        step: json,
        pending,
        bytes: put,
    })
}

/// A ref state from storage: its value and version, or neither if the ref is absent.
fn read_ref_state(
    kind: HashKind,
    key: &str,
    value: Option<String>,
    version: Option<String>,
) -> JsResult<Option<RefState>> {
    let (Some(hex), Some(version)) = (value, version) else {
        return Ok(None);
    };
    let id = snapgit_core::id::parse(kind, hex.trim_end()).map_err(|e| error::bad_ref(key, &e))?;
    Ok(Some(RefState { value: id, version }))
}

#[wasm_bindgen]
impl Op {
    /// What the operation needs next, as JSON text (see the type's docs).
    pub fn poll(&mut self) -> Result<String, JsValue> {
        let polled = match core(self.inner.poll(&mut self.cache.borrow_mut()))? {
            Step::Done(out) => Step::Done(output::output(&out).map_err(|e| error::misuse_text(&e.to_string()))?),
            // Only `Done` carries a result: nothing is converted for the other steps.
            other => other.map(|_| unreachable!("a step other than Done has no result")),
        };
        let polled = step(polled)?;
        self.pending = polled.pending;
        self.bytes = polled.bytes;
        Ok(polled.step.into_string())
    }

    /// The bytes of the last `put` step's objects or `done` step's files, end to end (see
    /// `ends` in the step), or of an `http` step's body. Taken: a second call gives an
    /// empty array.
    pub fn bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// How far the operation has come, as JSON text: `{ phase, refsListed, refsRead,
    /// reachable, rounds, objectsListed, examined, deleted, deletedBytes, young }` for
    /// `gc` and `footprint`, `undefined` for the operations that do not report progress.
    pub fn progress(&self) -> Option<String> {
        self.inner.inner().progress().and_then(|p| output::json(&p).ok())
    }

    /// Answer a `get` step: the objects found, end to end in `bytes`, and each key's
    /// object length in `lens`, in the order asked (negative for an absent object).
    pub fn provide(&mut self, bytes: &[u8], lens: &[f64]) -> Result<(), JsValue> {
        let (Pending::Get(count) | Pending::Read(count) | Pending::Ranges(count)) = self.pending else {
            return Err(error::misuse("provide called without an outstanding get"));
        };
        if lens.len() != count {
            return Err(error::misuse("provide needs one length per key"));
        }
        let mut rest = bytes;
        let mut objects = Vec::with_capacity(count);
        for &len in lens {
            if len < 0.0 {
                objects.push(None);
                continue;
            }
            let len = len as usize;
            if len > rest.len() {
                return Err(error::misuse("provide's lengths exceed its bytes"));
            }
            let (object, tail) = rest.split_at(len);
            objects.push(Some(object.to_vec()));
            rest = tail;
        }
        let pending = std::mem::replace(&mut self.pending, Pending::Nothing);
        let mut cache = self.cache.borrow_mut();
        match pending {
            Pending::Read(_) => return core(self.inner.answer(&mut cache, Answer::Read(objects))),
            Pending::Ranges(_) => return core(self.inner.answer(&mut cache, Answer::Ranges(objects))),
            _ => {}
        }
        core(self.inner.provide(&mut cache, objects))
    }

    /// Answer a `readRef` step with the ref's value and version (neither if absent).
    #[wasm_bindgen(js_name = answerRef)]
    pub fn answer_ref(&mut self, value: Option<String>, version: Option<String>) -> Result<(), JsValue> {
        let Pending::Ref(key) = &self.pending else {
            return Err(error::misuse("answerRef called without an outstanding readRef"));
        };
        let state = read_ref_state(self.kind(), key, value, version)?;
        self.reply(Answer::Ref(state))
    }

    /// Answer a `cas` step that won with the ref's new version.
    #[wasm_bindgen(js_name = answerWon)]
    pub fn answer_won(&mut self, version: String) -> Result<(), JsValue> {
        let Pending::Cas(_) = self.pending else {
            return Err(error::misuse("answerWon called without an outstanding cas"));
        };
        self.reply(Answer::Cas(CasOutcome::Won { version }))
    }

    /// Answer a `cas` step that lost with the ref's current value and version (neither if
    /// the ref is absent).
    #[wasm_bindgen(js_name = answerLost)]
    pub fn answer_lost(&mut self, value: Option<String>, version: Option<String>) -> Result<(), JsValue> {
        let Pending::Cas(key) = &self.pending else {
            return Err(error::misuse("answerLost called without an outstanding cas"));
        };
        let current = read_ref_state(self.kind(), key, value, version)?;
        self.reply(Answer::Cas(CasOutcome::Lost { current }))
    }

    /// Answer a `swap` step: whether the file was replaced.
    #[wasm_bindgen(js_name = answerSwapped)]
    pub fn answer_swapped(&mut self, replaced: bool) -> Result<(), JsValue> {
        let Pending::Swap = self.pending else {
            return Err(error::misuse("answerSwapped called without an outstanding swap"));
        };
        self.reply(Answer::Swapped(replaced))
    }

    /// Answer a `list` step. `listed` packed (see `js/src/pack.ts`): a u32 count, then
    /// each key with its size and `modifiedMs`.
    #[wasm_bindgen(js_name = answerList)]
    pub fn answer_list(&mut self, listed: &[u8]) -> Result<(), JsValue> {
        let Pending::List = self.pending else {
            return Err(error::misuse("answerList called without an outstanding list"));
        };
        let mut r = Reader::new(listed);
        let count = r.u32()? as usize;
        let mut out = Vec::with_capacity(count.min(listed.len() / 20));
        for _ in 0..count {
            out.push(Listed {
                key: r.string()?,
                size: r.number()? as u64,
                modified_ms: r.number()? as i64,
            });
        }
        r.finish()?;
        self.reply(Answer::List(out))
    }

    /// Answer a `lock` step with the lock's token, or none if it is busy.
    #[wasm_bindgen(js_name = answerLock)]
    pub fn answer_lock(&mut self, token: Option<String>) -> Result<(), JsValue> {
        let Pending::Lock = self.pending else {
            return Err(error::misuse("answerLock called without an outstanding lock"));
        };
        self.reply(Answer::Lock(token))
    }

    /// Answer an `http` step with the response: its status, its `Content-Type` (none if
    /// it has none) and its whole body.
    #[wasm_bindgen(js_name = answerHttp)]
    pub fn answer_http(&mut self, status: u16, content_type: Option<String>, body: Vec<u8>) -> Result<(), JsValue> {
        let Pending::Http = self.pending else {
            return Err(error::misuse("answerHttp called without an outstanding http"));
        };
        self.reply(Answer::Http(HttpResponse {
            status,
            content_type,
            body,
        }))
    }

    /// Answer a `put`, `delete`, `unlock` or `wait` step: it was carried out.
    pub fn answer(&mut self) -> Result<(), JsValue> {
        let answer = match self.pending {
            Pending::Put => Answer::Put,
            Pending::Delete => Answer::Deleted,
            Pending::Unlock => Answer::Unlocked,
            Pending::Wait => Answer::Waited,
            _ => {
                return Err(error::misuse(
                    "answer called without an outstanding put, delete, unlock or wait",
                ));
            }
        };
        self.reply(answer)
    }
}

impl Op {
    fn kind(&self) -> HashKind {
        self.cache.borrow().hash_kind()
    }

    fn reply(&mut self, answer: Answer) -> JsResult<()> {
        self.pending = Pending::Nothing;
        core(self.inner.answer(&mut self.cache.borrow_mut(), answer))
    }
}

impl Engine {
    fn op(&self, op: impl Into<api::Op>) -> Op {
        Op {
            inner: Packed::new(op.into()),
            cache: self.cache.clone(),
            pending: Pending::Nothing,
            bytes: Vec::new(),
        }
    }

    fn kind(&self) -> HashKind {
        self.cache.borrow().hash_kind()
    }

    /// Start `request` through core's one entry for every face.
    fn start(&self, request: api::Request) -> JsResult<Op> {
        let op = core(api::Op::new(&self.cache.borrow(), request))?;
        Ok(self.op(op))
    }
}

#[wasm_bindgen]
impl Engine {
    /// A new engine with an empty cache. `options` packed (see `js/src/pack.ts`):
    /// `cacheBytes`, the cache's approximate capacity; `maxObjectBytes`, the largest
    /// object read from storage; `maxFileBytes`, the largest file a commit writes;
    /// `maxChanges`, the most changes one commit carries (each optional).
    #[wasm_bindgen(constructor)]
    pub fn new(options: &[u8]) -> Result<Engine, JsValue> {
        let mut r = Reader::new(options);
        let mut limits = Limits::default();
        if let Some(n) = r.opt_count()? {
            limits.max_object_bytes = n;
        }
        if let Some(n) = r.opt_count()? {
            limits.max_file_bytes = n;
        }
        if let Some(n) = r.opt_count()? {
            limits.max_changes = n as usize;
        }
        let mut cache = ObjectCache::with_limits(HashKind::Sha1, limits);
        if let Some(n) = r.opt_count()? {
            cache.set_capacity(n as usize);
        }
        r.finish()?;
        Ok(Engine {
            cache: Rc::new(RefCell::new(cache)),
        })
    }

    /// The number of objects cached.
    #[wasm_bindgen(getter, js_name = cachedObjects)]
    pub fn cached_objects(&self) -> usize {
        self.cache.borrow().len()
    }

    /// Drop every cached object and remembered ref.
    #[wasm_bindgen(js_name = clearCache)]
    pub fn clear_cache(&self) {
        self.cache.borrow_mut().clear();
    }

    /// Start operation `op` — core's name for it (`commit`, `read-file`, …, as
    /// `api::Request::name` gives them) — with its packed request (`js/src/pack.ts`; the
    /// fields of each are listed below, `?` where core's default stands in). Checked by
    /// core before anything is read. Done with the operation's result in core's serde form.
    pub fn run(&self, op: &str, request: &[u8]) -> Result<Op, JsValue> {
        let kind = self.kind();
        let mut r = Reader::new(request);
        let request = match op {
            // repo, branch, message, author, committer?, changes, allowEmpty?, lineStats?,
            // expectedHead?, onConflict, maxAttempts?, lockTtlMs?, policy?
            "commit" => {
                let (repo, branch, message) = (r.string()?, r.string()?, r.string()?);
                let author = r.signature()?;
                let committer = r.opt_signature()?;
                let mut request = repo::CommitRequest::new(repo, branch, r.changes()?, author, message);
                request.committer = committer;
                set(&mut request.allow_empty, r.flag()?);
                set(&mut request.line_stats, r.flag()?);
                request.expected_head = r.opt_id(kind)?;
                request.on_conflict = r.conflict_policy()?;
                set(&mut request.max_attempts, r.opt_u32()?);
                request.lock_ttl_ms = r.opt_count()?;
                set(&mut request.policy, r.policy()?);
                api::Request::Commit(request)
            }
            // repo, branch, target, path?, author, message?, lineStats?, expectedHead?,
            // maxAttempts?, lockTtlMs?
            "restore" => {
                let (repo, branch, target) = (r.string()?, r.string()?, r.id(kind)?);
                let path = r.opt_string()?;
                let mut request = repo::RestoreRequest::new(repo, branch, target, r.signature()?);
                request.path = path.map(Into::into);
                request.message = r.opt_string()?;
                set(&mut request.line_stats, r.flag()?);
                request.expected_head = r.opt_id(kind)?;
                set(&mut request.max_attempts, r.opt_u32()?);
                request.lock_ttl_ms = r.opt_count()?;
                api::Request::Restore(request)
            }
            // repo, branch, message, author, changes (puts only)
            "create-repo" => {
                let (repo, branch, message) = (r.string()?, r.string()?, r.string()?);
                let author = r.signature()?;
                let files = r.changes()?;
                api::Request::CreateRepo {
                    repo,
                    branch,
                    files,
                    author,
                    message,
                }
            }
            "list-repos" => api::Request::ListRepos,
            // repo
            "delete-repo" => api::Request::DeleteRepo { repo: r.string()? },
            // repo, branch, then a u8 (1: `fromCommit`, an id; 0: `fromBranch`, a name)
            "create-branch" => {
                let (repo, branch) = (r.string()?, r.string()?);
                let start = match r.opt_id(kind)? {
                    Some(id) => Start::Commit(id),
                    None => Start::Branch(r.string()?),
                };
                api::Request::CreateBranch { repo, branch, start }
            }
            // repo
            "list-branches" => api::Request::ListBranches { repo: r.string()? },
            // repo, branch
            "delete-branch" => api::Request::DeleteBranch {
                repo: r.string()?,
                branch: r.string()?,
            },
            // repo, branch
            "read-head" => api::Request::ReadHead {
                repo: r.string()?,
                branch: r.string()?,
            },
            // repo, rev
            "resolve" => api::Request::Resolve {
                repo: r.string()?,
                rev: r.string()?,
            },
            // commit, path
            "read-file" => api::Request::ReadFile {
                commit: r.id(kind)?,
                path: r.string()?.into(),
            },
            // commit, path?, recursive?
            "list-tree" => api::Request::ListTree {
                commit: r.id(kind)?,
                path: r.opt_string()?.unwrap_or_default().into(),
                recursive: r.flag()?.unwrap_or(true),
            },
            // commit, path?
            "read-files" => api::Request::ReadFiles {
                commit: r.id(kind)?,
                path: r.opt_string()?.unwrap_or_default().into(),
            },
            // commit
            "read-commit" => api::Request::ReadCommit { commit: r.id(kind)? },
            // start, limit, path?, allParents?, cursor?
            "log" => api::Request::Log(history_request(&mut r, kind)?),
            "file-log" => api::Request::FileLog(history_request(&mut r, kind)?),
            // from?, to, path?, renames?, lineStats?, patch?, binaryPatch?
            "diff" => {
                let from = r.opt_id(kind)?;
                let mut request = diff::Request::new(from, r.id(kind)?);
                request.path = r.opt_string()?.map(Into::into);
                set(&mut request.renames, r.flag()?);
                set(&mut request.line_stats, r.flag()?);
                set(&mut request.patch, r.flag()?);
                set(&mut request.binary_patch, r.flag()?);
                api::Request::Diff(request)
            }
            // from, files, path?, renames?, lineStats?, patch?, binaryPatch?, untracked
            "diff-folder" => {
                let from = r.id(kind)?;
                let mut request = worktree::DiffRequest::new(from, r.folder_files(kind)?);
                request.path = r.opt_string()?.map(Into::into);
                set(&mut request.renames, r.flag()?);
                set(&mut request.line_stats, r.flag()?);
                set(&mut request.patch, r.flag()?);
                set(&mut request.binary_patch, r.flag()?);
                request.untracked = r.strings()?.into_iter().map(Into::into).collect();
                api::Request::DiffFolder(request)
            }
            // commit, path?, files, untracked
            "checkout" => {
                let commit = r.id(kind)?;
                let path = r.opt_string()?.map(Into::into);
                let mut request = worktree::CheckoutRequest::new(commit, r.folder_files(kind)?);
                request.path = path;
                request.untracked = r.strings()?.into_iter().map(Into::into).collect();
                api::Request::Checkout(request)
            }
            // repo, branch, keepLast?, keepWithinMs?, nowMs, maxAttempts?, countDropped?
            "prune" => {
                let (repo, branch) = (r.string()?, r.string()?);
                let keep_last = r.opt_count()?.map(|n| n as usize);
                let keep_within = r.opt_count()?;
                let now_ms = r.time()?;
                let retention = gc::Retention {
                    keep_last,
                    keep_within: keep_within.map(|duration_ms| gc::Within { duration_ms, now_ms }),
                };
                let mut request = gc::PruneRequest::new(repo, branch, retention);
                set(&mut request.max_attempts, r.opt_u32()?);
                set(&mut request.count_dropped, r.flag()?);
                api::Request::Prune(request)
            }
            "footprint" => api::Request::Footprint,
            // nowMs, graceMs?, batch?
            "gc" => {
                let mut options = gc::CollectOptions::new(r.time()?);
                set(&mut options.grace_ms, r.opt_count()?);
                set(&mut options.batch, r.opt_count()?.map(|n| n as usize));
                api::Request::Collect(options)
            }
            // nowMs, graceMs?, window?, depth?, factor?, batch?, minLoose?, minPacks?,
            // dropUnreachable?
            "compact" => {
                let mut options = gc::CompactOptions::new(r.time()?);
                set(&mut options.grace_ms, r.opt_count()?);
                set(&mut options.window, r.opt_count()?.map(|n| n as usize));
                set(&mut options.depth, r.opt_count()?.map(|n| n as usize));
                set(&mut options.factor, r.opt_count()?);
                set(&mut options.batch, r.opt_count()?.map(|n| n as usize));
                options.min_loose = r.opt_count()?;
                options.min_packs = r.opt_count()?;
                options.drop_unreachable = r.flag()?.unwrap_or(false);
                api::Request::Compact(options)
            }
            // maxBytes, keepLast?, maxAttempts?
            "cap" => {
                let mut request = gc::CapRequest::new(r.count()?);
                set(&mut request.keep_last, r.opt_count()?.map(|n| n as usize));
                set(&mut request.max_attempts, r.opt_u32()?);
                api::Request::Cap(request)
            }
            // repo, branch, url, headers, remoteRef?, force?
            "push" => {
                let (repo, branch) = (r.string()?, r.string()?);
                let remote = remote(&mut r)?;
                let remote_ref = r.opt_string()?;
                let force = r.flag()?.unwrap_or(false);
                api::Request::Push(PushRequest {
                    repo,
                    branch,
                    remote,
                    remote_ref,
                    force,
                })
            }
            // repo, url, headers, refs, into?, force?, depth?, filter?
            "fetch" => {
                let repo = r.string()?;
                let remote = remote(&mut r)?;
                let refs = r.strings()?;
                let into = r.opt_string()?;
                let force = r.flag()?.unwrap_or(false);
                let depth = r.opt_u32()?;
                let filter = r.opt_string()?;
                api::Request::Fetch(FetchRequest {
                    repo,
                    remote,
                    refs,
                    into,
                    force,
                    depth,
                    filter,
                })
            }
            _ => return Err(error::misuse("run called with an operation core does not have")),
        };
        r.finish()?;
        self.start(request)
    }
}

/// Set `field` to `value` when the request carries one; otherwise core's default stays.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// A packed remote: its URL, then its headers.
fn remote(r: &mut Reader<'_>) -> JsResult<Remote> {
    Ok(Remote {
        url: r.string()?,
        headers: r.pairs()?,
    })
}

/// A packed history request: `start, limit, path?, allParents?, cursor?`.
fn history_request(r: &mut Reader<'_>, kind: HashKind) -> JsResult<history::Request> {
    let start = r.id(kind)?;
    let limit = r.count()?;
    let mut request = history::Request::new(start, usize::try_from(limit).unwrap_or(usize::MAX));
    request.path = r.opt_string()?.map(Into::into);
    if let Some(all) = r.flag()? {
        request.first_parent = !all;
    }
    request.cursor = r.opt_string()?.map(Into::into);
    Ok(request)
}
