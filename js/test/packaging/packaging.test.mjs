// The package as users get it: `npm pack`, then the tarball installed into a throwaway
// project per runtime and imported by name, the way a user would.
//
// - The tarball holds only what package.json's `files` whitelists (plus what npm always
//   adds), and everything `exports`, `main`, `types` and `sideEffects` point at.
// - Node ESM (`import`, the slim entry, the git-folder adapter) and Node CommonJS
//   (`require`) run the shared scenarios.
// - TypeScript: `tsc --noEmit` on small files against the installed declarations, with
//   NodeNext resolution (ESM and CommonJS) and with bundler resolution under each runtime
//   condition.
// - Deno runs the shared scenarios from a project with the package in node_modules.
// - workerd runs examples/worker as its README says (`npm run build`, `workerd serve
//   workerd.capnp`), and the test drives it over HTTP.
// - Chromium runs the shared scenarios from the installed package, mapped by an import map.
// - package.json's `license`, `repository` and `engines` agree with the crates and the README.
// - A fresh `npm init -y` project installs the tarball by path and runs the README's first
//   example. (Every example of every README runs from scripts/examples.mjs.)
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { importMap, launch, page, pageReport, resolveExport, serve } from "../runtimes/browser.mjs";
import { scenarioNames } from "../runtimes/scenarios.mjs";
import { bin, cleanup, denoEnv, lastJson, root, run, scratch } from "../runtimes/tools.mjs";
import { startWorkerd } from "../runtimes/workerd.mjs";
import { blocks } from "../../../scripts/examples.mjs";

const here = path.join(root, "test", "packaging");
const manifest = JSON.parse(await readFile(path.join(root, "package.json"), "utf8"));
const npmEnv = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" };

const stops = [];
after(async () => {
  await Promise.all(stops.map((stop) => stop()));
  await cleanup();
});

let packed;
/** `npm pack` once: `{ tarball, files }`. */
function pack() {
  packed ??= (async () => {
    const out = await scratch("pack");
    const [report] = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", out], { env: npmEnv }));
    return { tarball: path.join(out, report.filename), files: report.files.map((f) => f.path) };
  })();
  return packed;
}

/**
 * A throwaway project: `files` (name -> content, or `{ from }` to copy a file) written
 * into a fresh folder with a package.json depending on the tarball, then `npm install`.
 */
async function project(name, files, extra = {}) {
  const { tarball } = await pack();
  const dir = await scratch(`project-${name}`);
  const pkg = { name: `snapgit-${name}-check`, private: true, ...extra, dependencies: { snapgit: `file:${tarball}` } };
  await writeFile(path.join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    if (typeof content === "string") await writeFile(path.join(dir, file), content);
    else await copyFile(content.from, path.join(dir, file));
  }
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], { cwd: dir, env: npmEnv });
  return dir;
}

const scenarios = { from: path.join(root, "test", "runtimes", "scenarios.mjs") };

/** `make()` once, shared by every test that needs it. */
function once(make) {
  let made;
  return () => (made ??= make());
}

const nodeProject = once(() =>
  project(
    "node",
    {
      "index.mjs": { from: path.join(here, "node-esm", "index.mjs") },
      "slim.mjs": { from: path.join(here, "node-esm", "slim.mjs") },
      "index.cjs": { from: path.join(here, "node-cjs", "index.cjs") },
      "scenarios.mjs": scenarios,
    },
    { type: "module" },
  ),
);

const denoProject = once(() =>
  project(
    "deno",
    { "deno/main.mjs": { from: path.join(root, "test", "runtimes", "deno", "main.mjs") }, "scenarios.mjs": scenarios },
    { type: "module" },
  ),
);

const browserProject = once(() =>
  project("browser", {
    "browser/page.mjs": { from: path.join(root, "test", "runtimes", "browser", "page.mjs") },
    "scenarios.mjs": scenarios,
  }),
);

/** A copy of examples/worker with the tarball installed, built with its own `npm run build`. */
const workerProject = once(async () => {
  const example = path.join(root, "examples", "worker");
  const dir = await project(
    "worker",
    Object.fromEntries(
      ["worker.js", "build.mjs", "local-r2.js", "workerd.capnp", "wrangler.toml"].map((f) => [f, { from: path.join(example, f) }]),
    ),
    { type: "module", scripts: JSON.parse(await readFile(path.join(example, "package.json"), "utf8")).scripts },
  );
  // The example's build tool, linked rather than installed again.
  await symlink(path.join(root, "node_modules", "esbuild"), path.join(dir, "node_modules", "esbuild"));
  await run("npm", ["run", "build", "--silent"], { cwd: dir, env: npmEnv });
  return dir;
});

const chromium = once(async () => {
  const browser = await launch();
  stops.push(browser.close);
  return browser.context;
});

