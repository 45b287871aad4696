//! Values across the boundary: JS arguments into core's requests, core's results into
//! plain JS objects. Names are camelCase; ids are lowercase hex; times are `Date`s.
//!
//! Property names are made into JS strings once and kept ([`key`]), and results are built
//! with plain property stores, so a warm commit spends its time in core, not here.

use std::{
    cell::RefCell,
    collections::HashMap,
    fmt::Display,
    hash::{BuildHasherDefault, Hasher},
};

use bstr::{BStr, ByteSlice};
use js_sys::{Array, Date, Object, Reflect, Uint8Array};
use snapgit_core::{
    HashKind, Mode, ObjectId,
    commit::{Change, Signature, Time},
    diff::{ChangeKind, FileChange},
    gc, history,
    merge::ConflictPolicy,
    policy::Policy,
    read, repo,
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

/// An argument's name for error messages, made only when an error needs it: `author`,
/// `author.email` ([`Dot`]), `changes[2].path` ([`Item`]), `files["a.md"]` ([`Entry`]).
pub type Name<'a> = &'a dyn Display;

/// `parent.child`.
pub struct Dot<'a>(pub &'a str, pub &'a str);

impl Display for Dot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// `list[index]` or `list[index].field`.
pub struct Item<'a>(pub &'a str, pub usize, pub Option<&'a str>);

impl Display for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)?;
        match self.2 {
            Some(field) => write!(f, ".{field}"),
            None => Ok(()),
        }
    }
}

/// `map["key"]`.
pub struct Entry<'a>(pub &'a str, pub &'a str);

impl Display for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{:?}]", self.0, self.1)
    }
}

/// `object[name]`, `undefined` if absent or if `object` is not an object.
pub fn field(object: &JsValue, name: &'static str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    // A getter or proxy of the caller's may throw: caught, and read as absent.
    Reflect::get(object, key(name)).unwrap_or(JsValue::UNDEFINED)
}

fn absent(value: &JsValue) -> bool {
    value.is_undefined() || value.is_null()
}

/// Check that `value` is an object (an options bag or a request).
pub fn object<'a>(value: &'a JsValue, name: Name) -> JsResult<&'a JsValue> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(error::argument(name, "an object", value))
    }
}

/// A required string.
pub fn string(value: &JsValue, name: Name) -> JsResult<String> {
    value
        .as_string()
        .ok_or_else(|| error::argument(name, "a string", value))
}

/// An optional string (`undefined` or `null` for none).
pub fn opt_string(value: &JsValue, name: Name) -> JsResult<Option<String>> {
    if absent(value) {
        Ok(None)
    } else {
        string(value, name).map(Some)
    }
}

/// An optional boolean, `default` when absent.
pub fn flag(value: &JsValue, name: Name, default: bool) -> JsResult<bool> {
    if absent(value) {
        return Ok(default);
    }
    value.as_bool().ok_or_else(|| error::argument(name, "a boolean", value))
}

/// An optional whole number in `min..=max`.
fn opt_whole(value: &JsValue, name: Name, min: f64, max: f64) -> JsResult<Option<f64>> {
    if absent(value) {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(error::argument(name, "a whole number in range", value)),
    }
}

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// An optional count (a non-negative safe integer).
pub fn opt_count(value: &JsValue, name: Name) -> JsResult<Option<u64>> {
    Ok(opt_whole(value, name, 0.0, MAX_SAFE)?.map(|n| n as u64))
}

/// An optional count that fits `u32`.
pub fn opt_u32(value: &JsValue, name: Name) -> JsResult<Option<u32>> {
    Ok(opt_whole(value, name, 0.0, f64::from(u32::MAX))?.map(|n| n as u32))
}

/// An optional signed time in whole milliseconds or seconds.
pub fn opt_i64(value: &JsValue, name: Name) -> JsResult<Option<i64>> {
    Ok(opt_whole(value, name, -MAX_SAFE, MAX_SAFE)?.map(|n| n as i64))
}

/// A required object id.
pub fn id(kind: HashKind, value: &JsValue, name: Name) -> JsResult<ObjectId> {
    let text = string(value, name)?;
    snapgit_core::id::parse(kind, &text).map_err(|e| error::to_js(&e))
}

/// An optional object id.
pub fn opt_id(kind: HashKind, value: &JsValue, name: Name) -> JsResult<Option<ObjectId>> {
    if absent(value) {
        Ok(None)
    } else {
        id(kind, value, name).map(Some)
    }
}

/// File content: a string (stored as UTF-8) or a `Uint8Array`.
pub fn bytes(value: &JsValue, name: Name) -> JsResult<Vec<u8>> {
    if let Some(text) = value.as_string() {
        return Ok(text.into_bytes());
    }
    match value.dyn_ref::<Uint8Array>() {
        Some(array) => Ok(array.to_vec()),
        None => Err(error::argument(name, "a string or a Uint8Array", value)),
    }
}

/// A signature: `{ name, email, date?, offsetMinutes? }`, `date` a `Date` or seconds since
/// the epoch (now when absent), `offsetMinutes` the time zone as git writes it (`120` for
/// `+0200`, UTC when absent).
pub fn signature(value: &JsValue, name: &'static str) -> JsResult<Signature> {
    let value = object(value, &name)?;
    let date = field(value, "date");
    let seconds = if absent(&date) {
        (Date::now() / 1000.0).floor() as i64
    } else if let Some(date) = date.dyn_ref::<Date>() {
        let ms = date.get_time();
        if !ms.is_finite() {
            return Err(error::argument(&Dot(name, "date"), "a valid Date", &date.into()));
        }
        (ms / 1000.0).floor() as i64
    } else {
        opt_i64(&date, &Dot(name, "date"))?.unwrap_or_default()
    };
    let offset = opt_whole(&field(value, "offsetMinutes"), &Dot(name, "offsetMinutes"), -1e6, 1e6)?;
    Ok(Signature {
        name: string(&field(value, "name"), &Dot(name, "name"))?,
        email: string(&field(value, "email"), &Dot(name, "email"))?,
        time: Time {
            seconds,
            offset_minutes: offset.map_or(0, |n| n as i32),
        },
    })
}

