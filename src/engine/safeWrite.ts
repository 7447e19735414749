/**
 * The one way Loupe writes a result. Nothing the user did not give up is
 * deleted, and a kill at any moment leaves the old result or the new one,
 * never a mix.
 *
 * - A single file (activations, an exported direction, a cache entry) is
 *   written to `<file>.loupe-new-<pid>` and renamed over the target.
 * - A result that is several files (an SAE folder, a feature database, a
 *   probe, a tuned lens, a training checkpoint) is written whole into
 *   `<target>.loupe-new-<pid>` beside the target, then swapped in:
 *   target → `<target>.loupe-old-<pid>`, new → target, old removed. Entries of
 *   the old folder the result does not own (a README, a training log) are
 *   hard-linked into the new one first, so they survive the swap.
 * - Every crash state of a swap is recoverable, and `recoverResult` (called by
 *   every writer before it writes and by every reader before it reads) puts
 *   it right: a target missing beside both copies had its swap begun with the
 *   new folder complete, so the swap is finished; a target missing beside
 *   only the old copy is rolled back; leftovers beside a present target are
 *   removed. Leftovers of a process still running are left alone.
 * - Before anything is written, an existing target must be a previous result
 *   of the same kind (known by its marker files) or an empty folder; anything
 *   else is refused with one line, as is a target under a regular file.
 *
 * The file operations go through `FsOps`, which the fault-injection tests
 * replace with one that fails at a chosen operation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from './errors';

/** The file operations a write is made of; each call is one step a crash can fall between. */
export interface FsOps {
  open(file: string): number;
  write(fd: number, bytes: Uint8Array): void;
  close(fd: number): void;
  mkdir(dir: string): void;
  rename(from: string, to: string): void;
  /** Removes a file or a folder with everything in it; nothing there is no error. */
  remove(target: string): void;
  /** A hard link, or a copy where the file system has none. */
  link(from: string, to: string): void;
  symlink(linkTarget: string, at: string): void;
}

const nodeOps: FsOps = {
  open: (file) => fs.openSync(file, 'wx'),
  write: (fd, bytes) => {
    for (let done = 0; done < bytes.length;) done += fs.writeSync(fd, bytes, done);
  },
  close: (fd) => fs.closeSync(fd),
  mkdir: (dir) => fs.mkdirSync(dir, { recursive: true }),
  rename: (from, to) => fs.renameSync(from, to),
  remove: (target) => fs.rmSync(target, { recursive: true, force: true }),
  link: (from, to) => {
    try {
      fs.linkSync(from, to);
    } catch {
      fs.copyFileSync(from, to);
    }
  },
  symlink: (linkTarget, at) => fs.symlinkSync(linkTarget, at),
};

let ops: FsOps = nodeOps;

/**
 * Runs `work` with other file operations (the fault-injection tests' seam),
 * then puts the real ones back: when it returns, or when the promise it
 * returns settles.
 */
export function withFsOps<T>(replacement: FsOps, work: () => T): T {
  const saved = ops;
  ops = replacement;
  let result: T;
  try {
    result = work();
  } catch (err) {
    ops = saved;
    throw err;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      ops = saved;
    }) as T;
  }
  ops = saved;
  return result;
}

/** The real file operations, for a test's wrapper to call through. */
export function realFsOps(): FsOps {
  return nodeOps;
}

/** The kinds of result Loupe writes, each known by the files it holds. */
export type ResultKind = 'sae' | 'feature-database' | 'probe' | 'tuned-lens' | 'checkpoint' | 'cache';

interface KindSpec {
  /** How a refusal names it: "... is a folder that is not <what>". */
  readonly what: string;
  /** A folder is of this kind when every path of one of these sets is in it. */
  readonly markers: readonly (readonly string[])[];
  /** The entries a new result of the kind replaces; the rest of the old folder is kept. */
  readonly owns: readonly string[];
}

const KINDS: Record<ResultKind, KindSpec> = {
  sae: {
    what: 'a Loupe SAE folder or training run',
    markers: [['cfg.json', 'sae_weights.safetensors'], ['checkpoint/state.json'], ['training_log.jsonl']],
    // The feature database and the checkpoint describe the weights being replaced.
    owns: ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors', 'features', 'checkpoint'],
  },
  'feature-database': {
    what: 'a Loupe feature database',
    markers: [['index.json']],
    owns: ['index.json', 'map.json', 'shards'],
  },
  probe: {
    what: 'a saved Loupe probe',
    markers: [['probe.json']],
    owns: ['probe.json', 'probe.safetensors'],
  },
  'tuned-lens': {
    what: 'a tuned lens',
    markers: [['config.json', 'params.safetensors']],
    owns: ['config.json', 'params.safetensors'],
  },
  checkpoint: {
    what: 'a training checkpoint',
    markers: [['state.json'], ['state.safetensors']],
    owns: ['state.json', 'state.safetensors'],
  },
  // A folder under Loupe's own cache: whatever is there is Loupe's to replace.
  cache: { what: 'a Loupe cache folder', markers: [[]], owns: [] },
};

