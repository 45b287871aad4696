//! What each command prints: one report type per command, written as text (git's
//! formats where git has one) or as JSON.

use std::io::Write;

use bstr::{BString, ByteSlice};
use serde::Serialize;
use snapgit_core::{
    Mode, ObjectId,
    commit::{Signature, Time},
    diff::{ChangeKind, FileChange},
    gc,
    read::{CommitInfo, Entry},
};

/// A command's result: JSON through `Serialize`, text through [`Report::write_text`].
pub trait Report: Serialize {
    /// Write the text form to `out` (bytes: file contents and patches need not be UTF-8).
    fn write_text(&self, out: &mut Vec<u8>);
}

fn text(path: &BString) -> String {
    path.to_str_lossy().into_owned()
}

fn hex(id: &ObjectId) -> String {
    id.to_string()
}

/// A signature: name, email, time in seconds and the offset in minutes, and the date as
/// text.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The email address.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The time zone's offset from UTC, in minutes.
    pub offset_minutes: i32,
    /// The date as `YYYY-MM-DD HH:MM:SS +hhmm`.
    pub date: String,
}

impl From<&Signature> for Person {
    fn from(sig: &Signature) -> Self {
        Person {
            name: sig.name.clone(),
            email: sig.email.clone(),
            time: sig.time.seconds,
            offset_minutes: sig.time.offset_minutes,
            date: format_date(sig.time),
        }
    }
}

/// A commit's metadata.
#[derive(Debug, Clone, Serialize)]
pub struct CommitJson {
    /// The commit id.
    pub id: String,
    /// Its tree.
    pub tree: String,
    /// Its parents, first parent first.
    pub parents: Vec<String>,
    /// Who wrote it.
    pub author: Person,
    /// Who committed it.
    pub committer: Person,
    /// The message.
    pub message: String,
}

impl From<&CommitInfo> for CommitJson {
    fn from(info: &CommitInfo) -> Self {
        CommitJson {
            id: hex(&info.id),
            tree: hex(&info.tree),
            parents: info.parents.iter().map(hex).collect(),
            author: (&info.author).into(),
            committer: (&info.committer).into(),
            message: info.message.clone(),
        }
    }
}

/// One changed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileJson {
    /// The path (after the change, for a rename).
    pub path: String,
    /// git's status letter: `A`, `M`, `D`, `R` or `T`.
    pub status: &'static str,
    /// The path before a rename.
    pub from: Option<String>,
    /// Blob id before (absent when added).
    pub old_id: Option<String>,
    /// Blob id after (absent when deleted).
    pub new_id: Option<String>,
    /// Mode before, as git writes it.
    pub old_mode: Option<&'static str>,
    /// Mode after.
    pub new_mode: Option<&'static str>,
    /// Either side is binary (known when line counts were made).
    pub binary: bool,
    /// Lines added; absent for binary files.
    pub added: Option<u64>,
    /// Lines removed; absent for binary files.
    pub removed: Option<u64>,
}

fn status(kind: &ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "A",
        ChangeKind::Modified => "M",
        ChangeKind::Deleted => "D",
        ChangeKind::Renamed { .. } => "R",
        ChangeKind::TypeChanged => "T",
        _ => "M",
    }
}

impl From<&FileChange> for FileJson {
    fn from(file: &FileChange) -> Self {
        FileJson {
            path: text(&file.path),
            status: status(&file.kind),
            from: match &file.kind {
                ChangeKind::Renamed { from } => Some(text(from)),
                _ => None,
            },
            old_id: file.old.map(|(id, _)| hex(&id)),
            new_id: file.new.map(|(id, _)| hex(&id)),
            old_mode: file.old.map(|(_, mode)| mode.as_octal()),
            new_mode: file.new.map(|(_, mode)| mode.as_octal()),
            binary: file.binary,
            added: file.lines.map(|l| l.added),
            removed: file.lines.map(|l| l.removed),
        }
    }
}

/// Files with their totals.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    /// Each changed file, sorted by path.
    pub files: Vec<FileJson>,
    /// How many files changed.
    pub files_changed: usize,
    /// Lines added over every text file.
    pub additions: u64,
    /// Lines removed over every text file.
    pub deletions: u64,
}