/** Serve `dir` with `pages`; closed after the tests. */
async function served(dir, pages) {
  const server = await serve(dir, pages);
  stops.push(server.close);
  return server;
}

/** workerd serving `config`; stopped after the tests. */
async function workerd(config) {
  const server = await startWorkerd(config);
  stops.push(server.stop);
  return server;
}

const browserImports = ["snapgit", "snapgit/adapters/memory", "snapgit/adapters/indexeddb"];

// Install every project at once; each test awaits its own (and reports its failure).
for (const make of [nodeProject, denoProject, browserProject, workerProject]) make().catch(() => {});

function assertScenarios(results, label) {
  assert.deepEqual(
    results.map((r) => [r.name, r.ok ? "ok" : r.error]),
    scenarioNames.map((name) => [name, "ok"]),
    label,
  );
}

/** `pattern` of package.json `files` as a regular expression over paths. */
function glob(pattern) {
  const source = pattern
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === "**/" ? "(?:.*/)?" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}

/** Every path an `exports` map (or part of it) points at. */
function targets(value) {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(targets);
}

describe("the tarball", () => {
  test("holds only whitelisted files", async () => {
    const { files } = await pack();
    const allowed = [...manifest.files.map(glob), /^package\.json$/, /^README(\.md)?$/i, /^LICEN[CS]E/i];
    assert.deepEqual(
      files.filter((file) => !allowed.some((re) => re.test(file))),
      [],
      "files outside package.json's `files`",
    );
    for (const file of files) assert.doesNotMatch(file, /(^|\/)(src|test|scripts|bench|examples|node_modules)\//);
    assert.ok(files.includes("README.md"), "the README is in the tarball");
  });

  test("holds everything exports, main, module, types and sideEffects name", async () => {
    const { files } = await pack();
    const adapters = ["memory", "node-fs", "s3", "r2", "indexeddb"];
    const wanted = new Set([manifest.main, manifest.module, manifest.types, ...manifest.sideEffects]);
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      for (const file of targets(target)) {
        if (subpath.includes("*")) for (const name of adapters) wanted.add(file.replace("*", name));
        else wanted.add(file);
      }
    }
    const missing = [...wanted].map((file) => file.replace(/^\.\//, "")).filter((file) => !files.includes(file));
    assert.deepEqual(missing, []);
  });

  test("exports the five adapters by name and none of their internal modules", () => {
    const subpaths = Object.keys(manifest.exports).filter((subpath) => subpath.startsWith("./adapters/"));
    assert.deepEqual(subpaths.sort(), ["indexeddb", "memory", "node-fs", "r2", "s3"].map((n) => `./adapters/${n}`));
  });

  test("every condition of `.` puts types first", () => {
    const check = (value, where) => {
      if (value === null || typeof value !== "object") return;
      const keys = Object.keys(value);
      if (keys.includes("types")) assert.equal(keys[0], "types", `${where}: types first`);
      for (const [key, inner] of Object.entries(value)) check(inner, `${where}.${key}`);
    };
    check(manifest.exports, "exports");
  });

  test("each runtime condition resolves to its own entry", () => {
    const entry = (conditions) => resolveExport(manifest.exports, ".", conditions);
    assert.equal(entry(["workerd", "worker", "browser", "import"]), "./dist/workerd.js");
    assert.equal(entry(["edge-light", "browser", "import"]), "./dist/edge-light.js");
    assert.equal(entry(["deno", "node", "import"]), "./dist/deno.js");
    assert.equal(entry(["browser", "import"]), "./dist/browser.js");
    assert.equal(entry(["node", "import"]), "./dist/node.js");
    assert.equal(entry(["node", "require"]), "./dist/node.cjs");
    assert.equal(entry(["import"]), "./dist/browser.js");
  });
});

describe("node", () => {
  let dir;
  before(async () => {
    dir = await nodeProject();
  });

  test("ESM: import from 'snapgit' runs the scenarios (memory and node-fs adapters)", async () => {
    const files = await scratch("packaged-fs");
    const report = lastJson(await run(process.execPath, ["index.mjs", files], { cwd: dir }));
    assert.equal(report.entry, pathToFileURL(path.join(dir, "node_modules/snapgit/dist/node.js")).href);
    assertScenarios(report.results.memory, "memory");
    assertScenarios(report.results["node-fs"], "node-fs");
  });

  test("CommonJS: require('snapgit') runs the scenarios", async () => {
    const report = lastJson(await run(process.execPath, ["index.cjs"], { cwd: dir }));
    assert.equal(report.entry, path.join(dir, "node_modules/snapgit/dist/node.cjs"));
    assertScenarios(report.results.memory, "memory");
  });

  test("snapgit/slim loads nothing until given the WebAssembly of snapgit/snapgit.wasm", async () => {
    const report = lastJson(await run(process.execPath, ["slim.mjs"], { cwd: dir }));
    assert.equal(report.before, "MISUSE");
    assert.match(report.commit, /^[0-9a-f]{40}$/);
  });

  describe("TypeScript declarations (tsc --noEmit)", () => {
    let types;
    before(async () => {
      types = await scratch("types");
      for (const file of ["check.mts", "check.cts", "check-runtimes.ts"]) {
        await copyFile(path.join(here, "types", file), path.join(types, file));
      }
      await symlink(path.join(dir, "node_modules"), path.join(types, "node_modules"));
    });

    // The package's own declarations are checked too (skipLibCheck off).
    const compilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: "ES2022",
      typeRoots: [path.join(root, "node_modules", "@types")],
    };
    async function tsc(name, options, files) {
      const config = path.join(types, `tsconfig.${name}.json`);
      await writeFile(config, JSON.stringify({ compilerOptions: { ...compilerOptions, ...options }, files }));
      await run(bin("tsc"), ["-p", config], { cwd: types });
    }

    test("NodeNext, ESM and CommonJS, for Node (lib ES2022 + DOM, @types/node)", () =>
      tsc("node", { module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], types: ["node"] }, [
        "check.mts",
        "check.cts",
      ]));

    test("NodeNext for Node without the DOM lib, skipLibCheck on (as tsc --init sets it)", () =>
      tsc("node-no-dom", {
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ES2022"],
        types: ["node"],
        skipLibCheck: true,
      }, ["check.mts", "check.cts"]));

    for (const condition of ["workerd", "browser", "deno", "edge-light"]) {
      test(`bundler resolution under the ${condition} condition`, () =>
        tsc(condition, {
          module: "ESNext",
          moduleResolution: "Bundler",
          customConditions: [condition],
          lib: ["ES2022", "DOM"],
          types: [],
        }, ["check-runtimes.ts"]));
    }
  });
});

