//! The core component inside the host's runtime: it imports only snapgit's interfaces,
//! its results equal native core's on the same scenarios, it pushes to and fetches from
//! `snapgit serve` over the host's HTTP, and a call that exceeds its memory or its
//! deadline fails clearly while the next call works.
//!
//! The component comes from `wasm/component/build.sh` (run by `host/scripts/test-cli.sh`):
//! the path in `SNAPGIT_COMPONENT`, or `target/component/snapgit.wasm`.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod cache;
mod limits;
#[path = "../support/metered.rs"]
mod metered;
mod metering;
mod reads;
mod remote;
#[path = "../support/requests.rs"]
mod requests;
mod scenarios;

use std::{path::PathBuf, sync::OnceLock};

use snapgit_core::{
    ObjectId,
    api::Request,
    commit::{Change, Signature},
    diff::FileChange,
    repo::AdminOutput,
};
use snapgit_host::runtime::{Config, Error, Io, Runtime};

pub use requests::commit_request;

/// The component's bytes.
pub fn component() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = std::env::var_os("SNAPGIT_COMPONENT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
                target.join("component/snapgit.wasm")
            });
        std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "cannot read the component at {} ({err}): build it with wasm/component/build.sh, or run \
                 host/scripts/test-cli.sh",
                path.display()
            )
        })
    })
}

/// A runtime with default limits, compiled once per test binary into a shared cache.
pub fn runtime(config: Config) -> Runtime {
    Runtime::new(component(), config).unwrap()
}

/// The agent every scenario commits as.
pub fn signature() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

/// Create the repo `agent` through the component, its branch `main` holding `files`,
/// as [`signature`]: the first commit and its files.
pub async fn create_repo(runtime: &Runtime, io: &Io, files: Vec<Change>) -> (ObjectId, Vec<FileChange>) {
    let request = Request::CreateRepo {
        repo: "agent".into(),
        branch: "main".into(),
        files,
        author: signature(),
        message: "create".into(),
    };
    match runtime.call(io, request).await.unwrap() {
        AdminOutput::Created { commit, files } => (commit, files),
        other => panic!("not a creation: {other:?}"),
    }
}

/// The head of `agent`'s `branch`, read through the component.
pub async fn read_head(runtime: &Runtime, io: &Io, branch: &str) -> Result<ObjectId, Error> {
    let request = Request::ReadHead {
        repo: "agent".into(),
        branch: branch.into(),
    };
    match runtime.call(io, request).await? {
        AdminOutput::Head(head) => Ok(head),
        other => panic!("not a head: {other:?}"),
    }
}

/// The names a listing gives (`ListRepos`, `ListBranches`), through the component.
pub async fn names(runtime: &Runtime, io: &Io, request: Request) -> Vec<String> {
    match runtime.call(io, request).await.unwrap() {
        AdminOutput::Repos(names) | AdminOutput::Branches(names) => names,
        other => panic!("not names: {other:?}"),
    }
}