impl Changes {
    /// The report of `files`.
    pub fn new(files: &[FileChange]) -> Self {
        Changes {
            files: files.iter().map(FileJson::from).collect(),
            files_changed: files.len(),
            additions: files.iter().filter_map(|f| f.lines).map(|l| l.added).sum(),
            deletions: files.iter().filter_map(|f| f.lines).map(|l| l.removed).sum(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Text formats
// ---------------------------------------------------------------------------------------

/// `time` as `YYYY-MM-DD HH:MM:SS +hhmm`, in its own time zone (git's `--date=iso`).
pub fn format_date(time: Time) -> String {
    let local = time.seconds.saturating_add(i64::from(time.offset_minutes) * 60);
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let sign = if time.offset_minutes < 0 { '-' } else { '+' };
    let offset = time.offset_minutes.unsigned_abs();
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        offset / 60,
        offset % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn write_header(out: &mut Vec<u8>, commit: &CommitJson) {
    let _ = writeln!(out, "commit {}", commit.id);
    if commit.parents.len() > 1 {
        let parents: Vec<_> = commit.parents.iter().map(|p| &p[..7.min(p.len())]).collect();
        let _ = writeln!(out, "Merge: {}", parents.join(" "));
    }
    let _ = writeln!(out, "Author: {} <{}>", commit.author.name, commit.author.email);
    let _ = writeln!(out, "Date:   {}", commit.author.date);
    let _ = writeln!(out);
    for line in commit.message.trim_end_matches('\n').lines() {
        let _ = writeln!(out, "    {line}");
    }
}

fn subject(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

fn display_path(file: &FileJson) -> String {
    match &file.from {
        Some(from) => format!("{from} => {}", file.path),
        None => file.path.clone(),
    }
}

/// `git diff --name-status`.
pub fn write_name_status(out: &mut Vec<u8>, files: &[FileJson]) {
    for file in files {
        match &file.from {
            Some(from) => {
                let _ = writeln!(out, "R100\t{from}\t{}", file.path);
            }
            None => {
                let _ = writeln!(out, "{}\t{}", file.status, file.path);
            }
        }
    }
}

/// `git diff --numstat`.
pub fn write_numstat(out: &mut Vec<u8>, files: &[FileJson]) {
    for file in files {
        let path = display_path(file);
        match (file.added, file.removed) {
            (Some(added), Some(removed)) => {
                let _ = writeln!(out, "{added}\t{removed}\t{path}");
            }
            _ => {
                let _ = writeln!(out, "-\t-\t{path}");
            }
        }
    }
}

/// The widest graph `--stat` draws.
const STAT_GRAPH: u64 = 50;

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `git diff --stat`: one line per file with a `+`/`-` graph, then the summary.
pub fn write_stat(out: &mut Vec<u8>, changes: &Changes) {
    let names: Vec<String> = changes.files.iter().map(display_path).collect();
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let most = changes
        .files
        .iter()
        .map(|f| f.added.unwrap_or(0) + f.removed.unwrap_or(0))
        .max()
        .unwrap_or(0);
    let binary = changes.files.iter().any(|f| f.added.is_none());
    let count_width = most.to_string().len().max(if binary { 3 } else { 1 });
    for (file, name) in changes.files.iter().zip(&names) {
        let pad = name_width - name.chars().count();
        match (file.added, file.removed) {
            (Some(added), Some(removed)) => {
                let total = added + removed;
                let (plus, minus) = if most > STAT_GRAPH {
                    let scale = |n: u64| if n == 0 { 0 } else { (n * STAT_GRAPH / most).max(1) };
                    (scale(added), scale(removed))
                } else {
                    (added, removed)
                };
                let _ = writeln!(
                    out,
                    " {name}{} | {total:>count_width$} {}{}",
                    " ".repeat(pad),
                    "+".repeat(plus as usize),
                    "-".repeat(minus as usize)
                );
            }
            _ => {
                let _ = writeln!(out, " {name}{} | {:>count_width$}", " ".repeat(pad), "Bin");
            }
        }
    }
    let mut summary = format!(
        " {}",
        plural(changes.files_changed as u64, "file changed", "files changed")
    );
    let (adds, dels) = (changes.additions, changes.deletions);
    if adds > 0 || dels == 0 {
        summary.push_str(&format!(", {}", plural(adds, "insertion(+)", "insertions(+)")));
    }
    if dels > 0 || adds == 0 {
        summary.push_str(&format!(", {}", plural(dels, "deletion(-)", "deletions(-)")));
    }
    let _ = writeln!(out, "{summary}");
}

// ---------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------

/// `snapgit init`.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The store.
    pub store: String,
    /// The repo.
    pub repo: String,
    /// Its branch.
    pub branch: String,
    /// The branch's head.
    pub commit: String,
    /// `false` if the repo was there already.
    pub created: bool,
}

impl Report for InitReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let _ = if self.created {
            writeln!(
                out,
                "Initialized repo {} (branch {} at {}) in {}",
                self.repo,
                self.branch,
                &self.commit[..7],
                self.store
            )
        } else {
            writeln!(out, "Repo {} already exists in {}", self.repo, self.store)
        };
    }
}

/// `snapgit repo list`.
#[derive(Debug, Serialize)]
pub struct RepoList {
    /// Repo names, sorted.
    pub repos: Vec<String>,
}

impl Report for RepoList {
    fn write_text(&self, out: &mut Vec<u8>) {
        for repo in &self.repos {
            let _ = writeln!(out, "{repo}");
        }
    }
}

/// `snapgit repo create`.
#[derive(Debug, Serialize)]
pub struct RepoCreated {
    /// The repo.
    pub repo: String,
    /// Its branch.
    pub branch: String,
    /// The first commit.
    pub commit: String,
    /// Its files.
    #[serde(flatten)]
    pub changes: Changes,
}

impl Report for RepoCreated {
    fn write_text(&self, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "Created repo {} (branch {} at {}) with {}",
            self.repo,
            self.branch,
            &self.commit[..7],
            plural(self.changes.files_changed as u64, "file", "files")
        );
    }
}

/// `snapgit repo delete` and `snapgit branch delete`.
#[derive(Debug, Serialize)]
pub struct Deleted {
    /// The refs removed.
    pub refs: Vec<String>,
}

impl Report for Deleted {
    fn write_text(&self, out: &mut Vec<u8>) {
        for key in &self.refs {
            let _ = writeln!(out, "Deleted {key}");
        }
    }
}

/// `snapgit commit` and `snapgit restore`.
#[derive(Debug, Serialize)]
pub struct CommitReport {
    /// The repo.
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// The branch's new head (its unchanged head when `created` is false).
    pub commit: String,
    /// The commit it was built on.
    pub parent: Option<String>,
    /// Its tree.
    pub tree: String,
    /// `false` if nothing changed: the branch already had every change.
    pub created: bool,
    /// The message.
    pub message: String,
    /// Who wrote it.
    pub author: Person,
    /// Attempts made (more than 1 when other writers moved the branch meanwhile).
    pub attempts: u32,
    /// Objects written.
    pub objects_written: usize,
    /// Bytes written.
    pub bytes_written: u64,
    /// Whether the advisory lock was held.
    pub locked: bool,
    /// Paths changed on both sides during a replay, settled by `--on-conflict`.
    pub settled: Vec<String>,
    /// Local files passed over, with why.
    pub skipped: Vec<Skipped>,
    /// The files changed.
    #[serde(flatten)]
    pub changes: Changes,
}

/// A local file passed over.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// Its path in the repo.
    pub path: String,
    /// Why.
    pub reason: String,
    /// An exclude pattern left it out (as asked), rather than its size or its type: the
    /// text report lists only the others.
    #[serde(skip)]
    pub excluded: bool,
}

impl Report for CommitReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        if !self.created {
            let _ = writeln!(
                out,
                "Nothing to commit: {} is at {}",
                self.branch,
                &self.commit[..7.min(self.commit.len())]
            );
            write_skipped(out, &self.skipped);
            return;
        }
        let _ = writeln!(
            out,
            "[{} {}] {}",
            self.branch,
            &self.commit[..7.min(self.commit.len())],
            subject(&self.message)
        );
        write_stat(out, &self.changes);
        write_skipped(out, &self.skipped);
    }
}

