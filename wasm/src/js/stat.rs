//! The stat cache for work-tree checkpoints from Node: core's format and rules
//! (`snapgit_core::worktree::StatCache`), so that the npm package reads and hashes only
//! the files whose stat changed, as the `snapgit` command does.
//!
//! A file's stat is packed as its path, its mode (0, 1, 2: regular, executable,
//! symlink), its size, its modification and status-change times (seconds, then
//! nanoseconds) and its inode, each number an f64.

use bstr::BString;
use snapgit_core::{
    HashKind, Mode,
    worktree::{Found, Stat, StatCache, skip},
};
use wasm_bindgen::prelude::*;

use super::{
    JsResult,
    packed::{Malformed, Reader},
};

fn stat(r: &mut Reader) -> JsResult<(BString, Stat)> {
    let path = BString::from(r.string()?);
    let mode = match r.u8()? {
        0 => Mode::Regular,
        1 => Mode::Executable,
        2 => Mode::Symlink,
        _ => return Err(Malformed.into()),
    };
    let size = r.number()? as u64;
    let mtime = (r.number()? as i64, r.number()? as u32);
    let ctime = (r.number()? as i64, r.number()? as u32);
    let inode = r.number()? as u64;
    Ok((
        path,
        Stat {
            size,
            mtime,
            ctime,
            inode,
            mode,
        },
    ))
}

/// For each packed file (a u32 count, then each file's stat, in path order), the blob id
/// the stat cache `cache` (written at `written`, seconds since the epoch: its file's
/// modification time) knows for it: a byte 1 and the id's 20 bytes, or a byte 0 when the
/// file must be read and hashed. A cache that cannot be read knows nothing.
///
/// Then the folders whose files the cache knows all unchanged (core's
/// `StatCache::whole_folders`), for a diff to take whole by their tree ids: a u32 count,
/// then each folder's first file and the file after its last (u32 indices), its tree id
/// (20 bytes) and its path (a u32 length, then UTF-8).
#[wasm_bindgen(js_name = statCacheIds)]
pub fn stat_cache_ids(cache: &[u8], written: f64, files: &[u8]) -> Result<Vec<u8>, JsValue> {
    let kind = HashKind::Sha1;
    let cache = StatCache::decode(kind, cache, written as i64).unwrap_or_else(|_| StatCache::new(kind));
    let mut known = cache.in_order();
    let mut r = Reader::new(files);
    let count = r.u32()? as usize;
    let mut out = Vec::with_capacity(count.min(files.len()) * 21);
    let (mut paths, mut clean) = (Vec::with_capacity(count.min(files.len())), Vec::new());
    for _ in 0..count {
        let (path, stat) = stat(&mut r)?;
        let id = known.id(path.as_ref(), &stat);
        match id {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(id.as_bytes());
            }
            None => out.push(0),
        }
        clean.push(id.is_some());
        paths.push(path);
    }
    r.finish()?;
    let whole = cache.whole_folders(paths.len(), |i| paths[i].as_slice(), &clean);
    out.extend_from_slice(&(whole.len() as u32).to_le_bytes());
    for folder in whole {
        out.extend_from_slice(&(folder.files.start as u32).to_le_bytes());
        out.extend_from_slice(&(folder.files.end as u32).to_le_bytes());
        out.extend_from_slice(folder.id.as_bytes());
        out.extend_from_slice(&(folder.path.len() as u32).to_le_bytes());
        out.extend_from_slice(folder.path);
    }
    Ok(out)
}

/// The bytes of a stat cache of the packed files (a u32 count, then each file's stat
/// and its blob id in hex), with their folders' trees, to write to the cache's file after
/// a snapshot.
#[wasm_bindgen(js_name = statCacheEncode)]
pub fn stat_cache_encode(files: &[u8]) -> Result<Vec<u8>, JsValue> {
    let kind = HashKind::Sha1;
    let mut r = Reader::new(files);
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(files.len() / 40));
    for _ in 0..count {
        let (path, stat) = stat(&mut r)?;
        entries.push((path, stat, r.id(kind)?));
    }
    r.finish()?;
    Ok(StatCache::from_files(kind, entries).with_folder_trees().encode())
}

/// The ignore files a scan reads in a folder, in the order their patterns apply, one per
/// line (core's `worktree::ignore_files`).
#[wasm_bindgen(js_name = ignoreFiles)]
pub fn ignore_files(root: bool, gitignore: bool) -> String {
    snapgit_core::worktree::ignore_files(root, gitignore).join("\n")
}

/// What a scan of a folder leaves out, and why: core's one rule
/// (`snapgit_core::worktree::skip`) over gitignore-style patterns, ignore files and a
/// size cap, as the `snapgit` command applies it.
#[wasm_bindgen]
pub struct Excludes {
    policy: snapgit_core::policy::Policy,
}

#[wasm_bindgen]
impl Excludes {
    /// What a scan starts from, in core's order (`worktree::ScanExcludes`), a later
    /// pattern winning: checkpoint tools' excludes when `checkpoint`, the root's
    /// `.snapgitignore` (its text, if it has one), then the packed `patterns` (a u32
    /// count, then each); files over `maxFileBytes` left out (default: the largest file a
    /// commit may write). A pattern git cannot parse is an `INVALID_INPUT` error naming it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        checkpoint: bool,
        snapgitignore: Option<String>,
        patterns: &[u8],
        max_file_bytes: Option<f64>,
    ) -> Result<Excludes, JsValue> {
        let mut r = Reader::new(patterns);
        let patterns = r.strings()?;
        r.finish()?;
        let policy = snapgit_core::worktree::ScanExcludes {
            checkpoint,
            snapgitignore: snapgitignore.as_deref(),
            patterns,
            max_file_bytes: max_file_bytes.map(|n| n as u64),
            ..Default::default()
        }
        .policy()
        .map_err(|e| super::error::to_js(&e))?;
        Ok(Excludes { policy })
    }

    /// Add the patterns of the ignore file `file` (`.snapgitignore`, `sub/.gitignore`):
    /// they apply below its folder, after (so over) those before, and a path one leaves
    /// out is said to be excluded by the file and line.
    #[wasm_bindgen(js_name = addIgnoreFile)]
    pub fn add_ignore_file(&mut self, file: &str, text: &str) -> Result<(), JsValue> {
        self.policy = std::mem::take(&mut self.policy)
            .exclude_file(file.into(), text)
            .map_err(|e| super::error::to_js(&e))?;
        Ok(())
    }

    /// For each packed entry of one folder (a u32 count, then each: its path, a byte for
    /// what it is — 0 a folder, 1 a file, 2 a symlink, 3 anything else — and its size),
    /// why the scan leaves it out, or `null` to take it: JSON text of the list. The
    /// folders above were decided already, as a walk down does.
    pub fn skips(&self, entries: &[u8]) -> Result<String, JsValue> {
        let mut r = Reader::new(entries);
        let count = r.u32()? as usize;
        let mut out = Vec::with_capacity(count.min(entries.len()));
        for _ in 0..count {
            let path = BString::from(r.string()?);
            let found = match r.u8()? {
                0 => Found::Folder,
                1 => Found::File { size: 0 },
                2 => Found::Symlink,
                _ => Found::Other,
            };
            let found = match (found, r.number()?) {
                (Found::File { .. }, size) => Found::File { size: size as u64 },
                (found, _) => found,
            };
            out.push(skip(&self.policy, path.as_ref(), found).map(|s| s.to_string()));
        }
        r.finish()?;
        super::output::json(&out).map_err(|e| super::error::misuse_text(&e.to_string()))
    }
}
