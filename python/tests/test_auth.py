"""A server with tokens: 401 without a known token, 403 for a token without the access
or the repo, and nothing written either way (every ref and object as it was)."""

from __future__ import annotations

import base64
import json
from typing import Dict, Iterator, List, Optional, Tuple

import httpx
import pytest
from conftest import AUTHOR, Server, author_json, problem

from snapgit import Client, Forbidden, SnapgitError, Unauthorized

READER = "reader-0123456789abcdef"
WRITER = "writer-0123456789abcdef"
ADMIN_SOME = "admin-agents-0123456789abcdef"
ADMIN = "admin-all-0123456789abcdef"
TOKENS = {
    "tokens": [
        {"token": READER, "repos": ["agent-*"], "access": "read"},
        {"token": WRITER, "repos": ["agent-*"], "access": "write"},
        {"token": ADMIN_SOME, "repos": ["agent-*"], "access": "admin"},
        {"token": ADMIN, "repos": ["*"], "access": "admin"},
    ]
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tokens")
    (root / "tokens.json").write_text(json.dumps(TOKENS))
    s = Server(root, "--tokens", str(root / "tokens.json"))
    with Client(s.url, ADMIN, author=AUTHOR) as admin:
        admin.create_repo("agent-1", {"a.md": "a\n"})
        admin.create_repo("other", {"o.md": "o\n"})
    yield s
    s.stop()


@pytest.fixture
def nothing_written(guarded: Server) -> Iterator[None]:
    refs, objects = guarded.refs(), guarded.objects()
    yield
    assert guarded.refs() == refs, "a refused request moved a ref"
    assert guarded.objects() == objects, "a refused request stored an object"


def routes(repo: str) -> List[Tuple[str, str, str, Optional[Dict[str, object]]]]:
    """Every route: (access it needs, method, path, body)."""
    author = author_json()
    return [
        ("read", "GET", "/v1/repos", None),
        ("read", "GET", f"/v1/repos/{repo}/branches", None),
        ("read", "GET", f"/v1/repos/{repo}/branches/main", None),
        ("read", "GET", f"/v1/repos/{repo}/files/a.md", None),
        ("read", "POST", f"/v1/repos/{repo}/read", {"paths": ["a.md"]}),
        ("read", "GET", f"/v1/repos/{repo}/tree", None),
        ("read", "GET", f"/v1/repos/{repo}/tree/x", None),
        ("read", "GET", f"/v1/repos/{repo}/log", None),
        ("read", "GET", f"/v1/repos/{repo}/commits/main", None),
        ("read", "GET", f"/v1/repos/{repo}/diff", None),
        ("write", "POST", "/v1/repos", {"repo": repo, "author": author}),
        ("write", "POST", f"/v1/repos/{repo}/branches", {"branch": "x"}),
        ("write", "DELETE", f"/v1/repos/{repo}/branches/main", None),
        ("write", "POST", f"/v1/repos/{repo}/branches/main/commits", {"changes": [{"type": "put", "path": "x", "data": "x"}], "author": author, "message": "m"}),
        ("write", "POST", f"/v1/repos/{repo}/branches/main/restore", {"rev": "main", "author": author}),
        ("write", "POST", f"/v1/repos/{repo}/branches/main/prune", {"retention": {"keepLast": 1}}),
        ("admin", "DELETE", f"/v1/repos/{repo}", None),
        ("store", "GET", "/v1/footprint", None),
        ("store", "POST", "/v1/gc", {"graceMs": 0}),
        ("store", "POST", "/v1/compact", {"graceMs": 0}),
        ("store", "POST", "/v1/cap", {"maxBytes": 10**12}),
    ]


def send(server: Server, method: str, route: str, body: Optional[dict], headers: Dict[str, str]) -> httpx.Response:
    if route.endswith("/commits") and body is not None:
        # Streamed commits are checked too: the token is read before the body.
        lines = [{k: v for k, v in body.items() if k != "changes"}, *body["changes"]]
        content = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return httpx.post(server.url + route, content=content, headers={**headers, "content-type": "application/x-ndjson"})
    return httpx.request(method, server.url + route, json=body, headers=headers)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-0123456789abcdef", f"Bearer {READER}x", "Bearer", f"Token {READER}", "Basic !!!"])
def test_no_known_token_is_401_on_every_route(guarded: Server, nothing_written: None, authorization: Optional[str]):
    headers = {"authorization": authorization} if authorization else {}
    for _, method, route, body in routes("agent-1"):
        answer = send(guarded, method, route, body, headers)
        problem(answer, 401, "UNAUTHORIZED")
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_read_token_may_not_write(guarded: Server, nothing_written: None):
    for access, method, route, body in routes("agent-1"):
        answer = send(guarded, method, route, body, {"authorization": f"Bearer {READER}"})
        if access == "read":
            assert answer.status_code in (200, 404), (route, answer.text)
        else:
            problem(answer, 403, "FORBIDDEN")


def test_a_token_out_of_its_repos_is_403(guarded: Server, nothing_written: None):
    for token in (READER, WRITER, ADMIN_SOME):
        for access, method, route, body in routes("other"):
            if route in ("/v1/repos",) and method == "GET":
                continue
            body = dict(body, repo="other") if route == "/v1/repos" and body else body
            answer = send(guarded, method, route, body, {"authorization": f"Bearer {token}"})
            assert problem(answer, 403, "FORBIDDEN").get("repo", "other") == "other", route


def test_write_and_repo_admin_tokens_may_not_run_the_store(guarded: Server, nothing_written: None):
    for token in (WRITER, ADMIN_SOME):
        for access, method, route, body in routes("agent-1"):
            if access == "store":
                detail = problem(send(guarded, method, route, body, {"authorization": f"Bearer {token}"}), 403, "FORBIDDEN")["detail"]
                assert "whole store" in detail
    problem(send(guarded, "DELETE", "/v1/repos/agent-1", None, {"authorization": f"Bearer {WRITER}"}), 403, "FORBIDDEN")


def test_the_client_raises_unauthorized_and_forbidden(guarded: Server, nothing_written: None):
    with Client(guarded.url, author=AUTHOR) as anonymous:
        with pytest.raises(Unauthorized) as err:
            anonymous.commit("agent-1", {"x": "x"}, message="m")
        assert err.value.status == 401 and err.value.code == "UNAUTHORIZED"
        with pytest.raises(Unauthorized):
            anonymous.read_file("agent-1", "a.md")
        with pytest.raises(Unauthorized):
            with anonymous.stream_file("agent-1", "a.md"):
                pass
    with Client(guarded.url, READER, author=AUTHOR) as reader:
        assert reader.read_file("agent-1", "a.md").data == b"a\n"
        for write in [
            lambda: reader.commit("agent-1", {"x": "x"}, message="m"),
            lambda: reader.commit_stream("agent-1", iter([]), message="m", allow_empty=True),
            lambda: reader.create_repo("agent-2"),
            lambda: reader.restore("agent-1", "main"),
            lambda: reader.prune("agent-1", keep_last=1),
            lambda: reader.create_branch("agent-1", "x"),
            lambda: reader.delete_branch("agent-1", "main"),
            lambda: reader.delete_repo("agent-1"),
            lambda: reader.read_head("other"),
            lambda: reader.gc(grace_ms=0),
        ]:
            with pytest.raises(Forbidden) as forbidden:
                write()
            assert forbidden.value.status == 403
    with Client(guarded.url, WRITER, author=AUTHOR) as writer:
        with pytest.raises(Forbidden):
            writer.delete_repo("agent-1")
        with pytest.raises(Forbidden):
            writer.footprint()
        with pytest.raises(SnapgitError):
            writer.read_files("other", ["o.md"])


def test_tokens_that_may(guarded: Server):
    with Client(guarded.url, READER) as reader:
        assert reader.list_repos() == ["agent-1"], "a listing shows only the repos the token may read"
        assert reader.health().status == "ok"
    with Client(guarded.url, WRITER, author=AUTHOR) as writer:
        result = writer.commit("agent-1", {"w.md": "written\n"}, message="by the writer")
        assert result.commit == guarded.head("agent-1")
        writer.create_repo("agent-3", {"x.md": "x\n"})
    with Client(guarded.url, ADMIN_SOME) as admin:
        assert admin.delete_repo("agent-3") == [guarded.ref("agent-3")]
    with Client(guarded.url, ADMIN) as admin:
        assert admin.list_repos() == ["agent-1", "default", "other"]
        assert [r.repo for r in admin.footprint().repos] == ["agent-1", "default", "other"]
        assert admin.gc().refs == 3
        admin.compact(min_loose=10_000_000)
    basic = base64.b64encode(f"git:{WRITER}".encode()).decode()
    answer = httpx.get(f"{guarded.url}/v1/repos/agent-1/branches/main", headers={"authorization": f"Basic {basic}"})
    assert answer.json() == {"head": guarded.head("agent-1")}
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200, "health needs no token"
    guarded.fsck()
