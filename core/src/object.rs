//! Git objects in their loose format: encoding, and decoding with verification.
//!
//! Every object that enters core through [`decode_loose`] is inflated with a size limit,
//! hashed and compared with the id it was asked for, and parsed strictly: trees must be in
//! git's canonical form (sorted, no duplicate names, known modes, valid names).

use std::sync::Arc;

use bstr::ByteSlice;
use gix_hash::ObjectId;
use gix_object::Kind;
use miniz_oxide::deflate::core::CompressorOxide;

use crate::path;

pub(crate) mod commit;
mod tree;
mod zlib;

/// A decoded, verified object, cheap to clone.
#[derive(Debug, Clone)]
pub enum Object {
    /// File contents.
    Blob(Arc<[u8]>),
    /// A folder listing, in canonical order.
    Tree(Arc<gix_object::Tree>),
    /// A commit.
    Commit(Arc<gix_object::Commit>),
    /// An annotated tag; core keeps only what it points at.
    Tag(Tag),
}

/// What an annotated tag points at: the `object` and `type` lines of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The tagged object.
    pub target: ObjectId,
    /// Its kind, as the tag declares it.
    pub target_kind: Kind,
}

impl Object {
    /// The kind of this object.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Blob(_) => Kind::Blob,
            Object::Tree(_) => Kind::Tree,
            Object::Commit(_) => Kind::Commit,
            Object::Tag(_) => Kind::Tag,
        }
    }

    /// Approximate bytes this object holds in memory, for cache accounting.
    pub(crate) fn weight(&self) -> usize {
        const ENTRY: usize = 64;
        match self {
            Object::Blob(data) => data.len() + ENTRY,
            Object::Tree(tree) => tree.entries.iter().map(|e| e.filename.len() + ENTRY).sum::<usize>() + ENTRY,
            Object::Commit(commit) => commit.message.len() + 4 * ENTRY,
            Object::Tag(_) => ENTRY,
        }
    }
}

/// An object core built that storage does not have yet, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    /// The object id, the hash of its uncompressed loose form.
    pub id: ObjectId,
    /// Blob, tree or commit.
    pub kind: Kind,
    /// The bytes to store: git's loose format (zlib-compressed `<kind> <size>\0<content>`).
    pub loose: Vec<u8>,
}

impl NewObject {
    /// The storage key of this object inside a store, as git lays it out.
    pub fn key(&self) -> String {
        loose_key(&self.id)
    }
}

/// An object from storage that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage has no object with this id.
    #[error("object {id} not found")]
    NotFound {
        /// The id asked for.
        id: ObjectId,
    },
    /// The bytes are not a valid loose object, or its content is malformed.
    #[error("object {id} is corrupt: {reason}")]
    Corrupt {
        /// The id asked for.
        id: ObjectId,
        /// What is wrong with it.
        reason: String,
    },
    /// The bytes are a valid object, but not the one asked for.
    #[error("object {id} is corrupt: its content hashes to {actual}")]
    HashMismatch {
        /// The id asked for.
        id: ObjectId,
        /// The hash of the bytes provided.
        actual: ObjectId,
    },
    /// The object inflates to more than the limit allows.
    #[error("object {id} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The id asked for.
        id: ObjectId,
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// The object is missing from a partial clone, and its promisor remote did not give
    /// it.
    #[error("object {id} is missing (a partial fetch left it out): {reason}")]
    Unavailable {
        /// The id asked for.
        id: ObjectId,
        /// Why the promisor remote did not give it.
        reason: String,
    },
    /// The object has another kind than the place that names it requires.
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        /// The id asked for.
        id: ObjectId,
        /// The kind required.
        expected: Kind,
        /// The kind found.
        actual: Kind,
    },
}

/// Content that cannot be hashed safely: SHA-1 collision detection fired on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content of {size} bytes is refused: it carries a SHA-1 collision attack")]
pub struct CollisionError {
    /// The size of the refused content, in bytes.
    pub size: usize,
}

/// The storage key of an object inside a store: `objects/<2 hex>/<rest of hex>`.
pub fn loose_key(id: &ObjectId) -> String {
    let mut buf = [0u8; 64];
    let hex = id.hex_to_buf(&mut buf);
    let mut key = String::with_capacity("objects/".len() + hex.len() + 1);
    key.push_str("objects/");
    key.push_str(&hex[..2]);
    key.push('/');
    key.push_str(&hex[2..]);
    key
}

/// Hash `content` as an object of `kind`, without encoding it.
pub fn hash(hash_kind: gix_hash::Kind, kind: Kind, content: &[u8]) -> Result<ObjectId, CollisionError> {
    let mut hasher = gix_hash::hasher(hash_kind);
    hasher.update(&loose_header(kind, content.len()));
    hasher.update(content);
    finalize(hasher).ok_or(CollisionError { size: content.len() })
}

