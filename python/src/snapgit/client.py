"""The clients: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio), over httpx.

Both expose the same methods, defined once: each is a :class:`Route` over a builder of
``_routes.py`` and takes the builder's parameters. A client only sends what the builder
built — its one driver loop is :meth:`Client._send` / :meth:`AsyncClient._send` — and the
few methods that stream (file downloads, NDJSON commits) or page (:meth:`Client.iter_log`)
are written out for each.
"""

from __future__ import annotations

import contextlib
import os
import sys
import typing
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    BinaryIO,
    Callable,
    Dict,
    Generic,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    TypeVar,
    Union,
    overload,
)

import httpx

from . import _routes, _wire
from ._routes import Call, Reply
from .errors import error_from
from .types import Change, CommitInfo, FileHead, Signature

if sys.version_info >= (3, 10):
    from typing import ParamSpec
elif TYPE_CHECKING:
    from typing_extensions import ParamSpec
else:  # Python 3.9 at run time: only type checkers look at the parameters.

    def ParamSpec(name: str) -> Any:
        return TypeVar(name)


__all__ = ["AsyncClient", "AsyncFileDownload", "Client", "FileDownload", "DEFAULT_URL"]

P = ParamSpec("P")
T = TypeVar("T")

#: Where ``snapgit serve`` listens by default.
DEFAULT_URL = "http://127.0.0.1:8080"

#: Seconds a request may take by default (a GC or compaction of a large store may need more).
DEFAULT_TIMEOUT = 60.0


class Route(Generic[P, T]):
    """A method of both clients: on :class:`Client` it returns the result, on
    :class:`AsyncClient` an awaitable of it. Its parameters and docs are the builder's."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, client: None, owner: type) -> "Route[P, T]": ...

    @overload
    def __get__(self, client: "Client", owner: type) -> Callable[P, T]: ...

    @overload
    def __get__(self, client: "AsyncClient", owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        return client._bind(self.build)


class _Api:
    """The routes, once for both clients."""

    health = Route(_routes.health)
    list_repos = Route(_routes.list_repos)
    create_repo = Route(_routes.create_repo)
    delete_repo = Route(_routes.delete_repo)
    list_branches = Route(_routes.list_branches)
    create_branch = Route(_routes.create_branch)
    read_head = Route(_routes.read_head)
    delete_branch = Route(_routes.delete_branch)
    commit = Route(_routes.commit)
    commit_stream = Route(_routes.commit_stream)
    restore = Route(_routes.restore)
    prune = Route(_routes.prune)
    read_file = Route(_routes.read_file)
    read_file_if_changed = Route(_routes.read_file_if_changed)
    read_files = Route(_routes.read_files)
    list_tree = Route(_routes.list_tree)
    log = Route(_routes.log)
    show = Route(_routes.show)
    diff = Route(_routes.diff)
    diff_text = Route(_routes.diff_text)
    footprint = Route(_routes.footprint)
    gc = Route(_routes.gc)
    compact = Route(_routes.compact)
    cap = Route(_routes.cap)

    base_url: str
    author: Optional[Signature]
    _headers: Dict[str, str]

    def _settings(
        self,
        base_url: Optional[str],
        token: Optional[str],
        author: Optional[Signature],
        headers: Optional[Mapping[str, str]],
    ) -> Dict[str, str]:
        self.base_url = (base_url or os.environ.get("SNAPGIT_URL") or DEFAULT_URL).rstrip("/")
        self.author = author
        token = token if token is not None else os.environ.get("SNAPGIT_TOKEN")
        out = {"user-agent": "snapgit-python", "accept": "application/json"}
        out.update(headers or {})
        if token:
            out["authorization"] = f"Bearer {token}"
        return out

    def _body(self, call: Call[Any]) -> Optional[Dict[str, Any]]:
        """The call's body with the client's author where it has none."""
        if call.body is None:
            return None
        body = dict(call.body)
        if "author" in body and body["author"] is None:
            if self.author is None:
                raise ValueError("an author is needed: pass author=Signature(...) here or to the client")
            body["author"] = self.author.to_json()
        return body

    def _request(self, call: Call[Any]) -> Dict[str, Any]:
        """httpx's arguments for a call, but its streamed body."""
        headers = {**self._headers, **call.headers}
        kwargs: Dict[str, Any] = {"params": call.params or None, "headers": headers}
        if call.body is not None and call.stream is None:
            kwargs["content"] = _wire.dumps(self._body(call))
            headers.setdefault("content-type", "application/json")
        return kwargs

    @staticmethod
    def _answer(call: Call[T], reply: Reply) -> T:
        if not (200 <= reply.status < 300 or reply.status in call.accept):
            raise error_from(reply.status, reply.headers.get("content-type", ""), reply.content)
        return call.parse(reply)


