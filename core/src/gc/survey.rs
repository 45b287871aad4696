//! The first half of the footprint report and GC: every root git has, what they reach,
//! and the listing of the objects.

use gix_hash::ObjectId;

use super::{
    Phase, Progress,
    mark::Mark,
    roots::{self, CorruptRef, Found, Unsupported},
};
use crate::{
    cache::ObjectCache,
    object, order,
    step::{Answer, Listed, Misuse, Step},
    store,
};

/// What a survey needs next.
#[derive(Debug)]
pub(super) enum Need {
    List(String),
    Read(Vec<String>),
    Get(Vec<ObjectId>),
    Done,
}

impl Need {
    pub(super) fn into_step<T>(self) -> Option<Step<T>> {
        match self {
            Need::List(prefix) => Some(Step::List(prefix)),
            Need::Read(keys) => Some(Step::Read(keys)),
            Need::Get(ids) => Some(Step::Get(ids)),
            Need::Done => None,
        }
    }
}

/// Why a survey stopped: the first half of the errors of [`Footprint`] and [`Collect`].
pub(super) trait SurveyError: From<object::Error> + From<Misuse> + From<Unsupported> + From<CorruptRef> {}

impl<E: From<object::Error> + From<Misuse> + From<Unsupported> + From<CorruptRef>> SurveyError for E {}

/// Finding every root git has, walking what they reach, then listing the objects: the
/// first half of both the footprint report and GC.
///
/// The roots are read as git reads them ([`roots`]): the listings of `refs/`, `logs/` and
/// the places that make a store one GC refuses, then one `Read` of `HEAD`, every loose
/// ref and every reflog, then `packed-refs` (after the loose refs, so a ref that `git
/// pack-refs` moves meanwhile is found in one or the other).
#[derive(Debug)]
pub(super) struct Survey {
    pub(super) phase: Phase,
    pub(super) hash_kind: gix_hash::Kind,
    /// A step is out and not answered yet.
    pub(super) waiting: bool,
    /// How many of [`roots::LISTINGS`] are answered.
    pub(super) listings: usize,
    /// Loose refs found, then read.
    pub(super) refs: Vec<String>,
    /// Reflogs found.
    pub(super) reflogs: Vec<String>,
    /// Lock files found, for the sweep.
    pub(super) locks: Vec<Listed>,
    /// Files git derives from the objects (commit-graphs), removed when GC deletes any.
    pub(super) derived: Vec<String>,
    /// The loose refs that held a value when read.
    pub(super) loose: foldhash::HashSet<String>,
    /// `Read` rounds answered: the loose files, then `packed-refs`.
    pub(super) reads: u8,
    /// Refs (loose, packed) and a detached `HEAD`, with what each points at.
    pub(super) roots: Vec<(String, ObjectId)>,
    /// Reflog entries, under the reflog's key.
    pub(super) reflog_roots: Vec<(String, ObjectId)>,
    pub(super) mark: Mark,
    pub(super) objects: Vec<Listed>,
    /// The objects are listed: the survey is complete.
    pub(super) listed: bool,
}

impl Survey {
    pub(super) fn new(mark: Mark, hash_kind: gix_hash::Kind) -> Self {
        Survey {
            phase: Phase::ListRefs,
            hash_kind,
            waiting: false,
            listings: 0,
            refs: Vec::new(),
            reflogs: Vec::new(),
            locks: Vec::new(),
            derived: Vec::new(),
            loose: Default::default(),
            reads: 0,
            roots: Vec::new(),
            reflog_roots: Vec::new(),
            mark,
            objects: Vec::new(),
            listed: false,
        }
    }

    pub(super) fn poll(&mut self, cache: &ObjectCache) -> Result<Need, object::Error> {
        loop {
            match self.phase {
                Phase::ListRefs => match roots::LISTINGS.get(self.listings) {
                    Some(prefix) => {
                        self.waiting = true;
                        return Ok(Need::List((*prefix).to_owned()));
                    }
                    None => self.phase = Phase::ReadRefs,
                },
                Phase::ReadRefs => {
                    let keys: Vec<String> = match self.reads {
                        0 => roots::FILES
                            .iter()
                            .map(|key| (*key).to_owned())
                            .chain(self.refs.iter().cloned())
                            .chain(self.reflogs.iter().cloned())
                            .collect(),
                        1 => vec![roots::PACKED_REFS.to_owned()],
                        _ => {
                            self.phase = Phase::Mark;
                            continue;
                        }
                    };
                    self.waiting = true;
                    return Ok(Need::Read(keys));
                }
                Phase::Mark => {
                    let ids = self.mark.advance(cache)?;
                    if !ids.is_empty() {
                        self.waiting = true;
                        return Ok(Need::Get(ids));
                    }
                    self.phase = Phase::ListObjects;
                }
                Phase::ListObjects if self.listed => return Ok(Need::Done),
                Phase::ListObjects => {
                    self.waiting = true;
                    return Ok(Need::List(store::OBJECTS.into()));
                }
                Phase::Pack | Phase::Sweep | Phase::Done => return Ok(Need::Done),
            }
        }
    }

