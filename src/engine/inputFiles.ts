/**
 * The one way the engine opens a file the user pointed it at (a text, a
 * corpus file, a config, a shard, a database file): checked first, so that a
 * pipe never hangs a read, a folder where a file belongs or a symlink loop is
 * named as such, and a file far larger than the work asked for is refused
 * before it is read. Every failure is a LoupeError naming the file.
 */
import * as fs from 'node:fs';
import { LoupeError } from './errors';

const MiB = 1024 * 1024;

/** Why a path cannot be read (or written), in words, from the error Node gave. */
export function describeErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'not found';
    case 'ELOOP':
      return 'is a symbolic link that loops (or too many links deep); point to the real file';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)';
    case 'ENOTDIR':
      return 'not found (a part of the path is a file, not a folder)';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'EISDIR':
      return 'is a folder, not a file';
    case 'ENOSPC':
      return 'no space left on the device; free some space or write elsewhere';
    case 'EROFS':
      return 'is on a read-only file system';
    case 'EEXIST':
      return 'already exists';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many files open at once; raise the limit (ulimit -n) or close other programs';
    default:
      return `cannot be read (${err.code ?? err.message})`;
  }
}

/** The file's size after checking that it is a regular file (following symlinks). */
export function regularFileSize(file: string, what = 'file'): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new LoupeError(`${file}: ${what} ${describeErrno(err as NodeJS.ErrnoException)}`);
  }
  if (st.isDirectory()) throw new LoupeError(`${file}: ${what} is a folder, not a file`);
  if (!st.isFile()) {
    throw new LoupeError(
      `${file}: ${what} is not a regular file (a pipe, socket or device); save the content to a file and give that`,
    );
  }
  return st.size;
}

export interface ReadLimit {
  /** Largest size accepted, in bytes. */
  readonly maxBytes: number;
  /** What to do instead, said after the refusal (for example "select a part of it"). */
  readonly hint?: string;
}

/** Reads a regular file whole, refusing one larger than `limit.maxBytes` before reading it. */
export function readInputFile(file: string, what: string, limit: ReadLimit): Buffer {
  const size = regularFileSize(file, what);
  if (size > limit.maxBytes) {
    throw new LoupeError(
      `${file}: ${what} is ${formatBytes(size)}, more than the ${formatBytes(limit.maxBytes)} Loupe reads${limit.hint ? `; ${limit.hint}` : ''}`,
    );
  }
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new LoupeError(`${file}: ${what} ${describeErrno(err as NodeJS.ErrnoException)}`);
  }
}

/** The first `maxBytes` bytes of a regular file (all of it if shorter), without reading the rest. */
export function readInputPrefix(file: string, what: string, maxBytes: number): Buffer {
  const size = regularFileSize(file, what);
  const buf = Buffer.alloc(Math.min(size, maxBytes));
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } catch (err) {
    throw new LoupeError(`${file}: ${what} ${describeErrno(err as NodeJS.ErrnoException)}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Reads a regular UTF-8 text file (a leading byte-order mark dropped, as editors show it). */
export function readInputText(file: string, what: string, limit: ReadLimit): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(readInputFile(file, what, limit));
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** Checks that a path is an existing folder, with the usual one-line messages. */
export function checkFolder(dir: string, what = 'folder'): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    throw new LoupeError(`${dir}: ${what} ${describeErrno(err as NodeJS.ErrnoException)}`);
  }
  if (!st.isDirectory()) throw new LoupeError(`${dir}: ${what} is a file, not a folder`);
}

export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
