//! A size cap for a whole store: [`Cap`] drops the oldest history first, one commit per
//! repo in turn, until what the refs reach fits, then prunes each branch it took from.

use gix_hash::ObjectId;

use super::{
    CorruptRef, Phase, Progress, Unsupported, loose_id,
    mark::Mark,
    packed_sizes,
    prune::{Prune, PruneError, PruneRequest, Pruned, Retention},
    survey::Survey,
};
use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object,
    step::{Answer, Fetch, Misuse, Operation, Step, StorageError},
    store::{self, BranchName, RepoName},
};

/// The store-wide size cap a [`Cap`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapRequest {
    /// The most bytes of objects the refs may reach: loose objects as stored, packed
    /// ones as their entries in the packs.
    pub max_bytes: u64,
    /// Commits every branch keeps whatever the cap, counting the head; at least 1.
    #[serde(default = "default_keep_last")]
    pub keep_last: usize,
    /// How many times each branch's prune plans and tries its compare-and-swap.
    #[serde(default = "crate::api::wire::default::attempts")]
    pub max_attempts: u32,
}

fn default_keep_last() -> usize {
    1
}

impl CapRequest {
    /// A cap of `max_bytes`, every branch keeping at least its head.
    pub fn new(max_bytes: u64) -> Self {
        CapRequest {
            max_bytes,
            keep_last: default_keep_last(),
            max_attempts: super::DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// What a [`Cap`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Capped {
    /// The cap.
    pub max_bytes: u64,
    /// Every key under `objects/` as listed: loose objects, packs, their indexes, and what
    /// GC and compaction have yet to delete.
    pub stored_bytes: u64,
    /// What the refs reached before: the stored size of every object they reach.
    pub reachable_bytes: u64,
    /// What the refs reach once the branches are pruned, as estimated from the objects
    /// only the dropped commits reach. Packed objects count as their entries in the packs
    /// (a delta is small, and its base may be dropped), so compaction may pack the rest a
    /// little differently.
    pub estimated_bytes: u64,
    /// `estimated_bytes` fits the cap. `false` when every branch is down to
    /// [`CapRequest::keep_last`] commits, or what is left is reached otherwise (tags,
    /// reflogs, a detached `HEAD`, refs outside any repo).
    pub under_cap: bool,
    /// The branches pruned, one commit dropped from each repo in turn, oldest first.
    pub pruned: Vec<Pruned>,
}

/// Why a [`Cap`] failed. A failure before the first prune changes nothing; each prune
/// is a compare-and-swap of its own, and those done before stay done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CapError {
    /// `keep_last` is 0: every branch keeps at least its head.
    #[error("invalid option keep_last = 0: every branch keeps at least its head")]
    ZeroKeepLast,
    /// A commit or tree a ref reaches is missing, corrupt or of the wrong kind.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The store holds something the cap cannot account for (as GC refuses it).
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// A ref, `HEAD`, `packed-refs` or reflog does not read as git writes it.
    #[error(transparent)]
    CorruptRef(#[from] CorruptRef),
    /// A branch's prune failed.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// The storage adapter failed.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for CapError {
    fn from(err: StorageError) -> Self {
        CapError::Storage(err)
    }
}

/// One branch of one repo: its first-parent history, newest first, and how far the walk
/// of its trees has come.
#[derive(Debug)]
struct Branch {
    repo: RepoName,
    branch: BranchName,
    /// The next commit of the chain to read, while it is being read.
    next: Option<ObjectId>,
    /// Commit, tree and committer time, newest first.
    chain: Vec<(ObjectId, ObjectId, i64)>,
    /// The commit whose tree is being walked.
    walked: usize,
    stack: Vec<ObjectId>,
    seen: IdSet,
    /// Per commit of the chain: the objects no newer commit of the branch reaches.
    owned: Vec<Vec<ObjectId>>,
    /// Commits planned to go, oldest first.
    dropped: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Survey,
    Walk,
    Prune,
    Done,
}

/// The size cap: a sans-IO operation that reads every root as [`Collect`](super::Collect)
/// does (refusing the same stores), walks each branch's first-parent history and the
/// trees of each of its commits to find which objects only older commits reach, then
/// plans, one repo at a time in name order, dropping the oldest commit of that repo's
/// branch with the oldest history, until what the refs reach fits
/// [`CapRequest::max_bytes`] or every branch is down to [`CapRequest::keep_last`]
/// commits. Then it prunes each branch it took commits from ([`Prune`], keeping the
/// number of commits planned, with its own compare-and-swap).
///
/// The space comes back once nothing reaches the dropped objects: GC deletes loose
/// ones, and compaction with [`CompactOptions::drop_unreachable`](super::CompactOptions)
/// packed ones, each past its grace period. Objects tags, reflogs, a detached `HEAD` or
/// refs outside any repo reach are never counted as freed. Drive it through
/// [`Packed`](crate::pack::Packed), answering [`Step::Get`] with
/// [`provide`](Operation::provide) and every other step with
/// [`answer`](Operation::answer).
#[derive(Debug)]
pub struct Cap {
    request: CapRequest,
    hash_kind: gix_hash::Kind,
    survey: Survey,
    stage: Stage,
    fetch: Fetch,
    /// Objects reached from roots other than the repos' branches, and the walk there.
    kept: IdSet,
    kept_stack: Vec<ObjectId>,
    branches: Vec<Branch>,
    /// Stored size of each object, loose or packed.
    sizes: IdMap<u64>,
    report: Capped,
    prunes: Vec<(usize, usize)>,
    prune: Option<Box<Prune>>,
    waiting: bool,
}

impl Cap {
    /// Prepare the cap for the store whose objects `cache` holds.
    pub fn new(cache: &ObjectCache, request: CapRequest) -> Result<Self, CapError> {
        if request.keep_last == 0 {
            return Err(CapError::ZeroKeepLast);
        }
        Ok(Cap {
            request,
            hash_kind: cache.hash_kind(),
            survey: Survey::new(Mark::default(), cache.hash_kind()),
            stage: Stage::Survey,
            fetch: Fetch::default(),
            kept: IdSet::default(),
            kept_stack: Vec::new(),
            branches: Vec::new(),
            sizes: IdMap::default(),
            report: Capped {
                max_bytes: request.max_bytes,
                stored_bytes: 0,
                reachable_bytes: 0,
                estimated_bytes: 0,
                under_cap: false,
                pruned: Vec::new(),
            },
            prunes: Vec::new(),
            prune: None,
            waiting: false,
        })
    }

    /// How far the cap has come.
    pub fn progress(&self) -> Progress {
        let mut progress = self.survey.progress();
        progress.phase = match self.stage {
            Stage::Survey => progress.phase,
            Stage::Walk => Phase::Mark,
            Stage::Prune => Phase::Sweep,
            Stage::Done => Phase::Done,
        };
        progress
    }

    /// The survey is in: sizes, the branches, and the other roots.
    fn take_survey(&mut self, cache: &ObjectCache) {
        for listed in &self.survey.objects {
            self.report.stored_bytes = self.report.stored_bytes.saturating_add(listed.size);
            if let Some(id) = loose_id(&listed.key, self.hash_kind) {
                self.sizes.insert(id, listed.size);
            }
        }
        // A packed object counts as its entry in the pack.
        for (id, size) in packed_sizes(cache) {
            self.sizes.entry(id).or_insert(size);
        }
        let reachable = &self.survey.mark.reachable;
        self.report.reachable_bytes = reachable
            .iter()
            .map(|id| self.sizes.get(id).copied().unwrap_or(0))
            .sum();
        let mut branches = Vec::new();
        // Reflog entries, a detached `HEAD`, tags and refs outside any repo keep what they
        // reach; only the repos' branches are capped.
        self.kept_stack
            .extend(self.survey.reflog_roots.iter().map(|(_, id)| *id));
        for (key, id) in &self.survey.roots {
            match store::parse_branch_key(key) {
                Some((repo, branch)) => branches.push(Branch {
                    repo,
                    branch,
                    next: Some(*id),
                    chain: Vec::new(),
                    walked: 0,
                    stack: Vec::new(),
                    seen: IdSet::default(),
                    owned: Vec::new(),
                    dropped: 0,
                }),
                _ => self.kept_stack.push(*id),
            }
        }
        crate::order::sort_by(&mut branches, |a, b| (&a.repo, &a.branch).cmp(&(&b.repo, &b.branch)));
        self.branches = branches;
    }

    /// Walk as far as the objects at hand allow; `true` when every walk is done.
    fn walk(&mut self, cache: &ObjectCache) -> Result<bool, CapError> {
        let fetch = &mut self.fetch;
        // What the other roots reach: every parent, every tree, every tag's target.
        while let Some(id) = self.kept_stack.pop() {
            if self.kept.contains(&id) {
                continue;
            }
            let Some(object) = fetch.get(cache, &id) else {
                self.kept_stack.push(id);
                break;
            };
            self.kept.insert(id);
            match object {
                object::Object::Commit(commit) => {
                    self.kept_stack.push(commit.tree);
                    self.kept_stack.extend(commit.parents.iter().copied());
                }
                object::Object::Tree(tree) => {
                    for entry in &tree.entries {
                        if entry.mode.is_commit() {
                            continue;
                        }
                        if entry.mode.is_tree() {
                            self.kept_stack.push(entry.oid);
                        } else {
                            self.kept.insert(entry.oid);
                        }
                    }
                }
                object::Object::Tag(tag) => self.kept_stack.push(tag.target),
                object::Object::Blob(_) => {}
            }
        }
        let mut done = self.kept_stack.is_empty();
        for branch in &mut self.branches {
            // The first-parent chain.
            while let Some(id) = branch.next {
                let Some((id, commit)) = fetch.peeled_commit(cache, &id)? else {
                    break;
                };
                branch.chain.push((id, commit.tree, commit.committer.time.seconds));
                branch.owned.push(vec![id]);
                branch.next = commit.parents.first().copied();
            }
            if branch.next.is_some() {
                done = false;
                continue;
            }
            // Each commit's tree, newest first: an object belongs to the newest commit
            // that reaches it.
            'commits: while branch.walked < branch.chain.len() {
                if branch.stack.is_empty() {
                    let tree = branch.chain[branch.walked].1;
                    if branch.seen.contains(&tree) {
                        branch.walked += 1;
                        continue;
                    }
                    branch.stack.push(tree);
                }
                while let Some(id) = branch.stack.pop() {
                    if branch.seen.contains(&id) {
                        continue;
                    }
                    let Some(tree) = fetch.tree(cache, &id)? else {
                        branch.stack.push(id);
                        done = false;
                        break 'commits;
                    };
                    branch.seen.insert(id);
                    let owned = &mut branch.owned[branch.walked];
                    owned.push(id);
                    for entry in &tree.entries {
                        if entry.mode.is_commit() || branch.seen.contains(&entry.oid) {
                            continue;
                        }
                        if entry.mode.is_tree() {
                            branch.stack.push(entry.oid);
                        } else {
                            branch.seen.insert(entry.oid);
                            owned.push(entry.oid);
                        }
                    }
                }
                branch.walked += 1;
            }
        }
        Ok(done)
    }

    /// Plan the drops: one repo at a time in name order, the oldest commit of its branch
    /// with the oldest remaining history, until the estimate fits or nothing can go.
    fn plan(&mut self) {
        // How many branches still reach each object.
        let mut holders: IdMap<u32> = IdMap::default();
        for branch in &self.branches {
            for id in branch.owned.iter().flatten() {
                *holders.entry(*id).or_insert(0) += 1;
            }
        }
        let mut estimate = self.report.reachable_bytes;
        let max = self.request.max_bytes;
        let keep = self.request.keep_last;
        let mut repos: Vec<RepoName> = self.branches.iter().map(|b| b.repo.clone()).collect();
        repos.dedup();
        while estimate > max {
            let mut dropped_any = false;
            for repo in &repos {
                if estimate <= max {
                    break;
                }
                // The repo's branch whose oldest remaining commit is the oldest.
                let pick = self
                    .branches
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| &b.repo == repo && b.chain.len() - b.dropped > keep)
                    .min_by_key(|(_, b)| (b.chain[b.chain.len() - 1 - b.dropped].2, b.branch.clone()))
                    .map(|(i, _)| i);
                let Some(i) = pick else { continue };
                let branch = &mut self.branches[i];
                let at = branch.chain.len() - 1 - branch.dropped;
                branch.dropped += 1;
                dropped_any = true;
                for id in &branch.owned[at] {
                    let Some(count) = holders.get_mut(id) else { continue };
                    *count -= 1;
                    if *count == 0 && !self.kept.contains(id) {
                        estimate = estimate.saturating_sub(self.sizes.get(id).copied().unwrap_or(0));
                    }
                }
            }
            if !dropped_any {
                break;
            }
        }
        self.report.estimated_bytes = estimate;
        self.report.under_cap = estimate <= max;
        self.prunes = self
            .branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.dropped > 0)
            .map(|(i, b)| (i, b.chain.len() - b.dropped))
            .collect();
        self.prunes.reverse();
    }

    /// The next prune, or `None` when all are done.
    fn next_prune(&mut self) -> Result<bool, CapError> {
        let Some((i, keep)) = self.prunes.pop() else {
            return Ok(false);
        };
        let branch = &self.branches[i];
        let mut request = PruneRequest::new(branch.repo.as_str(), branch.branch.as_str(), Retention::last(keep));
        request.max_attempts = self.request.max_attempts;
        request.count_dropped = false;
        self.prune = Some(Box::new(Prune::new(request)?));
        Ok(true)
    }
}

