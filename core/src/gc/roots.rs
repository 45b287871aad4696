//! The roots of reachability as git has them, read from the files of a store: every ref
//! (loose or in `packed-refs`, in any namespace or none, pointing at any kind of object),
//! `HEAD` when it is detached, and every entry of every reflog under `logs/`.
//!
//! Git's `gc` and `prune` keep everything these reach, so snapgit's GC keeps it too. A
//! store that holds anything else git counts as a root, or objects that GC cannot see
//! into, is refused: GC never guesses what such a store reaches.

use gix_hash::ObjectId;

use crate::store;

/// The prefixes the survey lists before it reads anything, in this order.
/// The two lock files at the top are listed by their own name.
pub(super) const LISTINGS: [&str; 7] = [
    "refs/",
    "logs/",
    "objects/pack/",
    "objects/info/",
    "worktrees/",
    "HEAD.lock",
    "packed-refs.lock",
];

/// Files read in the same batch as every loose ref and reflog: `HEAD` names a root when
/// detached; the presence of the others makes the store one GC refuses.
pub(super) const FILES: [&str; 3] = ["HEAD", "shallow", "index"];

/// Read after the loose refs, as git reads it: `git pack-refs` writes it before it
/// deletes the loose refs it packed, so a ref is always found in one or the other.
pub(super) const PACKED_REFS: &str = "packed-refs";

/// The files of a pack that GC keeps and reads through: the pack, its index, and git's
/// companions (a `.keep` marker, a reverse index, a bitmap, a cruft pack's times).
const PACK_FILES: [&str; 6] = [".pack", ".idx", ".keep", ".rev", ".bitmap", ".mtimes"];

/// The store holds something GC cannot account for; nothing was deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the store has {key}: {reason}; refusing to collect rather than guess what it reaches")]
pub struct Unsupported {
    /// The key that is in the way.
    pub key: String,
    /// What it is, and why GC cannot account for it.
    pub reason: &'static str,
}

/// A ref, `HEAD`, `packed-refs` or reflog that does not read as git writes it; nothing
/// was deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} is corrupt: {reason}")]
pub struct CorruptRef {
    /// The key of the file.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a key found by one of [`LISTINGS`] is to the survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// A loose ref: read it.
    Ref,
    /// A reflog: read it; every id in it is a root.
    Reflog,
    /// A lock file: a write in progress, or one a killed process left behind.
    Lock,
    /// Nothing that decides what is reachable (`objects/info/packs`, a temporary file).
    Other,
    /// A file git derives from the objects and writes again (a commit-graph): it may name
    /// commits GC deletes, so GC removes it when it deletes anything.
    Derived,
}

/// What `key`, listed under `prefix` (one of [`LISTINGS`]), is; an error for what GC
/// cannot account for.
pub(super) fn classify(prefix: &str, key: &str) -> Result<Found, Unsupported> {
    if store::is_lock(key) {
        return Ok(Found::Lock);
    }
    let name = key.rsplit('/').next().unwrap_or(key);
    let refuse = |reason| {
        Err(Unsupported {
            key: key.to_owned(),
            reason,
        })
    };
    match prefix {
        "refs/" => Ok(Found::Ref),
        "logs/" => Ok(Found::Reflog),
        // Temporary files of a killed `index-pack` or `repack` hold nothing reachable.
        "objects/pack/" if name.starts_with("tmp_") || name.starts_with(".tmp-") => Ok(Found::Other),
        // Packs are read like loose objects, and never deleted.
        "objects/pack/" if PACK_FILES.iter().any(|suffix| name.ends_with(suffix)) => Ok(Found::Other),
        "objects/pack/" if name.starts_with("multi-pack-index") => Ok(Found::Other),
        "objects/pack/" if name.ends_with(".promisor") => {
            refuse("a promisor pack: objects of a partial clone are missing by design")
        }
        "objects/pack/" => refuse("a file in objects/pack/ that is not part of a pack git writes"),
        "objects/info/" => match key {
            "objects/info/alternates" | "objects/info/http-alternates" => {
                refuse("alternates: objects of another repository that this one may reach")
            }
            "objects/info/grafts" => refuse("grafts: parents that commits do not name"),
            _ if key.starts_with("objects/info/commit-graph") => Ok(Found::Derived),
            _ => Ok(Found::Other),
        },
        "worktrees/" => refuse("linked worktrees: their HEADs and indexes are roots GC does not read"),
        _ => Ok(Found::Other),
    }
}

