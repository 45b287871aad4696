//! The one conversion between core's operations ([`snapgit_core::api`]) and the WIT
//! types of `wasm/wit/snapgit.wit`, both ways.
//!
//! The component compiles it against wit-bindgen's types (a WIT request in, core's
//! output out); the host compiles the same file against wasmtime's (core's request out,
//! the WIT output back), so that its native and component engines speak core's types
//! alike. Both bindings name the types, fields and cases the same, which is what lets one
//! file serve both: it names them only through `super::bindings`.
//!
//! Core to WIT is total; WIT to core checks what WIT cannot say (ids are hex, names and
//! paths are valid) and fails with `invalid-input`. Paths cross as strings: a stored path
//! that is not UTF-8 reaches WIT with U+FFFD in place of its bad bytes.

// Each side uses one direction of each type: the component WIT-to-core for requests and
// core-to-WIT for outputs, the host the reverse.
#![allow(dead_code)]

use bstr::{BString, ByteSlice};
use snapgit_core::{
    HashKind, Mode, ObjectId, api,
    commit::{Change, Signature, Time},
    diff::{self, ChangeKind, FileChange, LineStats},
    error::{Classify, Code as CoreCode},
    gc, history, id,
    merge::{Conflict, ConflictPolicy},
    policy::Policy,
    read,
    remote::client as remote,
    repo::{self, AdminOutput, Start},
    step::{HttpMethod, HttpRequest, HttpResponse},
    store::{BranchName, RepoName},
    worktree,
};

use super::bindings::{
    exports::snapgit::core::operations as w,
    snapgit::core::{
        http,
        types::{Code, Failure},
    },
};

/// Core's value as WIT's.
pub trait ToWit<W> {
    /// The WIT value.
    fn to_wit(self) -> W;
}

/// WIT's value as core's, checked.
pub trait ToCore<C> {
    /// The core value, or why WIT's is not one.
    fn to_core(self) -> Result<C, Failure>;
}

fn invalid(message: String) -> Failure {
    Failure {
        code: Code::InvalidInput,
        message,
    }
}

/// Types that are the same on both sides.
macro_rules! same {
    ($($t:ty),*) => {$(
        impl ToWit<$t> for $t {
            fn to_wit(self) -> $t {
                self
            }
        }
        impl ToCore<$t> for $t {
            fn to_core(self) -> Result<$t, Failure> {
                Ok(self)
            }
        }
    )*};
}
same!(String, bool, u32, u64, i64, i32, Vec<u8>, (String, String));

/// Counts: `usize` in core, a fixed width in WIT (saturating).
macro_rules! count {
    ($($t:ty),*) => {$(
        impl ToWit<$t> for usize {
            fn to_wit(self) -> $t {
                <$t>::try_from(self).unwrap_or(<$t>::MAX)
            }
        }
        impl ToCore<usize> for $t {
            fn to_core(self) -> Result<usize, Failure> {
                Ok(usize::try_from(self).unwrap_or(usize::MAX))
            }
        }
    )*};
}
count!(u32, u64);

impl<A: ToWit<B>, B> ToWit<Vec<B>> for Vec<A> {
    fn to_wit(self) -> Vec<B> {
        self.into_iter().map(ToWit::to_wit).collect()
    }
}

impl<A: ToCore<B>, B> ToCore<Vec<B>> for Vec<A> {
    fn to_core(self) -> Result<Vec<B>, Failure> {
        self.into_iter().map(ToCore::to_core).collect()
    }
}

impl<A: ToWit<B>, B> ToWit<Option<B>> for Option<A> {
    fn to_wit(self) -> Option<B> {
        self.map(ToWit::to_wit)
    }
}

impl<A: ToCore<B>, B> ToCore<Option<B>> for Option<A> {
    fn to_core(self) -> Result<Option<B>, Failure> {
        self.map(ToCore::to_core).transpose()
    }
}

