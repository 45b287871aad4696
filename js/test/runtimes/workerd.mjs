// Starting and stopping workerd for a test: a config served on a free loopback port. The
// config's socket is rebound to 127.0.0.1:0 and workerd reports the port it got on a
// control pipe, so no port is guessed and none can be taken in between.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

import { bin } from "./tools.mjs";

/**
 * Serve `config` (a .capnp file) with workerd; resolves once its socket `socket` listens,
 * with `{ url, stop, output }`. `stop()` ends the process and resolves when it has exited.
 */
export function startWorkerd(config, { socket = "http", timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      bin("workerd"),
      ["serve", config, "--socket-addr", `${socket}=127.0.0.1:0`, "--control-fd", "3"],
      { stdio: ["ignore", "pipe", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
    const exited = new Promise((done) => child.on("exit", done));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`workerd did not listen within ${timeoutMs} ms\n${output}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`workerd exited (${signal ?? code}) before listening\n${output}`));
    });
    createInterface({ input: child.stdio[3] }).on("line", (line) => {
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        return;
      }
      if (message.event === "listen" && message.socket === socket) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${message.port}`, stop, output: () => output });
      }
    });
  });
}
