"""The parts without a server: contents, JSON into results, errors, routes, NDJSON, paging."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os

import pytest

from snapgit import (
    Client,
    CommitInfo,
    Delete,
    Diff,
    FileChange,
    Forbidden,
    HeadMoved,
    InvalidInput,
    LimitExceeded,
    LogPage,
    NotFound,
    Put,
    Rename,
    Signature,
    SnapgitError,
    Time,
    Unauthorized,
)
from snapgit import _routes, _wire
from snapgit.errors import error_from
from snapgit.types import changes_of


@pytest.mark.parametrize(
    "data, wire",
    [
        (b"hello\n", {"text": "hello\n"}),
        ("héllo", {"text": "héllo"}),
        (b"\x00\x01", {"text": "\x00\x01"}),
        (b"\xff\xfe", {"base64": "//4="}),
        (bytearray(b"ab"), {"text": "ab"}),
        (io.BytesIO(b"\x80"), {"base64": "gA=="}),
    ],
)
def test_contents_are_text_when_utf8_else_base64(data, wire):
    assert _wire.encode_content(data) == wire


@pytest.mark.parametrize(
    "wire, data",
    [
        ({"text": "a\n"}, b"a\n"),
        ({"base64": "//4="}, b"\xff\xfe"),
        ("plain", b"plain"),
        ([0, 255], b"\x00\xff"),
    ],
)
def test_contents_decode_every_form(wire, data):
    assert _wire.decode_content(wire) == data


@pytest.mark.parametrize("wire", [{"hex": "00"}, {"text": "a", "base64": "YQ=="}, {"base64": "!!"}, 5])
def test_contents_refuse_other_forms(wire):
    with pytest.raises((ValueError, TypeError)):
        _wire.decode_content(wire)


def test_a_file_object_streams_as_one_base64_string_in_chunks():
    data = os.urandom(_wire._CHUNK * 2 + 5)
    pieces = list(_wire.ndjson_put({"type": "put", "path": "big.bin"}, io.BytesIO(data)))
    assert len(pieces) > 3, "read and sent a chunk at a time"
    line = b"".join(pieces)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    change = json.loads(line)
    assert change["type"] == "put" and change["path"] == "big.bin"
    assert base64.b64decode(change["data"]["base64"], validate=True) == data


class _Trickle(io.RawIOBase):
    """A pipe that hands out a few bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 7) if size >= 0 else 7)


def test_short_reads_do_not_put_padding_in_the_middle():
    data = os.urandom(_wire._CHUNK + 100)
    line = b"".join(_wire.ndjson_put({"type": "put", "path": "p"}, _Trickle(data)))
    assert base64.b64decode(json.loads(line)["data"]["base64"], validate=True) == data


def test_ndjson_lines_of_every_change():
    lines = [b"".join(_routes.ndjson_change(c)) for c in [Put("a", "x", mode="executable"), Delete("b"), Rename("c", "d")]]
    assert [json.loads(line) for line in lines] == [
        {"type": "put", "path": "a", "mode": "executable", "data": {"text": "x"}},
        {"type": "delete", "path": "b"},
        {"type": "rename", "from": "c", "to": "d"},
    ]


def test_a_mapping_of_changes_puts_and_deletes():
    assert changes_of({"a": "1", "b": None}) == [Put("a", "1"), Delete("b")]
    with pytest.raises(TypeError):
        changes_of([{"type": "put"}])


def test_results_read_camel_case_ignore_unknown_keys_and_renames():
    change = _wire.from_json(
        FileChange,
        {
            "path": "b.md",
            "kind": {"renamed": {"from": "a.md"}},
            "old": {"id": "1" * 40, "mode": "regular"},
            "new": {"id": "1" * 40, "mode": "executable"},
            "binary": False,
            "lines": {"added": 2, "removed": 1},
            "someday": True,
        },
    )
    assert (change.kind, change.renamed_from, change.new.mode, change.additions, change.deletions) == (
        "renamed",
        "a.md",
        "executable",
        2,
        1,
    )
    diff = _wire.from_json(Diff, {"from": None, "to": "2" * 40, "files": [], "patch": {"base64": "/w=="}})
    assert diff.from_ is None and diff.patch == b"\xff"


def test_results_refuse_what_is_not_their_shape():
    with pytest.raises(ValueError):
        _wire.from_json(LogPage, {"commits": "x", "next": None})
    with pytest.raises(ValueError):
        _wire.from_json(Time, {"seconds": "soon"})


