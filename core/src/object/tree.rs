//! Trees in git's format: `<mode> <name>\0<id>` per entry, parsed without gix-object's
//! parser. Only git's five mode spellings are accepted, so a tree that parses encodes
//! back to the same bytes.

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;
use gix_object::tree::Entry;

use crate::tree::Mode;

/// The entries of `content`, in stored order. Fails with what is wrong: a truncated
/// entry, or a mode git does not write (`040000`, `100664`).
pub(crate) fn parse(content: &[u8], hash_kind: gix_hash::Kind) -> Result<gix_object::Tree, String> {
    let id_len = hash_kind.len_in_bytes();
    let mut entries = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let truncated = || "malformed tree: an entry is truncated".to_owned();
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(truncated)?;
        let (spelled, after) = (&rest[..space], &rest[space + 1..]);
        let nul = after.iter().position(|&b| b == 0).ok_or_else(truncated)?;
        let name = &after[..nul];
        let id = after.get(nul + 1..nul + 1 + id_len).ok_or_else(truncated)?;
        let Some(mode) = mode_of(spelled) else {
            return Err(format!(
                "entry {:?} has the invalid mode {}",
                name.as_bstr(),
                spelled.to_str_lossy()
            ));
        };
        let mut oid = ObjectId::null(hash_kind);
        oid.as_mut_slice().copy_from_slice(id);
        entries.push(Entry {
            mode: mode.entry_mode(),
            filename: BString::from(name),
            oid,
        });
        rest = &after[nul + 1 + id_len..];
    }
    Ok(gix_object::Tree { entries })
}

/// The mode spelled exactly as git writes it in trees.
fn mode_of(spelled: &[u8]) -> Option<Mode> {
    [
        Mode::Regular,
        Mode::Executable,
        Mode::Symlink,
        Mode::Tree,
        Mode::Submodule,
    ]
    .into_iter()
    .find(|mode| mode.as_octal().as_bytes() == spelled)
}
