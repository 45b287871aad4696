/**
 * A commit's names, signatures and changes packed into one buffer for the engine
 * (`Engine.commitPacked`; the layout is read by `wasm/src/js/packed.rs`). Reading each
 * field of a request object from inside the WebAssembly costs a call across the boundary
 * per field and per string; one buffer crosses once.
 *
 * Only requests of the expected types are packed: for anything else `pack` returns
 * `undefined` and the caller passes the request object as it is, so the engine reports
 * the offending value exactly as it always does.
 *
 * Layout (integers little-endian): a string or content is a u32 byte length and the
 * bytes (strings as UTF-8); a signature is name, email, seconds since the epoch (f64)
 * and offset in minutes (f64). The request is repo, branch, message, author, a u8 (1 if
 * a committer follows), the committer, a u32 count of changes, then each change: a u8
 * tag (0, 1, 2: put with mode regular, executable, symlink, then path and content; 3:
 * delete, then path; 4: rename, then from and to).
 */

import type { Change, Files, SignatureInput } from "./types.js";

/** The fields of a commit request that are packed. */
export interface PackedFields {
  repo: unknown;
  branch: unknown;
  message: unknown;
  author: unknown;
  committer?: unknown;
  changes?: unknown;
  files?: unknown;
}

const encoder = new TextEncoder();
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const PUT_MODES: Record<string, number> = { regular: 0, executable: 1, symlink: 2 };
const DELETE = 3;
const RENAME = 4;

class Packer {
  buf = new Uint8Array(1024);
  view = new DataView(this.buf.buffer);
  pos = 0;

  reserve(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(need, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): void {
    this.reserve(1);
    this.buf[this.pos++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  f64(value: number): void {
    this.reserve(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  string(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.reserve(4 + 3 * text.length);
    const { written } = encoder.encodeInto(text, this.buf.subarray(this.pos + 4));
    this.view.setUint32(this.pos, written, true);
    this.pos += 4 + written;
  }

  content(content: string | Uint8Array): void {
    if (typeof content === "string") {
      this.string(content);
      return;
    }
    this.reserve(4 + content.length);
    this.view.setUint32(this.pos, content.length, true);
    this.buf.set(content, this.pos + 4);
    this.pos += 4 + content.length;
  }
}

// One packer is reused; a request whose getters start another commit while it is being
// packed gets a packer of its own.
const shared = new Packer();
let sharedBusy = false;

const absent = (value: unknown): value is null | undefined => value === undefined || value === null;
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;

function signature(p: Packer, value: unknown): boolean {
  if (!isObject(value)) return false;
  const { name, email, date, offsetMinutes } = value as Partial<SignatureInput>;
  if (typeof name !== "string" || typeof email !== "string") return false;
  let seconds: number;
  if (absent(date)) {
    seconds = Math.floor(Date.now() / 1000);
  } else if (date instanceof Date) {
    const ms = date.getTime();
    if (!Number.isFinite(ms)) return false;
    seconds = Math.floor(ms / 1000);
  } else if (typeof date === "number" && Number.isInteger(date) && Math.abs(date) <= MAX_SAFE) {
    seconds = date;
  } else {
    return false;
  }
  let offset = 0;
  if (!absent(offsetMinutes)) {
    if (typeof offsetMinutes !== "number" || !Number.isInteger(offsetMinutes) || Math.abs(offsetMinutes) > 1e6) {
      return false;
    }
    offset = offsetMinutes;
  }
  p.string(name);
  p.string(email);
  p.f64(seconds);
  p.f64(offset);
  return true;
}

function change(p: Packer, value: unknown): boolean {
  if (!isObject(value)) return false;
  const c = value as Partial<Change> & { path?: unknown; content?: unknown; mode?: unknown; from?: unknown; to?: unknown };
  switch (c.type) {
    case "put": {
      const mode = absent(c.mode) ? 0 : typeof c.mode === "string" ? PUT_MODES[c.mode] : undefined;
      if (mode === undefined || typeof c.path !== "string") return false;
      if (typeof c.content !== "string" && !(c.content instanceof Uint8Array)) return false;
      p.u8(mode);
      p.string(c.path);
      p.content(c.content);
      return true;
    }
    case "delete":
      if (typeof c.path !== "string") return false;
      p.u8(DELETE);
      p.string(c.path);
      return true;
    case "rename":
      if (typeof c.from !== "string" || typeof c.to !== "string") return false;
      p.u8(RENAME);
      p.string(c.from);
      p.string(c.to);
      return true;
    default:
      return false;
  }
}

function fill(p: Packer, r: PackedFields): boolean {
  if (typeof r.repo !== "string" || typeof r.branch !== "string" || typeof r.message !== "string") return false;
  p.string(r.repo);
  p.string(r.branch);
  p.string(r.message);
  if (!signature(p, r.author)) return false;
  if (absent(r.committer)) {
    p.u8(0);
  } else {
    p.u8(1);
    if (!signature(p, r.committer)) return false;
  }
  const changes = absent(r.changes) ? [] : r.changes;
  if (!Array.isArray(changes)) return false;
  const files = absent(r.files) ? undefined : r.files;
  if (files !== undefined && !isObject(files)) return false;
  const entries = files === undefined ? [] : Object.entries(files as Files);
  p.u32(changes.length + entries.length);
  for (const c of changes) if (!change(p, c)) return false;
  for (const [path, content] of entries) {
    if (content === null) {
      p.u8(DELETE);
      p.string(path);
    } else if (typeof content === "string" || content instanceof Uint8Array) {
      p.u8(0);
      p.string(path);
      p.content(content);
    } else {
      return false;
    }
  }
  return true;
}

/**
 * The packed fields of a commit request, or `undefined` if any of them is not of the
 * expected type (then the engine reads the request object itself and names the problem).
 * The bytes are valid until the next call.
 */
export function pack(request: PackedFields): Uint8Array | undefined {
  const p = sharedBusy ? new Packer() : shared;
  const owns = p === shared;
  if (owns) sharedBusy = true;
  try {
    p.pos = 0;
    return fill(p, request) ? p.buf.subarray(0, p.pos) : undefined;
  } finally {
    if (owns) sharedBusy = false;
  }
}
