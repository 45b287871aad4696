"""snapgit: a client of ``snapgit serve``'s JSON API, for agent memory kept in plain git.

One repo per agent, a commit per turn, history, diffs and restores, over HTTP::

    from snapgit import Client, Signature

    with Client("http://127.0.0.1:8080", author=Signature("agent-7", "agent-7@example.com")) as sg:
        sg.create_repo("agent-7", {"memory.md": "# Memory\\n"})
        sg.commit("agent-7", {"memory.md": "# Memory\\n- likes tea\\n"}, message="turn 1")
        for commit in sg.iter_log("agent-7"):
            print(commit.id, commit.message)

:class:`AsyncClient` has the same methods for asyncio. Failures raise
:class:`SnapgitError` subclasses named after core's codes (:class:`NotFound`,
:class:`HeadMoved`...).
"""

from .client import DEFAULT_URL, AsyncClient, AsyncFileDownload, Client, FileDownload, Route
from .errors import (
    AlreadyExists,
    Conflict,
    Corrupt,
    EmptyCommit,
    Forbidden,
    HeadMoved,
    InvalidInput,
    LimitExceeded,
    LostRace,
    Misuse,
    NotFound,
    PolicyViolation,
    SnapgitError,
    StorageFailed,
    Unauthorized,
    Unsupported,
)
from .types import (
    Capped,
    Change,
    Changes,
    Collected,
    CommitInfo,
    CommitResult,
    Compacted,
    Delete,
    Diff,
    File,
    FileChange,
    FileHead,
    Files,
    Footprint,
    Health,
    LineStats,
    LogPage,
    Pruned,
    Put,
    Rename,
    RepoCreated,
    RepoUsage,
    Show,
    SettledConflict,
    Side,
    Signature,
    Time,
    Tree,
    TreeEntry,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "AlreadyExists",
    "AsyncClient",
    "AsyncFileDownload",
    "Change",
    "Changes",
    "Client",
    "Collected",
    "CommitInfo",
    "CommitResult",
    "Capped",
    "Compacted",
    "Conflict",
    "Corrupt",
    "Delete",
    "Diff",
    "EmptyCommit",
    "File",
    "FileChange",
    "FileDownload",
    "FileHead",
    "Files",
    "Footprint",
    "Forbidden",
    "HeadMoved",
    "Health",
    "InvalidInput",
    "LimitExceeded",
    "LineStats",
    "LogPage",
    "LostRace",
    "Misuse",
    "NotFound",
    "PolicyViolation",
    "Pruned",
    "Put",
    "Rename",
    "RepoCreated",
    "RepoUsage",
    "Route",
    "Show",
    "SettledConflict",
    "Side",
    "Signature",
    "SnapgitError",
    "StorageFailed",
    "Time",
    "Tree",
    "TreeEntry",
    "Unauthorized",
    "Unsupported",
    "Usage",
]
