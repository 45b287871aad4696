//! Core's results as JSON text (with file contents beside it as one buffer), and core's
//! errors as JS errors. Names are camelCase; ids are lowercase hex; times are seconds
//! since the epoch, which the package makes into `Date`s.

use bstr::ByteSlice;
use snapgit_core::{
    Mode, ObjectId,
    commit::Signature,
    diff::{ChangeKind, FileChange},
    gc, history, read, repo,
};
use wasm_bindgen::JsValue;

use super::{
    Output,
    error::{self, ToJs},
    json::Json,
};

/// A result whose error is a JS error.
pub type JsResult<T> = Result<T, JsValue>;

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

/// A signature: `{ name, email, date, offsetMinutes }`, `date` in seconds since the
/// epoch (the package makes it a `Date`).
fn signature(json: &mut Json, signature: &Signature) {
    json.open()
        .field("name")
        .string(&signature.name)
        .field("email")
        .string(&signature.email)
        .field("date")
        .int(signature.time.seconds)
        .field("offsetMinutes")
        .int(i64::from(signature.time.offset_minutes))
        .close();
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
    Output {
        json: json.into_string(),
        data: Vec::new(),
        ends: Vec::new(),
    }
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

/// The result of any operation, as the one that ran it gives it to JS.
pub fn output(out: snapgit_core::api::Output) -> JsResult<Output> {
    use snapgit_core::api::Output as O;
    Ok(match out {
        O::Admin(out) => admin_output(out),
        O::Commit(out) => commit_output(out),
        O::Resolve(commit) => id(commit),
        O::ReadFile(file) => self::file(file),
        O::ListTree(list) => entries(list),
        O::ReadFiles(files) => files_with_paths(files),
        O::ReadCommit(info) => commit_info(info),
        O::Log(p) => page(p),
        O::FileLog(p) => file_page(p),
        O::Diff(out) => diff(out),
        O::Prune(out) => pruned(out),
        O::Footprint(report) => footprint(report),
        O::Collect(out) => collected(out),
        _ => {
            return Err(super::error::misuse(
                "core returned a result this binding does not know",
            ));
        }
    })
}

/// A commit id.
pub fn id(id: snapgit_core::ObjectId) -> Output {
    json(48, |json| {
        json.id(&id);
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

fn info(json: &mut Json, info: &read::CommitInfo) {
    json.open()
        .field("id")
        .id(&info.id)
        .field("tree")
        .id(&info.tree)
        .field("parents")
        .ids(&info.parents)
        .field("author");
    signature(json, &info.author);
    json.field("committer");
    signature(json, &info.committer);
    json.field("message").string(&info.message).close();
}

/// A commit's metadata.
pub fn commit_info(commit: read::CommitInfo) -> Output {
    json(512 + commit.message.len(), |json| info(json, &commit))
}

/// A file: `{ id, mode }`, its content as the one item of `data`.
pub fn file(file: read::File) -> Output {
    let mut out = json(96, |json| {
        json.open()
            .field("id")
            .id(&file.id)
            .field("mode")
            .string(mode_name(file.mode))
            .close();
    });
    out.ends.push(file.data.len());
    out.data = file.data;
    out
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

/// Every file: `[{ path, id, mode }]`, the contents end to end in `data`, item `i`'s
/// ending at `ends[i]`.
pub fn files_with_paths(files: Vec<read::FileWithPath>) -> Output {
    let mut data = Vec::with_capacity(files.iter().map(|f| f.file.data.len()).sum());
    let mut ends = Vec::with_capacity(files.len());
    let mut out = json(2 + 140 * files.len(), |json| {
        json.open_array();
        for f in &files {
            json.item()
                .open()
                .field("path")
                .text(f.path.as_bstr())
                .field("id")
                .id(&f.file.id)
                .field("mode")
                .string(mode_name(f.file.mode))
                .close();
            data.extend_from_slice(&f.file.data);
            ends.push(data.len());
        }
        json.close_array();
    });
    out.data = data;
    out.ends = ends;
    out
}

fn next(json: &mut Json, next: Option<&history::Cursor>) {
    json.field("next");
    match next {
        Some(cursor) => json.string(cursor.as_str()),
        None => json.null(),
    };
}

/// A page of history: `{ commits, next }`.
pub fn page(page: history::Page) -> Output {
    json(64 + 640 * page.commits.len(), |json| {
        json.open().field("commits").open_array();
        for commit in &page.commits {
            json.item();
            info(json, commit);
        }
        json.close_array();
        next(json, page.next.as_ref());
        json.close();
    })
}

/// A page of a file's history: `{ commits: [{ commit, change }], next }`.
pub fn file_page(page: history::FilePage) -> Output {
    json(64 + 900 * page.commits.len(), |json| {
        json.open().field("commits").open_array();
        for c in &page.commits {
            json.item().open().field("commit");
            info(json, &c.commit);
            json.field("change");
            file_change(json, &c.change);
            json.close();
        }
        json.close_array();
        next(json, page.next.as_ref());
        json.close();
    })
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

/// How far a GC or footprint has come.
pub fn progress(progress: &gc::Progress) -> String {
    let phase = match progress.phase {
        gc::Phase::ListRefs => "listRefs",
        gc::Phase::ReadRefs => "readRefs",
        gc::Phase::Mark => "mark",
        gc::Phase::ListObjects => "listObjects",
        gc::Phase::Sweep => "sweep",
        _ => "done",
    };
    let mut json = Json::with_capacity(224);
    json.open()
        .field("phase")
        .string(phase)
        .field("refsListed")
        .number(progress.refs_listed as u64)
        .field("refsRead")
        .number(progress.refs_read as u64)
        .field("reachable")
        .number(progress.reachable)
        .field("rounds")
        .number(u64::from(progress.rounds))
        .field("objectsListed")
        .number(progress.objects_listed)
        .field("examined")
        .number(progress.examined)
        .field("deleted")
        .number(progress.deleted)
        .field("deletedBytes")
        .number(progress.deleted_bytes)
        .field("young")
        .number(progress.young)
        .close();
    json.into_string()
}
