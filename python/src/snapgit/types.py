"""Requests' parts and results of the JSON API, as dataclasses.

Each result mirrors core's serde form (``core/src``: ``repo/commit.rs``, ``read.rs``,
``history.rs``, ``diff/tree.rs``, ``gc/``) with snake_case names; ids are hex strings,
paths text, file contents ``bytes``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _wire
from ._wire import Content

__all__ = [
    "Change",
    "Changes",
    "CommitInfo",
    "CommitResult",
    "Capped",
    "Compacted",
    "Collected",
    "Delete",
    "Diff",
    "File",
    "FileChange",
    "FileHead",
    "Files",
    "Footprint",
    "Health",
    "LineStats",
    "LogPage",
    "Mode",
    "Pruned",
    "Put",
    "Rename",
    "SettledConflict",
    "RepoCreated",
    "RepoUsage",
    "Show",
    "Side",
    "Signature",
    "Time",
    "Tree",
    "TreeEntry",
    "Usage",
]

#: A tree entry's mode: ``"regular"``, ``"executable"``, ``"symlink"``, ``"tree"`` or
#: ``"submodule"``.
Mode = str

# git's octal modes (the X-Snapgit-Mode header) by name.
_MODES = {
    "100644": "regular",
    "100755": "executable",
    "120000": "symlink",
    "40000": "tree",
    "040000": "tree",
    "160000": "submodule",
}


def mode_name(octal: str) -> Mode:
    """``"100644"`` -> ``"regular"``; a name is returned as it is."""
    return _MODES.get(octal, octal)


# ---------------------------------------------------------------------------------------
# Signatures


@dataclass(frozen=True)
class Time:
    """A point in time as git records it."""

    seconds: int
    """Seconds since the Unix epoch, UTC."""
    offset_minutes: int = 0
    """The time zone's offset from UTC in minutes (``120`` for ``+0200``)."""

    @classmethod
    def from_datetime(cls, when: _dt.datetime) -> "Time":
        """The time of an aware ``datetime`` (a naive one is taken as UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        offset = when.utcoffset() or _dt.timedelta(0)
        return cls(int(when.timestamp()), int(offset.total_seconds() // 60))

    def to_datetime(self) -> _dt.datetime:
        """The time as an aware ``datetime`` in its own offset."""
        zone = _dt.timezone(_dt.timedelta(minutes=self.offset_minutes))
        return _dt.datetime.fromtimestamp(self.seconds, zone)


@dataclass(frozen=True)
class Signature:
    """Who made a change, and when (``None``: the server's clock when it commits)."""

    name: str
    email: str
    time: Optional[Time] = None

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"name": self.name, "email": self.email}
        if self.time is not None:
            out["time"] = {"seconds": self.time.seconds, "offsetMinutes": self.time.offset_minutes}
        return out


# ---------------------------------------------------------------------------------------
# Changes


