/**
 * The fuzz corpus, run through the built CLI (`dist/cli.js`): each case in a
 * child process of its own, a few at a time (LOUPE_FUZZ_JOBS, default 2),
 * killed and failed past its time bound or its memory bound. A case that
 * expects an error must exit 1 with exactly one stderr line (besides
 * `loupe: warning:` lines) that matches, and that line must not read
 * "internal error", carry a stack frame or print NaN; a case that expects a
 * result must exit 0, pass its check and print no NaN. The `untouched` paths
 * must be byte-identical afterwards (the case's compiled-model cache,
 * LOUPE_CACHE_DIR = `<case folder>/.loupe-cache`, which a cache case may write
 * in its setup, left out). The CLI runs in the case's folder with stdin
 * closed. LOUPE_FUZZ_ONLY=TEXT keeps the cases whose name contains TEXT.
 * Timings and peak memory of the last run are written to
 * `.cache/fuzz/results.json`.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from './case';
import { CASE_CACHE_FOLDER, FUZZ_DIR, LoadedCase, REPO_ROOT, loadCases, prepareCase } from './generate';

const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');
const PRELOAD = path.join(__dirname, 'recordPeakRss.js');
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RSS_MIB = 1024;
const JOBS = Math.max(1, Number.parseInt(process.env.LOUPE_FUZZ_JOBS ?? '2', 10) || 1);
/** How often the child's memory is looked at, to stop a blow-up before it takes the machine. */
const RSS_POLL_MS = 50;
/** More output than any case needs; the rest is dropped (and the case told). */
const MAX_CAPTURE_BYTES = 256 * 1024 * 1024;

interface Outcome {
  readonly args: readonly string[];
  readonly dir: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** Peak resident memory in MiB: the child's own count at exit, else the largest seen while it ran. */
  readonly peakRssMiB: number;
  /** Why the runner stopped it, if it did. */
  readonly killedFor: 'time' | 'memory' | null;
  readonly untouchedBefore: ReadonlyMap<string, string>;
}

/** A fingerprint of a file or folder (recursively) that changes if any byte, name or link does. */
function fingerprint(p: string): string {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (st === undefined) return 'missing';
  if (st.isSymbolicLink()) return `link ${fs.readlinkSync(p)}`;
  if (st.isDirectory()) {
    // The compiled-model cache the runner gives the CLI is not the case's to keep unchanged.
    const entries = fs
      .readdirSync(p)
      .filter((e) => e !== CASE_CACHE_FOLDER)
      .sort();
    return `dir ${crypto
      .createHash('sha256')
      .update(entries.map((e) => `${e}\0${fingerprint(path.join(p, e))}`).join('\0'))
      .digest('hex')}`;
  }
  // Never read a pipe or a device: that could block or consume what the case set up.
  if (!st.isFile()) return `special ${st.mode}`;
  return `file ${st.size} ${fileHash(p)}`;
}

/** A file's SHA-256, read a piece at a time (a case's file may be a sparse one of gigabytes). */
function fileHash(file: string): string {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.alloc(1024 * 1024);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function untouchedPaths(c: FuzzCase, dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of c.untouched ?? []) out.set(rel, fingerprint(path.resolve(dir, rel)));
  return out;
}

/** VmRSS of a running process in KiB (Linux), or 0 where /proc cannot tell. */
function currentRssKiB(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(status) ?? /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function runCase(c: FuzzCase): Promise<Outcome> {
  const { dir, args } = await prepareCase(c);
  const untouchedBefore = untouchedPaths(c, dir);
  for (const [rel, fp] of untouchedBefore)
    if (fp === 'missing') throw new Error(`untouched path '${rel}' does not exist after setup`);
  const timeoutMs = c.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxRssKiB = (c.maxRssMiB ?? DEFAULT_MAX_RSS_MIB) * 1024;
  const rssFile = path.join(FUZZ_DIR, `.rss-${process.pid}-${crypto.randomUUID()}`);
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: dir,
    // Its own process group, so that a kill reaches anything it started.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      LOUPE_CACHE_DIR: path.join(dir, CASE_CACHE_FOLDER),
      LOUPE_FUZZ_RSS_FILE: rssFile,
      NODE_OPTIONS: `--require ${JSON.stringify(PRELOAD)}`,
      LOUPE_DEBUG: '',
    },
  });
  const pid = child.pid;
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let captured = 0;
  const keep =
    (into: Buffer[]) =>
    (chunk: Buffer): void => {
      if (captured >= MAX_CAPTURE_BYTES) return;
      captured += chunk.length;
      into.push(chunk);
    };
  child.stdout.on('data', keep(stdout));
  child.stderr.on('data', keep(stderr));
  let killedFor: Outcome['killedFor'] = null;
  let polledKiB = 0;
  const kill = (why: 'time' | 'memory'): void => {
    if (killedFor !== null || pid === undefined) return;
    killedFor = why;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => kill('time'), timeoutMs);
  const poll = setInterval(() => {
    if (pid === undefined) return;
    polledKiB = Math.max(polledKiB, currentRssKiB(pid));
    if (polledKiB > maxRssKiB) kill('memory');
  }, RSS_POLL_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve([code, signal]));
  }).finally(() => {
    clearTimeout(timer);
    clearInterval(poll);
  });
  let reportedKiB = 0;
  if (fs.existsSync(rssFile)) {
    reportedKiB = Number(fs.readFileSync(rssFile, 'utf8'));
    fs.rmSync(rssFile, { force: true });
  }
  return {
    args,
    dir,
    code,
    signal,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
    ms: Date.now() - started,
    peakRssMiB: Math.max(reportedKiB, polledKiB) / 1024,
    killedFor,
    untouchedBefore,
  };
}

