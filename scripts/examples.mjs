// Every example of the project's documents, run as a reader would paste it.
//
//   node scripts/examples.mjs [DOCUMENT...]      (default: every document below)
//
// Each document is one terminal session in a scratch folder that stands for the reader's
// home: HOME is that folder, `~/snapgit` is this checkout (a link), and the session
// starts in the document's own folder in it. Its blocks run in order, and like a terminal
// the session keeps the working folder and the exported variables from one block to the
// next. What a block is for is said by an HTML comment on the line right before it:
//
//   <!-- example -->                     a shell block: run it (bash, stopping at the first
//                                        failing command)
//   <!-- example: file=PATH -->          save the block as PATH (in the session's folder)
//   <!-- example: file=PATH run="CMD" -->  save it, then run CMD in the session
//   <!-- example: file=PATH serve=workerd -->  save it; it is a Worker: bundled as wrangler
//                                        bundles it, served by workerd with an in-memory R2
//                                        bucket bound as MEMORY, and sent three requests at once
//   <!-- example: file=PATH open=chromium -->  save it; it is a page: served from the
//                                        session's folder and opened in headless Chromium,
//                                        which must log a line without any error
//   <!-- example: background port=N -->  a shell block that keeps running (a server): start
//                                        it, go on once N accepts connections, stop it at the end
//   <!-- example: contained-in=PATH -->  its lines must appear in PATH (of the checkout), in order
//   <!-- example: from=root ... -->      start the block in the checkout's root folder
//   <!-- output -->                      (a `text` block) what the example before it prints;
//                                        a line `...` stands for any lines
//   <!-- not-run: REASON -->             not run, for the reason given
//
// Every block with a language but `text` needs one of these, so a new example cannot be
// left out by accident. `rust` blocks are doc-tests: their document must be some crate's
// docs (`include_str!`), and they must paste as shown (no hidden `# ` lines, `?` only
// inside a function). Prints each block's outcome, then per document the count run and the
// count marked not-runnable, and last `examples: N passed, M failed`; exits non-zero on any
// failure.
//
// Environment: SNAPGIT_BIN, the `snapgit` binary the shell blocks call (default: built
// here with `cargo build -p snapgit-host --bin snapgit`); CHROMIUM (default
// /usr/bin/chromium); SNAPGIT_EXAMPLES_KEEP=1 keeps the scratch folders.
import { spawn, spawnSync } from "node:child_process";
import { createConnection } from "node:net";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const DOCUMENTS = ["README.md", "core/README.md", "js/README.md", "js/examples/worker/README.md"];
// Languages that are not code to run: a block in one of these needs no marker.
const PROSE = new Set(["text", "txt"]);
const BLOCK_TIMEOUT_MS = 15 * 60_000;

// ---------------------------------------------------------------------------------------
// Reading documents

/** The fenced blocks of `text`, each with its line, language, code and marker. */
export function blocks(text) {
  const lines = text.split("\n");
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = new RegExp(`^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
      if (close.test(lines[j])) break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j]);
    }
    const previous = i > 0 ? lines[i - 1].trim() : "";
    out.push({ line: i + 1, lang: lang.toLowerCase(), info: `${lang}${rest}`.trim(), code: `${body.join("\n")}\n`, marker: marker(previous) });
    i = j;
  }
  return out;
}

/** `<!-- example: a=b c="d e" -->`, `<!-- not-run: why -->`, `<!-- output -->` or null. */
function marker(line) {
  const comment = /^<!--\s*([\w-]+)\s*(?::\s*([\s\S]*?))?\s*-->$/.exec(line);
  if (!comment) return null;
  const [, kind, rest = ""] = comment;
  if (kind === "not-run") return { kind, reason: rest };
  if (kind === "output") return { kind };
  if (kind !== "example") return null;
  const options = {};
  for (const [, key, , , quoted, bare] of rest.matchAll(/([\w-]+)(=("([^"]*)"|(\S+)))?/g)) {
    options[key] = quoted ?? bare ?? true;
  }
  return { kind, options };
}

/** Documents whose text some crate includes as docs, so their `rust` blocks are doc-tests. */
async function docTested() {
  const found = new Map();
  const crates = spawnSync("git", ["ls-files", "*.rs"], { cwd: root, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  for (const file of crates) {
    const text = await readFile(path.join(root, file), "utf8");
    for (const [, target] of text.matchAll(/doc\s*=\s*include_str!\(\s*"([^"]+\.md)"\s*\)/g)) {
      found.set(path.relative(root, path.resolve(root, path.dirname(file), target)), file);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------
// Running

const failures = [];
const cleanups = [];
let passed = 0;

function say(text) {
  process.stdout.write(`${text}\n`);
}

/** Runs `command` to completion; resolves with `{ code, stdout, stderr }`. */
function exec(command, args, { cwd, env, timeoutMs = BLOCK_TIMEOUT_MS, input = "" } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    // The whole process group: a block's own children go with it.
    const timer = setTimeout(() => {
      stderr += `\n(stopped after ${timeoutMs / 1000} s)`;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** The last `lines` lines of `text`, indented. */
function tail(text, lines = 25) {
  return text.trimEnd().split("\n").slice(-lines).map((l) => `      ${l}`).join("\n");
}

/** Resolves once something listens on 127.0.0.1:`port`. */
async function listening(port, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port }, () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs / 1000} s`);
}