/// Types that cross as their text.
macro_rules! text {
    ($($t:ty => |$s:ident| $parse:expr;)*) => {$(
        impl ToWit<String> for $t {
            fn to_wit(self) -> String {
                self.to_string()
            }
        }
        impl ToCore<$t> for String {
            fn to_core(self) -> Result<$t, Failure> {
                let $s = self;
                $parse
            }
        }
    )*};
}
text! {
    ObjectId => |s| id::parse(HashKind::Sha1, &s).map_err(|e| invalid(e.to_string()));
    RepoName => |s| RepoName::new(s).map_err(|e| invalid(e.to_string()));
    BranchName => |s| BranchName::new(s).map_err(|e| invalid(e.to_string()));
    history::Cursor => |s| Ok(s.into());
}

impl ToWit<String> for BString {
    fn to_wit(self) -> String {
        match String::from_utf8(self.into()) {
            Ok(text) => text,
            Err(err) => err.as_bytes().to_str_lossy().into_owned(),
        }
    }
}

impl ToCore<BString> for String {
    fn to_core(self) -> Result<BString, Failure> {
        Ok(self.into())
    }
}

/// Structs whose fields cross one for one, by name.
macro_rules! record {
    ($($wit:ident = $($core:ident)::+ { $($field:ident),* $(,)? })*) => {$(
        impl ToWit<w::$wit> for $($core)::+ {
            fn to_wit(self) -> w::$wit {
                w::$wit { $($field: self.$field.to_wit()),* }
            }
        }
        impl ToCore<$($core)::+> for w::$wit {
            fn to_core(self) -> Result<$($core)::+, Failure> {
                Ok($($core)::+ { $($field: self.$field.to_core()?),* })
            }
        }
    )*};
}

/// Enums whose cases cross one for one.
macro_rules! cases {
    ($($wit:ident = $core:ty { $($case:ident),* $(,)? })*) => {$(
        impl ToWit<w::$wit> for $core {
            fn to_wit(self) -> w::$wit {
                match self { $(<$core>::$case => w::$wit::$case),* }
            }
        }
        impl ToCore<$core> for w::$wit {
            fn to_core(self) -> Result<$core, Failure> {
                Ok(match self { $(w::$wit::$case => <$core>::$case),* })
            }
        }
    )*};
}

cases! {
    Mode = Mode { Regular, Executable, Symlink, Tree, Submodule }
    ConflictPolicy = ConflictPolicy { Fail, Ours, Theirs }
}

impl ToWit<w::Signature> for Signature {
    fn to_wit(self) -> w::Signature {
        w::Signature {
            name: self.name,
            email: self.email,
            time: self.time.seconds,
            offset_minutes: self.time.offset_minutes,
        }
    }
}

impl ToCore<Signature> for w::Signature {
    fn to_core(self) -> Result<Signature, Failure> {
        Ok(Signature {
            name: self.name,
            email: self.email,
            time: Time {
                seconds: self.time,
                offset_minutes: self.offset_minutes,
            },
        })
    }
}

impl ToWit<w::Side> for (ObjectId, Mode) {
    fn to_wit(self) -> w::Side {
        w::Side {
            id: self.0.to_wit(),
            mode: self.1.to_wit(),
        }
    }
}

impl ToCore<(ObjectId, Mode)> for w::Side {
    fn to_core(self) -> Result<(ObjectId, Mode), Failure> {
        Ok((self.id.to_core()?, self.mode.to_core()?))
    }
}

impl ToWit<w::Change> for Change {
    fn to_wit(self) -> w::Change {
        match self {
            Change::Put { path, data, mode } => w::Change::Put(w::Put {
                path: path.to_wit(),
                data,
                mode: mode.to_wit(),
            }),
            Change::Delete { path } => w::Change::Delete(path.to_wit()),
            Change::Rename { from, to } => w::Change::Rename(w::Rename {
                from: from.to_wit(),
                to: to.to_wit(),
            }),
        }
    }
}

impl ToCore<Change> for w::Change {
    fn to_core(self) -> Result<Change, Failure> {
        Ok(match self {
            w::Change::Put(put) => Change::Put {
                path: put.path.into(),
                data: put.data,
                mode: put.mode.to_core()?,
            },
            w::Change::Delete(path) => Change::delete(path),
            w::Change::Rename(rename) => Change::rename(rename.from, rename.to),
        })
    }
}

