"""Bodies over the server's ``--max-request-bytes``: 413 LIMIT, and nothing written."""

from __future__ import annotations

import io
from typing import Iterator

import httpx
import pytest
from conftest import AUTHOR, Server, author_json, ndjson, problem

from snapgit import Client, LimitExceeded, PolicyViolation, Put

LIMIT = 4096
OVER = "x" * (LIMIT + 100)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("small"), "--max-request-bytes", str(LIMIT))
    with Client(s.url, author=AUTHOR) as c:
        c.create_repo("agent-1", {"a.md": "a\n"})
    yield s
    s.stop()


@pytest.fixture
def nothing_written(small: Server) -> Iterator[None]:
    refs, objects = small.refs(), small.objects()
    yield
    assert small.refs() == refs and small.objects() == objects


def test_a_commit_over_the_limit(small: Server, nothing_written: None):
    with Client(small.url, author=AUTHOR) as c:
        with pytest.raises(LimitExceeded) as err:
            c.commit("agent-1", {"big.md": OVER}, message="too big")
        assert err.value.status == 413 and err.value.fields["limit"] == LIMIT
        with pytest.raises(LimitExceeded):
            c.commit_stream("agent-1", [Put("big.bin", io.BytesIO(OVER.encode()))], message="too big")


def test_a_commit_under_the_limit(small: Server):
    with Client(small.url, author=AUTHOR) as c:
        assert c.commit("agent-1", {"small.md": "fits\n"}, message="fits").commit == small.head("agent-1")


def test_an_ndjson_commit_over_the_limit_over_http(small: Server, nothing_written: None):
    body = ndjson([{"author": author_json(), "message": "m"}] + [{"type": "put", "path": f"f{i}", "data": "y" * 500} for i in range(10)])
    answer = httpx.post(f"{small.url}/v1/repos/agent-1/branches/main/commits", content=body, headers={"content-type": "application/x-ndjson"})
    assert problem(answer, 413, "LIMIT")["limit"] == LIMIT


OTHER_ROUTES = [
    ("/v1/repos", {"repo": "agent-2", "files": [{"type": "put", "path": "a", "data": OVER}], "author": author_json()}),
    ("/v1/repos/agent-1/branches", {"branch": "x", "padding": OVER}),
    ("/v1/repos/agent-1/branches/main/restore", {"rev": "main", "message": OVER, "author": author_json()}),
    ("/v1/repos/agent-1/branches/main/prune", {"retention": {"keepLast": 1}, "padding": OVER}),
    ("/v1/repos/agent-1/read", {"paths": ["a.md"] * 1000}),
    ("/v1/gc", {"padding": OVER}),
    ("/v1/compact", {"padding": OVER}),
]


@pytest.mark.parametrize("route, body", OTHER_ROUTES, ids=[r for r, _ in OTHER_ROUTES])
def test_other_bodies_over_the_limit_are_refused(small: Server, nothing_written: None, route: str, body: dict):
    answer = httpx.post(f"{small.url}{route}", json=body)
    assert answer.status_code == 413


@pytest.mark.parametrize("route, body", OTHER_ROUTES, ids=[r for r, _ in OTHER_ROUTES])
def test_other_bodies_over_the_limit_are_problems(small: Server, route: str, body: dict):
    assert problem(httpx.post(f"{small.url}{route}", json=body), 413, "LIMIT")["limit"] == LIMIT


def test_the_client_maps_a_plain_413_to_limit_exceeded(small: Server, nothing_written: None):
    with Client(small.url, author=AUTHOR) as c:
        with pytest.raises(LimitExceeded):
            c.create_repo("agent-2", {"a": OVER})


def test_the_servers_write_policy_holds_for_api_commits(tmp_path_factory: pytest.TempPathFactory):
    s = Server(tmp_path_factory.mktemp("policy"), "--max-file-size", "16", "--exclude", "*.env")
    try:
        with Client(s.url, author=AUTHOR) as c:
            head = s.head("default")
            for files in ({"big.md": "x" * 100}, {"secret.env": "k=v\n"}):
                try:
                    with pytest.raises(PolicyViolation):
                        c.commit("default", files, message="against the policy")
                finally:
                    assert s.head("default") == head
    finally:
        s.stop()
