/** The CLI's one exit path: complete output on a pipe, a reader that leaves, Ctrl-C. */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, tempDir } from './helpers';

interface Spawned {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

interface SpawnOptions {
  /** Close the pipe after this many bytes, as `| head -c N` does. */
  readonly stopAfterBytes?: number;
  /** Send SIGINT (Ctrl-C) after this many milliseconds. */
  readonly interruptAfterMs?: number;
}

/** Runs the CLI with stdout on a pipe read by this process. */
function spawnCli(args: readonly string[], cache: string, options: SpawnOptions = {}): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, LOUPE_CACHE_DIR: cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let got = 0;
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      got += chunk.length;
      if (got >= (options.stopAfterBytes ?? Infinity)) child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const timer =
      options.interruptAfterMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGINT'), options.interruptAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

describe('loupe CLI exit path', function () {
  let dir: string;
  let cache: string;
  let bigText: string;
  let text: string;
  before(function () {
    if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
    dir = tempDir();
    cache = tempDir();
    const words = ['def', ' return', ' x', ' foo', '(', ')', ':', '\n', ' import', ' class'];
    let s = '';
    for (let i = 0; s.length < 150_000; i++) s += words[(i * 7 + (i >> 3)) % words.length];
    text = s;
    bigText = path.join(dir, 'big.py');
    fs.writeFileSync(bigText, text);
  });

  it('writes all of a large output to a pipe before exiting', async () => {
    const r = await spawnCli(['tokenize', '--json', '--text', bigText], cache);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 1024 * 1024, `${r.stdout.length} bytes`);
    // Cut output would not parse; the spans of a complete one reach the end of the text.
    const tokens = JSON.parse(r.stdout.toString('utf8')) as { start: number; end: number }[];
    assert.equal(tokens[tokens.length - 1].end, text.length);
    assert.equal(r.stderr, '');
  });

  it('ends quietly, exit 0, when the reader goes away (| head -c 10)', async () => {
    // Line by line, so that the pipe closes while the command is still writing.
    const r = await spawnCli(['tokenize', '--text', bigText], cache, { stopAfterBytes: 10 });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  it('says one line and exits 130 on Ctrl-C', async () => {
    const r = await spawnCli(['bench', 'forward', '--tokens', '64', '--repeat', '1000000'], cache, {
      interruptAfterMs: 1500,
    });
    assert.equal(r.code, 130);
    assert.equal(r.stderr, 'loupe: interrupted (Ctrl-C)\n');
  });
});