/// Refuse a store in which one of [`FILES`] that GC cannot account for exists.
pub(super) fn check_file(key: &str) -> Result<(), Unsupported> {
    let reason = match key {
        "shallow" => "a shallow file: history is cut off, so parents are missing by design",
        "index" => "an index: the files staged in it are roots GC does not read",
        _ => return Ok(()),
    };
    Err(Unsupported {
        key: key.to_owned(),
        reason,
    })
}

fn corrupt(key: &str, reason: impl Into<String>) -> CorruptRef {
    CorruptRef {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The object a loose ref or `HEAD` points at; `None` for a symbolic ref
/// (`ref: <name>`), whose target is a ref of its own.
pub(super) fn parse_ref(key: &str, bytes: &[u8], hash_kind: gix_hash::Kind) -> Result<Option<ObjectId>, CorruptRef> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| corrupt(key, "it is not UTF-8"))?
        .trim_end();
    if let Some(target) = text.strip_prefix("ref:") {
        let target = target.trim_start();
        if target.is_empty() || target.contains(char::is_whitespace) {
            return Err(corrupt(key, format!("bad symbolic ref {text:?}")));
        }
        return Ok(None);
    }
    crate::id::parse(hash_kind, text)
        .map(Some)
        .map_err(|_| corrupt(key, format!("{text:?} is neither an object id nor `ref: <name>`")))
}

/// Every ref `packed-refs` names with its id, and each peeled id (`^<id>`, the commit
/// an annotated tag points at) under the name of the tag before it.
pub(super) fn parse_packed_refs(
    bytes: &[u8],
    hash_kind: gix_hash::Kind,
) -> Result<Vec<(String, ObjectId)>, CorruptRef> {
    const KEY: &str = "packed-refs";
    let hex_len = hash_kind.len_in_hex();
    let mut refs: Vec<(String, ObjectId)> = Vec::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let bad = || corrupt(KEY, format!("line {} is not `<id> <ref>` or `^<id>`", number + 1));
        let (hex, name) = match line.strip_prefix(b"^") {
            Some(peeled) => (peeled, refs.last().map(|(name, _)| name.clone()).ok_or_else(bad)?),
            None => match (line.get(..hex_len), line.get(hex_len..)) {
                (Some(hex), Some([b' ', name @ ..])) if !name.is_empty() => {
                    (hex, String::from_utf8(name.to_vec()).map_err(|_| bad())?)
                }
                _ => return Err(bad()),
            },
        };
        if hex.len() != hex_len {
            return Err(bad());
        }
        refs.push((name, crate::id::from_hex(hex).ok_or_else(bad)?));
    }
    Ok(refs)
}

