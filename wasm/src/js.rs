//! The wasm-bindgen exports: an [`Engine`] that holds the object cache of one store, and
//! an [`Op`] handle per running operation that a JS driver polls.

pub mod error;
mod json;
mod output;
mod packed;

use std::{cell::RefCell, rc::Rc};

use snapgit_core::{
    HashKind, Limits, ObjectCache, Operation, Step, api,
    diff::tree as diff,
    gc, history,
    object::{NewObject, loose_key},
    pack::Packed,
    repo::{self, Start},
    step::{Answer, CasOutcome, Listed, RefState},
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
    List,
    Delete,
    Lock,
    Unlock,
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
/// - `{ type: 'list', prefix }`: `answerList(listed)`, the keys with their sizes and
///   `modifiedMs`, packed.
/// - `{ type: 'delete', keys }`: delete them, then `answer()`.
/// - `{ type: 'lock', name, ttlMs }`: `answerLock(token)`, no token if busy.
/// - `{ type: 'unlock', name, token }`: release, then `answer()`.
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
    /// `ends` in the step). Taken: a second call gives an empty array.
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

    /// Answer a `put`, `delete` or `unlock` step: it was carried out.
    pub fn answer(&mut self) -> Result<(), JsValue> {
        let answer = match self.pending {
            Pending::Put => Answer::Put,
            Pending::Delete => Answer::Deleted,
            Pending::Unlock => Answer::Unlocked,
            _ => {
                return Err(error::misuse(
                    "answer called without an outstanding put, delete or unlock",
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
    fn run(&self, request: api::Request) -> JsResult<Op> {
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

    /// Commit changes to a branch. `request` packed: `repo, branch, message, author,
    /// committer?, changes, allowEmpty?, lineStats?, expectedHead?, onConflict,
    /// maxAttempts?, lockTtlMs?, policy?`. Done with `{ commit, tree, parent, created,
    /// files, added, removed, attempts, settled, objectsWritten, bytesWritten, locked }`.
    pub fn commit(&self, request: &[u8]) -> Result<Op, JsValue> {
        let kind = self.kind();
        let mut r = Reader::new(request);
        let (repo, branch, message) = (r.string()?, r.string()?, r.string()?);
        let author = r.signature()?;
        let committer = r.opt_signature()?;
        let changes = r.changes()?;
        let mut request = repo::CommitRequest::new(repo, branch, changes, author, message);
        request.committer = committer;
        set(&mut request.allow_empty, r.flag()?);
        set(&mut request.line_stats, r.flag()?);
        request.expected_head = r.opt_id(kind)?;
        request.on_conflict = r.conflict_policy()?;
        set(&mut request.max_attempts, r.opt_u32()?);
        request.lock_ttl_ms = r.opt_count()?;
        set(&mut request.policy, r.policy()?);
        r.finish()?;
        self.run(api::Request::Commit(request))
    }

    /// Restore an earlier commit's content (all of it, or one path) as a new commit on a
    /// branch. `request` packed: `repo, branch, target, path?, author, message?,
    /// lineStats?, expectedHead?, maxAttempts?, lockTtlMs?`. Done with what `commit` gives.
    pub fn restore(&self, request: &[u8]) -> Result<Op, JsValue> {
        let kind = self.kind();
        let mut r = Reader::new(request);
        let (repo, branch, target) = (r.string()?, r.string()?, r.id(kind)?);
        let path = r.opt_string()?;
        let mut request = repo::RestoreRequest::new(repo, branch, target, r.signature()?);
        request.path = path.map(Into::into);
        request.message = r.opt_string()?;
        set(&mut request.line_stats, r.flag()?);
        request.expected_head = r.opt_id(kind)?;
        set(&mut request.max_attempts, r.opt_u32()?);
        request.lock_ttl_ms = r.opt_count()?;
        r.finish()?;
        self.run(api::Request::Restore(request))
    }

    /// Create a repo with a first commit. `request` packed: `repo, branch, message,
    /// author, changes` (puts only). Done with `{ commit, files, added, removed }`.
    #[wasm_bindgen(js_name = createRepo)]
    pub fn create_repo(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let (repo, branch, message) = (r.string()?, r.string()?, r.string()?);
        let author = r.signature()?;
        let changes = r.changes()?;
        r.finish()?;
        self.run(api::Request::CreateRepo {
            repo,
            branch,
            files: changes,
            author,
            message,
        })
    }

    /// List every repo of the store. Done with the names, sorted.
    #[wasm_bindgen(js_name = listRepos)]
    pub fn list_repos(&self) -> Result<Op, JsValue> {
        self.run(api::Request::ListRepos)
    }

    /// Delete a repo (every ref of it; objects go at the next GC). `request` packed:
    /// `repo`. Done with the refs removed.
    #[wasm_bindgen(js_name = deleteRepo)]
    pub fn delete_repo(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let repo = r.string()?;
        r.finish()?;
        self.run(api::Request::DeleteRepo { repo })
    }

    /// Create a branch at a commit or at another branch's head. `request` packed: `repo,
    /// branch`, then a u8 (1: `fromCommit`, an id; 0: `fromBranch`, a name) and the start.
    /// Done with the commit it starts at.
    #[wasm_bindgen(js_name = createBranch)]
    pub fn create_branch(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let (repo, branch) = (r.string()?, r.string()?);
        let start = match r.opt_id(self.kind())? {
            Some(id) => Start::Commit(id),
            None => Start::Branch(r.string()?),
        };
        r.finish()?;
        self.run(api::Request::CreateBranch { repo, branch, start })
    }

    /// List the branches of a repo. `request` packed: `repo`. Done with the names, sorted.
    #[wasm_bindgen(js_name = listBranches)]
    pub fn list_branches(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let repo = r.string()?;
        r.finish()?;
        self.run(api::Request::ListBranches { repo })
    }

    /// Delete a branch. `request` packed: `repo, branch`. Done with the refs removed.
    #[wasm_bindgen(js_name = deleteBranch)]
    pub fn delete_branch(&self, request: &[u8]) -> Result<Op, JsValue> {
        let (repo, branch) = repo_branch(request)?;
        self.run(api::Request::DeleteBranch { repo, branch })
    }

    /// Read a branch's head. `request` packed: `repo, branch`. Done with the commit id.
    #[wasm_bindgen(js_name = readHead)]
    pub fn read_head(&self, request: &[u8]) -> Result<Op, JsValue> {
        let (repo, branch) = repo_branch(request)?;
        self.run(api::Request::ReadHead { repo, branch })
    }

    /// The commit a revision of a repo names (a branch or tag, a full or abbreviated id,
    /// then `~N` and `^N` steps, as git reads them). `request` packed: `repo, rev`. Done
    /// with the commit id.
    pub fn resolve(&self, request: &[u8]) -> Result<Op, JsValue> {
        let (repo, rev) = repo_branch(request)?;
        self.run(api::Request::Resolve { repo, rev })
    }

    /// Read one file at a commit. `request` packed: `commit, path`. Done with `{ id,
    /// mode }` and the file's bytes.
    #[wasm_bindgen(js_name = readFile)]
    pub fn read_file(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let commit = r.id(self.kind())?;
        let path = r.string()?;
        r.finish()?;
        self.run(api::Request::ReadFile {
            commit,
            path: path.into(),
        })
    }

    /// List a folder at a commit without reading blobs. `request` packed: `commit, path?,
    /// recursive?`: the root by default; `recursive` (the default) lists every file and
    /// submodule below, otherwise one level. Done with `[{ path, mode, id }]`.
    #[wasm_bindgen(js_name = listTree)]
    pub fn list_tree(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let commit = r.id(self.kind())?;
        let path = r.opt_string()?.unwrap_or_default();
        let recursive = r.flag()?.unwrap_or(true);
        r.finish()?;
        self.run(api::Request::ListTree {
            commit,
            path: path.into(),
            recursive,
        })
    }

    /// Read every file below a folder at a commit. `request` packed: `commit, path?` (all
    /// files by default). Done with `[{ path, id, mode }]` and each file's bytes.
    #[wasm_bindgen(js_name = readFiles)]
    pub fn read_files(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let commit = r.id(self.kind())?;
        let path = r.opt_string()?.unwrap_or_default();
        r.finish()?;
        self.run(api::Request::ReadFiles {
            commit,
            path: path.into(),
        })
    }

    /// Read a commit's metadata. `request` packed: `commit`. Done with `{ id, tree,
    /// parents, author, committer, message }`, each signature's `date` in seconds since
    /// the epoch.
    #[wasm_bindgen(js_name = readCommit)]
    pub fn read_commit(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let commit = r.id(self.kind())?;
        r.finish()?;
        self.run(api::Request::ReadCommit { commit })
    }

    /// One page of history. `request` packed: `start, limit, path?, allParents?,
    /// cursor?`. Done with `{ commits, next }`.
    pub fn log(&self, request: &[u8]) -> Result<Op, JsValue> {
        let request = self.history_request(request)?;
        self.run(api::Request::Log(request))
    }

    /// One page of a file's history with its change in each commit. `request` as for
    /// `log`, with a `path`. Done with `{ commits: [{ commit, change }], next }`.
    #[wasm_bindgen(js_name = fileLog)]
    pub fn file_log(&self, request: &[u8]) -> Result<Op, JsValue> {
        let request = self.history_request(request)?;
        self.run(api::Request::FileLog(request))
    }

    /// Compare two commits. `request` packed: `from?, to, path?, renames?, lineStats?,
    /// patch?, binaryPatch?`; without `from`, `to` is compared with its first parent.
    /// Done with `{ from, to, files, added, removed, patch? }`.
    pub fn diff(&self, request: &[u8]) -> Result<Op, JsValue> {
        let kind = self.kind();
        let mut r = Reader::new(request);
        let from = r.opt_id(kind)?;
        let mut request = diff::Request::new(from, r.id(kind)?);
        request.path = r.opt_string()?.map(Into::into);
        set(&mut request.renames, r.flag()?);
        set(&mut request.line_stats, r.flag()?);
        set(&mut request.patch, r.flag()?);
        set(&mut request.binary_patch, r.flag()?);
        r.finish()?;
        self.run(api::Request::Diff(request))
    }

    /// Apply a retention to a branch. `request` packed: `repo, branch, keepLast?,
    /// keepWithinMs?, nowMs, maxAttempts?, countDropped?`. Done with `{ oldHead, newHead,
    /// rewritten, kept, dropped, written, attempts }`.
    pub fn prune(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
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
        r.finish()?;
        self.run(api::Request::Prune(request))
    }

    /// Survey the store's size. Done with `{ objects, repos, otherRefs, unreachable, otherKeys }`.
    pub fn footprint(&self) -> Result<Op, JsValue> {
        self.run(api::Request::Footprint)
    }

    /// Garbage-collect the store. `request` packed: `nowMs, graceMs?, batch?`. Done with
    /// `{ refs, reachable, listed, deleted, deletedBytes, young, youngBytes, rounds }`.
    pub fn gc(&self, request: &[u8]) -> Result<Op, JsValue> {
        let mut r = Reader::new(request);
        let mut options = gc::CollectOptions::new(r.time()?);
        set(&mut options.grace_ms, r.opt_count()?);
        set(&mut options.batch, r.opt_count()?.map(|n| n as usize));
        r.finish()?;
        self.run(api::Request::Collect(options))
    }
}

/// Set `field` to `value` when the request carries one; otherwise core's default stays.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// A packed `repo, branch`.
fn repo_branch(request: &[u8]) -> JsResult<(String, String)> {
    let mut r = Reader::new(request);
    let names = (r.string()?, r.string()?);
    r.finish()?;
    Ok(names)
}

impl Engine {
    fn history_request(&self, request: &[u8]) -> JsResult<history::Request> {
        let mut r = Reader::new(request);
        let start = r.id(self.kind())?;
        let limit = r.count()?;
        let mut request = history::Request::new(start, usize::try_from(limit).unwrap_or(usize::MAX));
        request.path = r.opt_string()?.map(Into::into);
        if let Some(all) = r.flag()? {
            request.first_parent = !all;
        }
        request.cursor = r.opt_string()?.map(Into::into);
        r.finish()?;
        Ok(request)
    }
}
