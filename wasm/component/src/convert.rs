//! Conversions between the WIT types and core's.

use bstr::{BStr, BString, ByteSlice};
use snapgit_core::{
    HashKind, Mode, ObjectId, StorageError,
    commit::{Change, Signature, Time},
    diff::{self, ChangeKind, FileChange},
    gc, history, id,
    merge::ConflictPolicy,
    policy::Policy,
    read,
    repo::{self, CommitRequest, RestoreRequest},
    step::{CasRef, RefState},
};

use crate::{
    bindings::{
        exports::snapgit::core::operations as ops,
        snapgit::core::{
            storage,
            types::{Code, Failure},
        },
    },
    error::{Fail, HostFailure},
};

/// A hex commit id from the caller.
pub fn id_in(text: &str) -> Result<ObjectId, Failure> {
    id::parse(HashKind::Sha1, text).fail()
}

fn ids_in(text: Option<String>) -> Result<Option<ObjectId>, Failure> {
    text.as_deref().map(id_in).transpose()
}

/// A ref's value from the host: a hex id, or the ref is corrupt.
pub fn ref_state_in(state: storage::RefState) -> Result<RefState, StorageError> {
    let value = id::parse(HashKind::Sha1, &state.value).map_err(|err| {
        Box::new(HostFailure(Failure {
            code: Code::Corrupt,
            message: format!("the host returned a ref value that is not an id: {err}"),
        })) as StorageError
    })?;
    Ok(RefState {
        value,
        version: state.version,
    })
}

fn ref_state_out(state: &RefState) -> storage::RefState {
    storage::RefState {
        value: state.value.to_string(),
        version: state.version.clone(),
    }
}

/// A compare-and-swap for the host.
pub fn cas_out(cas: &CasRef) -> storage::CasRequest {
    storage::CasRequest {
        key: cas.key.clone(),
        expected: cas.expected.as_ref().map(ref_state_out),
        new: cas.new.map(|id| id.to_string()),
    }
}

/// A path for WIT (invalid UTF-8 replaced).
pub fn text(path: &BStr) -> String {
    path.to_str_lossy().into_owned()
}

/// A count for WIT's 32-bit fields, saturating.
pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn signature_in(sig: ops::Signature) -> Signature {
    Signature {
        name: sig.name,
        email: sig.email,
        time: Time {
            seconds: sig.time,
            offset_minutes: sig.offset_minutes,
        },
    }
}

fn signature_out(sig: &Signature) -> ops::Signature {
    ops::Signature {
        name: sig.name.clone(),
        email: sig.email.clone(),
        time: sig.time.seconds,
        offset_minutes: sig.time.offset_minutes,
    }
}

fn mode_in(mode: ops::Mode) -> Mode {
    match mode {
        ops::Mode::Regular => Mode::Regular,
        ops::Mode::Executable => Mode::Executable,
        ops::Mode::Symlink => Mode::Symlink,
        ops::Mode::Tree => Mode::Tree,
        ops::Mode::Submodule => Mode::Submodule,
    }
}

fn mode_out(mode: Mode) -> ops::Mode {
    match mode {
        Mode::Regular => ops::Mode::Regular,
        Mode::Executable => ops::Mode::Executable,
        Mode::Symlink => ops::Mode::Symlink,
        Mode::Tree => ops::Mode::Tree,
        Mode::Submodule => ops::Mode::Submodule,
    }
}

pub fn change_in(change: ops::Change) -> Change {
    match change {
        ops::Change::Put(put) => Change::Put {
            path: put.path.into(),
            data: put.data,
            mode: mode_in(put.mode),
        },
        ops::Change::Delete(path) => Change::delete(path),
        ops::Change::Rename(rename) => Change::rename(rename.from, rename.to),
    }
}

fn side_out(side: Option<(ObjectId, Mode)>) -> Option<ops::Side> {
    side.map(|(id, mode)| ops::Side {
        id: id.to_string(),
        mode: mode_out(mode),
    })
}

pub fn file_change_out(file: &FileChange) -> ops::FileChange {
    let (kind, renamed_from) = match &file.kind {
        ChangeKind::Added => (ops::ChangeKind::Added, None),
        ChangeKind::Deleted => (ops::ChangeKind::Deleted, None),
        ChangeKind::Renamed { from } => (ops::ChangeKind::Renamed, Some(text(from.as_bstr()))),
        ChangeKind::TypeChanged => (ops::ChangeKind::TypeChanged, None),
        _ => (ops::ChangeKind::Modified, None),
    };
    ops::FileChange {
        path: text(file.path.as_bstr()),
        kind,
        renamed_from,
        old: side_out(file.old),
        new: side_out(file.new),
        binary: file.binary,
        lines: file.lines.map(|l: diff::LineStats| ops::LineStats {
            added: l.added,
            removed: l.removed,
        }),
    }
}

