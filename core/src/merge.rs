//! Replaying a change set onto a branch that moved: a three-way merge by path.
//!
//! A commit was built on `base`; meanwhile the branch moved to `theirs`. Each change is
//! kept if none of its paths changed between `base` and `theirs`: changes to different
//! paths both survive. A change whose path changed on both sides is a conflict, settled by
//! the caller's [`ConflictPolicy`]; a change that `theirs` already made identically is
//! dropped, since the result already has it.

use foldhash::HashMap;

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    cache::ObjectCache,
    commit::Change,
    object::{self, CollisionError},
    order,
    step::Fetch,
    tree::{self, Mode},
};

/// What to do when the same path changed on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ConflictPolicy {
    /// Fail and report the path with both versions; nothing is written.
    #[default]
    Fail,
    /// Our change wins.
    Ours,
    /// Their version stays; our change to that path is dropped.
    Theirs,
}

/// A path both sides changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The path.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::path")]
    pub path: BString,
    /// What our change puts there (`None`: we delete or move it away).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::api::schema::Side>))]
    #[serde(with = "crate::api::wire::side")]
    pub ours: Option<(ObjectId, Mode)>,
    /// What their head has there (`None`: absent).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::api::schema::Side>))]
    #[serde(with = "crate::api::wire::side")]
    pub theirs: Option<(ObjectId, Mode)>,
}

/// An entry at a path: id and mode, or absent.
pub(crate) type Slot = Option<(ObjectId, Mode)>;

/// Find the entries at `paths` below `tree_id`, a level per round; `None` while objects
/// are missing (they are then wanted in `fetch`).
pub(crate) fn entries_at(
    fetch: &mut Fetch,
    cache: &ObjectCache,
    tree_id: &ObjectId,
    paths: &[BString],
) -> Result<Option<HashMap<BString, Slot>>, object::Error> {
    let mut out = HashMap::with_capacity_and_hasher(paths.len(), Default::default());
    let mut complete = true;
    for full in paths {
        let mut current = Some((*tree_id, Mode::Tree));
        let mut pending = false;
        for component in full.split(|&b| b == b'/') {
            let Some((id, Mode::Tree)) = current else {
                current = None;
                break;
            };
            match fetch.tree(cache, &id)? {
                None => {
                    pending = true;
                    break;
                }
                Some(tree) => {
                    current = tree::find(&tree, component.as_bstr()).map(|e| (e.oid, Mode::of(e)));
                }
            }
        }
        if pending {
            complete = false;
        } else {
            out.insert(full.clone(), current);
        }
    }
    Ok(complete.then_some(out))
}

/// The paths a change touches.
pub(crate) fn touched(change: &Change) -> Vec<&BString> {
    match change {
        Change::Put { path, .. } | Change::Delete { path } => vec![path],
        Change::Rename { from, to } => vec![from, to],
    }
}

/// The outcome of replaying changes onto `theirs`.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// The changes to apply on top of `theirs`.
    pub changes: Vec<Change>,
    /// Conflicts settled by the policy (empty under [`ConflictPolicy::Fail`]).
    pub settled: Vec<Conflict>,
}

/// Decide which changes survive, given the entries at every touched path in `base` and
/// `theirs`. Fails with the first conflict under [`ConflictPolicy::Fail`].
pub(crate) fn replay(
    hash_kind: gix_hash::Kind,
    changes: &[Change],
    base: &HashMap<BString, Slot>,
    theirs: &HashMap<BString, Slot>,
    policy: ConflictPolicy,
) -> Result<Result<Replay, Conflict>, CollisionError> {
    let mut out = Replay::default();
    for change in changes {
        let slot = |map: &HashMap<BString, Slot>, p: &BString| map.get(p).copied().flatten();
        let moved: Vec<&BString> = touched(change)
            .into_iter()
            .filter(|p| slot(base, p) != slot(theirs, p))
            .collect();
        let ours = match change {
            Change::Put { data, mode, .. } => Some((object::hash(hash_kind, Kind::Blob, data)?, *mode)),
            Change::Delete { .. } => None,
            Change::Rename { from, .. } => slot(base, from),
        };
        if moved.is_empty() {
            out.changes.push(change.clone());
            continue;
        }
        // They already did exactly what we do: nothing left to apply.
        let already = match change {
            Change::Put { path, .. } => slot(theirs, path) == ours,
            Change::Delete { path } => slot(theirs, path).is_none(),
            Change::Rename { from, to } => slot(theirs, from).is_none() && slot(theirs, to) == ours,
        };
        if already {
            continue;
        }
        let path = moved[0].clone();
        let conflict = Conflict {
            ours: match change {
                Change::Rename { to, .. } if *to == path => ours,
                Change::Rename { .. } => None,
                _ => ours,
            },
            theirs: slot(theirs, &path),
            path,
        };
        match policy {
            ConflictPolicy::Fail => return Ok(Err(conflict)),
            ConflictPolicy::Theirs => out.settled.push(conflict),
            ConflictPolicy::Ours => {
                let applicable = match change {
                    Change::Put { .. } => true,
                    // Deleting what they already deleted is done; otherwise delete theirs.
                    Change::Delete { path } => slot(theirs, path).is_some(),
                    // A rename needs its source and a free target on their side; if they
                    // moved or took either, ours cannot win without inventing content.
                    Change::Rename { from, to } => slot(theirs, from).is_some() && slot(theirs, to).is_none(),
                };
                if !applicable {
                    return Ok(Err(conflict));
                }
                out.changes.push(change.clone());
                out.settled.push(conflict);
            }
        }
    }
    Ok(Ok(out))
}

/// Every path touched by `changes`, once.
pub(crate) fn all_touched(changes: &[Change]) -> Vec<BString> {
    let mut paths: Vec<BString> = changes.iter().flat_map(touched).cloned().collect();
    order::sort(&mut paths);
    paths.dedup();
    paths
}