/// The files a snapshot left out for their size or type (those a pattern excludes, as
/// asked, only in `--json`).
fn write_skipped(out: &mut Vec<u8>, skipped: &[Skipped]) {
    for s in skipped.iter().filter(|s| !s.excluded) {
        let _ = writeln!(out, " skipped {}: {}", s.path, s.reason);
    }
}

/// One commit of `snapgit log`, with the file's change when the log follows one file.
#[derive(Debug, Serialize)]
pub struct LogEntry {
    /// The commit.
    #[serde(flatten)]
    pub commit: CommitJson,
    /// How the file changed in it (`log --path FILE --numstat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileJson>,
}

impl LogEntry {
    /// The entry of `commit`, with `change` if the log follows one file.
    pub fn new(commit: &CommitInfo, change: Option<&FileChange>) -> Self {
        LogEntry {
            commit: CommitJson::from(commit),
            file: change.map(FileJson::from),
        }
    }
}

/// `snapgit log`.
#[derive(Debug, Serialize)]
pub struct LogReport {
    /// The commits, newest first.
    pub commits: Vec<LogEntry>,
    /// Pass this to `--cursor` for the next page; absent at the end.
    pub next: Option<String>,
    /// One line per commit in text.
    #[serde(skip)]
    pub oneline: bool,
}

