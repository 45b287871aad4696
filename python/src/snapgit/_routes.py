"""Every route of the JSON API, once: what to send and how to read the answer.

Each function here builds a :class:`Call` — method, path, query, body and a parser —
without doing any IO. :class:`snapgit.Client` and :class:`snapgit.AsyncClient` expose
each of them as a method of the same name and signature (see ``client.py``), send the
call with httpx, raise :mod:`snapgit.errors` for an error answer and hand the answer to
the parser. The routes are documented in ``host/src/serve/api.rs``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import time
from typing import (
    Any,
    AsyncIterable,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import quote

from . import _wire
from .types import (
    Change,
    Changes,
    CommitInfo,
    Collected,
    CommitResult,
    Capped,
    Compacted,
    Diff,
    File,
    Files,
    Footprint,
    Health,
    LogPage,
    Pruned,
    Put,
    RepoCreated,
    Show,
    Signature,
    Tree,
    changes_of,
    mode_name,
)

T = TypeVar("T")

#: The branch and revision the server reads when none is given.
DEFAULT_BRANCH = "main"


@dataclasses.dataclass(frozen=True)
class Reply:
    """An answer, read whole: what a parser gets."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


@dataclasses.dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the API and the parser of its answer."""

    method: str
    path: str
    parse: Callable[[Reply], T]
    params: Optional[Dict[str, str]] = None
    body: Optional[Dict[str, Any]] = None
    """A JSON body. Its ``author`` (and ``committer``), if ``None``, is filled in by the
    client with its default author."""
    stream: Optional[Union[Iterable[Change], AsyncIterable[Change]]] = None
    """Changes sent after ``body`` as NDJSON lines, a change at a time."""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    accept: Tuple[int, ...] = ()
    """Statuses besides 2xx that are answers, not errors (304)."""


# ---------------------------------------------------------------------------------------
# Paths and bodies


def _segment(name: str) -> str:
    """A name as one path segment: ``/`` and every reserved character escaped, and ``.``
    and ``..`` escaped too so that no URL normalization removes them."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a name must be a non-empty string, not {name!r}")
    if name in (".", ".."):
        return name.replace(".", "%2E")
    return quote(name, safe="")


def _file_path(path: str) -> str:
    """A file path as path segments (its ``/`` kept)."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"a path must be a non-empty string, not {path!r}")
    return "/".join(_segment(part) if part else "" for part in path.split("/"))


def _repo(repo: str, *rest: str) -> str:
    return "/".join(["/v1/repos", _segment(repo), *rest])


def _params(**values: Any) -> Dict[str, str]:
    """Query parameters without the ``None`` ones, in the server's camelCase."""
    out: Dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[_wire.camel(name)] = str(value)
    return out


def _fields(**values: Any) -> Dict[str, Any]:
    """Body fields without the ``None`` ones, in the server's camelCase."""
    return {_wire.camel(name): value for name, value in values.items() if value is not None}


def _signature(sig: Optional[Signature]) -> Optional[Dict[str, Any]]:
    return None if sig is None else sig.to_json()


def _as_list(key: str) -> Callable[[Reply], List[str]]:
    return lambda reply: [str(v) for v in reply.json()[key]]


def _as_str(key: str) -> Callable[[Reply], str]:
    return lambda reply: str(reply.json()[key])


def _as(tp: Any, key: Optional[str] = None) -> Callable[[Reply], Any]:
    def parse(reply: Reply) -> Any:
        value = reply.json()
        return _wire.from_json(tp, value if key is None else value[key])

    return parse


def _commit_body(
    message: str,
    author: Optional[Signature],
    committer: Optional[Signature],
    expected_head: Optional[str],
    on_conflict: Optional[str],
    allow_empty: Optional[bool],
    line_stats: Optional[bool],
    max_attempts: Optional[int],
    extra: Optional[Mapping[str, Any]],
) -> Dict[str, Any]:
    body = _fields(
        message=message,
        committer=_signature(committer),
        expected_head=expected_head,
        on_conflict=on_conflict,
        allow_empty=allow_empty,
        line_stats=line_stats,
        max_attempts=max_attempts,
    )
    body["author"] = _signature(author)
    body.update(extra or {})
    return body


