/**
 * Documents to stream through a model: a folder of text files (the workspace),
 * a JSONL file with a "text" field per line, or one plain text file. Read
 * lazily, one document at a time, in a stable order, so a long corpus never
 * sits in memory and a resumed run can skip exactly what it already used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { LoupeError } from './errors';

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
const MAX_FILE_BYTES = 2 * 1024 * 1024;

export async function* readCorpus(source: string): AsyncGenerator<CorpusDocument> {
  if (!fs.existsSync(source)) throw new LoupeError(`${source}: no such corpus file or folder`);
  const stat = fs.statSync(source);
  if (stat.isDirectory()) {
    const files = listTextFiles(source);
    if (files.length === 0) throw new LoupeError(`${source}: the folder holds no text or code files to read`);
    for (const file of files) {
      const text = readTextFile(file);
      if (text !== null && text.trim().length > 0) yield { source: file, text };
    }
    return;
  }
  if (source.endsWith('.jsonl')) {
    const lines = readline.createInterface({
      input: fs.createReadStream(source, 'utf8'),
      crlfDelay: Infinity,
    });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.trim().length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new LoupeError(
          `${source}:${n}: not valid JSON; each line must be an object with a "text" field`,
        );
      }
      const text = (value as { text?: unknown }).text;
      if (typeof text !== 'string') throw new LoupeError(`${source}:${n}: no string "text" field`);
      if (text.trim().length > 0) yield { source: `${source}:${n}`, text };
    }
    return;
  }
  const text = readTextFile(source, Infinity);
  if (text === null) throw new LoupeError(`${source}: looks binary, not text`);
  yield { source, text };
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

/** A file's text, or null when it is too large or binary (a NUL byte in its first 8 KB). */
function readTextFile(file: string, maxBytes = MAX_FILE_BYTES): string | null {
  if (fs.statSync(file).size > maxBytes) return null;
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, 8192).includes(0)) return null;
  const text = buf.toString('utf8');
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}
