/**
 * `--out` pointing at something that is not a previous result of the same
 * kind: a folder of the user's, a plain file, a path under a file, a symbolic
 * link, a folder nobody may write in. Each is refused with one line before
 * any work, and what was there is left as it was. Also: a previous result is
 * replaced, and a write a kill cut short is finished by the next command.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { DEFAULT_SAE, writeInput } from '../caseFiles';
import { saveProbe } from '../../../src/engine/probes/store';
import { probeMetadata } from '../../unit/helpers';
import { safetensorsChunks } from '../../../src/engine/safetensors';

const TEXT = 'def add(a, b):\n    return a + b\n';

/** A text to run and a corpus to train on: the same small file. */
function text(dir: string): string {
  return writeInput(dir, 't.py', TEXT);
}

/** A folder of the user's, with a file in it. */
function userFolder(dir: string, name = 'mine'): string {
  writeInput(dir, path.join(name, 'notes.txt'), 'my notes\n');
  return path.join(dir, name);
}

function plainFile(dir: string, name = 'notes.txt'): string {
  return writeInput(dir, name, 'my notes\n');
}

/**
 * A folder nobody may write in. Root writes through permission bits, so for
 * root it is /sys, which the kernel keeps read-only for everyone.
 */
function readOnlyFolder(dir: string): string {
  if (process.getuid?.() === 0) return '/sys';
  const ro = userFolder(dir, 'read-only');
  fs.chmodSync(ro, 0o555);
  return ro;
}

/** A small probe folder as `loupe probe --out` saves one, for `--export`. */
function probeFolder(dir: string): string {
  const d = 256; // the default model's d_model
  const hook = 'blocks.0.hook_resid_post';
  const meta = probeMetadata({
    dataset: 'fuzz',
    labels: ['no', 'yes'],
    hooks: [{ hook, layer: 0, width: d, accuracy: 0.9 }],
    model: { name: 'default', modelType: 'gpt2', nLayers: 2, dModel: d, dVocab: 8192 },
  });
  const weight = Float32Array.from({ length: d }, (_, i) => Math.sin(i));
  const out = path.join(dir, 'probe');
  saveProbe(out, {
    dir: null,
    meta,
    classifiers: new Map([[hook, { classes: 2, dim: d, weight, bias: new Float32Array(1) }]]),
  });
  return out;
}

const run = (dir: string, out: string): string[] => [
  'run',
  '--text',
  text(dir),
  '--hooks',
  'none',
  '--out',
  out,
];
const trainSae = (dir: string, out: string): string[] => [
  'train-sae',
  '--hook',
  'blocks.0.hook_resid_post',
  '--corpus',
  text(dir),
  '--tokens',
  '1000',
  '--out',
  out,
];
const dashboards = (dir: string, out: string): string[] => [
  'dashboards',
  '--sae',
  DEFAULT_SAE,
  '--corpus',
  text(dir),
  '--tokens',
  '100',
  '--out',
  out,
];
const probe = (dir: string, out: string): string[] => [
  'probe',
  '--regex',
  '^\\s*(def|return)$',
  '--corpus',
  text(dir),
  '--out',
  out,
];
const lensTrain = (dir: string, out: string): string[] => [
  'lens',
  'train',
  '--corpus',
  text(dir),
  '--steps',
  '1',
  '--out',
  out,
];
const probeExport = (dir: string, out: string): string[] => [
  'probe',
  '--export',
  probeFolder(dir),
  '--out',
  out,
];

const NOT_A_FILE_RESULT = /is a folder, not a \.safetensors file to write/;
const NOT_SAFETENSORS = /is a file that is not a safetensors file; choose another output path or remove it/;
const UNDER_A_FILE = /cannot write under \S*notes\.txt, which is a file, not a folder/;
const A_FILE_NOT_A_FOLDER = /is a file, not a folder to write/;

/** The five folder results, each with the words its refusal uses. */
const folderCommands: readonly [string, (dir: string, out: string) => string[], RegExp][] = [
  [
    'train-sae',
    trainSae,
    /is a folder that is not a Loupe SAE folder or training run \(it holds notes\.txt\)/,
  ],
  ['dashboards', dashboards, /is a folder that is not a Loupe feature database \(it holds notes\.txt\)/],
  ['probe', probe, /is a folder that is not a saved Loupe probe \(it holds notes\.txt\)/],
  ['lens-train', lensTrain, /is a folder that is not a tuned lens \(it holds notes\.txt\)/],
];