# ---------------------------------------------------------------------------------------
# The server


def health() -> Call[Health]:
    """``GET /healthz``: the server answers (it does not call storage)."""
    return Call("GET", "/healthz", _as(Health))


# ---------------------------------------------------------------------------------------
# Repos and branches


def list_repos() -> Call[List[str]]:
    """The repos of the store the token may read, sorted."""
    return Call("GET", "/v1/repos", _as_list("repos"))


def create_repo(
    repo: str,
    files: Optional[Changes] = None,
    *,
    branch: Optional[str] = None,
    message: Optional[str] = None,
    author: Optional[Signature] = None,
) -> Call[RepoCreated]:
    """Create ``repo`` with a first commit of ``files`` (puts only; a mapping of path to
    content, or :class:`Put` changes) on ``branch`` (``main``)."""
    body = _fields(
        repo=repo,
        branch=branch,
        message=message,
        files=[c.to_json() for c in changes_of(files or [])],
    )
    body["author"] = _signature(author)
    return Call("POST", "/v1/repos", _as(RepoCreated, "created"), body=body)


def delete_repo(repo: str) -> Call[List[str]]:
    """Delete every ref of ``repo`` (its objects go at the next GC); the refs removed.
    Needs an admin token."""
    return Call("DELETE", _repo(repo), _as_list("deleted"))


def list_branches(repo: str) -> Call[List[str]]:
    """The branches of ``repo``, sorted."""
    return Call("GET", _repo(repo, "branches"), _as_list("branches"))


def create_branch(
    repo: str,
    branch: str,
    *,
    from_branch: Optional[str] = None,
    at_commit: Optional[str] = None,
) -> Call[str]:
    """Create ``branch`` at the head of ``from_branch`` (``main``) or at the commit
    ``at_commit`` (a full id); its head."""
    if from_branch is not None and at_commit is not None:
        raise ValueError("give from_branch or at_commit, not both")
    body: Dict[str, Any] = {"branch": branch}
    if at_commit is not None:
        body["start"] = {"commit": at_commit}
    elif from_branch is not None:
        body["start"] = {"branch": from_branch}
    return Call("POST", _repo(repo, "branches"), _as_str("branchCreated"), body=body)


def read_head(repo: str, branch: str = DEFAULT_BRANCH) -> Call[str]:
    """The commit id at the head of ``branch``."""
    return Call("GET", _repo(repo, "branches", _segment(branch)), _as_str("head"))


def delete_branch(repo: str, branch: str) -> Call[List[str]]:
    """Delete ``branch``; the refs removed."""
    return Call("DELETE", _repo(repo, "branches", _segment(branch)), _as_list("deleted"))


# ---------------------------------------------------------------------------------------
# Writes to a branch