test("deno: the scenarios from a project with the package in node_modules", async () => {
  const dir = await denoProject();
  const files = await scratch("packaged-deno-fs");
  const cache = await scratch("packaged-deno-cache");
  const stdout = await run(
    bin("deno"),
    ["run", `--allow-read=${dir},${files}`, `--allow-write=${files}`, "--cached-only", "--no-lock", "deno/main.mjs", files],
    { cwd: dir, env: denoEnv(cache) },
  );
  const report = lastJson(stdout);
  assert.equal(report.entry, pathToFileURL(path.join(dir, "node_modules/snapgit/dist/deno.js")).href);
  assertScenarios(report.results.memory, "memory");
  assertScenarios(report.results["node-fs"], "node-fs");
});

test("chromium: the scenarios from the installed package, mapped by an import map", async () => {
  const dir = await browserProject();
  const map = await importMap(path.join(dir, "node_modules", "snapgit"), "/node_modules/snapgit", browserImports);
  assert.equal(map.imports.snapgit, "/node_modules/snapgit/dist/browser.js");
  const server = await served(dir, { "/": page(map, "/browser/page.mjs") });
  const { report, problems } = await pageReport(await chromium(), `${server.url}/`);
  assert.deepEqual(problems, []);
  assertScenarios(report.results.memory, "memory");
  assertScenarios(report.results.indexeddb, "indexeddb");
});

