// `snapgit serve` for the tests that push and fetch (test/remote.test.mjs and the
// workerd runtime test): the Rust binary, spawned on a new folder store on a free
// loopback port. The binary is SNAPGIT_BIN, else the debug build under
// $CARGO_TARGET_DIR or ../target (scripts/test.sh builds it before the package's tests).
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const checkout = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** The `snapgit` binary, or undefined when there is none. */
export function snapgitBin() {
  if (process.env.SNAPGIT_BIN) return resolve(process.env.SNAPGIT_BIN);
  const target = process.env.CARGO_TARGET_DIR
    ? resolve(checkout, process.env.CARGO_TARGET_DIR)
    : join(checkout, "target");
  const built = join(target, "debug", "snapgit");
  return existsSync(built) ? built : undefined;
}

/** Why tests that serve must be skipped, or `false` when they can run. */
export const noServer = snapgitBin()
  ? false
  : "no snapgit binary to serve with: set SNAPGIT_BIN, or build one with `cargo build -p snapgit-host --bin snapgit` " +
    "(`--no-default-features` builds faster)";

/** `git` with no user or system config, in `cwd`; its trimmed stdout. */
export function git(cwd, ...args) {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: "Git",
      GIT_AUTHOR_EMAIL: "git@example.com",
      GIT_COMMITTER_NAME: "Git",
      GIT_COMMITTER_EMAIL: "git@example.com",
    },
  }).trim();
}

/**
 * `snapgit serve` on a new folder store (made with `snapgit init`), listening on a free
 * loopback port: `{ store, url(repo), stop() }`. `env` adds to its environment
 * (`SNAPGIT_TOKENS`). `stop()` ends it and removes the store.
 */
export async function serve(env = {}) {
  const bin = snapgitBin();
  if (!bin) throw new Error(noServer);
  const dir = await mkdtemp(join(tmpdir(), "snapgit-serve-"));
  const store = join(dir, "remote.git");
  execFileSync(bin, ["--store", store, "init", "--quiet"], { stdio: "pipe" });
  const child = spawn(bin, ["--store", store, "serve", "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  const exited = new Promise((done) => child.on("exit", done));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const base = await new Promise((found, failed) => {
      let output = "";
      createInterface({ input: child.stderr }).on("line", (line) => {
        output += `${line}\n`;
        const at = line.indexOf("http://");
        if (at >= 0) found(line.slice(at).replace(/\/<repo>\.git$/, ""));
      });
      child.on("exit", (code) => failed(new Error(`snapgit serve exited (${code}) before listening:\n${output}`)));
    });
    return { store, url: (repo) => `${base}/${repo}.git`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