impl Report for LogReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        for (i, LogEntry { commit, file }) in self.commits.iter().enumerate() {
            if self.oneline {
                let _ = writeln!(out, "{} {}", &commit.id[..7], subject(&commit.message));
            } else {
                if i > 0 {
                    let _ = writeln!(out);
                }
                write_header(out, commit);
            }
            if let Some(file) = file {
                if !self.oneline {
                    let _ = writeln!(out);
                }
                write_numstat(out, std::slice::from_ref(file));
            }
        }
    }
}

/// `snapgit show`.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    /// The commit.
    pub commit: CommitJson,
    /// What it changed against its first parent.
    #[serde(flatten)]
    pub changes: Changes,
    /// The unified patch, when asked for.
    pub patch: Option<String>,
    #[serde(skip)]
    pub(crate) patch_bytes: Option<BString>,
}

impl Report for ShowReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        write_header(out, &self.commit);
        let _ = writeln!(out);
        write_stat(out, &self.changes);
        if let Some(patch) = &self.patch_bytes {
            let _ = writeln!(out);
            out.extend_from_slice(patch);
        }
    }
}

/// `snapgit cat`.
#[derive(Debug, Serialize)]
pub struct CatReport {
    /// The path.
    pub path: String,
    /// The blob id.
    pub id: String,
    /// The mode, as git writes it.
    pub mode: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// The content, when it is UTF-8.
    pub content: Option<String>,
    /// The content in base64, when it is not UTF-8.
    pub content_base64: Option<String>,
    #[serde(skip)]
    pub(crate) data: Vec<u8>,
}

impl CatReport {
    pub(crate) fn new(path: String, id: ObjectId, mode: Mode, data: Vec<u8>) -> Self {
        let (content, content_base64) = match std::str::from_utf8(&data) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(base64(&data))),
        };
        CatReport {
            path,
            id: hex(&id),
            mode: mode.as_octal(),
            size: data.len(),
            content,
            content_base64,
            data,
        }
    }
}

impl Report for CatReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.data);
    }
}

/// `snapgit cat -r`: every file below a folder.
#[derive(Debug, Serialize)]
pub struct CatAllReport {
    /// The files, in tree order, each as `cat` reports one.
    pub files: Vec<CatReport>,
}

impl Report for CatAllReport {
    /// Each file after a `==> path <==` line, as `head` prints several files.
    fn write_text(&self, out: &mut Vec<u8>) {
        for (i, file) in self.files.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let _ = writeln!(out, "==> {} <==", file.path);
            out.extend_from_slice(&file.data);
        }
    }
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One entry of `snapgit ls`.
#[derive(Debug, Serialize)]
pub struct EntryJson {
    /// The full path.
    pub path: String,
    /// The mode, as git writes it.
    pub mode: &'static str,
    /// `blob`, `tree` or `commit` (a submodule).
    pub kind: &'static str,
    /// The object id.
    pub id: String,
}