impl ToWit<w::FileChange> for FileChange {
    fn to_wit(self) -> w::FileChange {
        let (kind, renamed_from) = match self.kind {
            ChangeKind::Added => (w::ChangeKind::Added, None),
            ChangeKind::Deleted => (w::ChangeKind::Deleted, None),
            ChangeKind::Renamed { from } => (w::ChangeKind::Renamed, Some(from.to_wit())),
            ChangeKind::TypeChanged => (w::ChangeKind::TypeChanged, None),
            _ => (w::ChangeKind::Modified, None),
        };
        w::FileChange {
            path: self.path.to_wit(),
            kind,
            renamed_from,
            old: self.old.to_wit(),
            new: self.new.to_wit(),
            binary: self.binary,
            lines: self.lines.to_wit(),
        }
    }
}

impl ToCore<FileChange> for w::FileChange {
    fn to_core(self) -> Result<FileChange, Failure> {
        let kind = match (self.kind, self.renamed_from) {
            (w::ChangeKind::Added, _) => ChangeKind::Added,
            (w::ChangeKind::Deleted, _) => ChangeKind::Deleted,
            (w::ChangeKind::Renamed, Some(from)) => ChangeKind::Renamed { from: from.into() },
            (w::ChangeKind::Renamed, None) => return Err(invalid("a rename without its old path".into())),
            (w::ChangeKind::TypeChanged, _) => ChangeKind::TypeChanged,
            (w::ChangeKind::Modified, _) => ChangeKind::Modified,
        };
        Ok(FileChange {
            path: self.path.into(),
            kind,
            old: self.old.to_core()?,
            new: self.new.to_core()?,
            binary: self.binary,
            lines: self.lines.to_core()?,
        })
    }
}

record! {
    LineStats = LineStats { added, removed }
    Conflict = Conflict { path, ours, theirs }
    CommitInfo = read::CommitInfo { id, tree, parents, author, committer, message }
    CommitOutput = repo::CommitOutput {
        commit, tree, parent, created, files, attempts, settled, objects_written, bytes_written, locked,
    }
    LogPage = history::Page { commits, next }
    FileCommit = history::FileCommit { commit, change }
    FileLogPage = history::FilePage { commits, next }
    File = read::File { id, mode, data }
    Entry = read::Entry { path, mode, id }
    FileWithPath = read::FileWithPath { path, file }
    Pruned = gc::Pruned { repo, branch, old_head, new_head, rewritten, kept, dropped, written, attempts }
    Usage = gc::Usage { count, bytes }
    RepoUsage = gc::RepoUsage { repo, refs, reachable }
    FootprintReport = gc::FootprintReport { objects, repos, other_refs, unreachable, other_keys }
    Collected = gc::Collected { refs, reachable, listed, deleted, deleted_bytes, young, young_bytes, rounds }
    Compacted = gc::Compacted {
        pack, objects, deltas, pack_bytes, loose_packed, packs_merged, loose_deleted, packs_deleted,
        deleted_bytes, waiting, loose_before, packs_before, packs_after, unreachable_loose, dropped,
        skipped, graph_commits,
    }
    CapRequest = gc::CapRequest { max_bytes, keep_last, max_attempts }
    Capped = gc::Capped { max_bytes, stored_bytes, reachable_bytes, estimated_bytes, under_cap, pruned }
    CompactRequest = gc::CompactOptions {
        now_ms, grace_ms, window, depth, factor, batch, min_loose, min_packs, drop_unreachable, split_graph_at,
    }
    Remote = remote::Remote { url, headers }
    PushRequest = remote::PushRequest { repo, branch, remote, remote_ref, force }
    Pushed = remote::Pushed { remote_ref, old, new, up_to_date, objects, pack_bytes, requests }
    FetchRequest = remote::FetchRequest { repo, remote, refs, into, force, depth, filter }
    FetchedRef = remote::FetchedRef { remote_ref, local_ref, old, new }
    Fetched = remote::Fetched { refs, objects, pack_bytes, requests, shallow, filter }
}