impl Operation for Cap {
    type Output = Capped;
    type Error = CapError;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Capped>, CapError> {
        if self.waiting {
            return Err(Misuse("poll called before the last step was answered").into());
        }
        loop {
            match self.stage {
                Stage::Survey => {
                    if let Some(step) = self.survey.poll(cache)?.into_step() {
                        return Ok(step);
                    }
                    self.take_survey(cache);
                    self.stage = Stage::Walk;
                }
                Stage::Walk => {
                    self.fetch.reset_want();
                    if !self.walk(cache)? {
                        if let Some(step) = self.fetch.take_get() {
                            self.waiting = true;
                            return Ok(step);
                        }
                        return Err(Misuse("the walk stopped without asking for anything").into());
                    }
                    self.plan();
                    self.stage = Stage::Prune;
                }
                Stage::Prune => {
                    if let Some(prune) = &mut self.prune {
                        match prune.poll(cache)? {
                            Step::Done(pruned) => {
                                self.report.pruned.push(pruned);
                                self.prune = None;
                            }
                            // Every other step passes through as it is.
                            step => {
                                return Ok(step.map(|pruned| Capped {
                                    pruned: vec![pruned],
                                    ..self.report.clone()
                                }));
                            }
                        }
                    }
                    if self.prune.is_none() && !self.next_prune()? {
                        self.stage = Stage::Done;
                    }
                }
                Stage::Done => {
                    self.stage = Stage::Done;
                    return Ok(Step::Done(self.report.clone()));
                }
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), CapError> {
        match self.stage {
            Stage::Survey => self.survey.provide::<CapError>(cache, objects),
            Stage::Walk if self.waiting => {
                self.waiting = false;
                self.fetch.provide::<CapError>(cache, objects)
            }
            Stage::Prune => match &mut self.prune {
                Some(prune) => Ok(prune.provide(cache, objects)?),
                None => Err(Misuse("provide called without an outstanding Get").into()),
            },
            _ => Err(Misuse("provide called without an outstanding Get").into()),
        }
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), CapError> {
        match self.stage {
            Stage::Survey => self
                .survey
                .answer::<CapError>(answer)?
                .map_err(|_| Misuse("answer does not match the step asked for").into()),
            Stage::Prune => match &mut self.prune {
                Some(prune) => Ok(prune.answer(cache, answer)?),
                None => Err(Misuse("answer does not match the step asked for").into()),
            },
            _ => Err(Misuse("answer does not match the step asked for").into()),
        }
    }
}
