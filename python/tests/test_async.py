"""Every route through the asyncio client, and concurrent writers that lose nothing."""

from __future__ import annotations

import asyncio
import io
import os

import pytest
from conftest import AUTHOR, Server, new_name

from snapgit import AsyncClient, Delete, HeadMoved, NotFound, Put, Rename

pytestmark = pytest.mark.anyio


async def test_every_route(aclient: AsyncClient, server: Server, tmp_path):
    assert (await aclient.health()).status == "ok"
    name = new_name("async")
    created = await aclient.create_repo(name, {"a.md": "a\n"}, message="first")
    assert name in await aclient.list_repos()
    assert await aclient.read_head(name) == created.commit == server.head(name)

    assert await aclient.create_branch(name, "side") == created.commit
    assert await aclient.list_branches(name) == ["main", "side"]
    assert await aclient.delete_branch(name, "side") == [server.ref(name, "side")]

    one = await aclient.commit(name, [Put("b.md", "b\n"), Rename("a.md", "c.md")], message="one", expected_head=created.commit)
    assert {f.path: f.kind for f in one.files} == {"b.md": "added", "c.md": "renamed"}
    with pytest.raises(HeadMoved):
        await aclient.commit(name, {"x": "x"}, message="stale", expected_head=created.commit)

    big = os.urandom(700_000)

    async def changes():
        yield Put("big.bin", io.BytesIO(big))
        yield Delete("b.md")

    two = await aclient.commit_stream(name, changes(), message="two")
    assert two.parent == one.commit
    three = await aclient.commit_stream(name, [Put("d.md", "d\n")], message="three")

    file = await aclient.read_file(name, "big.bin")
    assert file.data == big and file.commit == three.commit
    assert await aclient.read_file_if_changed(name, "big.bin", file.id) is None
    async with aclient.stream_file(name, "big.bin") as download:
        assert download.id == file.id
        assert b"".join([chunk async for chunk in download.aiter_bytes(65536)]) == big
    head = await aclient.download_file(name, "c.md", tmp_path / "c.md", rev="main~2")
    assert (tmp_path / "c.md").read_bytes() == b"a\n" and head.commit == one.commit
    with pytest.raises(NotFound):
        async with aclient.stream_file(name, "nope"):
            pass

    files = await aclient.read_files(name, ["c.md", "d.md"])
    assert files.as_dict() == {"c.md": b"a\n", "d.md": b"d\n"}
    assert sorted((await aclient.read_files(name, folder="")).as_dict()) == ["big.bin", "c.md", "d.md"]
    assert [e.path for e in (await aclient.list_tree(name)).entries] == ["big.bin", "c.md", "d.md"]

    page = await aclient.log(name, limit=1)
    assert page.commits[0].id == three.commit and page.next
    ids = [c.id async for c in aclient.iter_log(name, page_size=2)]
    assert ids == server.log_ids(name)
    assert (await aclient.show(name)).commit.message == "three\n"
    assert [f.path for f in (await aclient.diff(name, from_="main~2")).files] == ["b.md", "big.bin", "d.md"]
    assert await aclient.diff_text(name, "name-status", from_="main~1") == "A\td.md\n"

    restored = await aclient.restore(name, created.commit)
    assert (await aclient.read_files(name, folder="")).as_dict() == {"a.md": b"a\n"}
    pruned = await aclient.prune(name, keep_last=2)
    assert pruned.kept == 2 and pruned.new_head == server.head(name) != restored.commit

    footprint = await aclient.footprint()
    assert name in [r.repo for r in footprint.repos]
    assert (await aclient.gc()).refs >= 1
    assert (await aclient.compact(min_loose=10_000_000)).pack is None

    assert await aclient.delete_repo(name) == [server.ref(name)]
    assert name not in await aclient.list_repos()


async def test_concurrent_commits_to_one_branch_all_land(aclient: AsyncClient, server: Server):
    name = new_name("race")
    await aclient.create_repo(name, {"shared.md": "shared\n"})
    results = await asyncio.gather(*(aclient.commit(name, {f"turn/{i}.md": f"{i}\n"}, message=f"writer {i}") for i in range(12)))
    tree = await aclient.list_tree(name)
    assert sorted(e.path for e in tree.entries) == sorted(["shared.md"] + [f"turn/{i}.md" for i in range(12)])
    assert len(server.log_ids(name)) == 13 and len({r.commit for r in results}) == 12
    server.fsck()


async def test_an_async_client_with_a_client_of_its_own(server: Server):
    import httpx

    async with httpx.AsyncClient(base_url=server.url) as http:
        sg = AsyncClient(author=AUTHOR, http=http)
        assert (await sg.health()).status == "ok"
        await sg.aclose()
        assert not http.is_closed, "a client passed in is left open"
