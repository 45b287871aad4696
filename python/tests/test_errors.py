"""Every error code core has that a request can cause, through the client and over raw
HTTP: its status, its problem+json body and its exception class. (``MISUSE`` — an
operation driven out of order — is the server's own fault and no request causes it.)"""

from __future__ import annotations

import subprocess
import threading
from typing import Callable, List

import httpx
import pytest
from conftest import AUTHOR, Server, author_json, new_name, problem

from snapgit import (
    AlreadyExists,
    Client,
    Conflict,
    Corrupt,
    EmptyCommit,
    HeadMoved,
    InvalidInput,
    LimitExceeded,
    LostRace,
    NotFound,
    PolicyViolation,
    Put,
    SnapgitError,
    StorageFailed,
    Unsupported,
)


def commit_body(changes, **fields):
    return {"changes": changes, "author": author_json(), "message": "m", **fields}


def test_invalid_input(client: Client, http: httpx.Client, repo: str):
    cases: List[Callable[[], object]] = [
        lambda: client.create_repo("bad name"),
        lambda: client.commit(repo, {"../x": "x"}, message="m"),
        lambda: client.commit(repo, {".git/config": "x"}, message="m"),
        lambda: client.commit(repo, {"x": "x"}, message="m", author=AUTHOR.__class__("A<", "a@x")),
        lambda: client.commit(repo, {"x": "x"}, message="m", on_conflict="sometimes"),
        lambda: client.create_branch(repo, "a..b"),
        lambda: client.log(repo, limit=0),
        lambda: client.log(repo, cursor="zz"),
        lambda: client.list_tree(repo, "b.txt"),
        lambda: client.prune(repo),
        lambda: client.gc(batch=0),
        lambda: client.compact(factor=1),
    ]
    for case in cases:
        with pytest.raises(InvalidInput) as err:
            case()
        assert err.value.status == 400 and err.value.code == "INVALID_INPUT" and err.value.detail
    body = problem(http.post(f"/v1/repos/{repo}/branches/main/commits", json=commit_body([{"type": "put", "path": "../x", "data": "x"}])), 400, "INVALID_INPUT")
    assert body["value"] == "../x"


def test_not_found(client: Client, http: httpx.Client, repo: str):
    for case in [
        lambda: client.list_branches(new_name("none")),
        lambda: client.read_head(repo, "nope"),
        lambda: client.read_file(repo, "nope.md"),
        lambda: client.read_file(repo, "b.txt", rev="nope"),
        lambda: client.commit(repo, [Put("x", "x")], message="m", branch="nope"),
        lambda: client.commit(repo, {"nope": None}, message="m"),
        lambda: client.restore(repo, "main", path="nope"),
        lambda: client.delete_repo(new_name("none")),
    ]:
        with pytest.raises(NotFound) as err:
            case()
        assert err.value.status == 404
    body = problem(http.get(f"/v1/repos/{repo}/files/nope.md"), 404, "NOT_FOUND")
    assert body["value"] == "nope.md" and body["commit"] == client.read_head(repo)


def test_already_exists(client: Client, http: httpx.Client, repo: str):
    with pytest.raises(AlreadyExists):
        client.create_repo(repo)
    with pytest.raises(AlreadyExists):
        client.create_branch(repo, "main")
    assert problem(http.post("/v1/repos", json={"repo": repo, "author": author_json()}), 409, "ALREADY_EXISTS")["value"] == repo


def test_head_moved(client: Client, http: httpx.Client, repo: str):
    old = client.read_head(repo)
    new = client.commit(repo, {"x": "x"}, message="m").commit
    with pytest.raises(HeadMoved) as err:
        client.restore(repo, "main~1", expected_head=old)
    assert (err.value.status, err.value.expected, err.value.actual) == (412, old, new)
    body = problem(http.post(f"/v1/repos/{repo}/branches/main/commits", json=commit_body([{"type": "delete", "path": "x"}], expectedHead=old)), 412, "HEAD_MOVED")
    assert (body["expected"], body["actual"]) == (old, new)


def test_empty_commit(client: Client, http: httpx.Client, repo: str):
    with pytest.raises(EmptyCommit) as err:
        client.commit(repo, [], message="nothing")
    assert err.value.status == 422
    problem(http.post(f"/v1/repos/{repo}/branches/main/commits", json=commit_body([])), 422, "EMPTY_COMMIT")


def test_policy(client: Client, http: httpx.Client, repo: str):
    with pytest.raises(PolicyViolation) as err:
        client.commit(repo, {"big": "x" * 100}, message="m", extra={"policy": {"maxFileBytes": 10}})
    assert err.value.status == 422 and err.value.fields["limit"] == 10
    with pytest.raises(PolicyViolation):
        client.commit(repo, {"secret.env": "x"}, message="m", extra={"policy": {"exclude": ["*.env"]}})
    problem(http.post(f"/v1/repos/{repo}/branches/main/commits", json=commit_body([{"type": "put", "path": "a.env", "data": "1"}], policy={"exclude": ["*.env"]})), 422, "POLICY")


def test_limit_of_paths_in_one_read(client: Client, http: httpx.Client, repo: str):
    with pytest.raises(LimitExceeded) as err:
        client.read_files(repo, ["b.txt"] * 1001)
    assert err.value.status == 413 and err.value.fields == {"limit": 1000, "value": 1001}
    problem(http.post(f"/v1/repos/{repo}/read", json={"paths": ["b.txt"] * 1001}), 413, "LIMIT")


def test_conflict_of_a_file_in_the_way(client: Client, http: httpx.Client, repo: str):
    with pytest.raises(Conflict) as err:
        client.commit(repo, {"b.txt/inside": "x"}, message="m")
    assert err.value.status == 409 and err.value.fields["at"] == "b.txt"
    problem(http.post(f"/v1/repos/{repo}/branches/main/commits", json=commit_body([{"type": "put", "path": "b.txt/x", "data": "x"}])), 409, "CONFLICT")


