// The shared scenarios in headless Chromium (Debian's `chromium`): a page served from
// loopback imports the package's `browser` entry by name through an import map (no
// bundler) and runs them with the memory and IndexedDB adapters. Then several tabs commit
// to one IndexedDB database at once, each through its own connection, and every
// acknowledged commit must survive.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { importMap, launch, page, pageReport, serve } from "./browser.mjs";
import { scenarioSuite } from "./report.mjs";
import { cleanup, root } from "./tools.mjs";

let server;
let browser;
after(async () => {
  await browser?.close();
  await server?.close();
  await cleanup();
});

let started;
function start() {
  started ??= (async () => {
    const map = await importMap(root, "", ["snapgit", "snapgit/adapters/memory", "snapgit/adapters/indexeddb"]);
    server = await serve(root, {
      "/": page(map, "/test/runtimes/browser/page.mjs"),
      "/tab": page(map, "/test/runtimes/browser/tab.mjs"),
    });
    browser = await launch();
  })();
  return started;
}

let report;
function chromium() {
  report ??= start().then(() => pageReport(browser.context, `${server.url}/`));
  return report;
}

test("chromium loads the `browser` entry and its WebAssembly without warnings", async () => {
  const { report: r, problems } = await chromium();
  assert.match(r.runtime, /Chrome\/\d+/);
  assert.deepEqual(problems, []);
});

scenarioSuite("chromium, memory adapter", async () => (await chromium()).report.results.memory);
scenarioSuite("chromium, indexeddb adapter", async () => (await chromium()).report.results.indexeddb);

test("tabs committing to one IndexedDB database at once lose nothing", async () => {
  await start();
  const tab = async (query) => {
    const { report: r } = await pageReport(browser.context, `${server.url}/tab?${new URLSearchParams(query)}`);
    assert.equal(r.error, undefined, `${r.error} (code ${r.code})`);
    return r;
  };
  const db = `snapgit-tabs-${Date.now()}`;
  const first = await tab({ db, role: "create" });
  const tabs = 3;
  const turns = 5;
  // Every writer tab loads and waits; then all start at once.
  const pages = await Promise.all(
    Array.from({ length: tabs }, async (_, client) => {
      const writer = await browser.context.newPage();
      await writer.goto(`${server.url}/tab?${new URLSearchParams({ db, role: "writer", client, turns })}`);
      await writer.waitForFunction(() => window.snapgitReady || window.snapgitReport);
      return writer;
    }),
  );
  await Promise.all(pages.map((writer) => writer.evaluate(() => window.snapgitGo?.())));
  const writers = await Promise.all(
    pages.map(async (writer) => {
      await writer.waitForFunction(() => window.snapgitReport !== undefined, null, { timeout: 120_000 });
      const r = await writer.evaluate(() => window.snapgitReport);
      await writer.close();
      assert.equal(r.error, undefined, `${r.error} (code ${r.code})`);
      return r;
    }),
  );
  const acknowledged = writers.flatMap((w) => w.commits.map((c) => c.commit));
  assert.equal(acknowledged.length, tabs * turns);
  const { files, log } = await tab({ db, role: "check" });
  assert.deepEqual(files, [
    ...Array.from({ length: tabs }, (_, c) => [`agent-${c}.md`, `${turns - 1}\n`]),
    ["shared.md", "s\n"],
  ]);
  assert.equal(log.length, tabs * turns + 1);
  assert.equal(log.at(-1), first.commit);
  for (const id of acknowledged) assert.ok(log.includes(id), `acknowledged commit ${id} is in the history`);
});