export const cases: FuzzCase[] = [
  // ---- single-file results: run and probe --export ----
  ...(
    [
      ['run', run],
      ['probe-export', probeExport],
    ] as const
  ).flatMap(([name, args]): FuzzCase[] => [
    {
      name: `output/${name}-onto-a-users-folder`,
      area: 'output',
      setup: (dir) => args(dir, userFolder(dir)),
      expect: { error: NOT_A_FILE_RESULT },
      untouched: ['mine'],
    },
    {
      name: `output/${name}-onto-a-plain-file`,
      area: 'output',
      setup: (dir) => args(dir, plainFile(dir)),
      expect: { error: NOT_SAFETENSORS },
      untouched: ['notes.txt'],
    },
    {
      name: `output/${name}-under-a-regular-file`,
      area: 'output',
      setup: (dir) => args(dir, path.join(plainFile(dir), 'acts.safetensors')),
      expect: { error: UNDER_A_FILE },
      untouched: ['notes.txt'],
    },
    {
      name: `output/${name}-through-a-symlink-to-a-users-file`,
      area: 'output',
      setup: (dir) => {
        const link = path.join(dir, 'link.safetensors');
        fs.symlinkSync(plainFile(dir), link);
        return args(dir, link);
      },
      expect: { error: NOT_SAFETENSORS },
      untouched: ['notes.txt', 'link.safetensors'],
    },
    {
      name: `output/${name}-into-a-read-only-folder`,
      area: 'output',
      setup: (dir) => args(dir, path.join(readOnlyFolder(dir), 'acts.safetensors')),
      expect: { error: /cannot write \((permission denied|the file system is read-only)\)/ },
    },
  ]),
  {
    name: 'output/run-onto-a-symlink-to-nothing',
    area: 'output',
    setup: (dir) => {
      const link = path.join(dir, 'acts.safetensors');
      fs.symlinkSync(path.join(dir, 'gone', 'acts.safetensors'), link);
      return run(dir, link);
    },
    expect: { error: /is a symbolic link to nothing/ },
    untouched: ['acts.safetensors'],
  },
  {
    name: 'output/run-replaces-a-previous-result-and-a-killed-writes-temporary',
    area: 'output',
    setup: (dir) => {
      const out = path.join(dir, 'acts.safetensors');
      fs.writeFileSync(out, Buffer.concat(safetensorsChunks(new Map())));
      // What a write killed before its rename leaves (a process id no system hands out).
      writeInput(dir, 'acts.safetensors.loupe-new-99999999', 'half');
      return run(dir, out);
    },
    expect: {
      ok: true,
      check: (_stdout, dir) => {
        if (fs.statSync(path.join(dir, 'acts.safetensors')).size < 1000) throw new Error('not replaced');
        if (fs.existsSync(path.join(dir, 'acts.safetensors.loupe-new-99999999')))
          throw new Error('the temporary a killed write left is still there');
      },
    },
  },

  // ---- folder results: train-sae, dashboards, probe, lens train ----
  ...folderCommands.flatMap(([name, args, notThisKind]): FuzzCase[] => [
    {
      name: `output/${name}-onto-a-users-folder`,
      area: 'output',
      setup: (dir) => args(dir, userFolder(dir)),
      expect: { error: notThisKind },
      untouched: ['mine'],
    },
    {
      name: `output/${name}-onto-a-plain-file`,
      area: 'output',
      setup: (dir) => args(dir, plainFile(dir)),
      expect: { error: A_FILE_NOT_A_FOLDER },
      untouched: ['notes.txt'],
    },
    {
      name: `output/${name}-under-a-regular-file`,
      area: 'output',
      setup: (dir) => args(dir, path.join(plainFile(dir), 'out')),
      expect: { error: UNDER_A_FILE },
      untouched: ['notes.txt'],
    },
    {
      name: `output/${name}-through-a-symlink-to-a-users-folder`,
      area: 'output',
      setup: (dir) => {
        const link = path.join(dir, 'link');
        fs.symlinkSync(userFolder(dir), link);
        return args(dir, link);
      },
      expect: { error: notThisKind },
      untouched: ['mine', 'link'],
    },
  ]),
  {
    name: 'output/lens-train-onto-a-model-folder',
    area: 'output',
    setup: (dir) => {
      writeInput(dir, 'model/config.json', '{"model_type": "gpt2"}\n');
      writeInput(dir, 'model/model.safetensors', Buffer.concat(safetensorsChunks(new Map())));
      return lensTrain(dir, path.join(dir, 'model'));
    },
    expect: { error: /is a folder that is not a tuned lens \(it holds config\.json, model\.safetensors\)/ },
    untouched: ['model'],
  },
  {
    name: 'output/dashboards-onto-an-sae-folder',
    area: 'output',
    setup: (dir) => {
      const copy = path.join(dir, 'sae');
      fs.mkdirSync(copy);
      for (const f of ['cfg.json', 'sae_weights.safetensors'])
        fs.copyFileSync(path.join(DEFAULT_SAE, f), path.join(copy, f));
      return dashboards(dir, copy);
    },
    expect: {
      error:
        /is a folder that is not a Loupe feature database \(it holds cfg\.json, sae_weights\.safetensors\)/,
    },
    untouched: ['sae'],
  },
  {
    name: 'output/train-sae-into-a-read-only-folder',
    area: 'output',
    setup: (dir) => trainSae(dir, path.join(readOnlyFolder(dir), 'sae')),
    expect: { error: /permission denied|read-only/ },
  },
  {
    name: 'output/an-sae-swap-a-kill-cut-short-is-finished-on-open',
    area: 'output',
    setup: (dir) => {
      // Killed between 'sae -> sae.loupe-old-N' and 'sae.loupe-new-N -> sae': both copies whole, no sae.
      for (const copy of ['sae.loupe-old-99999999', 'sae.loupe-new-99999999']) {
        fs.mkdirSync(path.join(dir, copy));
        for (const f of ['cfg.json', 'sae_weights.safetensors'])
          fs.copyFileSync(path.join(DEFAULT_SAE, f), path.join(dir, copy, f));
      }
      return ['features', '--sae', path.join(dir, 'sae'), '--text', text(dir), '--top', '1', '--json'];
    },
    expect: {
      ok: true,
      check: (stdout, dir) => {
        if (!Array.isArray(JSON.parse(stdout))) throw new Error('no features listed');
        if (!fs.existsSync(path.join(dir, 'sae', 'cfg.json'))) throw new Error('the swap was not finished');
        const left = fs.readdirSync(dir).filter((e) => /\.loupe-(new|old)-/.test(e));
        if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
      },
    },
  },
];