/// The id of `content` as a blob: what `git hash-object` prints for a file.
pub fn blob_id(hash_kind: gix_hash::Kind, content: &[u8]) -> Result<ObjectId, CollisionError> {
    hash(hash_kind, Kind::Blob, content)
}

/// The id `hasher` computed; `None` if SHA-1 collision detection fired.
///
/// Not `Hasher::try_finalize` for SHA-1: its error is a gix-error report, and building
/// one links gix-error's formatting code (floats included) into the npm package's `.wasm`.
pub(crate) fn finalize(hasher: gix_hash::Hasher) -> Option<ObjectId> {
    #[allow(unreachable_patterns, reason = "other hash kinds when gix-hash has them enabled")]
    match hasher {
        gix_hash::Hasher::Sha1(sha1) => sha1.finalize().ok().map(|digest| ObjectId::Sha1(digest.into())),
        other => other.try_finalize().ok(),
    }
}

/// Encode `content` as a loose object of `kind`: its id and its compressed bytes.
pub fn encode_loose(hash_kind: gix_hash::Kind, kind: Kind, content: &[u8]) -> Result<NewObject, CollisionError> {
    let mut raw = loose_header(kind, content.len());
    raw.extend_from_slice(content);
    finish(hash_kind, kind, raw, content.len())
}

/// Encode a blob whose id [`hash`] already gave: only compress it, no second hashing.
pub(crate) fn encode_hashed_blob(id: ObjectId, content: &[u8]) -> NewObject {
    let mut raw = loose_header(Kind::Blob, content.len());
    raw.extend_from_slice(content);
    debug_assert_eq!(hash(id.kind(), Kind::Blob, content).ok(), Some(id));
    NewObject {
        id,
        kind: Kind::Blob,
        loose: deflate(&raw),
    }
}

/// `<kind> <size>\0`, with room for the content after it.
fn loose_header(kind: Kind, size: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(HEADER_ROOM as usize + size);
    raw.extend_from_slice(kind.as_bytes());
    raw.push(b' ');
    push_decimal(&mut raw, size as u64);
    raw.push(0);
    raw
}

/// Append `n` in decimal, as git writes sizes and times.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// `<kind> <size>\0` at the start of an inflated loose object: the kind, the size, and
/// where the content starts.
fn parse_loose_header(raw: &[u8]) -> Option<(Kind, u64, usize)> {
    let nul = raw.iter().take(HEADER_ROOM as usize).position(|&b| b == 0)?;
    let header = &raw[..nul];
    let space = header.iter().position(|&b| b == b' ')?;
    let kind = match &header[..space] {
        b"blob" => Kind::Blob,
        b"tree" => Kind::Tree,
        b"commit" => Kind::Commit,
        b"tag" => Kind::Tag,
        _ => return None,
    };
    let digits = &header[space + 1..];
    // Canonical decimal, as git requires: no sign, no leading zero ("010").
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut size: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        size = size.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((kind, size, nul + 1))
}

/// Hash and compress an object's uncompressed loose form.
fn finish(hash_kind: gix_hash::Kind, kind: Kind, raw: Vec<u8>, size: usize) -> Result<NewObject, CollisionError> {
    let mut hasher = gix_hash::hasher(hash_kind);
    hasher.update(&raw);
    let id = finalize(hasher).ok_or(CollisionError { size })?;
    let loose = deflate(&raw);
    Ok(NewObject { id, kind, loose })
}

/// Objects below this size are compressed with fixed Huffman codes by [`zlib`]: for the
/// small trees, commits and memory files core writes, building dynamic tables costs more
/// time than it saves bytes, and so does setting up miniz's compressor.
const SMALL_OBJECT: usize = 1024;
const _: () = assert!(SMALL_OBJECT <= zlib::MAX_INPUT);

thread_local! {
    /// The compressor for larger objects, reused: allocating one costs more than
    /// clearing it.
    static COMPRESSOR: std::cell::RefCell<Option<Box<CompressorOxide>>> = const { std::cell::RefCell::new(None) };
}

/// zlib-compress `raw` at level 1, as git's default `core.looseCompression` does:
/// loose objects favour speed.
fn deflate(raw: &[u8]) -> Vec<u8> {
    use miniz_oxide::deflate::core::{TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params};
    if raw.len() < SMALL_OBJECT {
        return zlib::compress(raw);
    }
    let compressed = COMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        // Level 1, zlib header (positive window bits), default strategy.
        let compressor =
            slot.get_or_insert_with(|| Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(1, 15, 0))));
        compressor.reset();
        let mut out = vec![0; raw.len() / 2 + 64];
        let (mut read, mut written) = (0, 0);
        loop {
            let (status, consumed, produced) =
                compress(compressor, &raw[read..], &mut out[written..], TDEFLFlush::Finish);
            read += consumed;
            written += produced;
            match status {
                TDEFLStatus::Done => {
                    out.truncate(written);
                    return Some(out);
                }
                TDEFLStatus::Okay => {
                    let grown = out.len() * 2;
                    out.resize(grown, 0);
                }
                _ => return None,
            }
        }
    });
    compressed.unwrap_or_else(|| miniz_oxide::deflate::compress_to_vec_zlib(raw, 1))
}

