/**
 * Documents to stream through a model: a folder of text files (the workspace),
 * a JSONL file with a "text" field per line, or one plain text file. Read
 * lazily, one document at a time, in a stable order, so a long corpus never
 * sits in memory and a resumed run can skip exactly what it already used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from './errors';
import { describeErrno, formatBytes, regularFileSize } from './inputFiles';

export interface CorpusDocument {
  /** Where the text came from: a file path, or `file.jsonl:LINE`. */
  readonly source: string;
  readonly text: string;
}

/** File types read from a folder: code and prose, never binaries. */
const TEXT_EXTENSIONS = new Set(
  (
    '.txt .md .rst .py .pyi .ts .tsx .js .jsx .mjs .cjs .json .c .h .cc .cpp .hpp .cs .java .kt .go .rs .rb .php ' +
    '.swift .scala .lua .sh .bash .zsh .ps1 .sql .html .css .scss .yaml .yml .toml .ini .cfg .tex .r .jl .m .hs ' +
    '.ml .ex .exs .erl .clj .dart .vue .svelte .xml .proto'
  ).split(' '),
);
const SKIPPED_FOLDERS = new Set([
  'node_modules',
  '.git',
  '.hg',
  '.svn',
  'dist',
  'out',
  'build',
  '__pycache__',
  '.cache',
]);
/** Larger files in a folder are left out (generated code, data, logs). */
const MAX_FILE_BYTES = 2 * 1024 * 1024;

/**
 * A text file larger than this is read in pieces of about this size, each its
 * own document, so that a corpus file of any size costs only the pieces the
 * work reads (a run with a --tokens budget stops early).
 */
const PIECE_BYTES = 64 * 1024;
/** The longest line a .jsonl corpus may have: one document should not fill the memory. */
const MAX_JSONL_LINE_BYTES = 64 * 1024 * 1024;

/**
 * The corpus's documents, one at a time. A corpus that yields no text at
 * all is refused at the end, in one line, whatever reads it.
 */
export async function* readCorpus(source: string): AsyncGenerator<CorpusDocument> {
  let found = false;
  for await (const doc of corpusDocuments(source)) {
    found = true;
    yield doc;
  }
  if (!found)
    throw new LoupeError(`${source}: no text found in the corpus; give text, code or a .jsonl with "text"`);
}

async function* corpusDocuments(source: string): AsyncGenerator<CorpusDocument> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch (err) {
    throw new LoupeError(`${source}: corpus ${describeErrno(err as NodeJS.ErrnoException)}`);
  }
  if (stat.isDirectory()) {
    const files = listTextFiles(source);
    if (files.length === 0)
      throw new LoupeError(`${source}: no text found in the folder (it holds no text or code files)`);
    for (const file of files) {
      const text = readSmallTextFile(file);
      if (text !== null && text.trim().length > 0) yield { source: file, text };
    }
    return;
  }
  regularFileSize(source, 'corpus file'); // a pipe or a device is refused, not waited on
  if (source.endsWith('.jsonl')) {
    for await (const { line, number } of jsonlLines(source, 'corpus file')) {
      const where = `${source}:${number}`;
      if (line.trim().length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new LoupeError(`${where}: not valid JSON; each line must be an object with a "text" field`);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
        throw new LoupeError(`${where}: ${what}, not an object with a "text" field`);
      }
      const text = (value as { text?: unknown }).text;
      if (typeof text !== 'string') {
        const what =
          text === undefined
            ? 'no "text" field'
            : `"text" is ${text === null ? 'null' : `a ${typeof text}`}, not a string`;
        throw new LoupeError(`${where}: ${what}`);
      }
      if (text.trim().length > 0) yield { source: where, text };
    }
    return;
  }
  yield* textFilePieces(source);
}

/** A text file as documents of about PIECE_BYTES, cut after a line break where there is one. */
async function* textFilePieces(file: string): AsyncGenerator<CorpusDocument> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let pending = '';
  let line = 1; // where `pending` starts
  let first = true;
  const piece = (text: string, startLine: number): CorpusDocument => ({
    source: startLine === 1 ? file : `${file}:${startLine}`,
    text,
  });
  for await (const chunk of fs.createReadStream(file, { highWaterMark: PIECE_BYTES })) {
    const bytes = chunk as Buffer;
    pending += decoder.decode(bytes, { stream: true });
    if (first) {
      if (bytes.subarray(0, 8192).includes(0)) throw new LoupeError(`${file}: looks binary, not text`);
      if (pending.startsWith('\uFEFF')) pending = pending.slice(1);
      first = false;
    }
    while (pending.length >= PIECE_BYTES) {
      const cut = pending.lastIndexOf('\n', PIECE_BYTES);
      const end = cut > 0 ? cut + 1 : PIECE_BYTES;
      const text = pending.slice(0, end);
      if (text.trim().length > 0) yield piece(text, line);
      line += countLineBreaks(text);
      pending = pending.slice(end);
    }
  }
  pending += decoder.decode();
  if (pending.trim().length > 0) yield piece(pending, line);
}

function countLineBreaks(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The lines of a .jsonl file the user gave (a corpus, a labelled dataset),
 * numbered from 1: a pipe is refused, a line longer than 64 MiB too.
 */
export function jsonlLines(
  file: string,
  what: string,
): AsyncGenerator<{ readonly line: string; readonly number: number }> {
  regularFileSize(file, what);
  return fileLines(file, MAX_JSONL_LINE_BYTES);
}

/** The lines of a file with their numbers, refusing one longer than maxBytes before it fills the memory. */
async function* fileLines(
  file: string,
  maxBytes: number,
): AsyncGenerator<{ readonly line: string; readonly number: number }> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  // The start of the current line, in pieces: joined once, when its end comes (a long line costs its length).
  let head: string[] = [];
  let headLength = 0;
  let number = 0;
  const take = (text: string): { readonly line: string; readonly number: number }[] => {
    const lines = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const line = head.join('') + text.slice(start, nl);
      head = [];
      headLength = 0;
      lines.push({ line: line.endsWith('\r') ? line.slice(0, -1) : line, number: ++number });
      start = nl + 1;
    }
    if (start < text.length) {
      head.push(text.slice(start));
      headLength += text.length - start;
    }
    if (headLength > maxBytes)
      throw new LoupeError(
        `${file}:${number + 1}: the line is longer than ${formatBytes(maxBytes)}; split it`,
      );
    return lines;
  };
  for await (const chunk of fs.createReadStream(file, { highWaterMark: PIECE_BYTES })) {
    yield* take(decoder.decode(chunk as Buffer, { stream: true }));
  }
  yield* take(decoder.decode());
  if (headLength > 0) yield { line: head.join(''), number: number + 1 };
}

function listTextFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    const entries = fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!SKIPPED_FOLDERS.has(e.name) && !e.name.startsWith('.')) walk(p);
      } else if (e.isFile() && TEXT_EXTENSIONS.has(path.extname(e.name).toLowerCase())) {
        out.push(p);
      }
    }
  };
  walk(dir);
  return out;
}

/** A folder's file's text, or null when it is too large or binary (a NUL byte in its first 8 KB). */
function readSmallTextFile(file: string): string | null {
  if (fs.statSync(file).size > MAX_FILE_BYTES) return null;
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, 8192).includes(0)) return null;
  const text = buf.toString('utf8');
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}
