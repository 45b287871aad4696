// What the browser tests need: an import map made from a package's `exports` (the way a
// page without a bundler maps bare names), a tiny static server on loopback, and headless
// Chromium (Debian's `chromium`) driven by playwright-core.
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";

import { chromium } from "playwright-core";

import { scratch } from "./tools.mjs";

export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Flags for a quiet, offline headless Chromium. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * The target of `subpath` (`"."`, `"./adapters/memory"`) in a package.json `exports` map,
 * under `conditions`, as Node's resolver picks it: the first matching key in object
 * order, `*` patterns substituted. `null` if nothing matches.
 */
export function resolveExport(exports, subpath, conditions) {
  const pick = (target, star) => {
    if (typeof target === "string") return star === undefined ? target : target.replaceAll("*", star);
    if (target === null || typeof target !== "object") return null;
    for (const [key, value] of Object.entries(target)) {
      if (key === "default" || conditions.includes(key)) {
        const found = pick(value, star);
        if (found !== null) return found;
      }
    }
    return null;
  };
  const map = typeof exports === "string" || Object.keys(exports).every((k) => !k.startsWith(".")) ? { ".": exports } : exports;
  if (subpath in map) return pick(map[subpath]);
  for (const [key, value] of Object.entries(map)) {
    const star = key.indexOf("*");
    if (star < 0) continue;
    const [head, tail] = [key.slice(0, star), key.slice(star + 1)];
    if (subpath.startsWith(head) && subpath.endsWith(tail) && subpath.length >= head.length + tail.length) {
      return pick(value, subpath.slice(head.length, subpath.length - tail.length));
    }
  }
  return null;
}

/**
 * An import map for `specifiers` of the package in `packageDir`, served at `urlBase`,
 * resolved with the browser's conditions.
 */
export async function importMap(packageDir, urlBase, specifiers) {
  const manifest = JSON.parse(await readFile(path.join(packageDir, "package.json"), "utf8"));
  const imports = {};
  for (const specifier of specifiers) {
    const subpath = specifier === manifest.name ? "." : `.${specifier.slice(manifest.name.length)}`;
    const target = resolveExport(manifest.exports, subpath, ["browser", "import"]);
    if (target === null) throw new Error(`${specifier} does not resolve under the browser condition`);
    imports[specifier] = `${urlBase}/${target.replace(/^\.\//, "")}`;
  }
  return { imports };
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/**
 * Serve the files under `dir` on a free loopback port, and `pages` (URL path -> HTML) from
 * memory. Resolves with `{ url, close }`.
 */
export function serve(dir, pages = {}) {
  const base = path.resolve(dir);
  const server = createServer(async (request, response) => {
    const { pathname } = new URL(request.url, "http://localhost");
    if (pathname in pages) {
      response.writeHead(200, { "content-type": TYPES[".html"], "cache-control": "no-store" });
      response.end(pages[pathname]);
      return;
    }
    const file = path.resolve(base, `.${decodeURIComponent(pathname)}`);
    const type = TYPES[path.extname(file)];
    try {
      if (request.method !== "GET" || !file.startsWith(base + path.sep) || !type || !(await stat(file)).isFile()) {
        throw new Error("not served");
      }
      const body = await readFile(file);
      response.writeHead(200, { "content-type": type, "content-length": body.byteLength, "cache-control": "no-store" });
      response.end(body);
    } catch {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end(`not found: ${pathname}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A page that maps bare names with `map` and runs the module at `script`. */
export function page(map, script) {
  return `<!doctype html>
<meta charset="utf-8">
<title>snapgit</title>
<link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify(map)}</script>
<script type="module" src="${script}"></script>
`;
}

/** Headless Chromium with a fresh profile. Resolves with `{ context, close }`. */
export async function launch() {
  const profile = await scratch("chromium-profile");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  return { context, close: () => context.close() };
}

/**
 * Open `url` in `context` and wait until the page sets `window[name]`; resolves with that
 * value. Page errors and console errors are part of the rejection if it never does.
 */
export async function pageReport(context, url, name = "snapgitReport", timeoutMs = 120_000) {
  const tab = await context.newPage();
  const problems = [];
  tab.on("pageerror", (error) => problems.push(`page error: ${error.stack ?? error.message}`));
  tab.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()}`);
  });
  tab.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));
  try {
    await tab.goto(url);
    await tab.waitForFunction((key) => window[key] !== undefined, name, { timeout: timeoutMs });
    return { report: await tab.evaluate((key) => window[key], name), problems };
  } catch (error) {
    throw new Error(`${error.message}\n${problems.join("\n")}`);
  } finally {
    await tab.close();
  }
}