/** One document's terminal: a scratch home, a working folder and exported variables. */
class Session {
  static async create(doc, scratch, tools) {
    const home = path.join(scratch, doc.replace(/[^\w.-]+/g, "_"));
    const s = new Session();
    s.home = home;
    s.state = path.join(home, ".examples");
    await mkdir(path.join(home, "tmp"), { recursive: true });
    await mkdir(s.state, { recursive: true });
    await symlink(root, path.join(home, "snapgit"));
    s.checkout = path.join(home, "snapgit");
    s.cwd = path.join(s.checkout, path.dirname(doc));
    const real = homedir();
    const env = { ...process.env };
    for (const name of Object.keys(env)) {
      if (/^(SNAPGIT_|AWS_|GOOGLE_|AZURE_)/.test(name) && name !== "SNAPGIT_BIN") delete env[name];
    }
    Object.assign(env, {
      HOME: home,
      TMPDIR: path.join(home, "tmp"),
      // The reader's tools and caches stay where they are.
      CARGO_HOME: process.env.CARGO_HOME ?? path.join(real, ".cargo"),
      RUSTUP_HOME: process.env.RUSTUP_HOME ?? path.join(real, ".rustup"),
      XDG_CACHE_HOME: process.env.XDG_CACHE_HOME ?? path.join(real, ".cache"),
      npm_config_cache: process.env.npm_config_cache ?? path.join(real, ".npm"),
      npm_config_update_notifier: "false",
      npm_config_fund: "false",
      npm_config_audit: "false",
      npm_config_prefer_offline: "true",
      GIT_CONFIG_NOSYSTEM: "1",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
      PATH: `${tools}:${process.env.PATH}`,
    });
    if (process.env.SNAPGIT_BIN) env.SNAPGIT_BIN = process.env.SNAPGIT_BIN;
    s.env = env;
    s.count = 0;
    return s;
  }