pub fn commit_info_out(info: &read::CommitInfo) -> ops::CommitInfo {
    ops::CommitInfo {
        id: info.id.to_string(),
        tree: info.tree.to_string(),
        parents: info.parents.iter().map(ToString::to_string).collect(),
        author: signature_out(&info.author),
        committer: signature_out(&info.committer),
        message: info.message.clone(),
    }
}

fn policy_in(max_file_bytes: Option<u64>, exclude: Vec<String>) -> Result<Policy, Failure> {
    let mut policy = Policy::new().exclude(exclude).fail()?;
    policy.max_file_bytes = max_file_bytes;
    Ok(policy)
}

fn conflict_in(policy: ops::ConflictPolicy) -> ConflictPolicy {
    match policy {
        ops::ConflictPolicy::Fail => ConflictPolicy::Fail,
        ops::ConflictPolicy::Ours => ConflictPolicy::Ours,
        ops::ConflictPolicy::Theirs => ConflictPolicy::Theirs,
    }
}

pub fn commit_request_in(r: ops::CommitRequest) -> Result<CommitRequest, Failure> {
    let mut request = CommitRequest::new(
        r.repo,
        r.branch,
        r.changes.into_iter().map(change_in).collect(),
        signature_in(r.author),
        r.message,
    );
    request.committer = signature_in(r.committer);
    request.allow_empty = r.allow_empty;
    request.line_stats = r.line_stats;
    request.expected_head = ids_in(r.expected_head)?;
    request.on_conflict = conflict_in(r.on_conflict);
    request.max_attempts = r.max_attempts;
    request.lock_ttl_ms = r.lock_ttl_ms;
    request.policy = policy_in(r.max_file_bytes, r.exclude)?;
    Ok(request)
}

pub fn restore_request_in(r: ops::RestoreRequest) -> Result<RestoreRequest, Failure> {
    let mut request = RestoreRequest::new(r.repo, r.branch, id_in(&r.target)?, signature_in(r.author));
    request.path = r.path.map(BString::from);
    request.message = r.message;
    request.line_stats = r.line_stats;
    request.expected_head = ids_in(r.expected_head)?;
    request.max_attempts = r.max_attempts;
    request.lock_ttl_ms = r.lock_ttl_ms;
    Ok(request)
}

pub fn commit_output_out(out: &repo::CommitOutput) -> ops::CommitOutput {
    ops::CommitOutput {
        commit: out.commit.to_string(),
        tree: out.tree.to_string(),
        parent: out.parent.to_string(),
        created: out.created,
        files: out.files.iter().map(file_change_out).collect(),
        attempts: out.attempts,
        settled: out.settled.iter().map(|c| text(c.path.as_bstr())).collect(),
        objects_written: out.objects_written as u64,
        bytes_written: out.bytes_written,
        locked: out.locked,
    }
}

pub fn log_request_in(r: ops::LogRequest) -> Result<history::Request, Failure> {
    let mut request = history::Request::new(id_in(&r.start)?, r.limit as usize);
    request.path = r.path.map(BString::from);
    request.first_parent = r.first_parent;
    request.cursor = r.cursor.map(history::Cursor::from);
    Ok(request)
}

pub fn file_out(file: read::File) -> ops::File {
    ops::File {
        id: file.id.to_string(),
        mode: mode_out(file.mode),
        data: file.data,
    }
}

pub fn entry_out(entry: read::Entry) -> ops::Entry {
    ops::Entry {
        path: text(entry.path.as_bstr()),
        mode: mode_out(entry.mode),
        id: entry.id.to_string(),
    }
}

pub fn diff_request_in(r: ops::DiffRequest) -> Result<snapgit_core::diff::tree::Request, Failure> {
    let mut request = snapgit_core::diff::tree::Request::new(ids_in(r.from)?, id_in(&r.to)?);
    request.path = r.path.map(BString::from);
    request.renames = r.renames;
    request.line_stats = r.line_stats;
    request.patch = r.patch;
    Ok(request)
}

pub fn prune_request_in(r: ops::PruneRequest) -> gc::PruneRequest {
    let retention = gc::Retention {
        keep_last: r.keep_last.map(|n| n as usize),
        keep_within: r.keep_within_ms.map(|duration_ms| gc::Within {
            duration_ms,
            now_ms: r.now_ms,
        }),
    };
    let mut request = gc::PruneRequest::new(r.repo, r.branch, retention);
    request.max_attempts = r.max_attempts;
    request
}

fn usage_out(u: gc::Usage) -> ops::Usage {
    ops::Usage {
        count: u.count,
        bytes: u.bytes,
    }
}

pub fn footprint_out(report: &gc::FootprintReport) -> ops::FootprintReport {
    ops::FootprintReport {
        objects: usage_out(report.objects),
        repos: report
            .repos
            .iter()
            .map(|r| ops::RepoUsage {
                repo: r.repo.to_string(),
                refs: count(r.refs),
                reachable: usage_out(r.reachable),
            })
            .collect(),
        other_refs: usage_out(report.other_refs),
        unreachable: usage_out(report.unreachable),
        other_keys: usage_out(report.other_keys),
    }
}
