/**
 * Every request to the engine, type-checked and packed into one buffer (read back by
 * `wasm/src/js/packed.rs`). Reading each field of a request object from inside the
 * WebAssembly would cost a call across the boundary per field and per string; one
 * buffer crosses once.
 *
 * Types are checked here and nowhere else: a value of the wrong type throws an
 * `INVALID_INPUT` error naming the field (`author.email`, `changes[2].path`,
 * `files["a.md"]`) and carrying the value. What needs the engine's rules (ids, paths,
 * names, messages) is checked by the engine.
 *
 * Layout (integers little-endian): a string or content is a u32 byte length and the
 * bytes (strings as UTF-8); a number is an f64; a flag is a u8 (0 false, 1 true, 2
 * absent: the engine's default); an optional string or number is a u8 (1 if present)
 * and the value. A signature is name, email, seconds since the epoch and offset in
 * minutes. Changes are a u32 count, then each change: a u8 tag (0, 1, 2: put with mode
 * regular, executable, symlink, then path and content; 3: delete, then path; 4: rename,
 * then from and to). A remote is its URL, then a u32 count of headers and each header's
 * name and value. Each request is its fields in the order its builder writes them.
 */

import { invalidArgument } from "./errors.js";
import type { SignatureInput } from "./types.js";

const encoder = new TextEncoder();
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const PUT_MODES: Record<string, number> = { regular: 0, executable: 1, symlink: 2 };
/** A folder's file modes, and a folder given whole by its tree. */
const FOLDER_MODES: Record<string, number> = { ...PUT_MODES, tree: 3 };
const DELETE = 3;
const RENAME = 4;
const CONFLICT: Record<string, number> = { fail: 0, ours: 1, theirs: 2 };

const absent = (value: unknown): value is null | undefined => value === undefined || value === null;
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;

/** A field's name, made only when an error needs it. */
type Field = string | (() => string);

const named = (field: Field): string => (typeof field === "string" ? field : field());

/** `value` as a whole number in `min..=max`, or an `INVALID_INPUT` error naming `field`. */
function whole(value: unknown, field: string, min: number, max: number): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
  throw invalidArgument(field, "a whole number in range", value);
}

/** A request under construction: each method checks one field's type and appends it. */
export class Packer {
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