def _head_of(path: str, response: httpx.Response) -> FileHead:
    file = _routes._read_file_reply(path)(Reply(response.status_code, response.headers, b""))
    return FileHead(path=file.path, id=file.id, mode=file.mode, commit=file.commit)


def _write_target(dest: Union[str, "os.PathLike[str]", BinaryIO]) -> Any:
    if isinstance(dest, (str, os.PathLike)):
        return open(dest, "wb")
    return contextlib.nullcontext(dest)


# ---------------------------------------------------------------------------------------
# Blocking


class FileDownload:
    """A file being downloaded: its blob id, mode and commit, and its bytes to iterate."""

    def __init__(self, head: FileHead, response: httpx.Response) -> None:
        self.head = head
        self._response = response

    path = property(lambda self: self.head.path)
    id = property(lambda self: self.head.id)
    mode = property(lambda self: self.head.mode)
    commit = property(lambda self: self.head.commit)

    def iter_bytes(self, chunk_size: Optional[int] = None) -> Iterator[bytes]:
        return self._response.iter_bytes(chunk_size)

    def read(self) -> bytes:
        return self._response.read()


class Client(_Api):
    """A blocking client of ``snapgit serve``'s JSON API.

    ``base_url`` defaults to ``$SNAPGIT_URL``, else ``http://127.0.0.1:8080``; ``token``
    to ``$SNAPGIT_TOKEN`` (none for a development server). ``author`` signs commits that
    name no author. Pass ``http`` to send through an ``httpx.Client`` of your own (its
    transport, limits and base URL, when ``base_url`` is not given); it is not closed.

    Every method raises a :class:`~snapgit.errors.SnapgitError` subclass for an error
    answer, and httpx's exceptions for a failed connection.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        author: Optional[Signature] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        headers: Optional[Mapping[str, str]] = None,
        http: Optional[httpx.Client] = None,
    ) -> None:
        if base_url is None and http is not None and str(http.base_url):
            base_url = str(http.base_url)
        self._headers = self._settings(base_url, token, author, headers)
        self._own = http is None
        self._http = http or httpx.Client(timeout=timeout)

    def _bind(self, build: Callable[..., Call[T]]) -> Callable[..., T]:
        def method(*args: Any, **kwargs: Any) -> T:
            return self._send(build(*args, **kwargs))

        method.__name__ = build.__name__
        method.__doc__ = build.__doc__
        return method

    def _send(self, call: Call[T]) -> T:
        kwargs = self._request(call)
        if call.stream is not None:
            if isinstance(call.stream, AsyncIterable):
                raise TypeError("Client.commit_stream takes an iterable of changes; AsyncClient takes an async one")
            kwargs["content"] = self._ndjson(call)
        response = self._http.request(call.method, self.base_url + call.path, **kwargs)
        return self._answer(call, Reply(response.status_code, response.headers, response.content))

    def _ndjson(self, call: Call[Any]) -> Iterator[bytes]:
        yield _routes.ndjson_head(self._body(call) or {})
        for change in typing.cast(Iterable[Change], call.stream):
            yield from _routes.ndjson_change(change)

    def iter_log(
        self,
        repo: str,
        *,
        rev: Optional[str] = None,
        path: Optional[str] = None,
        page_size: Optional[int] = None,
        first_parent: Optional[bool] = None,
    ) -> Iterator[CommitInfo]:
        """Every commit of :meth:`log`, newest first, a page at a time; the walk stays on
        the commit ``rev`` named when it began, wherever the branch moves meanwhile."""
        walk = _routes.LogWalk(repo, rev=rev, path=path, page_size=page_size, first_parent=first_parent)
        while True:
            call = walk.next_call()
            if call is None:
                return
            yield from walk.handle(self._send(call))

    @contextlib.contextmanager
    def stream_file(self, repo: str, path: str, *, rev: Optional[str] = None) -> Iterator[FileDownload]:
        """Download a file without holding it: ``with client.stream_file(...) as f:``
        then ``for chunk in f.iter_bytes(): ...``."""
        call = _routes.read_file(repo, path, rev=rev)
        with self._http.stream(call.method, self.base_url + call.path, **self._request(call)) as response:
            if response.status_code >= 300:
                response.read()
                self._answer(call, Reply(response.status_code, response.headers, response.content))
            yield FileDownload(_head_of(path, response), response)

    def download_file(
        self,
        repo: str,
        path: str,
        dest: Union[str, "os.PathLike[str]", BinaryIO],
        *,
        rev: Optional[str] = None,
        chunk_size: int = 1 << 16,
    ) -> FileHead:
        """Write a file's bytes to ``dest`` (a path, or a binary file object) as they
        arrive; its blob id, mode and commit."""
        with self.stream_file(repo, path, rev=rev) as download, _write_target(dest) as out:
            for chunk in download.iter_bytes(chunk_size):
                out.write(chunk)
            return download.head

    def close(self) -> None:
        """Close the connections (not those of an ``http`` client passed in)."""
        if self._own:
            self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# asyncio


class AsyncFileDownload:
    """A file being downloaded: its blob id, mode and commit, and its bytes to iterate."""

    def __init__(self, head: FileHead, response: httpx.Response) -> None:
        self.head = head
        self._response = response

    path = property(lambda self: self.head.path)
    id = property(lambda self: self.head.id)
    mode = property(lambda self: self.head.mode)
    commit = property(lambda self: self.head.commit)

    def aiter_bytes(self, chunk_size: Optional[int] = None) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes(chunk_size)

    async def read(self) -> bytes:
        return await self._response.aread()


class AsyncClient(_Api):
    """The asyncio client: the methods of :class:`Client`, awaited (``async with
    AsyncClient(...) as client: await client.commit(...)``). ``http`` is an
    ``httpx.AsyncClient`` of your own."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        author: Optional[Signature] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        headers: Optional[Mapping[str, str]] = None,
        http: Optional[httpx.AsyncClient] = None,
    ) -> None:
        if base_url is None and http is not None and str(http.base_url):
            base_url = str(http.base_url)
        self._headers = self._settings(base_url, token, author, headers)
        self._own = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)

    def _bind(self, build: Callable[..., Call[T]]) -> Callable[..., Awaitable[T]]:
        async def method(*args: Any, **kwargs: Any) -> T:
            return await self._send(build(*args, **kwargs))

        method.__name__ = build.__name__
        method.__doc__ = build.__doc__
        return method

    async def _send(self, call: Call[T]) -> T:
        kwargs = self._request(call)
        if call.stream is not None:
            kwargs["content"] = self._ndjson(call)
        response = await self._http.request(call.method, self.base_url + call.path, **kwargs)
        return self._answer(call, Reply(response.status_code, response.headers, response.content))

    async def _ndjson(self, call: Call[Any]) -> AsyncIterator[bytes]:
        """The NDJSON body; a plain iterable of changes is read in the event loop (a file
        object's chunks are blocking reads)."""
        yield _routes.ndjson_head(self._body(call) or {})
        if isinstance(call.stream, AsyncIterable):
            async for change in call.stream:
                for piece in _routes.ndjson_change(change):
                    yield piece
        else:
            for change in typing.cast(Iterable[Change], call.stream):
                for piece in _routes.ndjson_change(change):
                    yield piece

    async def iter_log(
        self,
        repo: str,
        *,
        rev: Optional[str] = None,
        path: Optional[str] = None,
        page_size: Optional[int] = None,
        first_parent: Optional[bool] = None,
    ) -> AsyncIterator[CommitInfo]:
        """Every commit of :meth:`log`, newest first (``async for``); see
        :meth:`Client.iter_log`."""
        walk = _routes.LogWalk(repo, rev=rev, path=path, page_size=page_size, first_parent=first_parent)
        while True:
            call = walk.next_call()
            if call is None:
                return
            for commit in walk.handle(await self._send(call)):
                yield commit

    @contextlib.asynccontextmanager
    async def stream_file(self, repo: str, path: str, *, rev: Optional[str] = None) -> AsyncIterator[AsyncFileDownload]:
        """Download a file without holding it: ``async with client.stream_file(...) as
        f:`` then ``async for chunk in f.aiter_bytes(): ...``."""
        call = _routes.read_file(repo, path, rev=rev)
        async with self._http.stream(call.method, self.base_url + call.path, **self._request(call)) as response:
            if response.status_code >= 300:
                await response.aread()
                self._answer(call, Reply(response.status_code, response.headers, response.content))
            yield AsyncFileDownload(_head_of(path, response), response)

    async def download_file(
        self,
        repo: str,
        path: str,
        dest: Union[str, "os.PathLike[str]", BinaryIO],
        *,
        rev: Optional[str] = None,
        chunk_size: int = 1 << 16,
    ) -> FileHead:
        """Write a file's bytes to ``dest`` (a path, or a binary file object) as they
        arrive; its blob id, mode and commit. Writes are blocking file writes."""
        async with self.stream_file(repo, path, rev=rev) as download:
            with _write_target(dest) as out:
                async for chunk in download.aiter_bytes(chunk_size):
                    out.write(chunk)
            return download.head

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http`` client passed in)."""
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