impl From<&Entry> for EntryJson {
    fn from(entry: &Entry) -> Self {
        EntryJson {
            path: text(&entry.path),
            mode: entry.mode.as_octal(),
            kind: match entry.mode {
                Mode::Tree => "tree",
                Mode::Submodule => "commit",
                _ => "blob",
            },
            id: hex(&entry.id),
        }
    }
}

/// `snapgit ls`.
#[derive(Debug, Serialize)]
pub struct LsReport {
    /// The commit listed.
    pub commit: String,
    /// The entries, sorted by path.
    pub entries: Vec<EntryJson>,
}

impl Report for LsReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        // As `git ls-tree`: mode padded to six digits, kind, id, tab, path.
        for e in &self.entries {
            let _ = writeln!(out, "{:0>6} {} {}\t{}", e.mode, e.kind, e.id, e.path);
        }
    }
}

/// Which parts of a diff to print in text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffFormat {
    /// `--name-status`.
    pub name_status: bool,
    /// `--numstat`.
    pub numstat: bool,
    /// `--stat`.
    pub stat: bool,
    /// `--patch`.
    pub patch: bool,
}

/// `snapgit diff`.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// The old side (absent for a root commit compared with nothing).
    pub from: Option<String>,
    /// The new side.
    pub to: String,
    /// The changed files.
    #[serde(flatten)]
    pub changes: Changes,
    /// The unified patch, when asked for.
    pub patch: Option<String>,
    /// Against a folder: its files left out, with why (no change there, as a snapshot
    /// keeps them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<Skipped>>,
    #[serde(skip)]
    pub(crate) patch_bytes: Option<BString>,
    #[serde(skip)]
    pub(crate) format: DiffFormat,
}

impl Report for DiffReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let format = self.format;
        if format.name_status {
            write_name_status(out, &self.changes.files);
        }
        if format.numstat {
            write_numstat(out, &self.changes.files);
        }
        if format.stat && !self.changes.files.is_empty() {
            write_stat(out, &self.changes);
        }
        if let (true, Some(patch)) = (format.patch, &self.patch_bytes) {
            if format.stat && !patch.is_empty() {
                let _ = writeln!(out);
            }
            out.extend_from_slice(patch);
        }
    }
}

/// One branch of `snapgit branch list`.
#[derive(Debug, Serialize)]
pub struct BranchJson {
    /// The name.
    pub name: String,
    /// Its head.
    pub head: String,
}

/// `snapgit branch list`.
#[derive(Debug, Serialize)]
pub struct BranchList {
    /// The repo.
    pub repo: String,
    /// Its branches, sorted.
    pub branches: Vec<BranchJson>,
}

impl Report for BranchList {
    fn write_text(&self, out: &mut Vec<u8>) {
        for branch in &self.branches {
            let _ = writeln!(out, "{} {}", &branch.head[..7.min(branch.head.len())], branch.name);
        }
    }
}

/// `snapgit branch create`.
#[derive(Debug, Serialize)]
pub struct BranchCreated {
    /// The branch.
    pub branch: String,
    /// Where it starts.
    pub commit: String,
}

impl Report for BranchCreated {
    fn write_text(&self, out: &mut Vec<u8>) {
        let _ = writeln!(out, "Created branch {} at {}", self.branch, &self.commit[..7]);
    }
}

/// `snapgit prune`.
#[derive(Debug, Serialize)]
pub struct PruneReport {
    /// The repo.
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// The head before.
    pub old_head: String,
    /// The head now.
    pub new_head: String,
    /// `false` if the history already fit.
    pub rewritten: bool,
    /// Commits kept.
    pub kept: usize,
    /// Commits dropped from the first-parent history.
    pub dropped: Option<u64>,
}

impl From<&gc::Pruned> for PruneReport {
    fn from(p: &gc::Pruned) -> Self {
        PruneReport {
            repo: p.repo.to_string(),
            branch: p.branch.to_string(),
            old_head: hex(&p.old_head),
            new_head: hex(&p.new_head),
            rewritten: p.rewritten,
            kept: p.kept,
            dropped: p.dropped,
        }
    }
}