/// Every id a reflog names: the old and the new value of each entry, except the null id
/// (a ref created or deleted).
pub(super) fn parse_reflog(key: &str, bytes: &[u8], hash_kind: gix_hash::Kind) -> Result<Vec<ObjectId>, CorruptRef> {
    let hex_len = hash_kind.len_in_hex();
    let mut ids = Vec::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = || {
            corrupt(
                key,
                format!(
                    "line {} is not `<old id> <new id> <identity> <time> <zone>\\t<message>`",
                    number + 1
                ),
            )
        };
        let old = line.get(..hex_len).ok_or_else(bad)?;
        let new = line.get(hex_len + 1..2 * hex_len + 1).ok_or_else(bad)?;
        if line.get(hex_len) != Some(&b' ') || line.get(2 * hex_len + 1) != Some(&b' ') {
            return Err(bad());
        }
        for hex in [old, new] {
            let id = crate::id::from_hex(hex).ok_or_else(bad)?;
            if !id.is_null() {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const NULL: &str = "0000000000000000000000000000000000000000";
    const SHA1: gix_hash::Kind = gix_hash::Kind::Sha1;

    fn id(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    #[test]
    fn refs_and_head() {
        assert_eq!(parse_ref("HEAD", format!("{A}\n").as_bytes(), SHA1), Ok(Some(id(A))));
        assert_eq!(parse_ref("HEAD", b"ref: refs/heads/main\n", SHA1), Ok(None));
        for bad in [
            &b"ref:\n"[..],
            b"",
            b"main\n",
            b"\xff\n",
            b"ref: a b\n",
            &A.as_bytes()[..39],
        ] {
            let err = parse_ref("HEAD", bad, SHA1).unwrap_err();
            assert_eq!(err.key, "HEAD");
        }
    }

    #[test]
    fn packed_refs_with_peeled_lines() {
        let content =
            format!("# pack-refs with: peeled fully-peeled sorted \n{A} refs/tags/v1\n^{B}\n{B} refs/heads/main\n");
        let tag = "refs/tags/v1".to_owned();
        assert_eq!(
            parse_packed_refs(content.as_bytes(), SHA1),
            Ok(vec![
                (tag.clone(), id(A)),
                (tag, id(B)),
                ("refs/heads/main".into(), id(B))
            ])
        );
        let err = parse_packed_refs(format!("{A}refs/heads/x\n").as_bytes(), SHA1).unwrap_err();
        assert!(err.reason.contains("line 1"), "{err}");
        assert!(parse_packed_refs(b"^abc\n", SHA1).is_err());
    }

    #[test]
    fn reflogs_name_old_and_new_ids() {
        let content = format!(
            "{NULL} {A} Agent <a@example.com> 1700000000 +0000\tcommit (initial): one\n\
             {A} {B} Agent <a@example.com> 1700000001 +0000\tcommit: two\n"
        );
        assert_eq!(
            parse_reflog("logs/HEAD", content.as_bytes(), SHA1),
            Ok(vec![id(A), id(A), id(B)])
        );
        let err = parse_reflog("logs/HEAD", format!("{A}\n").as_bytes(), SHA1).unwrap_err();
        assert_eq!((err.key.as_str(), err.reason.contains("line 1")), ("logs/HEAD", true));
    }

    #[test]
    fn what_gc_refuses() {
        assert_eq!(classify("refs/", "refs/heads/main"), Ok(Found::Ref));
        assert_eq!(classify("refs/", "refs/heads/main.lock"), Ok(Found::Lock));
        assert_eq!(classify("logs/", "logs/HEAD"), Ok(Found::Reflog));
        assert_eq!(classify("objects/pack/", "objects/pack/tmp_pack_x"), Ok(Found::Other));
        assert_eq!(classify("objects/info/", "objects/info/packs"), Ok(Found::Other));
        assert_eq!(
            classify("objects/info/", "objects/info/commit-graph"),
            Ok(Found::Derived)
        );
        assert_eq!(
            classify("objects/info/", "objects/info/commit-graphs/commit-graph-chain"),
            Ok(Found::Derived)
        );
        for key in ["pack-1.pack", "pack-1.idx", "pack-1.keep", "multi-pack-index"] {
            assert_eq!(
                classify("objects/pack/", &format!("objects/pack/{key}")),
                Ok(Found::Other)
            );
        }
        for (prefix, key) in [
            ("objects/pack/", "objects/pack/pack-1.promisor"),
            ("objects/pack/", "objects/pack/stray"),
            ("objects/info/", "objects/info/alternates"),
            ("worktrees/", "worktrees/w/HEAD"),
        ] {
            assert_eq!(classify(prefix, key).unwrap_err().key, key);
        }
        assert!(check_file("shallow").is_err());
        assert!(check_file("index").is_err());
        assert!(check_file("HEAD").is_ok());
    }
}