const NEW = 'loupe-new';
const OLD = 'loupe-old';
/** Targets this process is writing now: its own leftovers beside any other target are stale. */
const writing = new Set<string>();

/** Why a path cannot be written, in words, from the error Node gave. */
function describeWriteErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EDQUOT':
      return 'the disk quota is used up';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'EISDIR':
      return 'it is a folder';
    default:
      return err.code ?? err.message;
  }
}

/** A file-system error while writing `target`, as one line; other errors pass unchanged. */
function writeFailure(target: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (err instanceof LoupeError || typeof code !== 'string') return err;
  return new LoupeError(`${target}: cannot write (${describeWriteErrno(err as NodeJS.ErrnoException)})`);
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

/** The nearest existing ancestor of `target`, refused when it is not a folder. */
function checkParent(target: string): void {
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const st = statOrNull(dir);
    if (st) {
      if (!st.isDirectory())
        throw new LoupeError(`${target}: cannot write under ${dir}, which is a file, not a folder`);
      return;
    }
    if (path.dirname(dir) === dir) return;
  }
}

/** Where a write lands: through a symbolic link to what it points at, so the link stays. */
function resolveTarget(target: string): string {
  const abs = path.resolve(target);
  const lst = lstatOrNull(abs);
  if (!lst?.isSymbolicLink()) return abs;
  try {
    return fs.realpathSync(abs);
  } catch {
    throw new LoupeError(
      `${target}: is a symbolic link to nothing (or one that loops); remove it or give another path`,
    );
  }
}

function isProcessRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Finishes or rolls back a swap a killed writer left at `target`, and removes
 * its temporaries. Readers call it before they read; it never throws (a
 * folder it may not write is read as it is).
 */
export function recoverResult(target: string): void {
  const abs = path.resolve(target);
  const dir = path.dirname(abs);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const pattern = new RegExp(`^${escapeRegExp(path.basename(abs))}\\.(${NEW}|${OLD})-(\\d+)$`);
  const byPid = new Map<number, { fresh?: string; old?: string }>();
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    const entry = byPid.get(pid) ?? {};
    if (m[1] === NEW) entry.fresh = path.join(dir, name);
    else entry.old = path.join(dir, name);
    byPid.set(pid, entry);
  }
  for (const [pid, { fresh, old }] of byPid) {
    if (pid === process.pid ? writing.has(abs) : isProcessRunning(pid)) continue;
    try {
      if (!lstatOrNull(abs)) {
        // The old copy is moved aside only once the new one is complete.
        if (old && fresh) {
          try {
            ops.rename(fresh, abs);
          } catch {
            ops.rename(old, abs);
          }
        } else if (old) ops.rename(old, abs);
      }
      if (fresh) ops.remove(fresh);
      if (old) ops.remove(old);
    } catch {
      // Left for the next open or write to finish.
    }
  }
}

function isKind(dir: string, kind: ResultKind): boolean {
  return KINDS[kind].markers.some((set) => set.every((p) => fs.existsSync(path.join(dir, p))));
}

/**
 * Refuses a folder result's target unless it is absent, an empty folder or a
 * previous result of the same kind; recovers a crashed swap there first. The
 * long commands call it before they start, so a bad `--out` fails at once.
 */
export function checkOutputFolder(target: string, kind: ResultKind): void {
  const abs = resolveTarget(target);
  checkParent(abs);
  recoverResult(abs);
  const st = statOrNull(abs);
  if (!st) return;
  const spec = KINDS[kind];
  if (!st.isDirectory()) {
    throw new LoupeError(
      `${target}: is a file, not a folder to write ${spec.what} into; choose another output path or remove the file`,
    );
  }
  let entries: string[];
  try {
    entries = fs.readdirSync(abs);
  } catch (err) {
    throw writeFailure(target, err);
  }
  if (entries.length === 0 || isKind(abs, kind)) return;
  const shown = entries.sort().slice(0, 2).join(', ');
  const more = entries.length > 2 ? ` and ${entries.length - 2} more` : '';
  throw new LoupeError(
    `${target}: is a folder that is not ${spec.what} (it holds ${shown}${more}); choose another output path or remove it`,
  );
}

/** Makes a result's folder (and its parents) where a writer works in place, like a training run's log. */
export function makeOutputFolder(target: string): void {
  try {
    ops.mkdir(resolveTarget(target));
  } catch (err) {
    throw writeFailure(target, err);
  }
}

/** Kinds of single-file result, each known by how its content starts. */
export type FileKind = 'safetensors';

/** A safetensors file starts with its header's length and the header's '{'. */
function looksLikeSafetensors(file: string, size: number): boolean {
  if (size < 10) return false;
  const head = Buffer.alloc(9);
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 9, 0);
  } catch {
    return false;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  const len = head.readBigUInt64LE(0);
  return len > 0n && len <= BigInt(size - 8) && head[8] === 0x7b;
}

/** Refuses a single-file result's target unless it is absent or a previous file of the same kind. */
export function checkOutputFile(target: string, kind: FileKind): void {
  const abs = resolveTarget(target);
  checkParent(abs);
  const st = statOrNull(abs);
  if (!st) return;
  if (st.isDirectory())
    throw new LoupeError(
      `${target}: is a folder, not a .${kind} file to write; give a file path for the output`,
    );
  if (!st.isFile() || !looksLikeSafetensors(abs, st.size)) {
    throw new LoupeError(
      `${target}: is a file that is not a ${kind} file; choose another output path or remove it`,
    );
  }
}

