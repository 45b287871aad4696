//! Values across the boundary: JS arguments into core's requests, core's results into
//! plain JS objects. Names are camelCase; ids are lowercase hex; times are `Date`s.
//!
//! Property names are made into JS strings once and kept ([`key`]), and results are built
//! with plain property stores, so a warm commit spends its time in core, not here.

use std::{
    cell::RefCell,
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use bstr::{BStr, ByteSlice};
use js_sys::{Array, Date, Object, Reflect, Uint8Array};
use snapgit_core::{
    Mode, ObjectId,
    commit::Signature,
    diff::{ChangeKind, FileChange},
    gc, history, read, repo,
};
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};

use super::{
    Output,
    error::{self, ToJs},
    json::Json,
};

/// A result whose error is a JS error.
pub type JsResult<T> = Result<T, JsValue>;

#[wasm_bindgen]
extern "C" {
    /// A plain object this binding made: storing a property on it cannot throw.
    #[wasm_bindgen(extends = Object)]
    pub type Plain;

    /// `this[key] = value`.
    #[wasm_bindgen(method, structural, indexing_setter)]
    fn put(this: &Plain, key: &JsValue, value: &JsValue);
}

/// Hashes a static string by its address and length: the names are literals, so that
/// is enough, and cheaper than hashing their bytes.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Keys = HashMap<(usize, usize), &'static JsValue, BuildHasherDefault<AddressHasher>>;

thread_local! {
    static KEYS: RefCell<Keys> = RefCell::new(Keys::default());
}

/// `name` as a JS string, made once per name and kept for the life of the module.
pub fn key(name: &'static str) -> &'static JsValue {
    let id = (name.as_ptr() as usize, name.len());
    if let Some(value) = KEYS.with(|keys| keys.borrow().get(&id).copied()) {
        return value;
    }
    let value: &'static JsValue = Box::leak(Box::new(JsValue::from_str(name)));
    KEYS.with(|keys| keys.borrow_mut().insert(id, value));
    value
}

// ---------------------------------------------------------------------------------------
// Reading arguments
// ---------------------------------------------------------------------------------------

/// `object[name]`, `undefined` if absent or if `object` is not an object.
pub fn field(object: &JsValue, name: &'static str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    // A getter or proxy of the caller's may throw: caught, and read as absent.
    Reflect::get(object, key(name)).unwrap_or(JsValue::UNDEFINED)
}

// ---------------------------------------------------------------------------------------
// Building results
// ---------------------------------------------------------------------------------------

/// A plain object under construction.
pub struct Out(Plain);

impl Out {
    /// An empty object.
    pub fn new() -> Self {
        Out(Object::new().unchecked_into())
    }

    /// Set a field.
    pub fn set(self, name: &'static str, value: impl Into<JsValue>) -> Self {
        let value = value.into();
        self.0.put(key(name), &value);
        self
    }
}

impl From<Out> for JsValue {
    fn from(out: Out) -> Self {
        out.0.into()
    }
}

/// An id as lowercase hex.
pub fn hex(id: &ObjectId) -> JsValue {
    let mut buf = [0u8; 64];
    JsValue::from_str(id.hex_to_buf(&mut buf))
}

/// A path as text (invalid UTF-8 replaced).
pub fn text(path: &BStr) -> JsValue {
    JsValue::from_str(&path.to_str_lossy())
}

/// An array of the converted items.
pub fn array<T>(items: impl IntoIterator<Item = T>, convert: impl Fn(T) -> JsValue) -> JsValue {
    items.into_iter().map(convert).collect::<Array>().into()
}

/// Bytes as a new `Uint8Array`.
pub fn uint8(data: &[u8]) -> JsValue {
    Uint8Array::from(data).into()
}

/// A mode's name: `'regular'`, `'executable'`, `'symlink'`, `'tree'` or `'submodule'`.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Regular => "regular",
        Mode::Executable => "executable",
        Mode::Symlink => "symlink",
        Mode::Tree => "tree",
        Mode::Submodule => "submodule",
    }
}

/// A mode's name as a JS string.
pub fn mode(mode: Mode) -> JsValue {
    JsValue::from_str(mode_name(mode))
}

/// One side of a change or conflict: `{ id, mode }` or `null`.
fn entry(json: &mut Json, side: Option<(ObjectId, Mode)>) {
    match side {
        Some((id, m)) => {
            json.open()
                .field("id")
                .id(&id)
                .field("mode")
                .string(mode_name(m))
                .close();
        }
        None => {
            json.null();
        }
    }
}