@dataclass(frozen=True)
class Put:
    """Write a file, creating folders as needed.

    ``data`` is bytes, text (stored as UTF-8) or a binary file object; a file object is
    read when the commit is sent (by :meth:`Client.commit_stream`, a chunk at a time).
    """

    path: str
    data: Content
    mode: Mode = "regular"

    def head(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": "put", "path": self.path}
        if self.mode != "regular":
            out["mode"] = self.mode
        return out

    def to_json(self) -> Dict[str, Any]:
        out = self.head()
        out["data"] = _wire.encode_content(self.data)
        return out


@dataclass(frozen=True)
class Delete:
    """Remove a file or a whole folder (a folder left empty disappears)."""

    path: str

    def to_json(self) -> Dict[str, Any]:
        return {"type": "delete", "path": self.path}


@dataclass(frozen=True)
class Rename:
    """Move a file or folder, keeping content and mode; the target must not exist."""

    from_: str
    to: str

    def to_json(self) -> Dict[str, Any]:
        return {"type": "rename", "from": self.from_, "to": self.to}


#: One change of a commit.
Change = Union[Put, Delete, Rename]

#: A commit's changes: a list of :data:`Change`, or a mapping of path to new content
#: (``None`` deletes the path).
Changes = Union[Sequence[Change], Mapping[str, Optional[Content]]]


def changes_of(changes: Any) -> List[Change]:
    """The changes as a list: a mapping's ``path: content`` become puts, ``path: None``
    deletes."""
    if isinstance(changes, Mapping):
        return [Delete(path) if data is None else Put(path, data) for path, data in changes.items()]
    out = list(changes)
    for change in out:
        if not isinstance(change, (Put, Delete, Rename)):
            raise TypeError(f"a change is a Put, Delete or Rename, not {type(change).__name__}")
    return out


# ---------------------------------------------------------------------------------------
# What changed


@dataclass(frozen=True)
class Side:
    """A file's blob id and mode on one side of a change."""

    id: str
    mode: Mode


@dataclass(frozen=True)
class LineStats:
    """Lines added and removed, as ``git diff --numstat`` counts them."""

    added: int
    removed: int


@dataclass(frozen=True)
class FileChange:
    """One file that a commit or diff changed."""

    path: str
    """The path (after the change, for a rename)."""
    kind: str
    """``"added"``, ``"modified"``, ``"deleted"``, ``"renamed"`` or ``"typeChanged"``."""
    old: Optional[Side]
    """Blob id and mode before; ``None`` if the file was added."""
    new: Optional[Side]
    """Blob id and mode after; ``None`` if the file was deleted."""
    binary: bool
    lines: Optional[LineStats]
    """Lines added and removed; ``None`` for binary files or when not counted."""
    renamed_from: Optional[str] = None
    """The path before, for a rename."""

    @property
    def additions(self) -> int:
        return self.lines.added if self.lines else 0

    @property
    def deletions(self) -> int:
        return self.lines.removed if self.lines else 0

    @classmethod
    def _from_json(cls, value: Mapping[str, Any]) -> "FileChange":
        kind = value.get("kind")
        renamed_from = None
        if isinstance(kind, dict):
            ((kind, detail),) = kind.items()
            renamed_from = detail.get("from") if isinstance(detail, dict) else None
        change: FileChange = _wire.read_fields(cls, value, kind=kind, renamed_from=renamed_from)
        return change


@dataclass(frozen=True)
class SettledConflict:
    """A path both sides changed during a replay."""

    path: str
    ours: Optional[Side]
    theirs: Optional[Side]


def _additions(files: List[FileChange]) -> int:
    return sum(f.additions for f in files)


def _deletions(files: List[FileChange]) -> int:
    return sum(f.deletions for f in files)


@dataclass(frozen=True)
class CommitResult:
    """A commit (or restore) that landed on its branch."""

    commit: str
    """The branch's new head (or its head, when nothing was left to do)."""
    tree: str
    parent: str
    """The head it was built on."""
    created: bool
    """``False`` when the branch already held every change: nothing was written."""
    files: List[FileChange]
    attempts: int
    settled: List[SettledConflict]
    """Conflicts settled by ``on_conflict`` during replays."""
    objects_written: int
    bytes_written: int
    locked: bool

    @property
    def additions(self) -> int:
        """Lines added over every file."""
        return _additions(self.files)

    @property
    def deletions(self) -> int:
        """Lines removed over every file."""
        return _deletions(self.files)


@dataclass(frozen=True)
class RepoCreated:
    """A new repo's first commit."""

    commit: str
    files: List[FileChange]


# ---------------------------------------------------------------------------------------
# Reads


@dataclass(frozen=True)
class CommitInfo:
    """A commit's metadata."""

    id: str
    tree: str
    parents: List[str]
    author: Signature
    committer: Signature
    message: str


@dataclass(frozen=True)
class LogPage:
    """A page of history, newest first; ``next`` is the cursor of the next page."""

    commits: List[CommitInfo]
    next: Optional[str]


@dataclass(frozen=True)
class Diff:
    """The difference between two commits."""

    from_: Optional[str]
    """The commit compared from; ``None`` for a root commit compared with nothing."""
    to: str
    files: List[FileChange]
    patch: Optional[bytes] = None
    """The unified patch, when asked for."""

    @property
    def additions(self) -> int:
        return _additions(self.files)

    @property
    def deletions(self) -> int:
        return _deletions(self.files)


@dataclass(frozen=True)
class Show:
    """A commit and what it changed from its first parent."""

    commit: CommitInfo
    diff: Diff


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a folder listing."""

    path: str
    mode: Mode
    id: str


@dataclass(frozen=True)
class Tree:
    """A folder at a commit."""

    commit: str
    entries: List[TreeEntry]


@dataclass(frozen=True)
class File:
    """A file's content at a commit."""

    path: str
    id: str
    """The blob id (the ETag of ``GET .../files/{path}``)."""
    mode: Mode
    data: bytes
    commit: Optional[str] = None
    """The commit it was read at."""

    @property
    def text(self) -> str:
        """The content as UTF-8 text."""
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class FileHead:
    """A file's blob id, mode and commit, without its bytes (a download's)."""

    path: str
    id: str
    mode: Mode
    commit: Optional[str] = None


@dataclass(frozen=True)
class Files:
    """Files read at one commit."""

    commit: str
    files: List[File]

    def __getitem__(self, path: str) -> File:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    def as_dict(self) -> Dict[str, bytes]:
        """``{path: content}``."""
        return {f.path: f.data for f in self.files}

    @classmethod
    def _from_json(cls, value: Mapping[str, Any]) -> "Files":
        commit = value["commit"]
        files = [
            dataclasses.replace(_wire.from_json(File, {**item["file"], "path": item["path"]}), commit=commit)
            for item in value["files"]
        ]
        return cls(commit=commit, files=files)


# ---------------------------------------------------------------------------------------
# Retention and the store


@dataclass(frozen=True)
class Pruned:
    """What a prune did."""

    repo: str
    branch: str
    old_head: str
    new_head: str
    rewritten: bool
    """``False`` if the history already fit the retention: nothing was written."""
    kept: int
    dropped: Optional[int]
    """First-parent commits dropped; ``None`` unless ``count_dropped``."""
    written: List[str]
    attempts: int


@dataclass(frozen=True)
class Capped:
    """What a store-wide size cap found and did."""

    max_bytes: int
    stored_bytes: int
    """Every key under ``objects/``, including what GC and compaction have yet to delete."""
    reachable_bytes: int
    """What the refs reached before."""
    estimated_bytes: int
    """What the refs reach after the prunes, estimated."""
    under_cap: bool
    pruned: List[Pruned]


@dataclass(frozen=True)
class Usage:
    """A number of objects and their stored bytes."""

    count: int
    bytes: int


@dataclass(frozen=True)
class RepoUsage:
    """The objects one repo's refs reach."""

    repo: str
    refs: int
    reachable: Usage


@dataclass(frozen=True)
class Footprint:
    """The size of the store."""

    objects: Usage
    repos: List[RepoUsage]
    other_refs: Usage
    unreachable: Usage
    """Loose objects no ref reaches: what GC deletes once they are old enough."""
    other_keys: Usage


@dataclass(frozen=True)
class Collected:
    """What a garbage collection did."""

    refs: int
    reachable: int
    listed: int
    deleted: int
    deleted_bytes: int
    young: int
    """Unreachable objects kept because they are younger than the grace period."""
    young_bytes: int
    rounds: int


@dataclass(frozen=True)
class Compacted:
    """What a compaction did."""

    pack: Optional[str]
    objects: int
    deltas: int
    pack_bytes: int
    loose_packed: int
    packs_merged: int
    loose_deleted: int
    packs_deleted: int
    deleted_bytes: int
    waiting: int
    loose_before: int
    packs_before: int
    packs_after: int
    unreachable_loose: int = 0
    dropped: int = 0
    skipped: bool = False
    graph_commits: int = 0


@dataclass(frozen=True)
class Health:
    """``GET /healthz``."""

    status: str