fn file_mode(value: &JsValue, name: Name) -> JsResult<Mode> {
    match value.as_string().as_deref() {
        None if absent(value) => Ok(Mode::Regular),
        Some("regular") => Ok(Mode::Regular),
        Some("executable") => Ok(Mode::Executable),
        Some("symlink") => Ok(Mode::Symlink),
        _ => Err(error::argument(name, "'regular', 'executable' or 'symlink'", value)),
    }
}

/// The changes of a commit: `changes`, an array of `{ type: 'put', path, content, mode? }`,
/// `{ type: 'delete', path }` and `{ type: 'rename', from, to }`; then `files`, an object
/// mapping each path to its new content (a string or `Uint8Array`), or `null` to delete it.
/// Either may be absent.
pub fn changes(request: &JsValue) -> JsResult<Vec<Change>> {
    let mut out = Vec::new();
    let value = field(request, "changes");
    if !absent(&value) {
        let array = value
            .dyn_ref::<Array>()
            .ok_or_else(|| error::argument(&"changes", "an array", &value))?;
        out.reserve(array.length() as usize);
        for (index, change) in array.iter().enumerate() {
            let at = |field| Item("changes", index, Some(field));
            object(&change, &Item("changes", index, None))?;
            let kind = field(&change, "type");
            out.push(match kind.as_string().as_deref() {
                Some("put") => Change::Put {
                    path: string(&field(&change, "path"), &at("path"))?.into(),
                    data: bytes(&field(&change, "content"), &at("content"))?,
                    mode: file_mode(&field(&change, "mode"), &at("mode"))?,
                },
                Some("delete") => Change::delete(string(&field(&change, "path"), &at("path"))?),
                Some("rename") => Change::rename(
                    string(&field(&change, "from"), &at("from"))?,
                    string(&field(&change, "to"), &at("to"))?,
                ),
                _ => return Err(error::argument(&at("type"), "'put', 'delete' or 'rename'", &kind)),
            });
        }
    }
    let files = field(request, "files");
    if !absent(&files) {
        object(&files, &"files")?;
        for entry in Object::entries(files.unchecked_ref::<Object>()).iter() {
            let entry: Array = entry.unchecked_into();
            let path = string(&entry.get(0), &"files")?;
            let content = entry.get(1);
            out.push(if content.is_null() {
                Change::delete(path)
            } else {
                let data = bytes(&content, &Entry("files", &path))?;
                Change::put(path, data)
            });
        }
    }
    Ok(out)
}

/// How to settle a conflict: `'fail'` (the default), `'ours'` or `'theirs'`.
pub fn conflict_policy(value: &JsValue) -> JsResult<ConflictPolicy> {
    match value.as_string().as_deref() {
        None if absent(value) => Ok(ConflictPolicy::Fail),
        Some("fail") => Ok(ConflictPolicy::Fail),
        Some("ours") => Ok(ConflictPolicy::Ours),
        Some("theirs") => Ok(ConflictPolicy::Theirs),
        _ => Err(error::argument(&"onConflict", "'fail', 'ours' or 'theirs'", value)),
    }
}

/// A write policy: `{ maxFileBytes?, maxObjectsPerCommit?, exclude?: string[] }`.
pub fn policy(value: &JsValue) -> JsResult<Policy> {
    if absent(value) {
        return Ok(Policy::default());
    }
    object(value, &"policy")?;
    let mut policy = Policy::new();
    policy.max_file_bytes = opt_count(&field(value, "maxFileBytes"), &"policy.maxFileBytes")?;
    policy.max_objects_per_commit =
        opt_count(&field(value, "maxObjectsPerCommit"), &"policy.maxObjectsPerCommit")?.map(|n| n as usize);
    let exclude = field(value, "exclude");
    if absent(&exclude) {
        return Ok(policy);
    }
    let patterns = exclude
        .dyn_ref::<Array>()
        .ok_or_else(|| error::argument(&"policy.exclude", "an array of strings", &exclude))?
        .iter()
        .enumerate()
        .map(|(i, p)| string(&p, &Item("policy.exclude", i, None)))
        .collect::<JsResult<Vec<_>>>()?;
    policy.exclude(patterns).map_err(|e| error::to_js(&e))
}

/// A retention: `{ keepLast?, keepWithinMs?, nowMs? }` (`nowMs` is required with `keepWithinMs`).
pub fn retention(value: &JsValue) -> JsResult<gc::Retention> {
    let keep_last = opt_count(&field(value, "keepLast"), &"keepLast")?;
    let within = opt_count(&field(value, "keepWithinMs"), &"keepWithinMs")?;
    let now = opt_i64(&field(value, "nowMs"), &"nowMs")?;
    Ok(gc::Retention {
        keep_last: keep_last.map(|n| n as usize),
        keep_within: match (within, now) {
            (Some(duration_ms), Some(now_ms)) => Some(gc::Within { duration_ms, now_ms }),
            (Some(_), None) => {
                return Err(error::argument(
                    &"nowMs",
                    "a whole number with keepWithinMs",
                    &field(value, "nowMs"),
                ));
            }
            (None, _) => None,
        },
    })
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
