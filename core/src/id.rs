//! Object ids given as text: full hex of the right length, nothing else; and the maps
//! keyed by ids.

use gix_hash::ObjectId;

/// A map keyed by object ids, with a fast seeded hasher (std's SipHash costs more than
/// the lookups it serves, in wasm most). Ids are SHA-1 outputs, so sending many into one
/// bucket would take a brute-force search per id against an unknown seed.
pub(crate) type IdMap<V> = foldhash::HashMap<ObjectId, V>;

/// A set of object ids; see [`IdMap`].
pub(crate) type IdSet = foldhash::HashSet<ObjectId>;

/// Why a text is not an object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// It has another length than a full id of the hash kind.
    Length,
    /// It has a character that is not a hex digit.
    NotHex,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Length => "it is not a full id (abbreviated ids are not accepted)",
            Reason::NotHex => "it has a character that is not a hex digit",
        })
    }
}

/// A text that is not a valid object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed object id {value:?}: {reason}")]
pub struct Error {
    /// The text given (cut to 100 characters).
    pub value: String,
    /// Why it was refused.
    pub reason: Reason,
}

/// Parse a full hex object id of `kind`, in either case.
///
/// ```
/// let id = snapgit_core::id::parse(gix_hash::Kind::Sha1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")?;
/// assert_eq!(id, gix_hash::ObjectId::empty_blob(gix_hash::Kind::Sha1));
/// assert!(snapgit_core::id::parse(gix_hash::Kind::Sha1, "e69de29").is_err());
/// # Ok::<(), snapgit_core::id::Error>(())
/// ```
pub fn parse(kind: gix_hash::Kind, hex: &str) -> Result<ObjectId, Error> {
    let fail = |reason| Error {
        value: hex.chars().take(100).collect(),
        reason,
    };
    if hex.len() != kind.len_in_hex() {
        return Err(fail(Reason::Length));
    }
    from_hex(hex.as_bytes()).ok_or_else(|| fail(Reason::NotHex))
}

/// Decode a full hex id in either case; the hash kind follows from the length. `None`
/// for another length or a character that is not a hex digit.
///
/// Core's own decoder: gix-hash's reports its errors through gix-error, whose formatting
/// code (floats included) would then be linked into the npm package's `.wasm`.
pub(crate) fn from_hex(hex: &[u8]) -> Option<ObjectId> {
    let kind = gix_hash::Kind::from_hex_len(hex.len()).filter(|kind| kind.len_in_hex() == hex.len())?;
    let mut id = ObjectId::null(kind);
    // No branch per digit: a request can carry an id per file of a folder.
    let mut bad = 0;
    for (byte, pair) in id.as_mut_slice().iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (HEX_DIGIT[usize::from(pair[0])], HEX_DIGIT[usize::from(pair[1])]);
        bad |= high | low;
        *byte = (high << 4) | low;
    }
    (bad & 0xf0 == 0).then_some(id)
}

/// Each byte's value as a hex digit, in either case; `0xff` for every other byte.
const HEX_DIGIT: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