  /** Runs `script` with bash in the session; keeps its folder and exports on success. */
  async sh(script, { from } = {}) {
    const n = ++this.count;
    const file = path.join(this.state, `block-${n}.sh`);
    await writeFile(file, script);
    const wrapper = [
      "set -eo pipefail",
      'cd "$1"',
      '. "$2"',
      'pwd >"$3.cwd"',
      'env -0 >"$3.env"',
    ].join("\n");
    const result = await exec("bash", ["-c", wrapper, "bash", from ?? this.cwd, file, path.join(this.state, `after-${n}`)], {
      cwd: this.home,
      env: this.env,
    });
    if (result.code === 0) {
      this.cwd = (await readFile(path.join(this.state, `after-${n}.cwd`), "utf8")).trim();
      const env = {};
      for (const pair of (await readFile(path.join(this.state, `after-${n}.env`), "utf8")).split("\0")) {
        const eq = pair.indexOf("=");
        if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      for (const name of ["PWD", "OLDPWD", "SHLVL", "_"]) delete env[name];
      this.env = env;
    }
    return result;
  }

  /** Starts `script` in the background; resolves once `port` listens. */
  async background(script, port) {
    const file = path.join(this.state, `background-${++this.count}.sh`);
    await writeFile(file, script);
    const child = spawn("bash", ["-c", 'set -eo pipefail; cd "$1"; . "$2"', "bash", this.cwd, file], {
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
    const exited = new Promise((resolve) => child.on("close", resolve));
    cleanups.push(async () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      await exited;
    });
    const died = exited.then((code) => {
      throw new Error(`exited (${code}) before listening on port ${port}`);
    });
    try {
      await Promise.race([listening(port), died]);
      return { code: 0, stdout: "", stderr: "" };
    } catch (error) {
      return { code: 1, stdout: output, stderr: error.message };
    }
  }

  /** A path the document names, relative to the session's folder. */
  resolve(file) {
    return path.resolve(this.cwd, file.replace(/^~(?=\/|$)/, this.home));
  }
}

/** The snapgit binary for the shell blocks: SNAPGIT_BIN, or built once. */
let snapgitBin;
function snapgit() {
  if (snapgitBin) return snapgitBin;
  if (process.env.SNAPGIT_BIN) return (snapgitBin = path.resolve(process.env.SNAPGIT_BIN));
  say("building snapgit (cargo build -p snapgit-host --bin snapgit; the first build compiles wasmtime: minutes)");
  const built = spawnSync("cargo", ["build", "--quiet", "-p", "snapgit-host", "--bin", "snapgit"], { cwd: root, stdio: "inherit" });
  if (built.status !== 0) throw new Error("cargo build -p snapgit-host --bin snapgit failed");
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
  return (snapgitBin = path.join(target, "debug", "snapgit"));
}

/** The tools on the sessions' PATH: snapgit and deno, as a reader has them installed. */
async function toolsDir(scratch, needsSnapgit) {
  const dir = path.join(scratch, "bin");
  await mkdir(dir, { recursive: true });
  const deno = path.join(root, "js", "node_modules", ".bin", "deno");
  if (existsSync(deno)) await symlink(deno, path.join(dir, "deno"));
  if (needsSnapgit) {
    const bin = snapgit();
    await symlink(bin, path.join(dir, "snapgit"));
    process.env.SNAPGIT_BIN = bin;
  }
  return dir;
}

// Runtimes that live in the package's dev dependencies, loaded when a document needs them.
const runtimes = path.join(root, "js", "test", "runtimes");
let chromium;
async function browser() {
  chromium ??= (async () => {
    const { launch } = await import(pathToFileURL(path.join(runtimes, "browser.mjs")).href);
    const opened = await launch();
    cleanups.push(opened.close);
    return opened.context;
  })();
  return chromium;
}

/** Serves the session's folder and opens `file` in Chromium: its first console line, or why not. */
async function openPage(session, file) {
  const { serve } = await import(pathToFileURL(path.join(runtimes, "browser.mjs")).href);
  const page = session.resolve(file);
  const server = await serve(session.cwd);
  cleanups.push(server.close);
  const tab = await (await browser()).newPage();
  const problems = [];
  let failed;
  const pageFailed = new Promise((resolve) => (failed = resolve));
  tab.on("pageerror", (error) => {
    problems.push(`page error: ${error.stack ?? error.message}`);
    failed(null);
  });
  // The browser asks for /favicon.ico by itself; a page without one is not at fault.
  const own = (url) => !url.endsWith("/favicon.ico");
  tab.on("requestfailed", (request) => own(request.url()) && problems.push(`request failed: ${request.url()}`));
  tab.on("response", (response) => {
    if (response.status() >= 400 && own(response.url())) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  const logged = new Promise((resolve) => {
    tab.on("console", (message) => {
      if (message.type() === "log") resolve(message.text());
      else if ((message.type() === "error" || message.type() === "warning") && own(message.location().url ?? "")) {
        problems.push(`console ${message.type()}: ${message.text()}`);
      }
    });
  });
  let timer;
  try {
    await tab.goto(`${server.url}/${path.relative(session.cwd, page).split(path.sep).join("/")}`);
    const line = await Promise.race([logged, pageFailed, new Promise((r) => (timer = setTimeout(() => r(null), 60_000)))]);
    // Problems that come with or right after the line count too.
    await new Promise((r) => setTimeout(r, 200));
    if (line === null && !problems.length) problems.push("the page logged nothing within 60 s");
    return problems.length ? { code: 1, stdout: line ?? "", stderr: problems.join("\n") } : { code: 0, stdout: `${line}\n`, stderr: "" };
  } finally {
    clearTimeout(timer);
    await tab.close();
  }
}

/**
 * The Worker in `file`, bundled as examples/worker/build.mjs bundles (wrangler's
 * conditions, the .wasm as a compiled module) and served by workerd with the example's
 * in-memory R2 bucket as MEMORY; three requests at once must all succeed.
 */
async function serveWorker(session, file) {
  const example = path.join(root, "js", "examples", "worker");
  const dir = await mkdtemp(path.join(session.state, "workerd-"));
  for (const name of ["build.mjs", "local-r2.js", "workerd.capnp"]) await copyFile(path.join(example, name), path.join(dir, name));
  await mkdir(path.join(dir, "node_modules"));
  await symlink(path.join(root, "js", "node_modules", "esbuild"), path.join(dir, "node_modules", "esbuild"));
  const { bundle } = await import(pathToFileURL(path.join(dir, "build.mjs")).href);
  await bundle({ entry: session.resolve(file), outdir: path.join(dir, "dist") });
  const { startWorkerd } = await import(pathToFileURL(path.join(runtimes, "workerd.mjs")).href);
  const server = await startWorkerd(path.join(dir, "workerd.capnp"));
  cleanups.push(server.stop);
  const answers = await Promise.all(
    ["first", "second", "third"].map(async (turn) => {
      const response = await fetch(server.url, { method: "POST", body: `the ${turn} turn\n` });
      return { status: response.status, body: await response.text() };
    }),
  );
  const bad = answers.filter((a) => a.status >= 400);
  const stdout = answers.map((a) => `${a.status} ${a.body}`).join("\n");
  return bad.length ? { code: 1, stdout, stderr: server.output() } : { code: 0, stdout: `${stdout}\n`, stderr: "" };
}

/** Lines of `code` that must appear in `file` (of the checkout, or `~/...`), in order. */
async function contained(session, file, code) {
  const full = file.startsWith("~/") ? session.resolve(file) : path.join(root, file);
  const text = (await readFile(full, "utf8")).split("\n").map((l) => l.trim());
  let at = 0;
  for (const line of code.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const found = text.indexOf(line, at);
    if (found < 0) return { code: 1, stdout: "", stderr: `${file} has no line \`${line}\` (after line ${at})` };
    at = found + 1;
  }
  return { code: 0, stdout: "", stderr: "" };
}

/** A rust block that would not compile as pasted, or null. */
function unpastable(code) {
  if (/^\s*#(\s|$)/m.test(code)) return "it has hidden (`# `) lines, which a reader does not see";
  if (/\?[;.)]/.test(code) && !/\bfn\s+\w+/.test(code)) return "it uses `?` outside a function: wrap it in `fn main() -> Result<...>`";
  return null;
}

function normalize(text) {
  return text.replace(/[ \t]+$/gm, "").trimEnd();
}

/** Whether `actual` is `expected`, where a line `...` of `expected` stands for any lines. */
function matches(actual, expected) {
  const a = normalize(actual).split("\n");
  const e = normalize(expected).split("\n");
  const at = (i, j) => {
    if (j === e.length) return i === a.length;
    if (e[j] === "...") return a.slice(i).some((_, k) => at(i + k, j + 1)) || at(a.length, j + 1);
    return i < a.length && a[i] === e[j] && at(i + 1, j + 1);
  };
  return at(0, 0);
}

/** Runs the examples of `doc`; returns its counts. */
async function runDocument(doc, scratch, tools, included) {
  const text = await readFile(path.join(root, doc), "utf8");
  const counts = { run: 0, notRun: 0, doctests: 0 };
  const session = await Session.create(doc, scratch, tools);
  // Servers a block started with scripts/services.sh (state under the session's TMPDIR)
  // are stopped even when the block that would stop them failed.
  cleanups.push(async () => {
    if (existsSync(path.join(session.home, "tmp", "snapgit-services"))) {
      await exec("bash", [path.join(root, "scripts", "services.sh"), "stop"], { cwd: session.home, env: session.env });
    }
  });
  let last = null;
  say(`\n== ${doc}`);
  const fail = (block, why, result) => {
    failures.push(`${doc}:${block.line}`);
    say(`  FAIL ${doc}:${block.line} (${block.info}): ${why}`);
    if (result?.stdout) say(`    stdout:\n${tail(result.stdout)}`);
    if (result?.stderr) say(`    stderr:\n${tail(result.stderr)}`);
  };
  for (const block of blocks(text)) {
    const where = `${doc}:${block.line}`;
    if (block.marker?.kind === "output") {
      if (!last) {
        fail(block, "an output block with no example before it");
        continue;
      }
      if (matches(last.stdout, block.code)) {
        passed++;
        say(`  ok   ${where} output matches`);
      } else {
        fail(block, "the example printed something else", { stdout: last.stdout, stderr: "" });
      }
      continue;
    }
    if (PROSE.has(block.lang)) continue;
    if (!block.lang) {
      fail(block, "a block without a language: say `text` for one that is not code");
      continue;
    }
    if (block.lang === "rust") {
      counts.doctests++;
      const why = !included.has(doc)
        ? `no crate includes ${doc} as docs, so its rust blocks are not doc-tests`
        : block.info !== "rust"
          ? "a doc-test must be plain `rust` (no ignore, no_run or should_panic)"
          : unpastable(block.code);
      if (why) {
        fail(block, why);
        continue;
      }
      if (!block.marker) continue; // a doc-test only
    }
    if (!block.marker) {
      fail(block, "no marker: say <!-- example ... --> or <!-- not-run: REASON --> on the line before it");
      continue;
    }
    if (block.marker.kind === "not-run") {
      if (!block.marker.reason) fail(block, "not-run needs a reason");
      counts.notRun++;
      say(`  skip ${where}: ${block.marker.reason}`);
      continue;
    }
    const options = block.marker.options;
    const started = Date.now();
    let result;
    try {
      const from = options.from === "root" ? session.checkout : undefined;
      if (options["contained-in"]) result = await contained(session, options["contained-in"], block.code);
      else if (options.background) result = await session.background(block.code, Number(options.port));
      else if (options.file) {
        const file = session.resolve(options.file);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, block.code);
        if (options.run) result = await session.sh(`${options.run}\n`, { from });
        else if (options.serve === "workerd") result = await serveWorker(session, options.file);
        else if (options.open === "chromium") result = await openPage(session, options.file);
        else result = { code: 0, stdout: "", stderr: "" };
      } else if (block.lang === "sh" || block.lang === "bash") result = await session.sh(block.code, { from });
      else throw new Error(`nothing says how to run a ${block.lang} block: give it file=... and run=...`);
    } catch (error) {
      result = { code: 1, stdout: "", stderr: error.stack ?? String(error) };
    }
    counts.run++;
    last = result;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (result.code === 0) {
      passed++;
      say(`  ok   ${where} ${block.lang}${options.file ? ` ${options.file}` : ""} (${seconds} s)`);
    } else {
      fail(block, `exit code ${result.code} after ${seconds} s`, result);
    }
  }
  return counts;
}

async function main() {
  const docs = process.argv.slice(2).length ? process.argv.slice(2).map((d) => path.relative(root, path.resolve(d))) : DOCUMENTS;
  const texts = await Promise.all(docs.map((doc) => readFile(path.join(root, doc), "utf8")));
  const needsSnapgit = texts.some((t) =>
    blocks(t).some((b) => (b.lang === "sh" || b.lang === "bash") && b.marker?.kind === "example" && /^\s*snapgit\s/m.test(b.code)),
  );
  const scratch = await mkdtemp(path.join(tmpdir(), "snapgit-examples-"));
  const summary = [];
  const before = spawnSync("git", ["status", "--porcelain"], { cwd: root, encoding: "utf8" }).stdout;
  try {
    const tools = await toolsDir(scratch, needsSnapgit);
    const included = await docTested();
    for (const doc of docs) {
      const counts = await runDocument(doc, scratch, tools, included);
      const crate = included.get(doc);
      summary.push(
        `${doc}: ${counts.run} run, ${counts.notRun} marked not-runnable` +
          (counts.doctests ? `; ${counts.doctests} rust block(s) run as doc-tests (${crate ?? "no crate"})` : ""),
      );
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
    }
  } finally {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
    if (process.env.SNAPGIT_EXAMPLES_KEEP) say(`\nscratch kept: ${scratch}`);
    else await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
  const after = spawnSync("git", ["status", "--porcelain"], { cwd: root, encoding: "utf8" }).stdout;
  if (after !== before) {
    failures.push("checkout");
    say(`\n  FAIL the examples changed the checkout (git status):\n${tail(after)}`);
  }
  say("");
  for (const line of summary) say(line);
  say(`examples: ${passed} passed, ${failures.length} failed`);
  process.exitCode = failures.length ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
