/**
 * Corpora given with --corpus (folders, .jsonl, text files): bad lines named
 * by file and line, empty corpora refused as "no text found" by every reader,
 * a huge file read only as far as the --tokens budget needs.
 */
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { DEFAULT_SAE, fifo, sparseFile, symlinkLoop, writeInput } from '../caseFiles';

const GiB = 1024 * 1024 * 1024;
const CODE = 'def add(a, b):\n    return a + b\n\nclass Point:\n    x = 0\n';

/** Each command that reads a corpus, with the flags that make it brief. */
const READERS: Readonly<Record<string, (corpus: string, dir: string) => readonly string[]>> = {
  'eval-sae': (c) => ['eval-sae', '--sae', DEFAULT_SAE, '--corpus', c, '--tokens', '256'],
  'train-sae': (c, dir) => [
    'train-sae',
    '--hook',
    'blocks.0.hook_resid_post',
    '--corpus',
    c,
    '--out',
    path.join(dir, 'sae'),
    '--tokens',
    '256',
    '--batch',
    '128',
  ],
  dashboards: (c, dir) => [
    'dashboards',
    '--sae',
    DEFAULT_SAE,
    '--corpus',
    c,
    '--out',
    path.join(dir, 'db'),
    '--tokens',
    '256',
  ],
  probe: (c) => ['probe', '--regex', '^def$', '--corpus', c, '--tokens', '256'],
  'lens-train': (c, dir) => [
    'lens',
    'train',
    '--corpus',
    c,
    '--out',
    path.join(dir, 'lens'),
    '--steps',
    '2',
    '--batch',
    '64',
  ],
};

function corpusCase(
  name: string,
  reader: keyof typeof READERS,
  make: (dir: string) => string,
  expect: FuzzCase['expect'],
  extra: Partial<Pick<FuzzCase, 'timeoutMs' | 'maxRssMiB' | 'untouched'>> = {},
): FuzzCase {
  return {
    name: `corpus/${name}`,
    area: 'corpus',
    setup: (dir) => READERS[reader](make(dir), dir),
    expect,
    timeoutMs: extra.timeoutMs ?? 30_000,
    maxRssMiB: extra.maxRssMiB,
    untouched: extra.untouched,
  };
}

const jsonl = (lines: readonly string[]) => (dir: string) =>
  writeInput(dir, 'c.jsonl', `${lines.join('\n')}\n`);
const emptyFolder = (dir: string): string => {
  writeInput(dir, 'corpus/.keep', '');
  return path.join(dir, 'corpus');
};
const NO_TEXT = /: no text found in the corpus; give text, code or a \.jsonl with "text"$/;