impl Report for PruneReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let _ = if self.rewritten {
            writeln!(
                out,
                "Pruned {}: kept {}, dropped {}; {} is now at {} (was {}). Run `snapgit gc` (and `snapgit compact --drop-unreachable` once packed) to free the space.",
                self.branch,
                plural(self.kept as u64, "commit", "commits"),
                self.dropped.map_or("some".into(), |d| d.to_string()),
                self.branch,
                &self.new_head[..7],
                &self.old_head[..7]
            )
        } else {
            writeln!(
                out,
                "Nothing to prune: {} has {}",
                self.branch,
                plural(self.kept as u64, "commit", "commits")
            )
        };
    }
}

/// `snapgit rollback`.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    /// The commit brought back.
    pub target: String,
    /// The snapshot taken before anything was written: roll back to it to undo.
    pub undo: String,
    /// `false` if the folder already matched the branch, so its head is the undo point.
    pub undo_created: bool,
    /// `false` if it was cancelled: only the files listed in `written` and `deleted` were
    /// done, every other file is as it was.
    pub complete: bool,
    /// Files the rollback was to write or delete.
    pub planned: usize,
    /// Files written.
    pub written: Vec<String>,
    /// Files deleted.
    pub deleted: Vec<String>,
    /// Files already as the target has them.
    pub unchanged: u64,
    /// Submodules of the target, not written.
    pub submodules: Vec<String>,
    /// Local files left alone, with why: what the snapshots leave out.
    pub skipped: Vec<Skipped>,
}

impl Report for RollbackReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        if !self.complete {
            let _ = writeln!(
                out,
                "Cancelled: {} of {} files done (every other file is as it was): written {:?}, deleted {:?}. Undo with `snapgit rollback {}`.",
                self.written.len() + self.deleted.len(),
                self.planned,
                self.written,
                self.deleted,
                &self.undo[..self.undo.len().min(12)]
            );
            return;
        }
        let _ = writeln!(
            out,
            "Rolled back to {}: {} written, {} deleted, {} unchanged. Undo with `snapgit rollback {}`.",
            &self.target[..7],
            plural(self.written.len() as u64, "file", "files"),
            self.deleted.len(),
            self.unchanged,
            &self.undo[..self.undo.len().min(12)]
        );
        write_skipped(out, &self.skipped);
    }
}

/// `snapgit gc`.
#[derive(Debug, Serialize)]
pub struct GcReport {
    /// Refs read.
    pub refs: usize,
    /// Objects reachable from them.
    pub reachable: u64,
    /// Loose objects listed.
    pub listed: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// Their stored bytes.
    pub deleted_bytes: u64,
    /// Unreachable objects kept because they are younger than the grace period.
    pub young: u64,
    /// Their stored bytes.
    pub young_bytes: u64,
}

impl From<&gc::Collected> for GcReport {
    fn from(c: &gc::Collected) -> Self {
        GcReport {
            refs: c.refs,
            reachable: c.reachable,
            listed: c.listed,
            deleted: c.deleted,
            deleted_bytes: c.deleted_bytes,
            young: c.young,
            young_bytes: c.young_bytes,
        }
    }
}

impl Report for GcReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "Deleted {} ({}); kept {} reachable from {}, and {} younger than the grace period ({}).",
            plural(self.deleted, "object", "objects"),
            bytes(self.deleted_bytes),
            plural(self.reachable, "object", "objects"),
            plural(self.refs as u64, "ref", "refs"),
            plural(self.young, "unreachable object", "unreachable objects"),
            bytes(self.young_bytes)
        );
    }
}

/// `snapgit compact`: core's report as it is, its keys in the CLI's snake_case.
#[derive(Debug)]
pub struct CompactReport(pub gc::Compacted);

impl Serialize for CompactReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        snake_case_keys(serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?).serialize(serializer)
    }
}

/// `snapgit cap`: core's report as it is, its keys in the CLI's snake_case.
#[derive(Debug)]
pub struct CapReport(pub gc::Capped);

impl Serialize for CapReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        snake_case_keys(serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?).serialize(serializer)
    }
}