/// Encode a commit built by core, whose signatures were checked when it was asked for.
pub(crate) fn encode_commit(
    hash_kind: gix_hash::Kind,
    commit: &gix_object::Commit,
) -> Result<NewObject, CollisionError> {
    let Ok(content) = commit::encode(commit) else {
        panic!("core only builds commits git accepts");
    };
    encode_loose(hash_kind, Kind::Commit, &content)
}

/// Encode a tree built by core, as `gix_object::Tree::write_to` would, written directly
/// (the tree writer goes through `dyn io::Write` a few times per entry).
pub(crate) fn encode_tree(hash_kind: gix_hash::Kind, tree: &gix_object::Tree) -> Result<NewObject, CollisionError> {
    let (raw, size) = raw_tree(tree);
    finish(hash_kind, Kind::Tree, raw, size)
}

/// The id of a tree built by core, hashed without compressing it.
pub(crate) fn tree_id(hash_kind: gix_hash::Kind, tree: &gix_object::Tree) -> Result<ObjectId, CollisionError> {
    let (raw, size) = raw_tree(tree);
    let mut hasher = gix_hash::hasher(hash_kind);
    hasher.update(&raw);
    finalize(hasher).ok_or(CollisionError { size })
}

/// A tree's loose form before compression, and the size of its content.
pub(crate) fn raw_tree(tree: &gix_object::Tree) -> (Vec<u8>, usize) {
    let mut mode = [0u8; 6];
    let size = tree
        .entries
        .iter()
        .map(|e| e.mode.as_bytes(&mut mode).len() + 1 + e.filename.len() + 1 + e.oid.as_bytes().len())
        .sum();
    let mut raw = loose_header(Kind::Tree, size);
    for entry in &tree.entries {
        // Names come from validated paths or validated trees; a NUL would end the name early.
        assert!(!entry.filename.contains(&0), "core only builds trees with valid names");
        raw.extend_from_slice(entry.mode.as_bytes(&mut mode));
        raw.push(b' ');
        raw.extend_from_slice(&entry.filename);
        raw.push(0);
        raw.extend_from_slice(entry.oid.as_bytes());
    }
    (raw, size)
}

/// Room for the loose header (`commit 18446744073709551615\0` is 28 bytes).
const HEADER_ROOM: u64 = 32;

/// Inflate, verify and parse the stored bytes of the object `id`: git's loose format, or
/// the same uncompressed (an object rebuilt from a pack).
///
/// `max_bytes` bounds the inflated content; larger objects fail with [`Error::TooLarge`]
/// without being inflated beyond the limit.
pub fn decode_loose(id: &ObjectId, stored: &[u8], max_bytes: u64) -> Result<Object, Error> {
    let (kind, raw, start) = verify_loose(id, stored, max_bytes)?;
    parse(id, kind, &raw[start..])
}

/// An object's kind and content as stored (loose or rebuilt from a pack), verified as
/// [`decode_loose`] verifies it but not parsed: the exact bytes its id names.
pub fn decode_content(id: &ObjectId, stored: &[u8], max_bytes: u64) -> Result<(Kind, Vec<u8>), Error> {
    let (kind, raw, start) = verify_loose(id, stored, max_bytes)?;
    let mut raw = raw.into_owned();
    raw.drain(..start);
    Ok((kind, raw))
}

/// Inflate (unless it arrived uncompressed) and verify a stored object: its kind, its
/// uncompressed loose form, and where the content starts in it.
fn verify_loose<'a>(
    id: &ObjectId,
    stored: &'a [u8],
    max_bytes: u64,
) -> Result<(Kind, std::borrow::Cow<'a, [u8]>, usize), Error> {
    let corrupt = |reason: &str| Error::Corrupt {
        id: *id,
        reason: reason.to_owned(),
    };
    let cap = usize::try_from(max_bytes.saturating_add(HEADER_ROOM)).unwrap_or(usize::MAX);
    // An object rebuilt from a pack arrives uncompressed; its header (`blob `, `tree `,
    // `commit `, `tag `) can never start a zlib stream, whose first byte names method 8.
    let raw = if stored.first().is_some_and(|b| b & 0x0f != 8) {
        if stored.len() > cap {
            return Err(Error::TooLarge {
                id: *id,
                limit: max_bytes,
            });
        }
        std::borrow::Cow::Borrowed(stored)
    } else {
        std::borrow::Cow::Owned(
            match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(stored, cap) {
                Ok(raw) => raw,
                // The error carries the partial output; only its status is looked at.
                Err(err) if err.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
                    return Err(Error::TooLarge {
                        id: *id,
                        limit: max_bytes,
                    });
                }
                Err(_) => return Err(corrupt("not a valid zlib stream")),
            },
        )
    };
    let (kind, start) = verify_raw(id, &raw, max_bytes)?;
    Ok((kind, raw, start))
}

