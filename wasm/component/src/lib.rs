//! The wit-bindgen face of snapgit-core: the operations of the `snapgit` world
//! (`wasm/wit/snapgit.wit`) as a WebAssembly component.
//!
//! Thin: each export converts its arguments (`convert.rs`), runs one core operation to
//! completion with core's blocking driver over the imported storage, lock, wait and HTTP
//! interfaces (`Imports`), and converts the result or error (`convert.rs`). The
//! component imports nothing else — no WASI, no clock, no sockets: time arrives as
//! arguments, the waits core decides on after contention are slept by the host (the
//! `wait` import), and a push's or fetch's HTTP requests are sent by the host.
//!
//! Build it for `wasm32-unknown-unknown` and encode it as a component with
//! `wasm/component/build.sh`.

mod convert;

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "snapgit",
    });
}

use bindings::{
    exports::snapgit::core::operations as ops,
    snapgit::core::{http, locks, storage, types::Failure, wait},
};
use snapgit_core::{
    HashKind, ObjectCache, ObjectId, StorageError, api,
    drive::{self, ObjectStore},
    id,
    object::{NewObject, loose_key},
    step::{CasOutcome, CasRef, HttpRequest, HttpResponse, Listed, LockRequest, Range, RefState},
};

use convert::{HostFailure, ToCore, ToWit};

/// The exports.
struct Component;

/// The imported storage, locks, waiting and HTTP, as core's blocking driver sees them.
struct Imports;

fn host_error(failure: Failure) -> StorageError {
    Box::new(HostFailure(failure))
}

/// A ref's value from the host: a hex id, or the ref is corrupt.
fn ref_state_in(state: storage::RefState) -> Result<RefState, StorageError> {
    let value = id::parse(HashKind::Sha1, &state.value).map_err(|err| {
        host_error(Failure {
            code: bindings::snapgit::core::types::Code::Corrupt,
            message: format!("the host returned a ref value that is not an id: {err}"),
        })
    })?;
    Ok(RefState {
        value,
        version: state.version,
    })
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

    fn write(&self, files: &[snapgit_core::step::Stored]) -> Result<(), StorageError> {
        let files: Vec<storage::Object> = files
            .iter()
            .map(|f| storage::Object {
                key: f.key.clone(),
                bytes: f.bytes.clone(),
            })
            .collect();
        storage::put_many(&files).map_err(host_error)
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, StorageError> {
        let state = storage::read_ref(key).map_err(host_error)?;
        state.map(ref_state_in).transpose()
    }

    fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, StorageError> {
        let cas = storage::CasRequest {
            key: cas.key.clone(),
            expected: cas.expected.as_ref().map(|state| storage::RefState {
                value: state.value.to_string(),
                version: state.version.clone(),
            }),
            new: cas.new.map(|id| id.to_string()),
        };
        let outcome = storage::cas_ref(&cas).map_err(host_error)?;
        Ok(match outcome {
            storage::CasOutcome::Won(version) => CasOutcome::Won { version },
            storage::CasOutcome::Lost(current) => CasOutcome::Lost {
                current: current.map(ref_state_in).transpose()?,
            },
        })
    }

    fn swap(&self, swap: &snapgit_core::step::Swap) -> Result<bool, StorageError> {
        storage::swap(&swap.key, swap.expected.as_deref(), swap.new.as_deref()).map_err(host_error)
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

    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, StorageError> {
        let response = http::send(&request.clone().to_wit()).map_err(host_error)?;
        response.to_core().map_err(host_error)
    }

    fn wait(&self, ms: u64) -> Result<(), StorageError> {
        wait::wait(ms).map_err(host_error)
    }
}

thread_local! {
    /// The object cache of this instance: kept from one call to the next when the host
    /// keeps the instance for a run of calls (as native core keeps its cache for a
    /// session), so that a commit after a folder's diff reads no tree twice. Objects enter
    /// only verified, so a kept cache is never wrong.
    static CACHE: std::cell::RefCell<Option<ObjectCache>> = const { std::cell::RefCell::new(None) };
}

impl ops::Guest for Component {
    fn run(request: ops::Request) -> Result<ops::Output, Failure> {
        let mut cache = CACHE
            .with(|kept| kept.borrow_mut().take())
            .unwrap_or_else(|| ObjectCache::new(HashKind::Sha1));
        let output = run_with(&mut cache, request);
        CACHE.with(|kept| *kept.borrow_mut() = Some(cache));
        output
    }
}

fn run_with(cache: &mut ObjectCache, request: ops::Request) -> Result<ops::Output, Failure> {
    let mut op = api::Op::new(cache, request.to_core()?).map_err(|e| convert::failure(&e))?;
    let output = drive::run(&mut op, cache, &Imports).map_err(|e| convert::failure(&e))?;
    Ok(output.to_wit())
}

/// The export glue `wit-bindgen` writes (its `unsafe` ABI code is allowed here only).
/// Only for wasm: the export names (`snapgit:core/operations#run`) are not symbols a
/// native build may define.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