def test_times_round_trip_through_datetime():
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    time = Time.from_datetime(when)
    assert time == Time(int(when.timestamp()), 120)
    assert time.to_datetime() == when
    assert Signature("a", "b", time).to_json() == {"name": "a", "email": "b", "time": {"seconds": time.seconds, "offsetMinutes": 120}}


def test_problems_become_the_class_of_their_code():
    body = json.dumps(
        {"type": "urn:snapgit:error:HEAD_MOVED", "title": "HEAD_MOVED", "status": 412, "detail": "moved", "code": "HEAD_MOVED", "expected": "a", "actual": "b"}
    ).encode()
    err = error_from(412, "application/problem+json", body)
    assert isinstance(err, HeadMoved) and (err.code, err.status, err.detail) == ("HEAD_MOVED", 412, "moved")
    assert (err.expected, err.actual, err.fields) == ("a", "b", {"expected": "a", "actual": "b"})
    unknown = error_from(418, "application/problem+json", b'{"code": "TEAPOT", "detail": "x"}')
    assert type(unknown) is SnapgitError and unknown.code == "TEAPOT"


def test_statuses_name_answers_that_are_not_problems():
    assert isinstance(error_from(413, "text/plain", b"too large"), LimitExceeded)
    assert isinstance(error_from(404, "text/plain", b"no such route"), NotFound)
    assert isinstance(error_from(400, "application/json", b"not json"), InvalidInput)
    auth = error_from(401, "application/problem+json", b'{"code": "INVALID_INPUT", "detail": "token"}')
    assert isinstance(auth, Unauthorized) and auth.code == "INVALID_INPUT"
    assert isinstance(error_from(403, "text/plain", b"no"), Forbidden)


def test_names_and_paths_are_escaped_segment_by_segment():
    assert _routes.read_head("r", "feat/x").path == "/v1/repos/r/branches/feat%2Fx"
    assert _routes.read_file("r", "../x").path == "/v1/repos/r/files/%2E%2E/x"
    assert _routes.read_file("r", "a b/c?d#e").path == "/v1/repos/r/files/a%20b/c%3Fd%23e"
    assert _routes.show("r", "main~2").path == "/v1/repos/r/commits/main~2"
    assert _routes.list_tree("r").path == "/v1/repos/r/tree"
    assert _routes.log("r", first_parent=False, limit=3).params == {"firstParent": "false", "limit": "3"}
    assert _routes.diff("r", from_="a", to="b").params == {"from": "a", "to": "b"}
    with pytest.raises(ValueError):
        _routes.read_file("r", "")


def test_a_commit_without_an_author_takes_the_clients_or_says_what_is_missing():
    call = _routes.commit("r", {"a": "1"}, message="m")
    assert call.body is not None and call.body["author"] is None
    signed = Client("http://127.0.0.1:9", author=Signature("n", "e"))
    assert signed._body(call)["author"] == {"name": "n", "email": "e"}
    with pytest.raises(ValueError, match="author"):
        Client("http://127.0.0.1:9")._body(call)


def _page(ids, next=None):
    sig = {"name": "a", "email": "b", "time": {"seconds": 0, "offsetMinutes": 0}}
    commits = [_wire.from_json(CommitInfo, {"id": i, "tree": "t", "parents": [], "author": sig, "committer": sig, "message": ""}) for i in ids]
    return LogPage(commits, next)


def test_the_log_walk_is_pinned_to_its_first_commit():
    walk = _routes.LogWalk("r", rev="main", page_size=2)
    assert walk.next_call().params == {"rev": "main", "limit": "2"}
    assert [c.id for c in walk.handle(_page(["c3", "c2"], "cur"))] == ["c3", "c2"]
    assert walk.next_call().params == {"rev": "c3", "limit": "2", "cursor": "cur"}
    assert [c.id for c in walk.handle(_page(["c1"]))] == ["c1"]
    assert walk.next_call() is None


def test_a_log_walk_of_a_path_finds_its_start_first():
    walk = _routes.LogWalk("r", path="notes")
    assert walk.next_call().params == {"limit": "1"}
    assert walk.handle(_page(["c9"], "x")) == []
    assert walk.next_call().params == {"rev": "c9", "path": "notes"}
    assert [c.id for c in walk.handle(_page(["c5"]))] == ["c5"]
    assert walk.next_call() is None


def test_the_blocking_client_refuses_an_async_stream_of_changes():
    async def changes():
        yield Put("a", "b")

    with Client("http://127.0.0.1:9", author=Signature("n", "e")) as c:
        with pytest.raises(TypeError, match="AsyncClient"):
            c.commit_stream("r", changes(), message="m")