fn signature_out(signature: &Signature) -> JsValue {
    let ms = signature.time.seconds as f64 * 1000.0;
    Out::new()
        .set("name", signature.name.as_str())
        .set("email", signature.email.as_str())
        .set("date", Date::new(&JsValue::from_f64(ms)))
        .set("offsetMinutes", signature.time.offset_minutes)
        .into()
}

/// A changed file: `{ path, kind, from?, old, new, binary, lines }`.
fn file_change(json: &mut Json, change: &FileChange) {
    let kind = match &change.kind {
        ChangeKind::Added => "added",
        ChangeKind::Modified => "modified",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Renamed { .. } => "renamed",
        ChangeKind::TypeChanged => "typeChanged",
        _ => "modified",
    };
    json.open()
        .field("path")
        .text(change.path.as_bstr())
        .field("kind")
        .string(kind);
    if let ChangeKind::Renamed { from } = &change.kind {
        json.field("from").text(from.as_bstr());
    }
    json.field("old");
    entry(json, change.old);
    json.field("new");
    entry(json, change.new);
    json.field("binary").boolean(change.binary).field("lines");
    match change.lines {
        Some(l) => {
            json.open()
                .field("added")
                .number(l.added)
                .field("removed")
                .number(l.removed)
                .close();
        }
        None => {
            json.null();
        }
    }
    json.close();
}

/// `files`, `added` and `removed` of a result.
fn files_out(json: &mut Json, files: &[FileChange]) {
    let (added, removed) = files
        .iter()
        .filter_map(|f| f.lines)
        .fold((0, 0), |(a, r), l| (a + l.added, r + l.removed));
    json.field("files").open_array();
    for file in files {
        json.item();
        file_change(json, file);
    }
    json.close_array()
        .field("added")
        .number(added)
        .field("removed")
        .number(removed);
}

/// JSON text of about `capacity` bytes written by `write`.
fn json(capacity: usize, write: impl FnOnce(&mut Json)) -> Output {
    let mut json = Json::with_capacity(capacity);
    write(&mut json);
    Output::Json(json.into_string())
}

/// A commit (or restore) that landed on its branch.
pub fn commit_output(out: repo::CommitOutput) -> Output {
    json(320 + 256 * out.files.len(), |json| {
        json.open()
            .field("commit")
            .id(&out.commit)
            .field("tree")
            .id(&out.tree)
            .field("parent")
            .id(&out.parent)
            .field("created")
            .boolean(out.created);
        files_out(json, &out.files);
        json.field("attempts")
            .number(u64::from(out.attempts))
            .field("settled")
            .open_array();
        for conflict in &out.settled {
            json.item()
                .open()
                .field("path")
                .text(conflict.path.as_bstr())
                .field("ours");
            entry(json, conflict.ours);
            json.field("theirs");
            entry(json, conflict.theirs);
            json.close();
        }
        json.close_array()
            .field("objectsWritten")
            .number(out.objects_written as u64)
            .field("bytesWritten")
            .number(out.bytes_written)
            .field("locked")
            .boolean(out.locked)
            .close();
    })
}

/// What a repo operation returns.
pub fn admin_output(out: repo::AdminOutput) -> Output {
    use repo::AdminOutput as A;
    json(128, |json| match out {
        A::Created { commit, files } => {
            json.open().field("commit").id(&commit);
            files_out(json, &files);
            json.close();
        }
        A::Repos(names) | A::Branches(names) | A::Deleted(names) => {
            json.strings(&names);
        }
        A::Head(id) | A::BranchCreated(id) => {
            json.id(&id);
        }
        _ => {
            json.null();
        }
    })
}

/// A commit's metadata.
pub fn commit_info(info: &read::CommitInfo) -> JsValue {
    Out::new()
        .set("id", hex(&info.id))
        .set("tree", hex(&info.tree))
        .set("parents", array(&info.parents, hex))
        .set("author", signature_out(&info.author))
        .set("committer", signature_out(&info.committer))
        .set("message", info.message.as_str())
        .into()
}

/// A file's content.
pub fn file(file: read::File) -> Output {
    Output::Value(
        Out::new()
            .set("id", hex(&file.id))
            .set("mode", mode(file.mode))
            .set("data", uint8(&file.data))
            .into(),
    )
}

/// A listing: `[{ path, mode, id }]`.
pub fn entries(entries: Vec<read::Entry>) -> Output {
    json(2 + 100 * entries.len(), |json| {
        json.open_array();
        for e in &entries {
            json.item()
                .open()
                .field("path")
                .text(e.path.as_bstr())
                .field("mode")
                .string(mode_name(e.mode))
                .field("id")
                .id(&e.id)
                .close();
        }
        json.close_array();
    })
}