impl Report for CapReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let c = &self.0;
        let _ = writeln!(
            out,
            "The refs reach {} ({} stored); the cap is {}.",
            bytes(c.reachable_bytes),
            bytes(c.stored_bytes),
            bytes(c.max_bytes),
        );
        for p in &c.pruned {
            let _ = writeln!(
                out,
                "Pruned {}/{}: kept {}; it is now at {}.",
                p.repo,
                p.branch,
                plural(p.kept as u64, "commit", "commits"),
                &hex(&p.new_head)[..7],
            );
        }
        if c.under_cap {
            let _ = writeln!(
                out,
                "About {} once `snapgit compact --drop-unreachable` and `snapgit gc` have freed what no ref reaches.",
                bytes(c.estimated_bytes),
            );
        } else {
            let _ = writeln!(
                out,
                "Cannot meet the cap: about {} stays, reached by the commits every branch keeps (--keep-last) or by tags, reflogs or refs outside any repo.",
                bytes(c.estimated_bytes),
            );
        }
    }
}

/// `value` with every object key in snake_case (core's serde form is camelCase).
fn snake_case_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let mut snake = String::with_capacity(key.len() + 4);
                    for c in key.chars() {
                        if c.is_ascii_uppercase() {
                            snake.push('_');
                        }
                        snake.push(c.to_ascii_lowercase());
                    }
                    (snake, snake_case_keys(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(snake_case_keys).collect()),
        other => other,
    }
}

impl Report for CompactReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let c = &self.0;
        if c.skipped {
            let _ = writeln!(
                out,
                "Not yet: {} and {}, below the thresholds.",
                plural(c.loose_before, "loose object", "loose objects"),
                plural(c.packs_before, "pack", "packs"),
            );
            return;
        }
        match &c.pack {
            Some(pack) => {
                let _ = writeln!(
                    out,
                    "Packed {} ({} deltas, {}) into {pack}: {} loose, {} merged.",
                    plural(c.objects, "object", "objects"),
                    c.deltas,
                    bytes(c.pack_bytes),
                    c.loose_packed,
                    plural(c.packs_merged, "pack", "packs"),
                );
            }
            None => {
                let _ = writeln!(out, "Nothing to pack.");
            }
        }
        let _ = writeln!(
            out,
            "Deleted {} and {} ({}); {} wait for the grace period. {} now; {} left for gc.",
            plural(c.loose_deleted, "loose copy", "loose copies"),
            plural(c.packs_deleted, "pack", "packs"),
            bytes(c.deleted_bytes),
            plural(c.waiting, "copy", "copies"),
            plural(c.packs_after, "pack", "packs"),
            plural(
                c.unreachable_loose,
                "unreachable loose object",
                "unreachable loose objects"
            ),
        );
        if c.dropped > 0 {
            let _ = writeln!(
                out,
                "Left out {} no ref reaches; the packs that held them go once the new one is older than the grace period.",
                plural(c.dropped, "object", "objects"),
            );
        }
        if c.graph_commits > 0 {
            let _ = writeln!(
                out,
                "Wrote the commit-graph: {}.",
                plural(c.graph_commits, "commit", "commits")
            );
        }
    }
}

/// A byte count for people: `812 B`, `3.4 KiB`, `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Objects and their stored bytes.
#[derive(Debug, Serialize)]
pub struct UsageJson {
    /// Objects.
    pub objects: u64,
    /// Stored bytes.
    pub bytes: u64,
}

impl From<gc::Usage> for UsageJson {
    fn from(u: gc::Usage) -> Self {
        UsageJson {
            objects: u.count,
            bytes: u.bytes,
        }
    }
}

/// One repo of `snapgit status`.
#[derive(Debug, Serialize)]
pub struct RepoUsageJson {
    /// The repo.
    pub repo: String,
    /// Its refs.
    pub refs: usize,
    /// The objects they reach (shared objects count in every repo).
    pub reachable: UsageJson,
}

/// `snapgit status`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// The store.
    pub store: String,
    /// Every loose object.
    pub objects: UsageJson,
    /// Per repo.
    pub repos: Vec<RepoUsageJson>,
    /// Objects reached from refs outside any repo.
    pub other_refs: UsageJson,
    /// Objects no ref reaches (what GC deletes once they are old enough).
    pub unreachable: UsageJson,
    /// Other keys under `objects/` (packs).
    pub other_keys: UsageJson,
}

impl StatusReport {
    pub(crate) fn new(store: String, report: &gc::FootprintReport) -> Self {
        StatusReport {
            store,
            objects: report.objects.into(),
            repos: report
                .repos
                .iter()
                .map(|r| RepoUsageJson {
                    repo: r.repo.to_string(),
                    refs: r.refs,
                    reachable: r.reachable.into(),
                })
                .collect(),
            other_refs: report.other_refs.into(),
            unreachable: report.unreachable.into(),
            other_keys: report.other_keys.into(),
        }
    }
}

