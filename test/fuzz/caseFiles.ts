/**
 * What fuzz cases build their inputs from: the repository's models and
 * fixtures by absolute path (the CLI runs in the case's folder), and writers
 * for the awkward files (a pipe, a symlink loop, a sparse file as large as
 * wanted without writing it).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './generate';

export const DEFAULT_MODEL = path.join(REPO_ROOT, 'models', 'default');
export const DEFAULT_SAE = path.join(REPO_ROOT, 'models', 'default-sae');
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');

/** Writes `content` to `dir/name` (folders made) and returns the absolute path. */
export function writeInput(dir: string, name: string, content: string | Uint8Array): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/** A named pipe nobody writes to: reading it would wait forever. */
export function fifo(dir: string, name: string): string {
  const file = path.join(dir, name);
  execFileSync('mkfifo', [file]);
  return file;
}

/** Two symlinks pointing at each other; returns the first. */
export function symlinkLoop(dir: string, name: string): string {
  const a = path.join(dir, name);
  const b = path.join(dir, `${name}.other`);
  fs.symlinkSync(b, a);
  fs.symlinkSync(a, b);
  return a;
}

/** A file of `bytes` bytes that takes no disk space: `head` is written at its start, zeros after. */
export function sparseFile(dir: string, name: string, bytes: number, head = ''): string {
  const file = writeInput(dir, name, head);
  fs.truncateSync(file, bytes);
  return file;
}
