//! The wit-bindgen face of snapgit-core: the operations of the `snapgit` world
//! (`wasm/wit/snapgit.wit`) as a WebAssembly component.
//!
//! Thin: each export converts its arguments (`convert.rs`), runs one core operation to
//! completion with core's blocking driver over the imported storage and lock
//! interfaces (`Imports`), and converts the result or error (`error.rs`). The component
//! imports nothing else — no WASI, no clock: time arrives as arguments, and waiting
//! after a lost race is the host's job (it answers a lost compare-and-swap after its
//! backoff).
//!
//! Build it for `wasm32-unknown-unknown` and encode it as a component with
//! `wasm/component/build.sh`.

mod convert;
mod error;

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "snapgit",
    });
}

use bindings::{
    exports::snapgit::core::operations::{
        self as ops, Change, CommitOutput, CommitRequest, Created, DiffOutput, DiffRequest, Entry, File, FileWithPath,
        FootprintReport, LogPage, LogRequest, PruneRequest, Pruned, RestoreRequest, Signature,
    },
    snapgit::core::{locks, storage, types::Failure},
};
use snapgit_core::{
    HashKind, ObjectCache, ObjectId, Operation, StorageError,
    diff::tree::Diff,
    drive::{self, ObjectStore},
    gc, history,
    object::{NewObject, loose_key},
    read,
    repo::{self, AdminOutput, RepoOp, Start},
    step::{CasOutcome, CasRef, Listed, LockRequest, Range, RefState},
};

use error::{Fail, HostFailure};

/// The exports.
struct Component;

/// The imported storage and locks, as core's blocking driver sees them.
struct Imports;

fn host_error(failure: Failure) -> StorageError {
    Box::new(HostFailure(failure))
}