    pub(super) fn provide<E: SurveyError>(
        &mut self,
        cache: &mut ObjectCache,
        answers: Vec<Option<Vec<u8>>>,
    ) -> Result<(), E> {
        if self.phase != Phase::Mark || !self.waiting {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        self.mark.provide::<E>(cache, answers)?;
        self.waiting = false;
        Ok(())
    }

    /// Take an answer; `Ok(Err(answer))` gives it back if the survey did not ask for it.
    pub(super) fn answer<E: SurveyError>(&mut self, answer: Answer) -> Result<Result<(), Answer>, E> {
        if !self.waiting {
            return Ok(Err(answer));
        }
        match (self.phase, answer) {
            (Phase::ListRefs, Answer::List(listed)) => {
                let prefix = roots::LISTINGS.get(self.listings).copied().unwrap_or_default();
                for listed in listed.into_iter().filter(|l| l.key.starts_with(prefix)) {
                    match roots::classify(prefix, &listed.key)? {
                        Found::Ref => self.refs.push(listed.key),
                        Found::Reflog => self.reflogs.push(listed.key),
                        Found::Lock => self.locks.push(listed),
                        Found::Derived => self.derived.push(listed.key),
                        Found::Other => {}
                    }
                }
                self.listings += 1;
                if self.listings == roots::LISTINGS.len() {
                    order::sort(&mut self.refs);
                    self.refs.dedup();
                }
            }
            (Phase::ReadRefs, Answer::Read(contents)) => {
                self.read::<E>(contents)?;
                self.reads += 1;
            }
            (Phase::ListObjects, Answer::List(listed)) => {
                self.objects = listed
                    .into_iter()
                    .filter(|l| l.key.starts_with(store::OBJECTS))
                    .collect();
                self.listed = true;
            }
            (_, answer) => return Ok(Err(answer)),
        }
        self.waiting = false;
        Ok(Ok(()))
    }

    /// Take the roots out of the files read.
    pub(super) fn read<E: SurveyError>(&mut self, contents: Vec<Option<Vec<u8>>>) -> Result<(), E> {
        let hash_kind = self.hash_kind;
        if self.reads == 1 {
            let [packed] = <[_; 1]>::try_from(contents).map_err(|_| Misuse("a Read must answer every key"))?;
            for (name, id) in packed.map_or(Ok(Vec::new()), |bytes| roots::parse_packed_refs(&bytes, hash_kind))? {
                // A loose ref shadows its packed value, which git no longer reaches.
                if !self.loose.contains(&name) {
                    self.mark.root(id);
                    self.roots.push((name, id));
                }
            }
            return Ok(());
        }
        if contents.len() != roots::FILES.len() + self.refs.len() + self.reflogs.len() {
            return Err(Misuse("a Read must answer every key").into());
        }
        let mut contents = contents.into_iter();
        for (key, content) in roots::FILES.iter().zip(contents.by_ref()) {
            let Some(bytes) = content else { continue };
            roots::check_file(key)?;
            if let Some(id) = roots::parse_ref(key, &bytes, hash_kind)? {
                self.mark.root(id);
                self.roots.push(((*key).to_owned(), id));
            }
        }
        for (key, content) in self.refs.iter().zip(contents.by_ref()) {
            // Absent: deleted since the listing, or only in `packed-refs`.
            let Some(bytes) = content else { continue };
            self.loose.insert(key.clone());
            if let Some(id) = roots::parse_ref(key, &bytes, hash_kind)? {
                self.mark.root(id);
                self.roots.push((key.clone(), id));
            }
        }
        for (key, content) in self.reflogs.iter().zip(contents) {
            let Some(bytes) = content else { continue };
            for id in roots::parse_reflog(key, &bytes, hash_kind)? {
                self.mark.optional_root(id);
                self.reflog_roots.push((key.clone(), id));
            }
        }
        Ok(())
    }

    /// Read the roots again, keeping what the walk found and the listing of objects:
    /// the walk then goes only into what the refs reach now and did not before.
    pub(super) fn read_refs_again(&mut self) {
        self.phase = Phase::ListRefs;
        self.listings = 0;
        self.refs.clear();
        self.reflogs.clear();
        self.locks.clear();
        self.derived.clear();
        self.loose.clear();
        self.reads = 0;
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            phase: self.phase,
            refs_listed: self.refs.len(),
            refs_read: if self.reads > 0 { self.refs.len() } else { 0 },
            reachable: self.mark.reachable.len() as u64,
            rounds: self.mark.rounds,
            objects_listed: self.objects.len() as u64,
            examined: 0,
            deleted: 0,
            deleted_bytes: 0,
            young: 0,
        }
    }
}
