// Small helpers the runtime tests share: where things are, running a program to
// completion, scratch folders, and starting a server process that reports its port.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The package's folder (js/). */
export const root = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** A tool installed by the package's devDependencies. */
export const bin = (name) => path.join(root, "node_modules", ".bin", name);

/** A fresh folder under the system's temporary folder; `cleanup()` removes every one made. */
const made = [];
export async function scratch(prefix) {
  const dir = await mkdtemp(path.join(tmpdir(), `snapgit-${prefix}-`));
  made.push(dir);
  return dir;
}
export async function cleanup() {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/**
 * Run `command` to completion; resolves with its stdout, rejects (with stdout and stderr in
 * the message) on a non-zero exit, a signal or after `timeoutMs`.
 */
export function run(command, args, { cwd = root, env = process.env, timeoutMs = 120_000, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else {
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        reject(new Error(`${command} ${args.join(" ")} failed (${how})\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
      }
    });
    // A command that exits without reading its input closes the pipe: EPIPE then says
    // nothing about the run, whose exit code does.
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

/** The last line of `stdout` that parses as JSON. */
export function lastJson(stdout) {
  const lines = stdout.trim().split("\n").reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line);
    } catch {
      // Not the report line.
    }
  }
  throw new Error(`no JSON line in the output:\n${stdout}`);
}

/** An environment for Deno that never reaches the network or prompts, with its cache in `denoDir`. */
export function denoEnv(denoDir) {
  return { ...process.env, DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", NO_COLOR: "1" };
}