/// Every file: `[{ path, id, mode, data }]`.
pub fn files_with_paths(files: Vec<read::FileWithPath>) -> Output {
    Output::Value(array(files, |f| {
        Out::new()
            .set("path", text(f.path.as_bstr()))
            .set("id", hex(&f.file.id))
            .set("mode", mode(f.file.mode))
            .set("data", uint8(&f.file.data))
            .into()
    }))
}

fn cursor(next: Option<history::Cursor>) -> JsValue {
    next.map_or(JsValue::NULL, |c| JsValue::from_str(c.as_str()))
}

/// A page of history: `{ commits, next }`.
pub fn page(page: history::Page) -> Output {
    Output::Value(
        Out::new()
            .set("commits", array(&page.commits, commit_info))
            .set("next", cursor(page.next))
            .into(),
    )
}

/// A page of a file's history: `{ commits: [{ commit, change }], next }`.
pub fn file_page(page: history::FilePage) -> Output {
    let commits = array(&page.commits, |c| {
        let mut change = Json::with_capacity(256);
        file_change(&mut change, &c.change);
        // Text this binding wrote is valid JSON.
        let change = js_sys::JSON::parse(change.as_str()).unwrap_or(JsValue::NULL);
        Out::new()
            .set("commit", commit_info(&c.commit))
            .set("change", change)
            .into()
    });
    Output::Value(Out::new().set("commits", commits).set("next", cursor(page.next)).into())
}

/// A diff: `{ from, to, files, added, removed, patch? }`.
pub fn diff(out: snapgit_core::diff::tree::Output) -> Output {
    let patch_len = out.patch.as_ref().map_or(0, |p| p.len());
    json(128 + 256 * out.files.len() + patch_len, |json| {
        json.open()
            .field("from")
            .opt_id(out.from.as_ref())
            .field("to")
            .id(&out.to);
        files_out(json, &out.files);
        if let Some(patch) = &out.patch {
            json.field("patch").text(patch.as_bstr());
        }
        json.close();
    })
}

/// What a prune did.
pub fn pruned(out: gc::Pruned) -> Output {
    json(256 + 44 * out.written.len(), |json| {
        json.open()
            .field("oldHead")
            .id(&out.old_head)
            .field("newHead")
            .id(&out.new_head)
            .field("rewritten")
            .boolean(out.rewritten)
            .field("kept")
            .number(out.kept as u64)
            .field("dropped");
        match out.dropped {
            Some(n) => json.number(n),
            None => json.null(),
        };
        json.field("written")
            .ids(&out.written)
            .field("attempts")
            .number(u64::from(out.attempts))
            .close();
    })
}

fn usage(json: &mut Json, usage: &gc::Usage) {
    json.open()
        .field("count")
        .number(usage.count)
        .field("bytes")
        .number(usage.bytes)
        .close();
}

/// The footprint report.
pub fn footprint(report: gc::FootprintReport) -> Output {
    json(256 + 96 * report.repos.len(), |json| {
        json.open().field("objects");
        usage(json, &report.objects);
        json.field("repos").open_array();
        for r in &report.repos {
            json.item()
                .open()
                .field("repo")
                .string(r.repo.as_str())
                .field("refs")
                .number(r.refs as u64)
                .field("reachable");
            usage(json, &r.reachable);
            json.close();
        }
        json.close_array().field("otherRefs");
        usage(json, &report.other_refs);
        json.field("unreachable");
        usage(json, &report.unreachable);
        json.field("otherKeys");
        usage(json, &report.other_keys);
        json.close();
    })
}

/// What a GC did.
pub fn collected(out: gc::Collected) -> Output {
    json(192, |json| {
        json.open()
            .field("refs")
            .number(out.refs as u64)
            .field("reachable")
            .number(out.reachable)
            .field("listed")
            .number(out.listed)
            .field("deleted")
            .number(out.deleted)
            .field("deletedBytes")
            .number(out.deleted_bytes)
            .field("young")
            .number(out.young)
            .field("youngBytes")
            .number(out.young_bytes)
            .field("rounds")
            .number(u64::from(out.rounds))
            .close();
    })
}

/// Map a core result's error to its JS error.
pub fn core<T, E: ToJs>(result: Result<T, E>) -> JsResult<T> {
    result.map_err(|e| error::to_js(&e))
}