describe("workerd: examples/worker, built and served as its README says", () => {
  let url;
  before(async () => {
    url = (await workerd(path.join(await workerProject(), "workerd.capnp"))).url;
  });

  async function call(method, pathname, body) {
    const response = await fetch(`${url}${pathname}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    return { status: response.status, body: type.startsWith("application/json") ? JSON.parse(text) : text };
  }

  test("concurrent turns of one agent, its first among them, all land", async () => {
    const turns = 6;
    const results = await Promise.all(
      Array.from({ length: turns }, (_, i) =>
        call("POST", "/agents/agent-1/turn", { message: `turn ${i}`, files: { [`notes/${i}.md`]: `note ${i}\n` } }),
      ),
    );
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const log = await call("GET", "/agents/agent-1/log?limit=100");
    assert.equal(log.status, 200);
    assert.equal(log.body.commits.length, turns + 1, "the repo's first commit and one per turn");
    const ids = log.body.commits.map((c) => c.id);
    for (const r of results) assert.ok(ids.includes(r.body.commit), `turn ${r.body.commit} is in the history`);
    for (let i = 0; i < turns; i++) assert.equal((await call("GET", `/agents/agent-1/files/notes/${i}.md`)).body, `note ${i}\n`);
  });

  test("a turn reports its changes; log, diff and restore answer", async () => {
    const first = await call("POST", "/agents/agent-2/turn", { message: "remember", files: { "memory.md": "# Memory\nlikes tea\n" } });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const second = await call("POST", "/agents/agent-2/turn", {
      message: "correct",
      files: { "memory.md": "# Memory\nlikes coffee\n" },
    });
    assert.deepEqual(second.body.files, [{ path: "memory.md", kind: "modified", lines: { added: 1, removed: 1 } }]);
    const diff = await call("GET", "/agents/agent-2/diff");
    assert.match(diff.body, /^-likes tea\n\+likes coffee$/m);
    const history = await call("GET", "/agents/agent-2/log?path=memory.md");
    assert.deepEqual(history.body.commits.map((c) => c.message), ["correct\n", "remember\n"]);
    const restored = await call("POST", "/agents/agent-2/restore", { from: first.body.commit, path: "memory.md" });
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.equal((await call("GET", "/agents/agent-2/files/memory.md")).body, "# Memory\nlikes tea\n");
  });

  test("bad input answers 400 with the error code; a missing file 404", async () => {
    const bad = await call("POST", "/agents/agent-3/turn", { files: { "../escape.md": "x" } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, "INVALID_INPUT");
    assert.equal(bad.body.value, "../escape.md");
    const name = await call("POST", "/agents/bad..name/turn", { files: { "a.md": "x" } });
    assert.equal(name.status, 400);
    assert.equal(name.body.code, "INVALID_INPUT");
    const missing = await call("GET", "/agents/agent-2/files/nope.md");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, "NOT_FOUND");
  });
});

describe("package.json, as published", () => {
  const cargo = readFile(path.join(root, "..", "Cargo.toml"), "utf8");
  /** `key = "value"` of the workspace's `[workspace.package]`, or undefined. */
  async function workspacePackage(key) {
    const section = /^\[workspace\.package\]\n([\s\S]*?)(?=^\[)/m.exec(await cargo)?.[1] ?? "";
    return new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, "m").exec(section)?.[1];
  }

  test("license: the crates' SPDX expression, with both license texts in the tarball, as in the repository", async () => {
    assert.equal(manifest.license, await workspacePackage("license"));
    assert.equal(manifest.license, "MIT OR Apache-2.0");
    const { tarball, files } = await pack();
    for (const license of ["LICENSE-MIT", "LICENSE-APACHE"]) {
      assert.ok(manifest.files.includes(license), `files names ${license}`);
      assert.ok(files.includes(license), `the tarball holds ${license}`);
      const packed = await run("tar", ["-xOzf", tarball, `package/${license}`]);
      assert.equal(packed, await readFile(path.join(root, "..", license), "utf8"), `${license} as in the repository`);
    }
  });

  test("repository: the crates' (none until the project has a public home), never a placeholder", async () => {
    const crates = await workspacePackage("repository");
    const url = typeof manifest.repository === "string" ? manifest.repository : manifest.repository?.url;
    if (crates === undefined) {
      assert.equal(manifest.repository, undefined, "package.json names a repository that Cargo.toml does not");
    } else {
      assert.equal(url?.replace(/^git\+/, "").replace(/\.git$/, ""), crates.replace(/\.git$/, ""));
      assert.equal(manifest.repository.directory, "js");
    }
    for (const value of [crates, url]) assert.doesNotMatch(value ?? "", /example\.(invalid|com|org)|placeholder|TODO/i);
  });

  test("engines: the Node CI runs satisfies it, and the README states it", async () => {
    const [, major] = /^>=(\d+)$/.exec(manifest.engines.node) ?? [];
    assert.ok(major, `engines.node is ">=N": ${manifest.engines.node}`);
    assert.ok(Number(process.versions.node.split(".")[0]) >= Number(major), `Node ${process.versions.node} is too old`);
    const readme = await readFile(path.join(root, "README.md"), "utf8");
    assert.match(readme, new RegExp(`Node ${major} or later`));
    assert.doesNotMatch(readme, /Node 18/);
  });
});

test("a fresh `npm init -y` project: the tarball installed by path, then the README's first example", async () => {
  const { tarball } = await pack();
  const dir = await scratch("npm-init");
  await run("npm", ["init", "-y"], { cwd: dir, env: npmEnv });
  await run("cp", [tarball, dir]);
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", `./${path.basename(tarball)}`], {
    cwd: dir,
    env: npmEnv,
  });
  const installed = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8"));
  assert.equal(installed.dependencies.snapgit, `file:${path.basename(tarball)}`);
  // The first example of the README that npm shows, saved and run as its marker says.
  const readme = await readFile(path.join(dir, "node_modules", "snapgit", "README.md"), "utf8");
  const first = blocks(readme).find((b) => b.lang === "js");
  assert.equal(first?.marker?.kind, "example", "the first JavaScript block is an example");
  const { file, run: command } = first.marker.options;
  assert.ok(file && command, "it says where it is saved and how it runs");
  await writeFile(path.join(dir, file), first.code);
  const out = await run("bash", ["-c", command], { cwd: dir });
  assert.match(out, /# Memory\n- likes tea\n/);
});