def commit(
    repo: str,
    changes: Changes,
    *,
    message: str,
    branch: str = DEFAULT_BRANCH,
    author: Optional[Signature] = None,
    committer: Optional[Signature] = None,
    expected_head: Optional[str] = None,
    on_conflict: Optional[str] = None,
    allow_empty: Optional[bool] = None,
    line_stats: Optional[bool] = None,
    max_attempts: Optional[int] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Call[CommitResult]:
    """Commit ``changes`` to ``branch`` in one JSON request.

    ``changes`` is a list of :class:`Put`, :class:`Delete` and :class:`Rename`, or a
    mapping of path to new content (``None`` deletes). ``expected_head`` makes the commit
    fail with :class:`~snapgit.errors.HeadMoved` if the branch moved; without it a lost
    race is replayed onto the new head, and a path both sides changed is settled by
    ``on_conflict``: ``"fail"`` (the default, :class:`~snapgit.errors.Conflict`),
    ``"ours"`` or ``"theirs"``. ``extra`` adds any other field of core's commit request
    (``{"policy": {"maxFileBytes": 1000}}``, ``{"lockTtlMs": None}``...).
    """
    body = _commit_body(
        message, author, committer, expected_head, on_conflict, allow_empty, line_stats, max_attempts, extra
    )
    body["changes"] = [c.to_json() for c in changes_of(changes)]
    return Call("POST", _repo(repo, "branches", _segment(branch), "commits"), _as(CommitResult), body=body)


def commit_stream(
    repo: str,
    changes: Union[Iterable[Change], AsyncIterable[Change]],
    *,
    message: str,
    branch: str = DEFAULT_BRANCH,
    author: Optional[Signature] = None,
    committer: Optional[Signature] = None,
    expected_head: Optional[str] = None,
    on_conflict: Optional[str] = None,
    allow_empty: Optional[bool] = None,
    line_stats: Optional[bool] = None,
    max_attempts: Optional[int] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Call[CommitResult]:
    """Commit ``changes`` streamed as NDJSON: the request's first line, then one change
    per line, each encoded only when it is sent.

    ``changes`` may be a generator (an async one for :class:`~snapgit.AsyncClient`); a
    :class:`Put` whose ``data`` is a binary file object is read and sent a chunk at a
    time, so the client never holds a file whole. The server still reads every change
    before it commits (core builds the commit from whole files), within its
    ``--max-request-bytes``. Options as for :meth:`commit`.
    """
    body = _commit_body(
        message, author, committer, expected_head, on_conflict, allow_empty, line_stats, max_attempts, extra
    )
    return Call(
        "POST",
        _repo(repo, "branches", _segment(branch), "commits"),
        _as(CommitResult),
        body=body,
        stream=changes,
        headers={"content-type": "application/x-ndjson"},
    )


def restore(
    repo: str,
    rev: str,
    *,
    branch: str = DEFAULT_BRANCH,
    path: Optional[str] = None,
    message: Optional[str] = None,
    author: Optional[Signature] = None,
    expected_head: Optional[str] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Call[CommitResult]:
    """Bring back the tree of revision ``rev`` (or only its ``path``) as a new commit on
    ``branch``; history is kept, so a restore can itself be undone."""
    body = _fields(rev=rev, path=path, message=message, expected_head=expected_head)
    body["author"] = _signature(author)
    body.update(extra or {})
    return Call("POST", _repo(repo, "branches", _segment(branch), "restore"), _as(CommitResult), body=body)


def prune(
    repo: str,
    *,
    branch: str = DEFAULT_BRANCH,
    keep_last: Optional[int] = None,
    keep_within: Optional[_dt.timedelta] = None,
    count_dropped: Optional[bool] = None,
    max_attempts: Optional[int] = None,
) -> Call[Pruned]:
    """Rewrite ``branch`` to keep only its newest commits: the last ``keep_last``, and/or
    those committed within ``keep_within`` of now (this machine's clock). The dropped
    commits' objects go at the next GC."""
    retention: Dict[str, Any] = {}
    if keep_last is not None:
        retention["keepLast"] = keep_last
    if keep_within is not None:
        retention["keepWithin"] = {
            "durationMs": int(keep_within.total_seconds() * 1000),
            "nowMs": int(time.time() * 1000),
        }
    body = _fields(retention=retention, count_dropped=count_dropped, max_attempts=max_attempts)
    return Call("POST", _repo(repo, "branches", _segment(branch), "prune"), _as(Pruned), body=body)


# ---------------------------------------------------------------------------------------
# Reads


def _read_file_reply(path: str) -> Callable[[Reply], File]:
    def parse(reply: Reply) -> File:
        return File(
            path=path,
            id=reply.headers.get("etag", "").strip('"'),
            mode=mode_name(reply.headers.get("x-snapgit-mode", "regular")),
            data=reply.content,
            commit=reply.headers.get("x-snapgit-commit"),
        )

    return parse


def read_file(repo: str, path: str, *, rev: Optional[str] = None) -> Call[File]:
    """One file's bytes at ``rev`` (``main``), with its blob id and the commit read."""
    return Call("GET", _repo(repo, "files", _file_path(path)), _read_file_reply(path), params=_params(rev=rev))


def read_file_if_changed(repo: str, path: str, etag: str, *, rev: Optional[str] = None) -> Call[Optional[File]]:
    """The file unless its blob id is still ``etag`` (a :attr:`File.id` read before):
    ``None`` when it is unchanged, without its bytes crossing the network."""
    parse = _read_file_reply(path)
    return Call(
        "GET",
        _repo(repo, "files", _file_path(path)),
        lambda reply: None if reply.status == 304 else parse(reply),
        params=_params(rev=rev),
        headers={"if-none-match": f'"{etag.strip(chr(34))}"'},
        accept=(304,),
    )


def read_files(
    repo: str,
    paths: Optional[Iterable[str]] = None,
    *,
    folder: Optional[str] = None,
    rev: Optional[str] = None,
) -> Call[Files]:
    """Many files at one commit: the ``paths`` given (at most 1000), or every file below
    ``folder`` (``""``: the whole tree)."""
    body: Dict[str, Any] = _fields(rev=rev, folder=folder)
    if paths is not None:
        body["paths"] = list(paths)
    return Call("POST", _repo(repo, "read"), _as(Files), body=body)


def list_tree(repo: str, path: str = "", *, rev: Optional[str] = None, recursive: Optional[bool] = None) -> Call[Tree]:
    """The entries of a folder (``""``: the root) without reading any file: every file
    below it, or with ``recursive=False`` one level."""
    route = _repo(repo, "tree", _file_path(path)) if path else _repo(repo, "tree")
    return Call("GET", route, _as(Tree), params=_params(rev=rev, recursive=recursive))


def log(
    repo: str,
    *,
    rev: Optional[str] = None,
    path: Optional[str] = None,
    limit: Optional[int] = None,
    cursor: Optional[str] = None,
    first_parent: Optional[bool] = None,
) -> Call[LogPage]:
    """A page of history from ``rev`` (``main``), newest first; only commits that changed
    ``path`` if given. Pass the page's ``next`` as ``cursor`` for the next page."""
    return Call(
        "GET",
        _repo(repo, "log"),
        _as(LogPage),
        params=_params(rev=rev, path=path, limit=limit, cursor=cursor, first_parent=first_parent),
    )


def show(
    repo: str,
    rev: str = DEFAULT_BRANCH,
    *,
    path: Optional[str] = None,
    patch: bool = False,
    renames: Optional[bool] = None,
) -> Call[Show]:
    """A commit and what it changed from its first parent (``git show --stat``); with
    ``patch=True`` the unified patch too."""
    params = _params(path=path, renames=renames, format="patch" if patch else None)
    return Call("GET", _repo(repo, "commits", _segment(rev)), _as(Show), params=params)


def diff(
    repo: str,
    *,
    from_: Optional[str] = None,
    to: Optional[str] = None,
    path: Optional[str] = None,
    renames: Optional[bool] = None,
) -> Call[Diff]:
    """The difference between revisions ``from_`` (default: ``to``'s first parent) and
    ``to`` (``main``): every changed file with its ids and line counts (the patch is
    :meth:`diff_text` with ``"patch"``)."""
    params = _params(from_=from_, to=to, path=path, renames=renames)
    return Call("GET", _repo(repo, "diff"), _as(Diff), params=params)


def diff_text(
    repo: str,
    format: str,
    *,
    from_: Optional[str] = None,
    to: Optional[str] = None,
    path: Optional[str] = None,
    renames: Optional[bool] = None,
) -> Call[str]:
    """The difference as git prints it: ``format`` is ``"name-status"``, ``"numstat"`` or
    ``"patch"``. Bytes that are not UTF-8 come back as surrogates
    (``.encode("utf-8", "surrogateescape")`` restores them)."""
    params = _params(from_=from_, to=to, path=path, renames=renames, format=format)
    return Call("GET", _repo(repo, "diff"), lambda reply: _wire.text_of(reply.content), params=params)


# ---------------------------------------------------------------------------------------
# The store (admin tokens with the repos ["*"])


def footprint() -> Call[Footprint]:
    """What the store holds: every object, per repo, and what no ref reaches."""
    return Call("GET", "/v1/footprint", _as(Footprint))


def gc(*, grace_ms: Optional[int] = None, batch: Optional[int] = None) -> Call[Collected]:
    """Garbage collection of the whole store: unreachable objects older than ``grace_ms``
    are deleted (safe while writers run, if the grace exceeds their longest commit)."""
    return Call("POST", "/v1/gc", _as(Collected), body=_fields(grace_ms=grace_ms, batch=batch))


def cap(*, max_bytes: int, keep_last: Optional[int] = None) -> Call[Capped]:
    """A size cap for the whole store: the oldest history pruned first, one commit per
    repo in turn, until what the refs reach fits ``max_bytes`` (every branch keeping
    ``keep_last`` commits, default 1). ``compact(drop_unreachable=True)`` and ``gc`` then
    free the space."""
    return Call("POST", "/v1/cap", _as(Capped), body=_fields(max_bytes=max_bytes, keep_last=keep_last))


def compact(
    *,
    grace_ms: Optional[int] = None,
    window: Optional[int] = None,
    depth: Optional[int] = None,
    factor: Optional[int] = None,
    min_loose: Optional[int] = None,
    min_packs: Optional[int] = None,
    drop_unreachable: Optional[bool] = None,
) -> Call[Compacted]:
    """Loose objects into a pack with deltas, small packs merged (cheap to call often
    with ``min_loose``). With ``drop_unreachable``, what no ref reaches (what ``prune``
    left) is left out of a new pack, and the old packs go at a later call, once the new
    one is older than the grace period."""
    body = _fields(
        grace_ms=grace_ms,
        window=window,
        depth=depth,
        factor=factor,
        min_loose=min_loose,
        min_packs=min_packs,
        drop_unreachable=drop_unreachable,
    )
    return Call("POST", "/v1/compact", _as(Compacted), body=body)


class LogWalk:
    """Every page of a log, as calls to send: call :meth:`next_call` until it returns
    ``None``, and answer each call with :meth:`handle`, which gives that page's commits.

    The walk is pinned to the commit ``rev`` names when it starts (a cursor continues
    one walk, so later pages must not start from a branch that has moved since): without
    a path the first page's first commit is that commit; with one, a first page of one
    commit without the path finds it.
    """

    def __init__(
        self,
        repo: str,
        *,
        rev: Optional[str] = None,
        path: Optional[str] = None,
        page_size: Optional[int] = None,
        first_parent: Optional[bool] = None,
    ) -> None:
        self._repo = repo
        self._rev = rev
        self._path = path
        self._page_size = page_size
        self._first_parent = first_parent
        self._start: Optional[str] = None
        self._cursor: Optional[str] = None
        self._done = False

    def next_call(self) -> Optional[Call[LogPage]]:
        """The next page to ask for, or ``None`` when the walk is complete."""
        if self._done:
            return None
        if self._start is None and self._path is not None:
            return log(self._repo, rev=self._rev, limit=1, first_parent=self._first_parent)
        return log(
            self._repo,
            rev=self._start or self._rev,
            path=self._path,
            limit=self._page_size,
            cursor=self._cursor,
            first_parent=self._first_parent,
        )

    def handle(self, page: LogPage) -> List[CommitInfo]:
        """Take the answer to the last call; the commits it adds to the walk."""
        if self._start is None:
            if not page.commits:
                self._done = True
                return []
            self._start = page.commits[0].id
            if self._path is not None:
                return []
        self._cursor = page.next
        self._done = page.next is None
        return page.commits


# ---------------------------------------------------------------------------------------
# NDJSON bodies


def ndjson_head(body: Mapping[str, Any]) -> bytes:
    """The first line of a streamed commit."""
    return _wire.dumps(dict(body)) + b"\n"


def ndjson_change(change: Change) -> Iterable[bytes]:
    """One change's line, in pieces (a file object's data a chunk at a time)."""
    if isinstance(change, Put):
        return _wire.ndjson_put(change.head(), change.data)
    if not hasattr(change, "to_json"):
        raise TypeError(f"a change is a Put, Delete or Rename, not {type(change).__name__}")
    return (_wire.dumps(change.to_json()) + b"\n",)