impl ObjectStore for Imports {
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let keys: Vec<String> = ids.iter().map(loose_key).collect();
        storage::get_many(&keys).map_err(host_error)
    }

    fn read(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        storage::get_many(keys).map_err(host_error)
    }

    fn read_ranges(&self, ranges: &[Range]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let ranges: Vec<storage::Range> = ranges
            .iter()
            .map(|r| storage::Range {
                key: r.key.clone(),
                start: r.start,
                len: r.len,
            })
            .collect();
        storage::get_ranges(&ranges).map_err(host_error)
    }

    fn put_many(&self, objects: &[NewObject]) -> Result<(), StorageError> {
        let objects: Vec<storage::Object> = objects
            .iter()
            .map(|o| storage::Object {
                key: o.key(),
                bytes: o.loose.clone(),
            })
            .collect();
        storage::put_many(&objects).map_err(host_error)
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, StorageError> {
        let state = storage::read_ref(key).map_err(host_error)?;
        state.map(convert::ref_state_in).transpose()
    }

    fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, StorageError> {
        let outcome = storage::cas_ref(&convert::cas_out(cas)).map_err(host_error)?;
        Ok(match outcome {
            storage::CasOutcome::Won(version) => CasOutcome::Won { version },
            storage::CasOutcome::Lost(current) => CasOutcome::Lost {
                current: current.map(convert::ref_state_in).transpose()?,
            },
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StorageError> {
        Ok(storage::list(prefix)
            .map_err(host_error)?
            .into_iter()
            .map(|l| Listed {
                key: l.key,
                size: l.size,
                modified_ms: l.modified_ms,
            })
            .collect())
    }

    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        storage::delete(keys).map_err(host_error)
    }

    fn acquire(&self, lock: &LockRequest) -> Result<Option<String>, StorageError> {
        locks::acquire(&lock.name, lock.ttl_ms).map_err(host_error)
    }

    fn release(&self, name: &str, token: &str) -> Result<(), StorageError> {
        locks::release(name, token).map_err(host_error)
    }
}

/// Run `op` to completion against the imports, with a cache for this call.
fn run<O: Operation>(cache: &mut ObjectCache, op: &mut O) -> Result<O::Output, O::Error>
where
    O::Error: From<snapgit_core::object::Error>,
{
    drive::run(op, cache, &Imports)
}

fn cache() -> ObjectCache {
    ObjectCache::new(HashKind::Sha1)
}

fn admin(op: Result<RepoOp, repo::Error>) -> Result<AdminOutput, Failure> {
    let mut cache = cache();
    let mut op = op.fail()?;
    run(&mut cache, &mut op).fail()
}

fn unexpected<T>() -> Result<T, Failure> {
    Err(Failure {
        code: bindings::snapgit::core::types::Code::Misuse,
        message: "the repo operation returned another kind of result".into(),
    })
}

impl ops::Guest for Component {
    fn create_repo(
        repo: String,
        branch: String,
        files: Vec<Change>,
        author: Signature,
        message: String,
    ) -> Result<Created, Failure> {
        let cache = cache();
        let files = files.into_iter().map(convert::change_in).collect();
        let op = RepoOp::create_repo(&cache, &repo, &branch, files, convert::signature_in(author), &message);
        match admin(op)? {
            AdminOutput::Created { commit, files } => Ok(Created {
                commit: commit.to_string(),
                files: files.iter().map(convert::file_change_out).collect(),
            }),
            _ => unexpected(),
        }
    }

    fn list_repos() -> Result<Vec<String>, Failure> {
        match admin(Ok(RepoOp::list_repos()))? {
            AdminOutput::Repos(repos) => Ok(repos),
            _ => unexpected(),
        }
    }

    fn delete_repo(repo: String) -> Result<Vec<String>, Failure> {
        match admin(RepoOp::delete_repo(&repo))? {
            AdminOutput::Deleted(refs) => Ok(refs),
            _ => unexpected(),
        }
    }

    fn create_branch(repo: String, branch: String, start: String) -> Result<String, Failure> {
        let start = convert::id_in(&start)?;
        match admin(RepoOp::create_branch(&repo, &branch, Start::Commit(start)))? {
            AdminOutput::BranchCreated(id) => Ok(id.to_string()),
            _ => unexpected(),
        }
    }

    fn list_branches(repo: String) -> Result<Vec<String>, Failure> {
        match admin(RepoOp::list_branches(&repo))? {
            AdminOutput::Branches(branches) => Ok(branches),
            _ => unexpected(),
        }
    }

    fn delete_branch(repo: String, branch: String) -> Result<(), Failure> {
        match admin(RepoOp::delete_branch(&repo, &branch))? {
            AdminOutput::Deleted(_) => Ok(()),
            _ => unexpected(),
        }
    }

    fn read_head(repo: String, branch: String) -> Result<String, Failure> {
        match admin(RepoOp::read_head(&repo, &branch))? {
            AdminOutput::Head(id) => Ok(id.to_string()),
            _ => unexpected(),
        }
    }

    fn resolve(repo: String, rev: String) -> Result<String, Failure> {
        let mut cache = cache();
        let mut op = snapgit_core::rev::Resolve::new(&cache, &repo, &rev).fail()?;
        Ok(run(&mut cache, &mut op).fail()?.to_string())
    }

    fn commit(request: CommitRequest) -> Result<CommitOutput, Failure> {
        let mut cache = cache();
        let request = convert::commit_request_in(request)?;
        let mut op = repo::Commit::new(&cache, request).fail()?;
        let out = run(&mut cache, &mut op).fail()?;
        Ok(convert::commit_output_out(&out))
    }

    fn restore(request: RestoreRequest) -> Result<CommitOutput, Failure> {
        let mut cache = cache();
        let request = convert::restore_request_in(request)?;
        let mut op = repo::Commit::restore(&cache, request).fail()?;
        let out = run(&mut cache, &mut op).fail()?;
        Ok(convert::commit_output_out(&out))
    }

    fn log(request: LogRequest) -> Result<LogPage, Failure> {
        let mut cache = cache();
        let request = convert::log_request_in(request)?;
        let mut op = history::Log::new(request).fail()?;
        let page = run(&mut cache, &mut op).fail()?;
        Ok(LogPage {
            commits: page.commits.iter().map(convert::commit_info_out).collect(),
            next: page.next.map(|c| c.to_string()),
        })
    }

    fn file_log(request: LogRequest) -> Result<ops::FileLogPage, Failure> {
        let mut cache = cache();
        let request = convert::log_request_in(request)?;
        let mut op = history::FileLog::new(request).fail()?;
        let page = run(&mut cache, &mut op).fail()?;
        Ok(ops::FileLogPage {
            commits: page
                .commits
                .iter()
                .map(|c| ops::FileCommit {
                    commit: convert::commit_info_out(&c.commit),
                    change: convert::file_change_out(&c.change),
                })
                .collect(),
            next: page.next.map(|c| c.to_string()),
        })
    }

    fn read_file(commit: String, path: String) -> Result<File, Failure> {
        let mut cache = cache();
        let mut op = read::ReadFile::new(convert::id_in(&commit)?, path).fail()?;
        let file = run(&mut cache, &mut op).fail()?;
        Ok(convert::file_out(file))
    }

    fn list_tree(commit: String, path: String, recursive: bool) -> Result<Vec<Entry>, Failure> {
        let mut cache = cache();
        let mut op = read::ListTree::new(convert::id_in(&commit)?, path, recursive).fail()?;
        let entries = run(&mut cache, &mut op).fail()?;
        Ok(entries.into_iter().map(convert::entry_out).collect())
    }

    fn read_files(commit: String, path: String) -> Result<Vec<FileWithPath>, Failure> {
        let mut cache = cache();
        let mut op = read::ReadFiles::new(convert::id_in(&commit)?, path).fail()?;
        let files = run(&mut cache, &mut op).fail()?;
        Ok(files
            .into_iter()
            .map(|f| FileWithPath {
                path: convert::text(f.path.as_ref()),
                file: convert::file_out(f.file),
            })
            .collect())
    }

    fn read_commit(commit: String) -> Result<ops::CommitInfo, Failure> {
        let mut cache = cache();
        let mut op = read::ReadCommit::new(convert::id_in(&commit)?);
        let info = run(&mut cache, &mut op).fail()?;
        Ok(convert::commit_info_out(&info))
    }

    fn diff(request: DiffRequest) -> Result<DiffOutput, Failure> {
        let mut cache = cache();
        let request = convert::diff_request_in(request)?;
        let mut op = Diff::new(request).fail()?;
        let out = run(&mut cache, &mut op).fail()?;
        Ok(DiffOutput {
            from: out.from.map(|id| id.to_string()),
            to: out.to.to_string(),
            files: out.files.iter().map(convert::file_change_out).collect(),
            patch: out.patch.map(Vec::from),
        })
    }

    fn prune(request: PruneRequest) -> Result<Pruned, Failure> {
        let mut cache = cache();
        let mut op = gc::Prune::new(convert::prune_request_in(request)).fail()?;
        let pruned = run(&mut cache, &mut op).fail()?;
        Ok(Pruned {
            old_head: pruned.old_head.to_string(),
            new_head: pruned.new_head.to_string(),
            rewritten: pruned.rewritten,
            kept: convert::count(pruned.kept),
            dropped: pruned.dropped,
            attempts: pruned.attempts,
        })
    }

    fn footprint() -> Result<FootprintReport, Failure> {
        let mut cache = cache();
        let mut op = gc::Footprint::new(&cache);
        let report = run(&mut cache, &mut op).fail()?;
        Ok(convert::footprint_out(&report))
    }

    fn gc(now_ms: i64, grace_ms: u64) -> Result<ops::Collected, Failure> {
        let mut cache = cache();
        let mut options = gc::CollectOptions::new(now_ms);
        options.grace_ms = grace_ms;
        let mut op = gc::Collect::new(&cache, options).fail()?;
        let c = run(&mut cache, &mut op).fail()?;
        Ok(ops::Collected {
            refs: convert::count(c.refs),
            reachable: c.reachable,
            listed: c.listed,
            deleted: c.deleted,
            deleted_bytes: c.deleted_bytes,
            young: c.young,
            young_bytes: c.young_bytes,
            rounds: c.rounds,
        })
    }
}

/// The export glue `wit-bindgen` writes (its `unsafe` ABI code is allowed here only).
/// Only for wasm: the export names (`snapgit:core/operations#commit`) are not symbols a
/// native linker accepts, and natively the crate is only type-checked and unit-tested.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
