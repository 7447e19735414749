/**
 * The one reader for JSON that someone other than this run of Loupe wrote: a
 * checkpoint's config, tokenizer and shard index, safetensors headers, SAE
 * and lens configs, probe files, feature databases, training state and
 * Loupe's own caches. Each kind of file has a size bound (checked before
 * reading), nesting is bounded before `JSON.parse` sees the text (a file
 * nested 200k deep would otherwise overflow the stack in the parser or in any
 * recursive walk after it), and the fields a reader uses are checked with the
 * schemas of src/shared/schema.ts, so every fault is one line naming the file
 * and the field. Gzipped files inflate with a cap, so a gzip bomb is refused
 * without allocating more than the cap.
 */
import * as zlib from 'node:zlib';
import { Schema, SchemaError } from '../shared/schema';
import { LoupeError } from './errors';
import { formatBytes, readInputFile } from './inputFiles';

const MiB = 1024 * 1024;

/** Real files of every kind below are at most a few dozen levels deep. */
export const MAX_JSON_DEPTH = 64;

export interface JsonKind {
  /** What the file is, in the messages ("tokenizer", "shard index"). */
  readonly what: string;
  readonly maxBytes: number;
  /** Said after a refusal: what to do about it. */
  readonly hint?: string;
}

const REBUILD_DB = "rebuild the database with 'loupe dashboards'";

/**
 * Size bounds per kind, each well above the largest real file of that kind
 * (Gemma 3's tokenizer.json is 33 MiB; a 1M-feature database's index.json a
 * few hundred MiB would be past V8's longest string anyway).
 */
export const JSON_KINDS = {
  config: { what: 'config', maxBytes: 16 * MiB },
  tokenizer: { what: 'tokenizer', maxBytes: 256 * MiB },
  tokenizerConfig: { what: 'tokenizer config', maxBytes: 64 * MiB },
  shardIndex: { what: 'shard index', maxBytes: 64 * MiB },
  safetensorsHeader: { what: 'safetensors header', maxBytes: 100 * MiB },
  saeConfig: { what: 'SAE config', maxBytes: 16 * MiB },
  lensConfig: { what: 'lens config', maxBytes: 16 * MiB },
  probe: { what: 'probe file', maxBytes: 64 * MiB },
  trainingState: { what: 'training state', maxBytes: 16 * MiB },
  featureIndex: { what: 'feature database index', maxBytes: 256 * MiB, hint: REBUILD_DB },
  featureMap: { what: 'feature map', maxBytes: 256 * MiB, hint: REBUILD_DB },
  featureShard: { what: 'dashboard shard', maxBytes: 64 * MiB, hint: REBUILD_DB },
  heldoutSample: { what: 'held-out sample', maxBytes: 64 * MiB },
  cache: { what: 'cache file', maxBytes: 256 * MiB },
} as const satisfies Record<string, JsonKind>;

/**
 * Throws unless every bracket outside strings closes within `maxDepth`
 * levels. A linear scan, so it costs about what parsing does and never recurses.
 */
export function checkJsonDepth(text: string, file: string, what: string, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = closingQuote(text, i);
      if (i < 0) return; // unterminated: JSON.parse says so
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) {
        throw new LoupeError(
          `${file}: the ${what} is nested more than ${maxDepth} levels deep; it is not a file Loupe reads (corrupt or made to crash readers)`,
        );
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/**
 * The index of the quote that closes the string opened at `open`, or -1. Found
 * with indexOf, which is native: most of a tokenizer.json is strings.
 */
function closingQuote(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at < 0) return -1;
    // Escaped when an odd run of backslashes comes before it.
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** Parses JSON text of one kind: depth first, then `JSON.parse`, with one-line errors. */
export function parseUntrustedJson(text: string, file: string, kind: JsonKind): unknown {
  checkJsonDepth(text, file, kind.what);
  try {
    return JSON.parse(text);
  } catch (err) {
    const why = (err as Error).message.slice(0, 120);
    throw new LoupeError(`${file}: the ${kind.what} is not valid JSON (${why})${hintOf(kind)}`);
  }
}

/** Reads and parses one JSON file of a kind, refusing pipes, folders and files past the kind's size. */
export function readUntrustedJson(file: string, kind: JsonKind): unknown {
  const bytes = readInputFile(file, kind.what, { maxBytes: kind.maxBytes, hint: kind.hint });
  return parseUntrustedJson(decodeUtf8(bytes), file, kind);
}

/** `readUntrustedJson` checked against a schema: the typed value, or one line naming the field. */
export function readJsonFile<T>(file: string, kind: JsonKind, schema: Schema<T>): T {
  return checkJson(readUntrustedJson(file, kind), schema, file, kind);
}

/** A parsed value checked against a schema; a SchemaError becomes one line naming the file and the field. */
export function checkJson<T>(value: unknown, schema: Schema<T>, file: string, kind?: JsonKind): T {
  try {
    return schema.parse(value, '');
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw new LoupeError(`${file}: ${schemaFault(err)}${kind ? hintOf(kind) : ''}`);
  }
}

/** "'features[3].index' must be an integer ≥ 0, got null", or "'meta' is missing". */
export function schemaFault(err: SchemaError): string {
  const at = err.at.replace(/^\./, '');
  if (err.missing) return `'${at}' is missing`;
  const where = at === '' ? 'the top level' : `'${at}'`;
  return `${where} must be ${err.expected}, got ${describeJsonValue(err.got)}`;
}

/** A short description of a JSON value for a message: small values as written, large ones by their type. */
export function describeJsonValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null || typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'a non-finite number';
  if (typeof v === 'string') return v.length <= 40 ? JSON.stringify(v) : `a string of ${v.length} characters`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return 'an object';
}

/**
 * Inflates gzip data without producing more than `maxBytes`: zlib stops at
 * the cap, so a gzip bomb costs at most the cap in memory and is refused.
 */
export function gunzipBounded(data: Buffer, file: string, kind: JsonKind, maxBytes: number): Buffer {
  try {
    return zlib.gunzipSync(data, { maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new LoupeError(
        `${file}: the ${kind.what} inflates to more than ${formatBytes(maxBytes)}, more than it can hold; the file is corrupt or a gzip bomb${hintOf(kind)}`,
      );
    }
    throw new LoupeError(`${file}: the ${kind.what} is not valid gzip (${e.message})${hintOf(kind)}`);
  }
}

/** Reads a gzipped JSON file of a kind: the compressed size bounded by the kind, the inflated size by `maxInflated`. */
export function readGzipJson(file: string, kind: JsonKind, maxInflated: number): unknown {
  const bytes = readInputFile(file, kind.what, { maxBytes: kind.maxBytes, hint: kind.hint });
  const raw = gunzipBounded(bytes, file, kind, maxInflated);
  return parseUntrustedJson(decodeUtf8(raw), file, kind);
}

function decodeUtf8(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

function hintOf(kind: JsonKind): string {
  return kind.hint ? `; ${kind.hint}` : '';
}

/** A JSON file whose top level must be an object (a config, a cfg.json, an index). */
export function readJsonObject(file: string, kind: JsonKind): Record<string, unknown> {
  return readJsonFile(file, kind, jsonObject);
}

const jsonObject: Schema<Record<string, unknown>> = {
  parse: (v, at = '') => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaError(at, 'an object', v);
    return v as Record<string, unknown>;
  },
};