/// The `http` import's request and response, which cross as core's `Step::Http` and
/// `Answer::Http` (the component sends one, the host answers it).
impl ToWit<http::HttpRequest> for HttpRequest {
    fn to_wit(self) -> http::HttpRequest {
        http::HttpRequest {
            method: match self.method {
                HttpMethod::Get => http::Method::Get,
                HttpMethod::Post => http::Method::Post,
            },
            url: self.url,
            headers: self.headers,
            body: self.body,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

impl ToCore<HttpRequest> for http::HttpRequest {
    fn to_core(self) -> Result<HttpRequest, Failure> {
        Ok(HttpRequest {
            method: match self.method {
                http::Method::Get => HttpMethod::Get,
                http::Method::Post => HttpMethod::Post,
            },
            url: self.url,
            headers: self.headers,
            body: self.body,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

impl ToWit<http::HttpResponse> for HttpResponse {
    fn to_wit(self) -> http::HttpResponse {
        http::HttpResponse {
            status: self.status,
            content_type: self.content_type,
            body: self.body,
        }
    }
}

impl ToCore<HttpResponse> for http::HttpResponse {
    fn to_core(self) -> Result<HttpResponse, Failure> {
        Ok(HttpResponse {
            status: self.status,
            content_type: self.content_type,
            body: self.body,
        })
    }
}

impl ToWit<w::DiffOutput> for diff::tree::Output {
    fn to_wit(self) -> w::DiffOutput {
        w::DiffOutput {
            from: self.from.to_wit(),
            to: self.to.to_wit(),
            files: self.files.to_wit(),
            patch: self.patch.map(Vec::from),
        }
    }
}

impl ToCore<diff::tree::Output> for w::DiffOutput {
    fn to_core(self) -> Result<diff::tree::Output, Failure> {
        Ok(diff::tree::Output {
            from: self.from.to_core()?,
            to: self.to.to_core()?,
            files: self.files.to_core()?,
            patch: self.patch.map(BString::from),
        })
    }
}

impl ToWit<w::CommitRequest> for repo::CommitRequest {
    fn to_wit(self) -> w::CommitRequest {
        w::CommitRequest {
            exclude: self.policy.exclude_patterns().map(str::to_owned).collect(),
            max_file_bytes: self.policy.max_file_bytes,
            max_objects_per_commit: self.policy.max_objects_per_commit.to_wit(),
            repo: self.repo,
            branch: self.branch,
            changes: self.changes.to_wit(),
            author: self.author.to_wit(),
            committer: self.committer.to_wit(),
            message: self.message,
            allow_empty: self.allow_empty,
            line_stats: self.line_stats,
            expected_head: self.expected_head.to_wit(),
            on_conflict: self.on_conflict.to_wit(),
            max_attempts: self.max_attempts,
            lock_ttl_ms: self.lock_ttl_ms,
        }
    }
}

impl ToCore<repo::CommitRequest> for w::CommitRequest {
    fn to_core(self) -> Result<repo::CommitRequest, Failure> {
        let mut policy = Policy::new()
            .exclude(self.exclude)
            .map_err(|e| invalid(e.to_string()))?;
        policy.max_file_bytes = self.max_file_bytes;
        policy.max_objects_per_commit = self.max_objects_per_commit.to_core()?;
        Ok(repo::CommitRequest {
            repo: self.repo,
            branch: self.branch,
            changes: self.changes.to_core()?,
            author: self.author.to_core()?,
            committer: self.committer.to_core()?,
            message: self.message,
            allow_empty: self.allow_empty,
            line_stats: self.line_stats,
            expected_head: self.expected_head.to_core()?,
            on_conflict: self.on_conflict.to_core()?,
            max_attempts: self.max_attempts,
            lock_ttl_ms: self.lock_ttl_ms,
            policy,
        })
    }
}

record! {
    Within = gc::Within { duration_ms, now_ms }
    Retention = gc::Retention { keep_last, keep_within }
    PruneRequest = gc::PruneRequest { repo, branch, retention, max_attempts, count_dropped }
    RestoreRequest = repo::RestoreRequest {
        repo, branch, target, path, author, message, line_stats, expected_head, max_attempts, lock_ttl_ms,
    }
    LogRequest = history::Request { start, path, first_parent, limit, cursor }
    DiffRequest = diff::tree::Request { from, to, path, renames, line_stats, patch, binary_patch }
    FolderFile = worktree::File { path, mode, id, data }
    DiffFolderRequest = worktree::DiffRequest { from, files, path, renames, line_stats, patch, binary_patch, untracked }
    CheckoutRequest = worktree::CheckoutRequest { commit, path, files, untracked }
    CheckoutPlan = worktree::CheckoutPlan { commit, deletes, writes, unchanged, submodules }
}

impl ToWit<w::Request> for api::Request {
    fn to_wit(self) -> w::Request {
        use api::Request as R;
        match self {
            R::CreateRepo {
                repo,
                branch,
                files,
                author,
                message,
            } => w::Request::CreateRepo(w::CreateRepoRequest {
                repo,
                branch,
                files: files.to_wit(),
                author: author.to_wit(),
                message,
            }),
            R::ListRepos => w::Request::ListRepos,
            R::DeleteRepo { repo } => w::Request::DeleteRepo(repo),
            R::CreateBranch { repo, branch, start } => w::Request::CreateBranch(w::CreateBranchRequest {
                repo,
                branch,
                start: match start {
                    Start::Commit(id) => w::Start::Commit(id.to_wit()),
                    Start::Branch(name) => w::Start::Branch(name),
                },
            }),
            R::ListBranches { repo } => w::Request::ListBranches(repo),
            R::DeleteBranch { repo, branch } => w::Request::DeleteBranch(w::BranchRef { repo, branch }),
            R::ReadHead { repo, branch } => w::Request::ReadHead(w::BranchRef { repo, branch }),
            R::Resolve { repo, rev } => w::Request::Resolve(w::ResolveRequest { repo, rev }),
            R::Commit(request) => w::Request::Commit(request.to_wit()),
            R::Restore(request) => w::Request::Restore(request.to_wit()),
            R::ReadFile { commit, path } => w::Request::ReadFile(w::ReadRequest {
                commit: commit.to_wit(),
                path: path.to_wit(),
            }),
            R::ListTree {
                commit,
                path,
                recursive,
            } => w::Request::ListTree(w::ListTreeRequest {
                commit: commit.to_wit(),
                path: path.to_wit(),
                recursive,
            }),
            R::ReadFiles { commit, path } => w::Request::ReadFiles(w::ReadRequest {
                commit: commit.to_wit(),
                path: path.to_wit(),
            }),
            R::ReadCommit { commit } => w::Request::ReadCommit(commit.to_wit()),
            R::Log(request) => w::Request::Log(request.to_wit()),
            R::FileLog(request) => w::Request::FileLog(request.to_wit()),
            R::Diff(request) => w::Request::Diff(request.to_wit()),
            R::DiffFolder(request) => w::Request::DiffFolder(request.to_wit()),
            R::Checkout(request) => w::Request::Checkout(request.to_wit()),
            R::Prune(request) => w::Request::Prune(request.to_wit()),
            R::Footprint => w::Request::Footprint,
            R::Collect(options) => w::Request::Gc(w::GcRequest {
                now_ms: options.now_ms,
                grace_ms: options.grace_ms,
                batch: options.batch.to_wit(),
            }),
            R::Compact(options) => w::Request::Compact(options.to_wit()),
            R::Cap(request) => w::Request::Cap(request.to_wit()),
            R::Push(request) => w::Request::Push(request.to_wit()),
            R::Fetch(request) => w::Request::Fetch(request.to_wit()),
            // Every request core has is above; a newer core's would not build.
            #[allow(unreachable_patterns)]
            _ => unreachable!("a request this conversion does not know"),
        }
    }
}

impl ToCore<api::Request> for w::Request {
    fn to_core(self) -> Result<api::Request, Failure> {
        use api::Request as R;
        Ok(match self {
            w::Request::CreateRepo(r) => R::CreateRepo {
                repo: r.repo,
                branch: r.branch,
                files: r.files.to_core()?,
                author: r.author.to_core()?,
                message: r.message,
            },
            w::Request::ListRepos => R::ListRepos,
            w::Request::DeleteRepo(repo) => R::DeleteRepo { repo },
            w::Request::CreateBranch(r) => R::CreateBranch {
                repo: r.repo,
                branch: r.branch,
                start: match r.start {
                    w::Start::Commit(id) => Start::Commit(id.to_core()?),
                    w::Start::Branch(name) => Start::Branch(name),
                },
            },
            w::Request::ListBranches(repo) => R::ListBranches { repo },
            w::Request::DeleteBranch(r) => R::DeleteBranch {
                repo: r.repo,
                branch: r.branch,
            },
            w::Request::ReadHead(r) => R::ReadHead {
                repo: r.repo,
                branch: r.branch,
            },
            w::Request::Resolve(r) => R::Resolve {
                repo: r.repo,
                rev: r.rev,
            },
            w::Request::Commit(r) => R::Commit(r.to_core()?),
            w::Request::Restore(r) => R::Restore(r.to_core()?),
            w::Request::ReadFile(r) => R::ReadFile {
                commit: r.commit.to_core()?,
                path: r.path.into(),
            },
            w::Request::ListTree(r) => R::ListTree {
                commit: r.commit.to_core()?,
                path: r.path.into(),
                recursive: r.recursive,
            },
            w::Request::ReadFiles(r) => R::ReadFiles {
                commit: r.commit.to_core()?,
                path: r.path.into(),
            },
            w::Request::ReadCommit(commit) => R::ReadCommit {
                commit: commit.to_core()?,
            },
            w::Request::Log(r) => R::Log(r.to_core()?),
            w::Request::FileLog(r) => R::FileLog(r.to_core()?),
            w::Request::Diff(r) => R::Diff(r.to_core()?),
            w::Request::DiffFolder(r) => R::DiffFolder(r.to_core()?),
            w::Request::Checkout(r) => R::Checkout(r.to_core()?),
            w::Request::Prune(r) => R::Prune(r.to_core()?),
            w::Request::Footprint => R::Footprint,
            w::Request::Gc(r) => {
                let mut options = gc::CollectOptions::new(r.now_ms);
                options.grace_ms = r.grace_ms;
                options.batch = r.batch.to_core()?;
                R::Collect(options)
            }
            w::Request::Compact(r) => R::Compact(r.to_core()?),
            w::Request::Cap(r) => R::Cap(r.to_core()?),
            w::Request::Push(r) => R::Push(r.to_core()?),
            w::Request::Fetch(r) => R::Fetch(r.to_core()?),
        })
    }
}

impl ToWit<w::Output> for api::Output {
    fn to_wit(self) -> w::Output {
        use api::Output as O;
        match self {
            O::Admin(AdminOutput::Created { commit, files }) => w::Output::Created(w::Created {
                commit: commit.to_wit(),
                files: files.to_wit(),
            }),
            O::Admin(AdminOutput::Repos(names)) => w::Output::Repos(names),
            O::Admin(AdminOutput::Branches(names)) => w::Output::Branches(names),
            O::Admin(AdminOutput::Head(id)) => w::Output::Head(id.to_wit()),
            O::Admin(AdminOutput::Deleted(refs)) => w::Output::Deleted(refs),
            O::Admin(AdminOutput::BranchCreated(id)) => w::Output::BranchCreated(id.to_wit()),
            O::Commit(out) => w::Output::Committed(out.to_wit()),
            O::Resolve(id) => w::Output::Resolved(id.to_wit()),
            O::ReadFile(file) => w::Output::File(file.to_wit()),
            O::ListTree(entries) => w::Output::Tree(entries.to_wit()),
            O::ReadFiles(files) => w::Output::Files(files.to_wit()),
            O::ReadCommit(info) => w::Output::CommitInfo(info.to_wit()),
            O::Log(page) => w::Output::Log(page.to_wit()),
            O::FileLog(page) => w::Output::FileLog(page.to_wit()),
            O::Diff(out) => w::Output::Diff(out.to_wit()),
            O::Checkout(plan) => w::Output::Checkout(plan.to_wit()),
            O::Prune(pruned) => w::Output::Pruned(pruned.to_wit()),
            O::Footprint(report) => w::Output::Footprint(report.to_wit()),
            O::Collect(collected) => w::Output::Collected(collected.to_wit()),
            O::Compact(compacted) => w::Output::Compacted(compacted.to_wit()),
            O::Cap(capped) => w::Output::Capped(capped.to_wit()),
            O::Push(pushed) => w::Output::Pushed(pushed.to_wit()),
            O::Fetch(fetched) => w::Output::Fetched(fetched.to_wit()),
            // Every output core has is above; a newer core's would not build.
            #[allow(unreachable_patterns)]
            _ => unreachable!("an output this conversion does not know"),
        }
    }
}

impl ToCore<api::Output> for w::Output {
    fn to_core(self) -> Result<api::Output, Failure> {
        use api::Output as O;
        Ok(match self {
            w::Output::Created(c) => O::Admin(AdminOutput::Created {
                commit: c.commit.to_core()?,
                files: c.files.to_core()?,
            }),
            w::Output::Repos(names) => O::Admin(AdminOutput::Repos(names)),
            w::Output::Branches(names) => O::Admin(AdminOutput::Branches(names)),
            w::Output::Head(id) => O::Admin(AdminOutput::Head(id.to_core()?)),
            w::Output::Deleted(refs) => O::Admin(AdminOutput::Deleted(refs)),
            w::Output::BranchCreated(id) => O::Admin(AdminOutput::BranchCreated(id.to_core()?)),
            w::Output::Committed(out) => O::Commit(out.to_core()?),
            w::Output::Resolved(id) => O::Resolve(id.to_core()?),
            w::Output::File(file) => O::ReadFile(file.to_core()?),
            w::Output::Tree(entries) => O::ListTree(entries.to_core()?),
            w::Output::Files(files) => O::ReadFiles(files.to_core()?),
            w::Output::CommitInfo(info) => O::ReadCommit(info.to_core()?),
            w::Output::Log(page) => O::Log(page.to_core()?),
            w::Output::FileLog(page) => O::FileLog(page.to_core()?),
            w::Output::Diff(out) => O::Diff(out.to_core()?),
            w::Output::Checkout(plan) => O::Checkout(plan.to_core()?),
            w::Output::Pruned(pruned) => O::Prune(pruned.to_core()?),
            w::Output::Footprint(report) => O::Footprint(report.to_core()?),
            w::Output::Collected(collected) => O::Collect(collected.to_core()?),
            w::Output::Compacted(compacted) => O::Compact(compacted.to_core()?),
            w::Output::Capped(capped) => O::Cap(capped.to_core()?),
            w::Output::Pushed(pushed) => O::Push(pushed.to_core()?),
            w::Output::Fetched(fetched) => O::Fetch(fetched.to_core()?),
        })
    }
}

/// Core's codes and the WIT `code` enum name the same causes, one for one.
macro_rules! same_codes {
    ($($name:ident),* $(,)?) => {
        impl ToWit<Code> for CoreCode {
            fn to_wit(self) -> Code {
                match self {
                    $(CoreCode::$name => Code::$name,)*
                }
            }
        }

        impl ToCore<CoreCode> for Code {
            fn to_core(self) -> Result<CoreCode, Failure> {
                Ok(match self {
                    $(Code::$name => CoreCode::$name,)*
                })
            }
        }
    };
}
same_codes!(
    InvalidInput,
    NotFound,
    AlreadyExists,
    Corrupt,
    Conflict,
    LostRace,
    HeadMoved,
    EmptyCommit,
    Policy,
    Limit,
    Storage,
    Unsupported,
    Misuse,
);

/// A failure the host's storage or lock import returned, carried through core as its
/// storage error and handed back with its code unchanged.
#[derive(Debug)]
pub struct HostFailure(pub Failure);

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for HostFailure {}

/// Core's error as the WIT failure: core's code and message, or the host's own failure
/// with its code unchanged.
pub fn failure(err: &impl Classify) -> Failure {
    match err.storage().and_then(|e| e.downcast_ref::<HostFailure>()) {
        Some(HostFailure(failure)) => Failure {
            code: failure.code,
            message: format!("storage failed: {}", failure.message),
        },
        None => Failure {
            code: err.code().to_wit(),
            message: err.to_string(),
        },
    }
}