def race(client: Client, repo: str, writers: int, change: Callable[[int], dict], **options) -> List[object]:
    """``writers`` commits at once to main without the server's lock; their results."""
    results: List[object] = [None] * writers
    barrier = threading.Barrier(writers)

    def write(i: int) -> None:
        barrier.wait()
        try:
            results[i] = client.commit(repo, change(i), message=f"writer {i}", extra={"lockTtlMs": None}, **options)
        except SnapgitError as err:
            results[i] = err

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_lost_race_and_replay_conflicts(server: Server, repo: str):
    with Client(server.url, author=AUTHOR) as client:
        # Each writer tries once: all but the first to swap lose, and nothing of theirs lands.
        for _ in range(10):
            results = race(client, repo, 8, lambda i: {f"race/{i}": f"{i}\n"}, max_attempts=1)
            lost = [r for r in results if isinstance(r, LostRace)]
            if lost:
                break
        assert lost, "eight writers trying once each never lost a race in ten rounds"
        assert all(e.status == 409 and e.code == "LOST_RACE" for e in lost)
        assert all(isinstance(r, (LostRace,)) or not isinstance(r, SnapgitError) for r in results)
        landed = {p.path for p in client.list_tree(repo, "race").entries}
        assert len(landed) == len(results) - len(lost)

        # Writers to one path replay onto each other's commits: the policy decides.
        for _ in range(10):
            results = race(client, repo, 6, lambda i: {"same.md": f"writer {i}\n"})
            conflicts = [r for r in results if isinstance(r, Conflict)]
            if conflicts:
                break
        assert conflicts and all(c.fields.get("value") == "same.md" for c in conflicts)
        results = race(client, repo, 6, lambda i: {"same.md": f"ours {i}\n"}, on_conflict="ours")
        assert not [r for r in results if isinstance(r, SnapgitError) and not isinstance(r, LostRace)]
        settled = [c for r in results if not isinstance(r, SnapgitError) for c in r.settled]
        assert all(c.path == "same.md" for c in settled)
    server.fsck()


def test_lost_race_over_http(server: Server, repo: str):
    bodies = [commit_body([{"type": "put", "path": f"h/{i}", "data": "x"}], maxAttempts=1, lockTtlMs=None) for i in range(8)]
    for _ in range(10):
        barrier = threading.Barrier(len(bodies))
        answers: List[httpx.Response] = []

        def send(body):
            with httpx.Client(base_url=server.url) as h:
                barrier.wait()
                answers.append(h.post(f"/v1/repos/{repo}/branches/main/commits", json=body))

        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lost = [a for a in answers if a.status_code == 409]
        if lost:
            break
    assert lost
    for answer in lost:
        assert "nothing was committed" in problem(answer, 409, "LOST_RACE")["detail"]


# ---------------------------------------------------------------------------------------
# Codes of a store in trouble: each on a server of its own.


@pytest.fixture
def own(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("trouble"))
    yield s
    s.stop()


def test_corrupt(own: Server):
    with Client(own.url, author=AUTHOR) as client:
        client.create_repo("agent-1", {"b.md": "kept\n"})
        # Committed by another process: the server keeps objects it has read or written
        # between requests (they never change under their ids), so it must not know a.md.
        subprocess.run(
            [own.bin, "--store", str(own.store), "--repo", "agent-1", "commit", "--stdin", "a.md", "-m", "a"],
            input=b"corrupt me\n",
            check=True,
            capture_output=True,
        )
        blob = own.git("rev-parse", "refs/namespaces/agent-1/refs/heads/main:a.md").strip()
        loose = own.store / "objects" / blob[:2] / blob[2:]
        loose.chmod(0o644)
        loose.write_bytes(b"not zlib at all")
        with pytest.raises(Corrupt) as err:
            client.read_file("agent-1", "a.md")
        assert err.value.status == 500 and err.value.value == blob
        problem(httpx.get(f"{own.url}/v1/repos/agent-1/files/a.md"), 500, "CORRUPT")


def test_unsupported(own: Server):
    (own.store / "objects" / "info").mkdir(exist_ok=True)
    (own.store / "objects" / "info" / "alternates").write_text("/elsewhere/objects\n")
    with Client(own.url, author=AUTHOR) as client:
        with pytest.raises(Unsupported) as err:
            client.gc()
        assert err.value.status == 501 and err.value.value == "objects/info/alternates"
        with pytest.raises(Unsupported):
            client.footprint()
    problem(httpx.post(f"{own.url}/v1/gc"), 501, "UNSUPPORTED")


def test_storage(own: Server):
    # A file where the repo's refs folder must go: the store cannot write the branch.
    (own.store / "refs" / "namespaces" / "blocked").write_text("in the way\n")
    with Client(own.url, author=AUTHOR) as client:
        with pytest.raises(StorageFailed) as err:
            client.create_repo("blocked", {"a.md": "a\n"})
        assert err.value.status == 503
    problem(httpx.post(f"{own.url}/v1/repos", json={"repo": "blocked", "author": author_json()}), 503, "STORAGE")


def test_a_branch_at_an_unknown_commit_is_not_found(client: Client, repo: str):
    with pytest.raises(NotFound):
        client.create_branch(repo, "x", at_commit="0" * 39 + "1")


def test_a_branch_at_a_tree_is_invalid(client: Client, server: Server, repo: str):
    tree = server.git("rev-parse", f"{server.ref(repo)}^{{tree}}").strip()
    with pytest.raises(InvalidInput):
        client.create_branch(repo, "x", at_commit=tree)
