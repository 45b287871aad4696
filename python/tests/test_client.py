"""Every route through the blocking client, on its normal path, checked against git."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess

import pytest
from conftest import AUTHOR, Server, new_name

from snapgit import (
    AlreadyExists,
    Client,
    Delete,
    FileHead,
    HeadMoved,
    InvalidInput,
    NotFound,
    Put,
    Rename,
    Signature,
    Time,
)


def blob_id(data: bytes) -> str:
    return subprocess.run(["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True).stdout.decode().strip()


def test_health(client: Client):
    assert client.health().status == "ok"


def test_create_list_and_delete_repos(client: Client, server: Server):
    name = new_name()
    created = client.create_repo(name, {"a.md": "a\n", "bin/x": b"\xff\x00\x01"}, message="hello")
    assert [(f.path, f.kind, f.binary) for f in created.files] == [("a.md", "added", False), ("bin/x", "added", True)]
    assert created.commit == server.head(name)
    assert name in client.list_repos()
    assert client.list_branches(name) == ["main"]
    with pytest.raises(AlreadyExists) as err:
        client.create_repo(name)
    assert err.value.status == 409 and err.value.value == name
    assert client.delete_repo(name) == [server.ref(name)]
    assert name not in client.list_repos()
    assert server.head(name) is None
    with pytest.raises(NotFound):
        client.read_head(name)


def test_an_empty_repo_on_another_branch(client: Client, server: Server):
    name = new_name()
    created = client.create_repo(name, branch="trunk", author=Signature("Other", "other@example.com"))
    assert created.files == [] and client.list_branches(name) == ["trunk"]
    info = client.show(name, "trunk").commit
    assert info.author.name == "Other" and info.message == "Create the repo\n"
    assert server.head(name, "trunk") == created.commit


def test_branches(client: Client, server: Server, repo: str):
    head = client.read_head(repo)
    assert head == server.head(repo)
    assert client.create_branch(repo, "feature/x") == head
    first = client.log(repo, limit=10).commits[-1].id
    assert client.create_branch(repo, "old", at_commit=first) == first
    assert client.create_branch(repo, "copy", from_branch="old") == first
    assert client.list_branches(repo) == ["copy", "feature/x", "main", "old"]
    assert client.read_head(repo, "feature/x") == server.head(repo, "feature/x") == head
    client.commit(repo, {"f.txt": "on the feature\n"}, message="feature", branch="feature/x")
    assert client.read_head(repo) == head, "main did not move"
    assert client.delete_branch(repo, "feature/x") == [server.ref(repo, "feature/x")]
    assert client.list_branches(repo) == ["copy", "main", "old"]
    with pytest.raises(AlreadyExists):
        client.create_branch(repo, "main")
    with pytest.raises(ValueError):
        client.create_branch(repo, "x", from_branch="main", at_commit=first)


def test_commit_puts_deletes_and_renames(client: Client, server: Server, repo: str):
    before = client.read_head(repo)
    result = client.commit(
        repo,
        [Put("c.md", "charlie\ncharlie 2\n"), Put("run.sh", "#!/bin/sh\n", mode="executable"), Delete("b.txt"), Rename("notes", "memory")],
        message="turn 1",
        expected_head=before,
    )
    assert result.created and result.parent == before and result.attempts == 1
    assert result.commit == server.head(repo)
    assert result.tree == server.git("rev-parse", f"{result.commit}^{{tree}}").strip()
    kinds = {f.path: (f.kind, f.renamed_from, f.additions) for f in result.files}
    assert kinds == {
        "b.txt": ("deleted", None, 0),
        "c.md": ("added", None, 2),
        "memory/a.md": ("renamed", "notes/a.md", 0),
        "run.sh": ("added", None, 1),
    }
    assert client.read_file(repo, "memory/a.md").data == b"alpha\n"
    assert client.read_file(repo, "run.sh").mode == "executable"
    assert server.git("ls-tree", "-r", "--name-only", result.commit).split() == ["c.md", "memory/a.md", "run.sh"]


def test_line_counts_are_lines(client: Client, repo: str):
    result = client.commit(repo, {"b.txt": "bravo\ncharlie\ndelta\n", "notes/a.md": None}, message="lines")
    counts = {f.path: (f.additions, f.deletions) for f in result.files}
    assert counts == {"b.txt": (2, 0), "notes/a.md": (0, 1)}
    assert (result.additions, result.deletions) == (2, 1)


def test_a_commit_with_a_time_and_a_committer(client: Client, server: Server, repo: str):
    when = Time.from_datetime(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))))
    result = client.commit(
        repo,
        {"t.md": "t\n"},
        message="dated\n\nwith a body",
        author=Signature("Writer", "writer@example.com", when),
        committer=Signature("Bot", "bot@example.com", when),
    )
    raw = server.git("cat-file", "commit", result.commit)
    assert f"author Writer <writer@example.com> {when.seconds} -0500" in raw
    assert f"committer Bot <bot@example.com> {when.seconds} -0500" in raw
    info = client.show(repo, result.commit).commit
    assert info.author.time == when and info.committer.name == "Bot"
    assert info.message == "dated\n\nwith a body\n"


def test_the_server_stamps_a_commit_without_a_time(client: Client, repo: str):
    result = client.commit(repo, {"now.md": "now\n"}, message="now")
    stamped = client.show(repo, result.commit).commit.author.time
    assert stamped is not None and stamped.offset_minutes == 0
    assert abs(stamped.seconds - dt.datetime.now(dt.timezone.utc).timestamp()) < 3600


def test_expected_head(client: Client, repo: str):
    head = client.read_head(repo)
    client.commit(repo, {"x": "1"}, message="moves main")
    with pytest.raises(HeadMoved) as err:
        client.commit(repo, {"y": "1"}, message="stale", expected_head=head)
    assert err.value.expected == head and err.value.actual == client.read_head(repo)
    with pytest.raises(NotFound):
        client.read_file(repo, "y")


def test_a_commit_that_changes_nothing_may_be_allowed(client: Client, repo: str):
    result = client.commit(repo, [], message="empty", allow_empty=True)
    assert result.created and result.files == []
    same = client.commit(repo, {"b.txt": "bravo\n"}, message="same content")
    assert not same.created and same.commit == result.commit and same.files == []


def test_commit_stream_sends_large_files_a_chunk_at_a_time(client: Client, server: Server, repo: str):
    big = os.urandom(3 * 1024 * 1024 + 17)

    def changes():
        yield Put("big.bin", io.BytesIO(big))
        yield Put("small.md", "small\n")
        yield Delete("b.txt")
        yield Rename("notes/a.md", "notes/renamed.md")

    result = client.commit_stream(repo, changes(), message="streamed", on_conflict="ours")
    assert result.created and result.commit == server.head(repo)
    file = client.read_file(repo, "big.bin")
    assert file.data == big and file.id == blob_id(big)
    assert sorted(client.read_files(repo, folder="").as_dict()) == ["big.bin", "notes/renamed.md", "small.md"]


def test_read_file_by_revision_with_its_blob_id(client: Client, server: Server, repo: str):
    first = client.read_head(repo)
    client.commit(repo, {"b.txt": "bravo 2\n"}, message="two")
    file = client.read_file(repo, "b.txt")
    assert (file.data, file.text, file.path) == (b"bravo 2\n", "bravo 2\n", "b.txt")
    assert file.id == blob_id(b"bravo 2\n") and file.commit == server.head(repo) and file.mode == "regular"
    assert client.read_file(repo, "b.txt", rev="main~1").data == b"bravo\n"
    assert client.read_file(repo, "b.txt", rev=first[:10]).commit == first


def test_read_file_if_changed(client: Client, repo: str):
    file = client.read_file(repo, "b.txt")
    assert client.read_file_if_changed(repo, "b.txt", file.id) is None
    client.commit(repo, {"notes/a.md": "other\n"}, message="another file")
    assert client.read_file_if_changed(repo, "b.txt", file.id) is None
    client.commit(repo, {"b.txt": "changed\n"}, message="this file")
    changed = client.read_file_if_changed(repo, "b.txt", file.id)
    assert changed is not None and changed.data == b"changed\n"


def test_stream_and_download_a_file(client: Client, repo: str, tmp_path):
    data = os.urandom(1024 * 1024)
    client.commit(repo, {"blob.bin": data}, message="binary")
    with client.stream_file(repo, "blob.bin") as download:
        assert download.id == blob_id(data) and download.mode == "regular"
        chunks = list(download.iter_bytes(4096))
    assert b"".join(chunks) == data and len(chunks) > 1
    head = client.download_file(repo, "blob.bin", tmp_path / "out.bin")
    assert isinstance(head, FileHead) and head.id == blob_id(data)
    assert (tmp_path / "out.bin").read_bytes() == data
    out = io.BytesIO()
    client.download_file(repo, "b.txt", out, rev="main~1")
    assert out.getvalue() == b"bravo\n"
    with pytest.raises(NotFound):
        with client.stream_file(repo, "nope"):
            pass


def test_read_files_by_path_and_by_folder(client: Client, repo: str):
    client.commit(repo, {"notes/sub/c.md": b"\xff\xfe", "notes/b.md": "b\n"}, message="more notes")
    files = client.read_files(repo, ["b.txt", "notes/sub/c.md"])
    assert files.commit == client.read_head(repo)
    assert files.as_dict() == {"b.txt": b"bravo\n", "notes/sub/c.md": b"\xff\xfe"}
    assert files["b.txt"].id == blob_id(b"bravo\n") and files["b.txt"].commit == files.commit
    folder = client.read_files(repo, folder="notes")
    assert folder.as_dict() == {"notes/a.md": b"alpha\n", "notes/b.md": b"b\n", "notes/sub/c.md": b"\xff\xfe"}
    assert client.read_files(repo, ["b.txt"], rev="main~1").as_dict() == {"b.txt": b"bravo\n"}


def test_list_tree(client: Client, server: Server, repo: str):
    client.commit(repo, {"notes/sub/c.md": "c\n"}, message="deeper")
    tree = client.list_tree(repo)
    assert [(e.path, e.mode) for e in tree.entries] == [("b.txt", "regular"), ("notes/a.md", "regular"), ("notes/sub/c.md", "regular")]
    assert tree.commit == server.head(repo)
    top = client.list_tree(repo, recursive=False)
    assert [(e.path, e.mode) for e in top.entries] == [("b.txt", "regular"), ("notes", "tree")]
    assert top.entries[1].id == server.git("rev-parse", "main:notes".replace("main", tree.commit)).strip()
    assert [e.path for e in client.list_tree(repo, "notes", recursive=False).entries] == ["notes/a.md", "notes/sub"]
    assert [e.path for e in client.list_tree(repo, rev="main~1").entries] == ["b.txt", "notes/a.md"]


def test_log_pages_and_paths(client: Client, server: Server, repo: str):
    for i in range(5):
        client.commit(repo, {f"n{i}.md": f"{i}\n"} if i % 2 else {"notes/a.md": f"alpha {i}\n"}, message=f"turn {i}")
    page = client.log(repo, limit=2)
    assert len(page.commits) == 2 and page.next
    rest = client.log(repo, limit=10, cursor=page.next)
    ids = [c.id for c in page.commits + rest.commits]
    assert rest.next is None and ids == server.log_ids(repo)
    assert [c.message for c in page.commits] == ["turn 4\n", "turn 3\n"]
    assert [c.id for c in client.iter_log(repo, page_size=2)] == ids
    notes = [c.id for c in client.iter_log(repo, path="notes", page_size=1)]
    assert notes == server.git("log", "--format=%H", server.ref(repo), "--", "notes").split()
    assert [c.id for c in client.log(repo, rev="main~3").commits] == ids[3:]
    assert len(client.log(repo, first_parent=False).commits) == len(ids)


def test_iter_log_stays_on_the_commit_it_started_from(client: Client, repo: str):
    for i in range(3):
        client.commit(repo, {"c.md": f"{i}\n"}, message=f"c{i}")
    expected = [c.id for c in client.log(repo, limit=100).commits]
    seen = []
    for commit in client.iter_log(repo, page_size=1):
        seen.append(commit.id)
        if len(seen) == 1:
            client.commit(repo, {"c.md": "during the walk\n"}, message="meanwhile")
    assert seen == expected


def test_show(client: Client, repo: str):
    result = client.commit(repo, {"b.txt": "bravo\nbravo 2\n"}, message="show me")
    shown = client.show(repo)
    assert shown.commit.id == result.commit and shown.commit.parents == [result.parent]
    assert shown.diff.from_ == result.parent and shown.diff.to == result.commit
    assert [(f.path, f.additions, f.deletions) for f in shown.diff.files] == [("b.txt", 1, 0)]
    assert shown.diff.patch is None
    patched = client.show(repo, result.commit[:12], patch=True)
    assert patched.diff.patch is not None and b"+bravo 2\n" in patched.diff.patch
    root = client.show(repo, "main~1")
    assert root.commit.parents == [] and root.diff.from_ is None


def test_diff_against_git(client: Client, server: Server, repo: str):
    first = client.read_head(repo)
    client.commit(repo, {"b.txt": "bravo\nmore\n", "c.md": "c\n", "notes/a.md": None}, message="one")
    client.commit(repo, [Rename("c.md", "d.md")], message="two")
    last = client.read_head(repo)
    diff = client.diff(repo, from_=first)
    assert (diff.from_, diff.to) == (first, last)
    assert {f.path: f.kind for f in diff.files} == {"b.txt": "modified", "d.md": "added", "notes/a.md": "deleted"}
    assert (diff.additions, diff.deletions) == (2, 1)
    for fmt, flag in [("name-status", "--name-status"), ("numstat", "--numstat"), ("patch", "-p")]:
        ours = client.diff_text(repo, fmt, from_=first, to="main")
        assert ours == server.git("diff", "--no-renames", flag, first, last), fmt
    renamed = client.diff_text(repo, "name-status")
    assert renamed == server.git("diff", "-M100%", "--name-status", f"{last}~1", last)
    only = client.diff(repo, from_=first, path="notes")
    assert [f.path for f in only.files] == ["notes/a.md"]
    assert client.diff_text(repo, "patch", from_=first, to="main~1") == server.git("diff", first, f"{last}~1")


def test_restore_a_revision_or_one_path(client: Client, server: Server, repo: str):
    start = client.read_head(repo)
    client.commit(repo, {"b.txt": "ruined\n", "notes/a.md": "ruined\n", "junk": "junk\n"}, message="bad turn")
    one = client.restore(repo, start, path="b.txt")
    assert [f.path for f in one.files] == ["b.txt"]
    assert client.read_file(repo, "b.txt").data == b"bravo\n"
    assert client.read_file(repo, "notes/a.md").data == b"ruined\n"
    whole = client.restore(repo, "main~2", message="back to the start")
    assert server.git("rev-parse", f"{whole.commit}^{{tree}}") == server.git("rev-parse", f"{start}^{{tree}}")
    assert client.show(repo).commit.message == "back to the start\n"
    undo = client.restore(repo, "main~1", expected_head=whole.commit)
    assert client.read_file(repo, "junk").data == b"junk\n" and undo.parent == whole.commit
    assert len(server.log_ids(repo)) == 5, "a restore adds commits, it rewrites nothing"


def test_prune_keeps_the_newest_commits(client: Client, server: Server, repo: str):
    for i in range(4):
        client.commit(repo, {"p.md": f"{i}\n"}, message=f"p{i}")
    tree = server.git("rev-parse", "HEAD^{tree}".replace("HEAD", server.ref(repo)))
    pruned = client.prune(repo, keep_last=2, count_dropped=True)
    assert pruned.rewritten and pruned.kept == 2 and pruned.dropped == 3
    assert pruned.new_head == server.head(repo) == pruned.written[-1]
    assert len(server.log_ids(repo)) == 2
    assert server.git("rev-parse", f"{pruned.new_head}^{{tree}}") == tree
    again = client.prune(repo, keep_last=5)
    assert not again.rewritten and again.new_head == again.old_head
    recent = client.prune(repo, keep_within=dt.timedelta(hours=1))
    assert not recent.rewritten and recent.kept == 2


def test_footprint_gc_and_compact(tmp_path_factory):
    # A server of its own: a GC with no grace must not race another test's commit.
    server = Server(tmp_path_factory.mktemp("store-upkeep"))
    try:
        with Client(server.url, author=AUTHOR) as c:
            c.create_repo("agent-1", {"a.md": "a\n"})
            for i in range(3):
                c.commit("agent-1", {"a.md": f"a{i}\n"}, message=f"{i}")
            c.prune("agent-1", keep_last=1)
            fp = c.footprint()
            assert [r.repo for r in fp.repos] == ["agent-1", "default"] and fp.unreachable.count > 0
            young = c.gc()
            assert young.deleted == 0 and young.young == fp.unreachable.count
            gone = c.gc(grace_ms=0)
            assert gone.deleted == fp.unreachable.count and gone.deleted_bytes == fp.unreachable.bytes
            assert c.footprint().unreachable.count == 0
            packed = c.compact(grace_ms=0)
            assert packed.pack and packed.objects == packed.loose_packed > 0
            assert c.compact(min_loose=1_000_000).pack is None
            assert c.read_file("agent-1", "a.md").data == b"a2\n"
            # A cap the store fits prunes nothing; a cap of 0 prunes every branch to its head.
            for i in range(3, 6):
                c.commit("agent-1", {"a.md": f"a{i}\n"}, message=f"{i}")
            fits = c.cap(max_bytes=10**12)
            assert fits.under_cap and fits.pruned == [] and fits.reachable_bytes > 0
            floor = c.cap(max_bytes=0)
            assert not floor.under_cap and floor.estimated_bytes < floor.reachable_bytes
            assert ("agent-1", 1) in {(p.repo, p.kept) for p in floor.pruned}
            assert all(p.kept == 1 for p in floor.pruned)
            assert len(c.log("agent-1").commits) == 1
            assert c.compact(grace_ms=0, drop_unreachable=True).dropped >= 0
            with pytest.raises(InvalidInput):
                c.cap(max_bytes=1, keep_last=0)
        server.fsck()
    finally:
        server.stop()
