//! A deterministic driver that answers `Get`s from a store, and can answer them wrong.

use std::collections::BTreeMap;

use snapgit_core::{
    ObjectCache, ObjectId, Operation, Step,
    commit::{self, Change, Signature},
    drive::{self, MemoryStore, ObjectStore},
};

/// How the driver lies about one object.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Say the object does not exist.
    Missing,
    /// Flip a byte of its stored bytes.
    Corrupt,
    /// Answer with the stored bytes of another object.
    Substitute(ObjectId),
    /// Answer with these bytes.
    Bytes(Vec<u8>),
}

/// What a driven operation did.
pub struct Run<T> {
    pub result: T,
    pub rounds: usize,
    pub asked: Vec<Vec<ObjectId>>,
}

/// Drive `op` against `store`, applying `faults` by object id.
pub fn drive_with<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    store: &MemoryStore,
    faults: &BTreeMap<ObjectId, Fault>,
) -> Run<Result<O::Output, O::Error>> {
    let mut asked: Vec<Vec<ObjectId>> = Vec::new();
    let mut absent: Vec<ObjectId> = Vec::new();
    let result = (|| loop {
        match op.poll(cache)? {
            Step::Get(ids) => {
                assert!(!ids.is_empty(), "a Get always asks for something");
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), ids.len(), "a Get never asks twice for one id");
                for earlier in &asked {
                    for id in &ids {
                        // An absent object may be asked for again: a walk does once it
                        // has read the shallow file.
                        assert!(
                            !earlier.contains(id) || absent.contains(id),
                            "object {id} asked for twice"
                        );
                    }
                }
                asked.push(ids.clone());
                let answers = ids
                    .iter()
                    .map(|id| match faults.get(id) {
                        None => store.get(id),
                        Some(Fault::Missing) => None,
                        Some(Fault::Corrupt) => store.get(id).map(|mut b| {
                            let middle = b.len() / 2;
                            b[middle] ^= 0x55;
                            b
                        }),
                        Some(Fault::Substitute(other)) => store.get(other),
                        Some(Fault::Bytes(bytes)) => Some(bytes.clone()),
                    })
                    .collect::<Vec<Option<Vec<u8>>>>();
                absent.extend(ids.iter().zip(&answers).filter(|(_, a)| a.is_none()).map(|(id, _)| *id));
                op.provide(cache, answers)?;
            }
            Step::Done(out) => return Ok(out),
            // Files that are not objects (a walk's `shallow`): whatever the store holds.
            Step::Read(keys) => {
                let files = store.read(&keys).expect("memory store");
                op.answer(cache, snapgit_core::step::Answer::Read(files))?;
            }
            _ => unreachable!("core only asks for objects in these operations"),
        }
    })();
    Run {
        result,
        rounds: asked.len(),
        asked,
    }
}

/// Drive `op` honestly.
pub fn drive<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    store: &MemoryStore,
) -> Run<Result<O::Output, O::Error>> {
    drive_with(op, cache, store, &BTreeMap::new())
}

pub fn sha1() -> ObjectCache {
    ObjectCache::new(gix_hash::Kind::Sha1)
}

pub fn me() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

/// Commit `changes` on `parent` and store the result.
pub fn commit(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
) -> commit::Output {
    let request = commit::Request::new(parent, changes, me(), "test");
    let mut op = commit::Commit::new(cache, request).expect("valid request");
    let out = drive::run(&mut op, cache, store).expect("commit succeeds");
    store.put_many(&out.objects).expect("memory store");
    out
}

/// Try a commit; the error if any.
pub fn try_commit(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
) -> Result<commit::Output, commit::Error> {
    let request = commit::Request::new(parent, changes, me(), "test");
    let mut op = commit::Commit::new(cache, request)?;
    drive::run(&mut op, cache, store)
}

/// All files at `commit`, as path -> content.
pub fn files(store: &MemoryStore, commit: ObjectId) -> BTreeMap<String, Vec<u8>> {
    let mut cache = sha1();
    let mut op = snapgit_core::read::ReadFiles::new(commit, "").expect("root");
    drive::run(&mut op, &mut cache, store)
        .expect("read all")
        .into_iter()
        .map(|f| (f.path.to_string(), f.file.data))
        .collect()
}
