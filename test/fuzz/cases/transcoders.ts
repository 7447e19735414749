import * as path from 'node:path';
import { saveTranscoderSet } from '../../../src/engine/dictionaries/transcoderSet';
import type { FuzzCase } from '../case';
import { DEFAULT_MODEL, DEFAULT_SAE, writeInput } from '../caseFiles';

const train = (dir: string, ...more: string[]): string[] => [
  'train-transcoder',
  '--model',
  DEFAULT_MODEL,
  '--corpus',
  writeInput(dir, 'corpus.txt', 'def f(x):\n    return x + 1\n'.repeat(20)),
  '--out',
  path.join(dir, 'set'),
  ...more,
];

export const cases: FuzzCase[] = [
  {
    name: 'flags/transcoder-layer-the-model-lacks',
    area: 'flags',
    setup: (dir) => train(dir, '--layer', '5'),
    expect: { error: /--layer 5: model .* has 2 layers \(0\.\.1\)/ },
  },
  {
    name: 'flags/transcoder-layer-not-a-number',
    area: 'flags',
    setup: (dir) => train(dir, '--layer', 'first'),
    expect: { error: /--layer takes a layer number, a list \(0,2\) or 'all', not 'first'/ },
  },
  {
    name: 'flags/transcoder-unknown-architecture',
    area: 'flags',
    setup: (dir) => train(dir, '--layer', 'all', '--arch', 'gated'),
    expect: { error: /--arch/ },
  },
  {
    name: 'flags/transcoder-k-without-topk',
    area: 'flags',
    setup: (dir) => train(dir, '--layer', 'all', '--arch', 'relu', '--k', '8'),
    expect: { error: /--k goes with --arch topk/ },
  },
  {
    name: 'flags/transcoder-too-large-to-train',
    area: 'flags',
    setup: (dir) => train(dir, '--layer', 'all', '--d-tc', '100000000'),
    expect: { error: /more than the \d+ Loupe trains at once; choose a smaller --d-tc/ },
    maxRssMiB: 600,
  },
  {
    name: 'corpus/transcoder-corpus-without-tokens',
    area: 'corpus',
    setup: (dir) => [...train(dir, '--layer', '0'), '--corpus', writeInput(dir, 'empty.txt', '')],
    expect: { error: /the corpus yields no tokens|empty/ },
  },
  {
    name: 'sae/eval-transcoder-on-an-sae-folder',
    area: 'sae',
    setup: (dir) => [
      'eval-transcoder',
      '--model',
      DEFAULT_MODEL,
      '--transcoders',
      DEFAULT_SAE,
      '--corpus',
      writeInput(dir, 'heldout.txt', 'x = 1\n'),
    ],
    expect: { error: /config\.yaml/ },
  },
  {
    name: 'sae/eval-transcoder-for-another-width',
    area: 'sae',
    setup: (dir) => {
      const set = path.join(dir, 'narrow-set');
      const zeros = (n: number): Float32Array => new Float32Array(n);
      const layer = { W_enc: zeros(64 * 32), b_enc: zeros(64), W_dec: zeros(64 * 32), b_dec: zeros(32) };
      saveTranscoderSet(
        set,
        {
          modelKind: 'transcoder_set',
          featureInputHook: 'ln2.hook_normalized',
          featureOutputHook: 'hook_mlp_out',
          activation: 'relu',
          k: null,
          extra: {},
        },
        { dModel: 32, dTranscoder: 64 },
        [layer, layer],
      );
      return [
        'eval-transcoder',
        '--model',
        DEFAULT_MODEL,
        '--transcoders',
        set,
        '--corpus',
        writeInput(dir, 'heldout.txt', 'x = 1\n'),
      ];
    },
    expect: { error: /d_in is 32, but model .* has width 256 at blocks\.0\.ln2\.hook_normalized/ },
    untouched: ['narrow-set'],
  },
];