/** What a single file is made of: text, bytes, chunks written in order, or a writer fed an open descriptor. */
export type FileContent = string | Uint8Array | readonly Uint8Array[] | ((sink: FileSink) => void);

export interface FileSink {
  /** The open file, for writers that stream into it directly. */
  readonly fd: number;
  write(bytes: Uint8Array): void;
}

function writeContent(file: string, content: FileContent): void {
  const fd = ops.open(file);
  try {
    if (typeof content === 'string') ops.write(fd, Buffer.from(content, 'utf8'));
    else if (content instanceof Uint8Array) ops.write(fd, content);
    else if (typeof content === 'function') content({ fd, write: (bytes) => ops.write(fd, bytes) });
    else for (const chunk of content) ops.write(fd, chunk);
  } finally {
    ops.close(fd);
  }
}

/**
 * Writes a file through a sibling temporary renamed over it, so the file is
 * the old one or the new one whatever happens; the temporary never outlives
 * the call, on any exit path. Callers writing a user's result check the
 * target first (`checkOutputFile`); caches need not.
 */
export function writeFileAtomic(file: string, content: FileContent): void {
  const abs = resolveTarget(file);
  recoverResult(abs);
  const tmp = `${abs}.${NEW}-${process.pid}`;
  writing.add(abs);
  try {
    ops.mkdir(path.dirname(abs));
    ops.remove(tmp);
    writeContent(tmp, content);
    ops.rename(tmp, abs);
  } catch (err) {
    try {
      ops.remove(tmp);
    } catch {
      // The next write removes it.
    }
    throw writeFailure(file, err);
  } finally {
    writing.delete(abs);
  }
}

export interface FolderWriter {
  /** The folder the new result is being written into (empty at first). */
  readonly dir: string;
  /** Writes one file of the result, `name` relative to the result folder. */
  file(name: string, content: FileContent): void;
  /** Makes a subfolder of the result. */
  folder(name: string): void;
}

/** Hard-links a file or folder tree into the new result, so an entry the old one had survives the swap. */
function linkTree(from: string, to: string): void {
  const st = fs.lstatSync(from);
  if (st.isSymbolicLink()) ops.symlink(fs.readlinkSync(from), to);
  else if (st.isDirectory()) {
    ops.mkdir(to);
    for (const name of fs.readdirSync(from)) linkTree(path.join(from, name), path.join(to, name));
  } else ops.link(from, to);
}

/**
 * Writes a result of several files as one step: `fill` writes the new
 * result into a fresh folder beside `target`, which is then swapped in (see
 * the module comment). Refuses a target that is not a previous result of
 * the same kind. On failure the target is as it was and the new folder is
 * gone.
 */
export function writeResultFolder(target: string, kind: ResultKind, fill: (out: FolderWriter) => void): void {
  checkOutputFolder(target, kind);
  const abs = resolveTarget(target);
  const fresh = `${abs}.${NEW}-${process.pid}`;
  const old = `${abs}.${OLD}-${process.pid}`;
  const writer: FolderWriter = {
    dir: fresh,
    file: (name, content) => writeContent(path.join(fresh, name), content),
    folder: (name) => ops.mkdir(path.join(fresh, name)),
  };
  writing.add(abs);
  let swapping = false;
  try {
    ops.remove(fresh);
    ops.mkdir(fresh);
    fill(writer);
    const hadOld = statOrNull(abs) !== null;
    if (hadOld) {
      const owned = new Set(KINDS[kind].owns);
      for (const name of fs.readdirSync(abs)) {
        if (!owned.has(name) && !lstatOrNull(path.join(fresh, name))) {
          linkTree(path.join(abs, name), path.join(fresh, name));
        }
      }
      swapping = true;
      ops.rename(abs, old);
    }
    ops.rename(fresh, abs);
    swapping = false;
    if (hadOld) ops.remove(old);
  } catch (err) {
    writing.delete(abs);
    try {
      if (!swapping) ops.remove(fresh);
      recoverResult(abs);
    } catch {
      // recoverResult on the next open or write finishes it.
    }
    throw writeFailure(target, err);
  } finally {
    writing.delete(abs);
  }
}

/**
 * Copies a result folder (all but the `leaveOut` entries) to `target` as a
 * new result of `kind`: refused where `writeResultFolder` refuses, and in
 * one step. Files are hard-linked where the file system allows: results are
 * only ever replaced by rename, never changed in place, so the copies stay
 * independent.
 */
export function copyResultFolder(
  source: string,
  target: string,
  kind: ResultKind,
  leaveOut: readonly string[] = [],
): void {
  const from = path.resolve(source);
  writeResultFolder(target, kind, (out) => {
    for (const name of fs.readdirSync(from)) {
      if (!leaveOut.includes(name)) linkTree(path.join(from, name), path.join(out.dir, name));
    }
  });
}
