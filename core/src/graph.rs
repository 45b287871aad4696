//! Commit-graphs: git's file of every commit's tree, parents, date and generation, and of
//! a Bloom filter of the paths each commit changed, so a history walk reads one file
//! instead of one object per commit (`objects/info/commit-graph`, or a chain of layers
//! under `objects/info/commit-graphs/`).
//!
//! [`write()`] encodes one file, or one layer on top of a [`Chain`]; [`Graph::from_bytes`]
//! parses and verifies one, and a [`Chain`] of layers (a single file is a chain of one)
//! answers lookups by id and by position, as git numbers commits across layers.
//!
//! ```text
//! "CGPH" 1 <hash version> <chunks> <base layers>   header
//! (chunks + 1) x (4-byte id, 8-byte offset)      table of contents, ending with id 0
//! OIDF  256 x u32                                  fan-out: ids whose first byte is <= i
//! OIDL  n x id                                     sorted commit ids
//! CDAT  n x (tree, 2 x u32 parent, u32, u32)       parents by position; level and date
//! GDA2  n x u32 (GDO2 m x u64 beyond 31 bits)      corrected commit date - commit date
//! EDGE  u32 ...                                    the 2nd..nth parents of octopus merges
//! BIDX  n x u32, BDAT 3 x u32 + filters            changed-path Bloom filters
//! BASE  b x hash                                   the base layers' checksums
//! hash                                             checksum of all the above
//! ```
//!
//! ```
//! use snapgit_core::{HashKind, ObjectId, graph::{self, Chain, Commit, Graph}};
//!
//! let id = |byte: u8| ObjectId::from_bytes_or_panic(&[byte; 20]);
//! let root = Commit { id: id(1), tree: id(9), parents: vec![], time: 1_700_000_000, changed: Some(vec!["a.txt".into()]), filter: None };
//! let next = Commit { id: id(2), tree: id(8), parents: vec![id(1)], time: 1_700_000_100, changed: Some(vec!["src/b.rs".into()]), filter: None };
//! let bytes = graph::write(HashKind::Sha1, &[root, next], None)?;
//!
//! let chain = Chain::new(vec![Graph::from_bytes(graph::GRAPH, bytes, HashKind::Sha1)?])?;
//! let at = chain.find(&id(2)).expect("written");
//! let entry = chain.commit(at).expect("a position of the chain");
//! assert_eq!(entry.parents.iter().map(|&p| chain.id(p)).collect::<Vec<_>>(), [Some(id(1))]);
//! assert_eq!(entry.generation, 1_700_000_100);
//! assert_eq!(chain.may_have_changed(at, b"src"), Some(true));
//! # Ok::<(), graph::Error>(())
//! ```

use bstr::BString;
use gix_hash::ObjectId;

mod bloom;
mod read;
mod write;

pub use read::{Chain, Entry, Graph};
pub use write::write;

/// The key of a commit-graph that is a single file.
pub const GRAPH: &str = "objects/info/commit-graph";
/// The folder of a split commit-graph: its layers and its chain file.
pub const LAYERS: &str = "objects/info/commit-graphs/";
/// The key of the file that lists a split commit-graph's layers, base first.
pub const CHAIN: &str = "objects/info/commit-graphs/commit-graph-chain";

/// The most commits a graph can hold across its layers: git keeps positions at or above
/// `0x7000_0000` for "no parent" and the octopus flag.
pub const MAX_COMMITS: u32 = 0x6fff_ffff;

const HEADER: usize = 8;
const FANOUT: usize = 256 * 4;
/// A parent word for "no parent".
const NO_PARENT: u32 = 0x7000_0000;
/// In a second parent word: the rest is where the parents' list starts in EDGE.
const OCTOPUS: u32 = 0x8000_0000;
/// In an EDGE entry: the list's last parent.
const LAST_EDGE: u32 = 0x8000_0000;
/// In a GDA2 entry: the rest is an index into GDO2.
const OVERFLOW: u32 = 0x8000_0000;
/// The largest topological level the 30 bits of CDAT hold.
const MAX_LEVEL: u32 = 0x3fff_ffff;

/// The ids of the chunks.
mod chunk {
    pub(super) const OIDF: u32 = u32::from_be_bytes(*b"OIDF");
    pub(super) const OIDL: u32 = u32::from_be_bytes(*b"OIDL");
    pub(super) const CDAT: u32 = u32::from_be_bytes(*b"CDAT");
    pub(super) const GDA2: u32 = u32::from_be_bytes(*b"GDA2");
    pub(super) const GDO2: u32 = u32::from_be_bytes(*b"GDO2");
    pub(super) const EDGE: u32 = u32::from_be_bytes(*b"EDGE");
    pub(super) const BIDX: u32 = u32::from_be_bytes(*b"BIDX");
    pub(super) const BDAT: u32 = u32::from_be_bytes(*b"BDAT");
    pub(super) const BASE: u32 = u32::from_be_bytes(*b"BASE");
}

