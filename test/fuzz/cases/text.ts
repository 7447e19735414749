/**
 * Texts given with --text: missing, a folder, a pipe, a device, a symlink
 * loop, empty, huge, binary, invalid UTF-8, a byte-order mark, longer than
 * the context. Each is refused in one line before it is read (or read in
 * full when it is fine), in bounded time and memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { DEFAULT_SAE, fifo, sparseFile, symlinkLoop, writeInput } from '../caseFiles';

const GiB = 1024 * 1024 * 1024;

interface Token {
  readonly id: number;
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** The spans of `tokenize --json` tile `text` (BOS first, with an empty span). */
function tilesText(text: string): (stdout: string) => void {
  return (stdout) => {
    const tokens = JSON.parse(stdout) as Token[];
    let at = 0;
    for (const t of tokens.slice(1)) {
      if (t.start > at) throw new Error(`a gap at ${at}..${t.start}`);
      at = Math.max(at, t.end);
    }
    if (at !== text.length) throw new Error(`the tokens end at ${at}, the text at ${text.length}`);
  };
}

/** Some lines of code, repeated to `bytes`. */
function code(bytes: number): string {
  const line = 'def add(a, b):\n    return a + b\n';
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

function textCase(
  name: string,
  command: readonly string[],
  make: (dir: string) => string,
  expect: FuzzCase['expect'],
  bounds: { timeoutMs?: number; maxRssMiB?: number } = {},
): FuzzCase {
  return {
    name: `text/${name}`,
    area: 'text',
    setup: (dir) => [...command, '--text', make(dir)],
    expect,
    timeoutMs: bounds.timeoutMs ?? 20_000,
    maxRssMiB: bounds.maxRssMiB ?? 512,
  };
}

const INVALID_UTF8 = Buffer.from([0x64, 0x65, 0x66, 0x20, 0xff, 0xfe, 0x28, 0xc3, 0x29, 0x0a, 0xe4, 0xb8]);

export const cases: FuzzCase[] = [
  textCase('missing', ['tokenize'], (dir) => path.join(dir, 'nope.py'), {
    error: /nope\.py: text not found$/,
  }),
  textCase('folder', ['run', '--out', 'acts.safetensors'], (dir) => dir, {
    error: /: text is a folder, not a file$/,
  }),
  textCase(
    'fifo',
    ['tokenize'],
    (dir) => fifo(dir, 'pipe.txt'),
    {
      error: /pipe\.txt: text is not a regular file \(a pipe, socket or device\)/,
    },
    { timeoutMs: 10_000 },
  ),
  textCase(
    'fifo-steer',
    ['steer', '--direction', 'feature:1', '--sae', DEFAULT_SAE, '--strength', '1'],
    (dir) => fifo(dir, 'p'),
    {
      error: /p: text is not a regular file/,
    },
    { timeoutMs: 10_000 },
  ),
  textCase(
    'device',
    ['features', '--sae', DEFAULT_SAE],
    () => '/dev/zero',
    { error: /\/dev\/zero: text is not a regular file/ },
    { timeoutMs: 10_000 },
  ),
  textCase('symlink-loop', ['lens'], (dir) => symlinkLoop(dir, 'loop.py'), {
    error: /loop\.py: text is a symbolic link that loops/,
  }),
  textCase('empty-string-path', ['heads', '--position', '0'], () => '', {
    error: /^loupe: --text FILE is required$/,
  }),
  textCase('empty-tokenize', ['tokenize', '--json'], (dir) => writeInput(dir, 'empty.py', ''), {
    ok: true,
    check: (stdout) => {
      if ((JSON.parse(stdout) as Token[]).length !== 1) throw new Error('an empty text is BOS alone');
    },
  }),
  textCase(
    'empty-features',
    ['features', '--sae', DEFAULT_SAE, '--no-bos'],
    (dir) => writeInput(dir, 'empty.py', ''),
    {
      error: /the text has no tokens \(is the file empty\?\)/,
    },
  ),
  textCase(
    'huge-tokenize',
    ['tokenize'],
    (dir) => sparseFile(dir, 'huge.txt', 3 * GiB, 'def f():\n'),
    {
      error: /huge\.txt: text is 3\.0 GiB, more than the 4\.0 MiB Loupe reads; select a part of it/,
    },
    { maxRssMiB: 200 },
  ),
  textCase(
    'huge-run',
    ['run', '--out', 'acts.safetensors'],
    (dir) => sparseFile(dir, 'huge.txt', 3 * GiB, 'x = 1\n'),
    {
      error:
        /huge\.txt: the text is 3\.0 GiB, at least \d+ tokens, longer than the model's context of \d+; select a part of it/,
    },
    { maxRssMiB: 200 },
  ),
  textCase(
    '20mb-features',
    ['features', '--sae', DEFAULT_SAE],
    (dir) => writeInput(dir, 'big.py', code(20e6)),
    {
      error: /big\.py: the text is 19\.1 MiB, at least \d+ tokens, longer than the model's context/,
    },
    { maxRssMiB: 300 },
  ),
  textCase(
    'longer-than-context-run',
    ['run', '--out', 'acts.safetensors'],
    (dir) => writeInput(dir, 'long.py', code(40_000)),
    {
      error:
        /(longer than the model's context|tokens exceed the model's context of \d+; split the text or select less)/,
    },
  ),
  textCase(
    'longer-than-context-lens',
    ['lens', '--json'],
    (dir) => writeInput(dir, 'long.py', code(2e6)),
    {
      ok: true,
      check: (stdout) => void JSON.parse(stdout),
    },
    { maxRssMiB: 600 },
  ),
  textCase(
    'longer-than-context-heads-last',
    ['heads', '--position', '-1', '--json'],
    (dir) => writeInput(dir, 'long.py', code(2e6)),
    {
      ok: true,
      check: (stdout) => void JSON.parse(stdout),
    },
    { maxRssMiB: 600 },
  ),
  textCase(
    'binary-tokenize',
    ['tokenize', '--json'],
    (dir) => {
      const bytes = Buffer.alloc(4096);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) % 256;
      return writeInput(dir, 'blob.bin', bytes);
    },
    { ok: true, check: (stdout) => void JSON.parse(stdout) },
  ),
  textCase('invalid-utf8', ['tokenize', '--json'], (dir) => writeInput(dir, 'bad.py', INVALID_UTF8), {
    ok: true,
    // Bad bytes read as U+FFFD, as VS Code shows them; a cut character at the end too.
    check: tilesText(new TextDecoder().decode(INVALID_UTF8)),
  }),
  textCase('bom', ['tokenize', '--json'], (dir) => writeInput(dir, 'bom.py', '\uFEFFdef f():\n    pass\n'), {
    ok: true,
    check: tilesText('def f():\n    pass\n'),
  }),
  textCase('nul-bytes', ['tokenize', '--json'], (dir) => writeInput(dir, 'nul.py', 'a\0b\0\0c\n'), {
    ok: true,
    check: tilesText('a\0b\0\0c\n'),
  }),
  {
    name: 'text/symlink-to-file',
    area: 'text',
    setup: (dir) => {
      const real = writeInput(dir, 'real.py', 'print(1)\n');
      fs.symlinkSync(real, path.join(dir, 'link.py'));
      return ['tokenize', '--json', '--text', path.join(dir, 'link.py')];
    },
    expect: { ok: true, check: tilesText('print(1)\n') },
    untouched: ['real.py', 'link.py'],
  },
  {
    name: 'text/patch-corrupted-missing',
    area: 'text',
    setup: (dir) => [
      'patch',
      '--clean',
      writeInput(dir, 'a.py', 'x = 1 + 2'),
      '--corrupted',
      path.join(dir, 'b.py'),
      '--target',
      ' 3',
      '--versus',
      ' 4',
    ],
    expect: { error: /b\.py: text not found$/ },
  },
  {
    name: 'text/output-through-pipe-complete',
    area: 'text',
    // About 3 MB of JSON: more than a pipe holds, all of it must arrive.
    setup: (dir) => ['tokenize', '--json', '--text', writeInput(dir, 'code.py', code(300_000))],
    expect: { ok: true, check: tilesText(code(300_000)) },
  },
];
