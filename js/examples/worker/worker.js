// A Cloudflare Worker that keeps each agent's memory as a git repository in R2: every
// request that ends an agent's turn commits the files the turn changed. Concurrent turns
// of one agent (several tabs, retries, parallel tools) all land: a commit that loses the
// race is replayed on the new head, so no update is lost.
//
//   POST /agents/<agent>/turn      {"message": "...", "files": {"memory.md": "...", "old.md": null}}
//                                  -> {"commit", "parent", "attempts", "files": [{path, kind, lines}]}
//   GET  /agents/<agent>/files/<path>[?ref=<branch or commit>]   the file's text
//   GET  /agents/<agent>/log[?path=<path>&limit=<n>&cursor=<c>]  {"commits": [...], "next"}
//   GET  /agents/<agent>/diff[?from=<ref>&to=<ref>]              a unified patch (default: the last turn)
//   POST /agents/<agent>/restore   {"from": "<commit>", "path": "<optional path>"}
//
// Errors answer {"code", "message", "value"} with a 4xx status for the caller's mistakes.
import { SnapgitError, Store } from "snapgit";
import { R2Adapter } from "snapgit/adapters/r2";

// One store per isolate, kept between requests: its cache lets a commit on top of the
// last one read nothing from R2 (two storage round trips per turn: write, swap the ref).
let opening;
function store(env) {
  opening ??= Store.open({ adapter: new R2Adapter(env.MEMORY, { prefix: "agents" }) }).catch((error) => {
    opening = undefined;
    throw error;
  });
  return opening;
}

const STATUS = {
  INVALID_INPUT: 400,
  POLICY: 400,
  EMPTY_COMMIT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  HEAD_MOVED: 409,
  LOST_RACE: 409,
  LIMIT: 413,
};

function json(value, status = 200) {
  return Response.json(value, { status });
}

/** Commit a turn; an agent's first turn creates its repo (once, whoever gets there first). */
async function commitTurn(snapshots, agent, turn) {
  const repo = snapshots.repo(agent);
  try {
    return await repo.commit(turn);
  } catch (error) {
    if (!(error instanceof SnapgitError && error.code === "NOT_FOUND")) throw error;
  }
  try {
    await snapshots.createRepo(agent, { author: turn.author, message: "new agent" });
  } catch (error) {
    if (!(error instanceof SnapgitError && error.code === "ALREADY_EXISTS")) throw error;
  }
  return repo.commit(turn);
}

function summary(out) {
  return {
    commit: out.commit,
    parent: out.parent,
    attempts: out.attempts,
    files: out.files.map((f) => ({ path: f.path, kind: f.kind, lines: f.lines })),
  };
}

async function route(request, env) {
  const url = new URL(request.url);
  const match = /^\/agents\/([^/]+)\/(turn|files|log|diff|restore)(?:\/(.*))?$/.exec(url.pathname);
  if (!match) return json({ code: "NOT_FOUND", message: "no such route" }, 404);
  const [, agent, action, rest] = match.map((part) => part && decodeURIComponent(part));
  const snapshots = await store(env);
  const repo = snapshots.repo(agent);
  const query = Object.fromEntries(url.searchParams);
  const author = { name: agent, email: `${agent}@agents.example` };

  if (request.method === "POST" && action === "turn") {
    const body = await request.json();
    const out = await commitTurn(snapshots, agent, {
      author,
      message: body.message ?? "turn",
      files: body.files,
    });
    return json(summary(out));
  }
  if (request.method === "POST" && action === "restore") {
    const body = await request.json();
    return json(summary(await repo.restore({ from: body.from, path: body.path, author })));
  }
  if (request.method !== "GET") return json({ code: "NOT_FOUND", message: "no such route" }, 404);
  switch (action) {
    case "files":
      return new Response(await repo.readText(rest ?? "", { ref: query.ref }), {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    case "log": {
      const limit = query.limit === undefined ? undefined : Number(query.limit);
      const page = await repo.log({ path: query.path, limit, cursor: query.cursor, ref: query.ref });
      const commits = page.commits.map((c) => ({ id: c.id, message: c.message, date: c.author.date }));
      return json({ commits, next: page.next, start: page.start });
    }
    case "diff": {
      const diff = await repo.diff({ from: query.from, to: query.to, patch: true });
      return new Response(diff.patch, { headers: { "content-type": "text/x-diff; charset=utf-8" } });
    }
  }
  return json({ code: "NOT_FOUND", message: "no such route" }, 404);
}

export default {
  async fetch(request, env) {
    try {
      return await route(request, env);
    } catch (error) {
      if (error instanceof SnapgitError) {
        return json({ code: error.code, message: error.message, value: error.value }, STATUS[error.code] ?? 500);
      }
      if (error instanceof SyntaxError) return json({ code: "INVALID_INPUT", message: error.message }, 400);
      throw error;
    }
  },
};