export const cases: FuzzCase[] = [
  corpusCase(
    'jsonl-null-line',
    'eval-sae',
    jsonl(['{"text": "def f(): pass"}', 'null']),
    {
      error: /c\.jsonl:2: null, not an object with a "text" field$/,
    },
    { untouched: ['c.jsonl'] },
  ),
  corpusCase('jsonl-number-line', 'train-sae', jsonl(['{"text": "x = 1"}', '', '42']), {
    error: /c\.jsonl:3: a number, not an object with a "text" field$/,
  }),
  corpusCase('jsonl-array-line', 'probe', jsonl(['["text", "x"]']), {
    error: /c\.jsonl:1: an array, not an object/,
  }),
  corpusCase('jsonl-string-line', 'lens-train', jsonl(['"just text"']), {
    error: /c\.jsonl:1: a string, not an object/,
  }),
  corpusCase('jsonl-text-number', 'dashboards', jsonl(['{"text": 5}']), {
    error: /c\.jsonl:1: "text" is a number, not a string$/,
  }),
  corpusCase('jsonl-text-null', 'eval-sae', jsonl(['{"text": null}']), {
    error: /c\.jsonl:1: "text" is null, not a string$/,
  }),
  corpusCase('jsonl-no-text', 'eval-sae', jsonl(['{"body": "x"}']), {
    error: /c\.jsonl:1: no "text" field$/,
  }),
  corpusCase('jsonl-not-json', 'train-sae', jsonl(['{"text": "a"}', '{text: b}']), {
    error: /c\.jsonl:2: not valid JSON/,
  }),
  corpusCase('jsonl-empty-file', 'eval-sae', (dir) => writeInput(dir, 'c.jsonl', ''), { error: NO_TEXT }),
  corpusCase('jsonl-blank-texts', 'dashboards', jsonl(['{"text": ""}', '{"text": "  \\n"}']), {
    error: NO_TEXT,
  }),
  corpusCase(
    'jsonl-huge-line',
    'eval-sae',
    (dir) => sparseFile(dir, 'c.jsonl', 3 * GiB, '{"text": "'),
    {
      error: /c\.jsonl:1: the line is longer than 64\.0 MiB; split it$/,
    },
    { maxRssMiB: 600 },
  ),
  corpusCase('empty-folder-eval', 'eval-sae', emptyFolder, { error: /corpus: no text found in the folder/ }),
  corpusCase('empty-folder-train', 'train-sae', emptyFolder, {
    error: /corpus: no text found in the folder/,
  }),
  corpusCase('empty-folder-dashboards', 'dashboards', emptyFolder, {
    error: /corpus: no text found in the folder/,
  }),
  corpusCase('empty-folder-probe', 'probe', emptyFolder, { error: /corpus: no text found in the folder/ }),
  corpusCase('empty-folder-lens', 'lens-train', emptyFolder, {
    error: /corpus: no text found in the folder/,
  }),
  corpusCase(
    'folder-of-binaries',
    'eval-sae',
    (dir) => {
      writeInput(dir, 'corpus/a.py', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2]));
      writeInput(dir, 'corpus/b.txt', Buffer.alloc(100));
      return path.join(dir, 'corpus');
    },
    { error: NO_TEXT },
  ),
  corpusCase(
    'folder-of-blank-files',
    'lens-train',
    (dir) => {
      writeInput(dir, 'corpus/a.py', '\n\n   \n');
      writeInput(dir, 'corpus/b.md', '');
      return path.join(dir, 'corpus');
    },
    { error: NO_TEXT },
  ),
  corpusCase(
    'folder-binaries-beside-code',
    'eval-sae',
    (dir) => {
      writeInput(dir, 'corpus/blob.py', Buffer.from([0, 1, 2, 3, 0xff]));
      writeInput(dir, 'corpus/code.py', CODE.repeat(20));
      return path.join(dir, 'corpus');
    },
    {
      ok: true,
      check: (stdout) => {
        if (!/^tokens\t\d+$/m.test(stdout)) throw new Error('no token count');
      },
    },
  ),
  corpusCase(
    'huge-text-small-budget-eval',
    'eval-sae',
    (dir) => sparseFile(dir, 'huge.txt', 3 * GiB, CODE.repeat(3000)),
    {
      ok: true,
      check: (stdout) => {
        if (!/^tokens\t\d+$/m.test(stdout)) throw new Error('no token count');
      },
    },
    { timeoutMs: 60_000 },
  ),
  corpusCase(
    'huge-text-small-budget-probe',
    'probe',
    (dir) => sparseFile(dir, 'huge.txt', 3 * GiB, CODE.repeat(3000)),
    {
      error: /the labelled examples come from 1 document/,
    },
    { timeoutMs: 60_000 },
  ),
  corpusCase(
    'huge-binary-file',
    'train-sae',
    (dir) => sparseFile(dir, 'zeros.txt', 3 * GiB),
    {
      error: /zeros\.txt: looks binary, not text$/,
    },
    { maxRssMiB: 300 },
  ),
  corpusCase('blank-text-file', 'dashboards', (dir) => writeInput(dir, 'blank.txt', ' \n\t\n'), {
    error: NO_TEXT,
  }),
  corpusCase('missing', 'eval-sae', (dir) => path.join(dir, 'nope'), { error: /nope: corpus not found$/ }),
  corpusCase(
    'fifo',
    'train-sae',
    (dir) => fifo(dir, 'c.jsonl'),
    { error: /c\.jsonl: corpus file is not a regular file/ },
    { timeoutMs: 10_000 },
  ),
  corpusCase('symlink-loop', 'probe', (dir) => symlinkLoop(dir, 'loop.txt'), {
    error: /loop\.txt: corpus is a symbolic link that loops/,
  }),
  {
    name: 'corpus/dataset-fifo',
    area: 'corpus',
    setup: (dir) => ['probe', '--dataset', fifo(dir, 'labels.jsonl')],
    expect: { error: /labels\.jsonl: dataset is not a regular file/ },
    timeoutMs: 10_000,
  },
  {
    name: 'corpus/dataset-null-line',
    area: 'corpus',
    setup: (dir) => ['probe', '--dataset', jsonl(['{"text": "a", "label": 1}', 'null'])(dir)],
    expect: { error: /c\.jsonl:2: not a JSON object$/ },
    untouched: ['c.jsonl'],
  },
  {
    name: 'corpus/mean-corpus-empty',
    area: 'corpus',
    setup: (dir) => [
      'ablate',
      '--text',
      writeInput(dir, 'p.py', CODE),
      '--ablate',
      'L0H0',
      '--mean',
      '--mean-corpus',
      emptyFolder(dir),
    ],
    expect: { error: /corpus: no text found in the folder/ },
  },
];