/// A commit to write into a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Its id.
    pub id: ObjectId,
    /// Its root tree.
    pub tree: ObjectId,
    /// Its parents, in order; each one written with it or in a base layer.
    pub parents: Vec<ObjectId>,
    /// Its committer time in seconds since the epoch; the format keeps 34 bits, so
    /// `0..2^34` (up to the year 2514).
    pub time: i64,
    /// The paths it changed against its first parent (against the empty tree for a
    /// root), as `git diff-tree -r --name-only` lists them: files, no folders, no rename
    /// detection. `None` writes no Bloom filter for it.
    pub changed: Option<Vec<BString>>,
    /// A Bloom filter read from an earlier graph ([`Chain::filter`]), written as it is
    /// when `changed` is `None`: a graph written again needs no tree diffs for the
    /// commits it already had.
    pub filter: Option<Vec<u8>>,
}

/// A commit-graph that cannot be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A commit-graph file, layer or chain file that is not valid.
    #[error("{key}: {reason}")]
    Corrupt {
        /// The file.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A commit to write names a parent that is neither written with it nor in a base
    /// layer.
    #[error("parent {parent} of commit {commit} is neither written nor in a base layer")]
    MissingParent {
        /// The commit.
        commit: ObjectId,
        /// Its parent that is missing.
        parent: ObjectId,
    },
    /// A commit to write is listed twice, or is already in a base layer.
    #[error("commit {id} is listed twice or already in a base layer")]
    Duplicate {
        /// The commit.
        id: ObjectId,
    },
    /// The commits to write are their own ancestors: their parents form a cycle.
    #[error("commit {id} is its own ancestor")]
    Cycle {
        /// A commit on the cycle.
        id: ObjectId,
    },
    /// A commit's time does not fit the format's 34 bits.
    #[error("commit {id} has time {time}, outside 0..2^34")]
    TimeOutOfRange {
        /// The commit.
        id: ObjectId,
        /// Its time.
        time: i64,
    },
    /// An id, or a base layer, of another hash kind than the graph's.
    #[error("{id} is not an id of the graph's hash kind {expected:?}")]
    HashKind {
        /// The id.
        id: ObjectId,
        /// The graph's hash kind.
        expected: gix_hash::Kind,
    },
    /// More than the format can hold: commits, octopus parents, filter bytes, layers.
    #[error("too large for a commit-graph: {reason}")]
    TooLarge {
        /// What overflows.
        reason: &'static str,
    },
    /// SHA-1 collision detection fired on the file's checksum.
    #[error("the commit-graph's checksum triggers SHA-1 collision detection")]
    Collision,
}

impl Error {
    fn corrupt(key: &str, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The key of the layer whose checksum is `hash`: `objects/info/commit-graphs/graph-<hash>.graph`.
pub fn layer_key(hash: &ObjectId) -> String {
    format!("{LAYERS}graph-{hash}.graph")
}

/// The layers a chain file (stored at `key`) lists, base first: one hex checksum a line.
pub fn parse_chain(key: &str, text: &[u8], hash_kind: gix_hash::Kind) -> Result<Vec<ObjectId>, Error> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(|(line, hex)| {
            crate::id::from_hex(hex)
                .filter(|id| id.kind() == hash_kind)
                .ok_or_else(|| Error::corrupt(key, format!("line {} is not a layer's checksum", line + 1)))
        })
        .collect()
}

/// What a reader of a store's commit-graph reads first: the single file, which git
/// prefers when both exist, and the chain file of a split graph.
pub const FILES: [&str; 2] = [GRAPH, CHAIN];

/// What the first read of a store's commit-graph ([`FILES`]) gave.
#[derive(Debug)]
pub enum Loaded {
    /// The graph, or `None` when there is none or it does not read as git writes it (it
    /// is derived data: a reader then walks the commits).
    Graph(Option<Chain>),
    /// A split graph: its layers' keys, base first, to read next ([`load_layers`]).
    Layers(Vec<(String, ObjectId)>),
}

/// Take the answers to a read of [`FILES`].
pub fn load(graph: Option<Vec<u8>>, chain: Option<Vec<u8>>, hash_kind: gix_hash::Kind) -> Loaded {
    if let Some(bytes) = graph {
        let graph = Graph::from_bytes(GRAPH, bytes, hash_kind).ok();
        return Loaded::Graph(graph.and_then(|graph| Chain::new(vec![graph]).ok()));
    }
    match chain.and_then(|text| parse_chain(CHAIN, &text, hash_kind).ok()) {
        Some(layers) if !layers.is_empty() => {
            Loaded::Layers(layers.into_iter().map(|id| (layer_key(&id), id)).collect())
        }
        _ => Loaded::Graph(None),
    }
}

/// The chain of the layers read, each checked against the checksum the chain file names;
/// `None` if one is missing (replaced meanwhile) or does not read.
pub fn load_layers(
    layers: &[(String, ObjectId)],
    read: Vec<Option<Vec<u8>>>,
    hash_kind: gix_hash::Kind,
) -> Option<Chain> {
    if read.len() != layers.len() {
        return None;
    }
    let graphs = layers
        .iter()
        .zip(read)
        .map(|((key, id), bytes)| {
            Graph::from_bytes(key, bytes?, hash_kind)
                .ok()
                .filter(|graph| graph.checksum() == *id)
        })
        .collect::<Option<Vec<Graph>>>()?;
    Chain::new(graphs).ok()
}

/// The text of a chain file listing `layers` (their checksums, base first).
pub fn format_chain(layers: &[ObjectId]) -> String {
    layers.iter().map(|id| format!("{id}\n")).collect()
}