/// Verify an object's uncompressed loose form, `<kind> <size>\0<content>`: its kind and
/// where its content starts.
fn verify_raw(id: &ObjectId, raw: &[u8], max_bytes: u64) -> Result<(Kind, usize), Error> {
    let corrupt = |reason: &str| Error::Corrupt {
        id: *id,
        reason: reason.to_owned(),
    };
    let (kind, size, consumed) = parse_loose_header(raw).ok_or_else(|| corrupt("malformed loose object header"))?;
    if size > max_bytes {
        return Err(Error::TooLarge {
            id: *id,
            limit: max_bytes,
        });
    }
    if (raw.len() - consumed) as u64 != size {
        return Err(corrupt("the header's size does not match the content"));
    }
    let mut hasher = gix_hash::hasher(id.kind());
    hasher.update(raw);
    let actual = finalize(hasher).ok_or_else(|| corrupt("SHA-1 collision attack detected"))?;
    if actual != *id {
        return Err(Error::HashMismatch { id: *id, actual });
    }
    Ok((kind, consumed))
}

/// Parse the content of an object of `kind` whose bytes were already checked against `id`
/// (no hashing here); trees must be canonical. `id` names the object in errors and gives
/// the hash kind.
pub fn parse(id: &ObjectId, kind: Kind, content: &[u8]) -> Result<Object, Error> {
    let corrupt = |reason: String| Error::Corrupt { id: *id, reason };
    Ok(match kind {
        Kind::Blob => Object::Blob(Arc::from(content)),
        Kind::Tree => {
            let tree = tree::parse(content, id.kind()).map_err(corrupt)?;
            check_tree(&tree).map_err(corrupt)?;
            Object::Tree(Arc::new(tree))
        }
        Kind::Commit => {
            let commit =
                commit::parse(content, id.kind()).map_err(|reason| corrupt(format!("malformed commit: {reason}")))?;
            // Accept only what encodes back to the same bytes: a commit git would refuse
            // (an email with '>', an odd time zone) may split into fields, but must not
            // enter as if it were valid.
            if commit::encode(&commit).ok().as_deref() != Some(content) {
                return Err(corrupt("commit is not in canonical form".into()));
            }
            Object::Commit(Arc::new(commit))
        }
        Kind::Tag => Object::Tag(parse_tag(content, id.kind()).ok_or_else(|| corrupt("malformed tag".into()))?),
    })
}

/// The target of a tag: its content starts `object <hex>\ntype <kind>\n`, as git
/// requires.
fn parse_tag(content: &[u8], hash_kind: gix_hash::Kind) -> Option<Tag> {
    let rest = content.strip_prefix(b"object ")?;
    let hex_len = hash_kind.len_in_hex();
    let target = crate::id::from_hex(rest.get(..hex_len)?)?;
    let rest = rest.get(hex_len..)?.strip_prefix(b"\ntype ")?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    let target_kind = match &rest[..end] {
        b"blob" => Kind::Blob,
        b"tree" => Kind::Tree,
        b"commit" => Kind::Commit,
        b"tag" => Kind::Tag,
        _ => return None,
    };
    Some(Tag { target, target_kind })
}

/// Git's canonical form, beyond what [`tree::parse`] checks (modes spelled as git spells
/// them, which also makes the bytes exactly what encoding the tree gives back): valid
/// names, strictly sorted, no name twice.
fn check_tree(tree: &gix_object::Tree) -> Result<(), String> {
    let mut names = foldhash::HashSet::with_capacity_and_hasher(tree.entries.len(), Default::default());
    for (index, entry) in tree.entries.iter().enumerate() {
        if let Err(reason) = path::validate_name(entry.filename.as_bstr()) {
            return Err(format!("entry name {:?} is refused: {reason}", entry.filename));
        }
        if !names.insert(entry.filename.as_slice()) {
            return Err(format!("entry {:?} appears twice", entry.filename));
        }
        if let Some(prev) = index.checked_sub(1).and_then(|i| tree.entries.get(i))
            && prev >= entry
        {
            return Err(format!(
                "entries {:?} and {:?} are not sorted",
                prev.filename, entry.filename
            ));
        }
    }
    Ok(())
}
