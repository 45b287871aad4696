//! The component's compiled code, kept in a cache folder between processes.
//!
//! Compiling the component takes seconds; loading compiled code should take about a
//! millisecond. wasmtime's own cache costs most of a short command: it hashes the
//! component, reads the whole artifact, decompresses it and copies it into executable
//! memory (about 12 ms of a 18 ms `snapgit branch list`). Here the artifact is kept as
//! wasmtime wrote it, uncompressed, in a file named for the component's SHA-256 and the
//! engine's settings, and mapped into memory as it is: only the pages a call runs are
//! read.
//!
//! Loading compiled code is `unsafe` in wasmtime: the file is trusted to be what
//! `Engine::precompile_component` wrote. The folder is the user's own cache, written only
//! by this module, as wasmtime's cache trusts its folder; a file is written whole under a
//! temporary name and renamed into place, so a reader never sees a partial one, and never
//! changed in place afterwards, so a mapped file stays as it was. A file wasmtime finds
//! incompatible (another version or settings) is compiled again and replaced.

use std::{
    fs,
    hash::{Hash, Hasher},
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, component::Component};

use super::Error;

/// Files of other components (other builds of snapgit) unused for this long are removed
/// when a new one is written.
const UNUSED: Duration = Duration::from_secs(30 * 24 * 3600);

/// A kept file older than this gets its modification time renewed when it is loaded, so
/// that [`UNUSED`] measures disuse.
const RENEW: Duration = Duration::from_secs(24 * 3600);

/// The extension of kept compiled components.
const EXTENSION: &str = "cwasm";

/// `component` compiled for `engine`: loaded from `dir` when it was kept there, else
/// compiled and kept (a folder that cannot be written only costs the next process a
/// compile). `sha256` is the component's digest in hex when the caller knows it.
pub(super) fn load(engine: &Engine, component: &[u8], sha256: Option<&str>, dir: &Path) -> Result<Component, Error> {
    let path = dir.join(file_name(engine, component, sha256));
    if let Some(loaded) = open(engine, &path) {
        return Ok(loaded);
    }
    let compiled = engine.precompile_component(component).map_err(Error::Load)?;
    if keep(&path, &compiled).is_ok() {
        remove_unused(dir, &path);
    }
    // SAFETY: the bytes are what `precompile_component` of this engine just made.
    #[allow(unsafe_code)]
    let loaded = unsafe { Component::deserialize(engine, &compiled) };
    loaded.map_err(Error::Load)
}

/// `snapgit-<SHA-256 of the component>-<hash of the engine's settings>.cwasm`.
fn file_name(engine: &Engine, component: &[u8], sha256: Option<&str>) -> String {
    let hex = match sha256 {
        Some(known) if known.len() == 64 && known.bytes().all(|b| b.is_ascii_hexdigit()) => known.to_ascii_lowercase(),
        _ => Sha256::digest(component)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    };
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    format!("snapgit-{hex}-{:016x}.{EXTENSION}", settings.finish())
}

/// The kept file at `path`, if there is one wasmtime accepts.
fn open(engine: &Engine, path: &Path) -> Option<Component> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    // SAFETY: files in the cache folder are written only by `keep`, whole under another
    // name, and never changed once renamed into place (see the module overview);
    // wasmtime checks the header's version and settings and refuses a mismatch.
    #[allow(unsafe_code)]
    let loaded = unsafe { Component::deserialize_file(engine, path) }.ok()?;
    if SystemTime::now().duration_since(modified).is_ok_and(|age| age > RENEW) {
        // Best effort: a file never renewed is at worst compiled again after UNUSED.
        let _ = fs::File::open(path).and_then(|file| file.set_modified(SystemTime::now()));
    }
    Some(loaded)
}

/// Write `compiled` to `path`: whole, under a temporary name, then renamed into place.
fn keep(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let temporary = path.with_extension(format!("{EXTENSION}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(compiled)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Remove the other kept components nobody loaded for [`UNUSED`], and temporary files
/// as old (a process that stopped while writing).
fn remove_unused(dir: &Path, kept: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with("snapgit-") && (name.ends_with(&format!(".{EXTENSION}")) || name.ends_with(".tmp"));
        if !ours || path == kept {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|age| age > UNUSED));
        if old {
            let _ = fs::remove_file(&path);
        }
    }
}