impl Report for StatusReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let usage = |u: &UsageJson| format!("{} ({})", plural(u.objects, "object", "objects"), bytes(u.bytes));
        let _ = writeln!(out, "store:       {}", self.store);
        let _ = writeln!(out, "objects:     {}", usage(&self.objects));
        let _ = writeln!(out, "unreachable: {}", usage(&self.unreachable));
        let _ = writeln!(out, "repos:       {}", self.repos.len());
        let width = self.repos.iter().map(|r| r.repo.len()).max().unwrap_or(0);
        for repo in &self.repos {
            let _ = writeln!(
                out,
                "  {:width$}  {}, reaching {}",
                repo.repo,
                plural(repo.refs as u64, "branch", "branches"),
                usage(&repo.reachable)
            );
        }
    }
}

/// An error, as `--json` prints it on stderr.
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// The stable code, e.g. `NOT_FOUND`.
    pub code: &'static str,
    /// The exit status.
    pub exit: u8,
    /// The message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_git_prints_them() {
        let time = |seconds, offset_minutes| Time {
            seconds,
            offset_minutes,
        };
        assert_eq!(format_date(time(0, 0)), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_date(time(1_700_000_000, 0)), "2023-11-14 22:13:20 +0000");
        assert_eq!(format_date(time(1_700_000_000, -90)), "2023-11-14 20:43:20 -0130");
        assert_eq!(format_date(time(951_782_400, 60)), "2000-02-29 01:00:00 +0100");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0x00, 0xfe, 0x01]), "/wD+AQ==");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(3_500), "3.4 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
    }
}

/// `snapgit push`: core's [`Pushed`](snapgit_core::remote::client::Pushed), keys in
/// snake_case.
#[derive(Debug, Clone)]
pub struct PushReport(pub snapgit_core::remote::client::Pushed);

impl Serialize for PushReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        snake_case_keys(serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?).serialize(serializer)
    }
}

impl Report for PushReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let p = &self.0;
        if p.up_to_date {
            let _ = writeln!(out, "{} is up to date at {}.", p.remote_ref, short(&p.new));
            return;
        }
        let from = p.old.as_ref().map_or_else(|| "(new)".to_owned(), short);
        let _ = writeln!(
            out,
            "{}: {from} -> {} ({}, {}).",
            p.remote_ref,
            short(&p.new),
            plural(p.objects as u64, "object", "objects"),
            bytes(p.pack_bytes as u64),
        );
    }
}

/// `snapgit fetch` and `snapgit import`: core's
/// [`Fetched`](snapgit_core::remote::client::Fetched), keys in snake_case.
#[derive(Debug, Clone)]
pub struct FetchReport(pub snapgit_core::remote::client::Fetched);

impl Serialize for FetchReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        snake_case_keys(serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?).serialize(serializer)
    }
}

impl Report for FetchReport {
    fn write_text(&self, out: &mut Vec<u8>) {
        let f = &self.0;
        for r in &f.refs {
            let moved = match &r.old {
                Some(old) if *old == r.new => format!("up to date at {}", short(&r.new)),
                Some(old) => format!("{} -> {}", short(old), short(&r.new)),
                None => format!("(new) {}", short(&r.new)),
            };
            let _ = writeln!(out, "{} <- {}: {moved}", r.local_ref, r.remote_ref);
        }
        let _ = writeln!(
            out,
            "Fetched {} ({}).",
            plural(f.objects as u64, "object", "objects"),
            bytes(f.pack_bytes as u64)
        );
        if let Some(filter) = &f.filter {
            let _ = writeln!(
                out,
                "Partial: the remote left out {filter}; the store names it a promisor remote."
            );
        }
        if !f.shallow.is_empty() {
            let _ = writeln!(
                out,
                "Shallow: {} without parents in the store.",
                plural(f.shallow.len() as u64, "commit", "commits")
            );
        }
    }
}

fn short(id: &ObjectId) -> String {
    id.to_hex_with_len(12).to_string()
}