  u8(value: number): this {
    this.reserve(1);
    this.buf[this.pos++] = value;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  f64(value: number): this {
    this.reserve(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  text(text: string): this {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.reserve(4 + 3 * text.length);
    const { written } = encoder.encodeInto(text, this.buf.subarray(this.pos + 4));
    this.view.setUint32(this.pos, written, true);
    this.pos += 4 + written;
    return this;
  }

  /** A required string. */
  str(value: unknown, field: Field): this {
    if (typeof value !== "string") throw invalidArgument(named(field), "a string", value);
    return this.text(value);
  }

  /** An optional string (`undefined` or `null` for none). */
  optStr(value: unknown, field: string): this {
    return absent(value) ? this.u8(0) : this.u8(1).str(value, field);
  }

  /** An optional boolean. */
  flag(value: unknown, field: string): this {
    if (absent(value)) return this.u8(2);
    if (typeof value !== "boolean") throw invalidArgument(field, "a boolean", value);
    return this.u8(value ? 1 : 0);
  }

  /** An optional whole number in `min..=max`. */
  optWhole(value: unknown, field: string, min: number, max: number): this {
    return absent(value) ? this.u8(0) : this.u8(1).f64(whole(value, field, min, max));
  }

  /** An optional count (a non-negative safe integer). */
  optCount(value: unknown, field: string): this {
    return this.optWhole(value, field, 0, MAX_SAFE);
  }

  /** An optional count that fits 32 bits. */
  optU32(value: unknown, field: string): this {
    return this.optWhole(value, field, 0, 0xffff_ffff);
  }

  /** A required count. */
  count(value: unknown, field: string): this {
    return this.f64(whole(value, field, 0, MAX_SAFE));
  }

  /** A required signed time in milliseconds. */
  time(value: unknown, field: string): this {
    return this.f64(whole(value, field, -MAX_SAFE, MAX_SAFE));
  }

  /** File content: a string (stored as UTF-8) or a `Uint8Array`. */
  content(content: unknown, field: Field): this {
    if (typeof content === "string") return this.text(content);
    if (!(content instanceof Uint8Array)) throw invalidArgument(named(field), "a string or a Uint8Array", content);
    this.reserve(4 + content.length);
    this.view.setUint32(this.pos, content.length, true);
    this.buf.set(content, this.pos + 4);
    this.pos += 4 + content.length;
    return this;
  }

  /**
   * A signature: `{ name, email, date?, offsetMinutes? }`, `date` a `Date` or seconds
   * since the epoch (now when absent), `offsetMinutes` the time zone (UTC when absent).
   */
  signature(value: unknown, field: string): this {
    if (!isObject(value)) throw invalidArgument(field, "an object", value);
    const { name, email, date, offsetMinutes } = value as Partial<SignatureInput>;
    this.str(name, `${field}.name`).str(email, `${field}.email`);
    if (absent(date)) {
      this.f64(Math.floor(Date.now() / 1000));
    } else if (date instanceof Date) {
      const ms = date.getTime();
      if (!Number.isFinite(ms)) throw invalidArgument(`${field}.date`, "a valid Date", date);
      this.f64(Math.floor(ms / 1000));
    } else {
      this.f64(whole(date, `${field}.date`, -MAX_SAFE, MAX_SAFE));
    }
    return this.f64(absent(offsetMinutes) ? 0 : whole(offsetMinutes, `${field}.offsetMinutes`, -1e6, 1e6));
  }

  /**
   * The changes of a commit: `changes`, an array of puts, deletes and renames, then
   * `files`, path to content (or `null` to delete). Either may be absent.
   */
  changes(changes: unknown, files: unknown): this {
    if (!absent(changes) && !Array.isArray(changes)) throw invalidArgument("changes", "an array", changes);
    if (!absent(files) && !isObject(files)) throw invalidArgument("files", "an object", files);
    const list = absent(changes) ? [] : (changes as unknown[]);
    const entries = absent(files) ? [] : Object.entries(files);
    this.u32(list.length + entries.length);
    for (let i = 0; i < list.length; i++) this.change(list[i], i);
    for (const [path, content] of entries) {
      if (content === null) this.u8(DELETE).text(path);
      else this.u8(0).text(path).content(content, () => `files[${JSON.stringify(path)}]`);
    }
    return this;
  }

  /** Change `index` of `changes`. */
  change(value: unknown, index: number): void {
    const at = (name?: string) => () => `changes[${index}]${name ? `.${name}` : ""}`;
    if (!isObject(value)) throw invalidArgument(at()(), "an object", value);
    switch (value.type) {
      case "put": {
        const mode = absent(value.mode) ? 0 : typeof value.mode === "string" ? PUT_MODES[value.mode] : undefined;
        if (mode === undefined) throw invalidArgument(at("mode")(), "'regular', 'executable' or 'symlink'", value.mode);
        this.u8(mode).str(value.path, at("path")).content(value.content, at("content"));
        return;
      }
      case "delete":
        this.u8(DELETE).str(value.path, at("path"));
        return;
      case "rename":
        this.u8(RENAME).str(value.from, at("from")).str(value.to, at("to"));
        return;
      default:
        throw invalidArgument(at("type")(), "'put', 'delete' or 'rename'", value.type);
    }
  }

  /**
   * A folder's files: an array of `{ path, mode?, id, data? }`, `data` given for the
   * files read and hashed for this call.
   */
  folderFiles(files: unknown, field: string): this {
    if (!Array.isArray(files)) throw invalidArgument(field, "an array", files);
    this.u32(files.length);
    files.forEach((file: unknown, i) => {
      const at = (name: string) => () => `${field}[${i}].${name}`;
      if (!isObject(file)) throw invalidArgument(`${field}[${i}]`, "an object", file);
      const mode = absent(file.mode) ? 0 : typeof file.mode === "string" ? FOLDER_MODES[file.mode] : undefined;
      if (mode === undefined) throw invalidArgument(at("mode")(), "'regular', 'executable', 'symlink' or 'tree'", file.mode);
      this.u8(mode).str(file.path, at("path")).str(file.id, at("id"));
      if (absent(file.data)) this.u8(0);
      else this.u8(1).content(file.data, at("data"));
    });
    return this;
  }

  /** Fields `write` appends, in a chain. */
  also(write: (p: this) => unknown): this {
    write(this);
    return this;
  }

  /** An array of strings (absent: none). */
  strs(values: unknown, field: string): this {
    if (absent(values)) return this.u32(0);
    if (!Array.isArray(values)) throw invalidArgument(field, "an array of strings", values);
    this.u32(values.length);
    values.forEach((v, i) => this.str(v, `${field}[${i}]`));
    return this;
  }

  /**
   * A git remote: `url`, then `headers` (a record of names to values; absent: none).
   * The URL's own rules (http or https, credentials) are the engine's.
   */
  remote(url: unknown, headers: unknown): this {
    this.str(url, "url");
    if (absent(headers)) return this.u32(0);
    if (!isObject(headers) || Array.isArray(headers)) {
      throw invalidArgument("headers", "an object of header names to string values", headers);
    }
    const entries = Object.entries(headers);
    this.u32(entries.length);
    for (const [name, value] of entries) this.text(name).str(value, () => `headers[${JSON.stringify(name)}]`);
    return this;
  }

  /** How to settle a conflict: `'fail'` (the default), `'ours'` or `'theirs'`. */
  conflict(value: unknown): this {
    const policy = absent(value) ? 0 : typeof value === "string" ? CONFLICT[value] : undefined;
    if (policy === undefined) throw invalidArgument("onConflict", "'fail', 'ours' or 'theirs'", value);
    return this.u8(policy);
  }

  /** A write policy: `{ maxFileBytes?, maxObjectsPerCommit?, exclude?: string[] }`, or none. */
  policy(value: unknown): this {
    if (absent(value)) return this.u8(0);
    if (!isObject(value)) throw invalidArgument("policy", "an object", value);
    this.u8(1)
      .optCount(value.maxFileBytes, "policy.maxFileBytes")
      .optCount(value.maxObjectsPerCommit, "policy.maxObjectsPerCommit");
    const exclude = value.exclude;
    if (absent(exclude)) return this.u8(0);
    if (!Array.isArray(exclude)) throw invalidArgument("policy.exclude", "an array of strings", exclude);
    this.u8(1).u32(exclude.length);
    exclude.forEach((p, i) => this.str(p, `policy.exclude[${i}]`));
    return this;
  }
}

// One packer is reused; a request whose getters start another request while it is being
// packed gets a packer of its own.
const shared = new Packer();
let sharedBusy = false;

/**
 * The request `write` packs, checking each field's type. The bytes are valid until the
 * next call: hand them to the engine at once (it copies them).
 */
export function pack(write: (p: Packer) => unknown): Uint8Array {
  const p = sharedBusy ? new Packer() : shared;
  const owns = p === shared;
  if (owns) sharedBusy = true;
  try {
    p.pos = 0;
    write(p);
    return p.buf.subarray(0, p.pos);
  } finally {
    if (owns) sharedBusy = false;
  }
}