const STACK_FRAME = /\bat (?:\S+ )?\(?(?:node:|file:|\/)\S*:\d+:\d+\)?/;

function summary(o: Outcome): string {
  const clip = (s: string): string => (s.length > 2000 ? `${s.slice(0, 2000)}… (${s.length} chars)` : s);
  return (
    `\n  loupe ${o.args.join(' ')}\n  in ${o.dir}\n  exit ${o.code ?? o.signal}, ${o.ms} ms, ` +
    `${o.peakRssMiB.toFixed(0)} MiB\n  stderr: ${clip(o.stderr)}\n  stdout: ${clip(o.stdout)}`
  );
}

function checkOutcome(c: FuzzCase, o: Outcome): void {
  const context = summary(o);
  const timeoutMs = c.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxRssMiB = c.maxRssMiB ?? DEFAULT_MAX_RSS_MIB;
  assert.notEqual(o.killedFor, 'time', `ran past its ${timeoutMs} ms bound${context}`);
  assert.notEqual(o.killedFor, 'memory', `went past its ${maxRssMiB} MiB memory bound${context}`);
  assert.ok(o.peakRssMiB <= maxRssMiB, `peak memory over its ${maxRssMiB} MiB bound${context}`);
  if ('error' in c.expect) {
    assert.equal(o.code, 1, `expected exit code 1${context}`);
    const lines = o.stderr.split('\n').filter((l) => l.length > 0 && !l.startsWith('loupe: warning:'));
    assert.equal(lines.length, 1, `expected exactly one stderr line${context}`);
    const [line] = lines;
    assert.match(line, c.expect.error, `the error line does not say what was expected${context}`);
    assert.doesNotMatch(line, /internal error/i, `an internal error${context}`);
    assert.doesNotMatch(line, STACK_FRAME, `a stack frame${context}`);
    // NaN as a result is a bug; the user's own 'NaN', quoted back, is not.
    assert.doesNotMatch(line.replace(/'[^']*'/g, ''), /\bNaN\b/, `NaN in the message${context}`);
  } else {
    assert.equal(o.code, 0, `expected exit code 0${context}`);
    assert.doesNotMatch(o.stdout, /\bNaN\b/, `NaN in the result${context}`);
    c.expect.check?.(o.stdout, o.dir);
  }
  for (const [rel, before] of o.untouchedBefore)
    assert.equal(fingerprint(path.resolve(o.dir, rel)), before, `'${rel}' was changed${context}`);
}

const only = process.env.LOUPE_FUZZ_ONLY;
const loaded: LoadedCase[] = loadCases().filter((l) => only === undefined || l.fuzzCase.name.includes(only));

describe('fuzz corpus (bad input through the CLI)', function () {
  // Each case's own bound applies to its child process; the test waits for it.
  this.timeout(0);
  const started = new Map<string, Promise<Outcome>>();
  const results: { name: string; ms: number; peakRssMiB: number; code: number | null }[] = [];

  /** Starts case i and the next JOBS - 1, at most JOBS children at once. */
  function startFrom(i: number): void {
    for (let j = i; j < Math.min(loaded.length, i + JOBS); j++) {
      const c = loaded[j].fuzzCase;
      if (started.has(c.name)) continue;
      const run = runCase(c);
      run.catch(() => undefined); // awaited by its own test; no unhandled rejection before that
      started.set(c.name, run);
    }
  }

  before(function () {
    if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
  });

  after(async function () {
    await Promise.allSettled(started.values());
    if (results.length > 0) {
      fs.mkdirSync(FUZZ_DIR, { recursive: true });
      fs.writeFileSync(path.join(FUZZ_DIR, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
    }
  });

  loaded.forEach(({ fuzzCase: c, file }, i) => {
    it(`${c.name} (${file})`, async function () {
      startFrom(i);
      const o = await started.get(c.name)!;
      results.push({ name: c.name, ms: o.ms, peakRssMiB: Math.round(o.peakRssMiB), code: o.code });
      checkOutcome(c, o);
    });
  });
});
