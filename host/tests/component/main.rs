//! The core component inside the host's runtime: it imports only snapgit's interfaces,
//! its results equal native core's on the same scenarios, and a call that exceeds its
//! memory or its deadline fails clearly while the next call works.
//!
//! The component comes from `wasm/component/build.sh` (run by `host/scripts/test-cli.sh`):
//! the path in `SNAPGIT_COMPONENT`, or `target/component/snapgit.wasm`.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod cache;
mod limits;
#[path = "../support/metered.rs"]
mod metered;
mod metering;
#[path = "../support/requests.rs"]
mod requests;
mod scenarios;

use std::{path::PathBuf, sync::OnceLock};

use snapgit_host::runtime::{Config, Runtime, Signature};

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
    Signature {
        name: "Agent".into(),
        email: "agent@example.com".into(),
        time: 1_700_000_000,
        offset_minutes: 0,
    }
}
