/**
 * Every command's numeric and choice flags with bad values (NaN, 2.5, -1,
 * 1e9, empty, missing, unknown): one line naming the flag, the value and
 * what it must be, and no work started. The negative-number cases also pin
 * that `--flag -1` reads like `--flag=-1`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../../../src/engine/safetensors';
import type { FuzzCase } from '../case';
import { DEFAULT_MODEL, DEFAULT_SAE, writeInput } from '../caseFiles';

const PROMPT = 'def add(a, b):\n    return a + b\n';

function prompt(dir: string): string {
  return writeInput(dir, 'prompt.py', PROMPT);
}

/** A case that runs `command` with the prompt as --text (when `withText`) and `flags`, expecting `error`. */
function refused(
  name: string,
  command: readonly string[],
  flags: readonly string[],
  error: RegExp,
  withText = true,
): FuzzCase {
  return {
    name: `flags/${name}`,
    area: 'flags',
    setup: (dir) => [...command, ...(withText ? ['--text', prompt(dir)] : []), ...flags],
    expect: { error },
    timeoutMs: 20_000,
  };
}

const TRAIN = ['train-sae', '--hook', 'blocks.0.hook_resid_post', '--tokens', '64'];
const positive = (flag: string, value: string): RegExp =>
  new RegExp(`^loupe: ${flag} must be a positive integer, not '${value.replace(/[.+]/g, '\\$&')}'$`);

function trainRefused(name: string, flags: readonly string[], error: RegExp): FuzzCase {
  return {
    name: `flags/${name}`,
    area: 'flags',
    setup: (dir) => [...TRAIN, '--corpus', prompt(dir), '--out', path.join(dir, 'sae'), ...flags],
    expect: { error },
    timeoutMs: 20_000,
    // Refused before any training: nothing written.
    untouched: ['.'],
  };
}

export const cases: FuzzCase[] = [
  // Common flags.
  refused(
    'threads-huge',
    ['tokenize'],
    ['--threads', '100000'],
    /--threads must be at most \d+ \(4 per core\)/,
  ),
  refused(
    'threads-negative',
    ['tokenize'],
    ['--threads', '-1'],
    /--threads must be an integer ≥ 0, not '-1'/,
  ),
  refused(
    'threads-fraction',
    ['tokenize'],
    ['--threads', '2.5'],
    /--threads must be an integer ≥ 0, not '2\.5'/,
  ),
  refused('threads-word', ['tokenize'], ['--threads', 'abc'], /--threads must be an integer ≥ 0, not 'abc'/),
  refused('threads-empty', ['tokenize'], ['--threads', ''], /--threads must be an integer ≥ 0, not ''/),
  refused('threads-missing-value', ['tokenize'], ['--threads'], /^loupe: --threads needs a value$/),
  refused('unknown-option', ['tokenize'], ['--bogus'], /^loupe: unknown option --bogus; see 'loupe --help'/),
  refused('boolean-with-value', ['tokenize'], ['--json=1'], /^loupe: --json takes no value/),
  refused(
    'value-looks-like-option',
    ['heads'],
    ['--position', '--json'],
    /--position needs a value, but '--json' reads as an option; if it is the value, write --position=--json/,
  ),
  refused('unknown-command', ['frobnicate'], [], /unknown command 'frobnicate'/, false),
  refused('bench-without-kind', ['bench'], [], /unknown bench ''; try 'loupe bench forward'/, false),
  refused('lens-unknown-option', ['lens'], ['--frob', '1'], /unknown option --frob; see 'loupe lens --help'/),

  // features / feature
  refused(
    'features-top-negative',
    ['features', '--sae', DEFAULT_SAE],
    ['--top', '-1'],
    positive('--top', '-1'),
  ),
  refused(
    'features-top-fraction',
    ['features', '--sae', DEFAULT_SAE],
    ['--top', '2.5'],
    positive('--top', '2.5'),
  ),
  refused(
    'features-top-nan',
    ['features', '--sae', DEFAULT_SAE],
    ['--top', 'NaN'],
    /--top must be a positive integer, not 'NaN'/,
  ),
  refused(
    'feature-index-negative',
    ['feature', '--sae', DEFAULT_SAE],
    ['--index', '-1'],
    /--index must be an integer ≥ 0, not '-1'/,
    false,
  ),
  refused(
    'feature-index-huge',
    ['feature', '--sae', DEFAULT_SAE],
    ['--index', '1e9'],
    /feature 1000000000 does not exist \(this SAE has features 0\.\.\d+\)/,
    false,
  ),
  refused(
    'feature-list-unknown',
    ['feature', '--sae', DEFAULT_SAE],
    ['--list', 'bogus'],
    /--list must be index, density, maxAct or meanActive, not 'bogus'/,
    false,
  ),
  refused(
    'feature-top-zero',
    ['feature', '--sae', DEFAULT_SAE],
    ['--list', 'index', '--top', '0'],
    positive('--top', '0'),
    false,
  ),

  // train-sae: every value checked before the model opens.
  trainRefused('train-k-fraction', ['--k', '2.5'], positive('--k', '2.5')),
  trainRefused('train-k-over-d-sae', ['--k', '100000'], /k must be between 1 and d_sae \(\d+\), not 100000/),
  trainRefused(
    'train-seed-word',
    ['--seed', 'abc'],
    /--seed must be an integer from 0 to 4294967295, not 'abc'/,
  ),
  trainRefused(
    'train-seed-negative',
    ['--seed', '-1'],
    /--seed must be an integer from 0 to 4294967295, not '-1'/,
  ),
  trainRefused(
    'train-seed-too-large',
    ['--seed', '4294967296'],
    /--seed must be an integer from 0 to 4294967295/,
  ),
  trainRefused('train-lr-zero', ['--lr', '0'], /--lr must be a positive number, not '0'/),
  trainRefused('train-lr-nan', ['--lr', 'NaN'], /--lr must be a positive number, not 'NaN'/),
  trainRefused(
    'train-expansion-negative',
    ['--expansion', '-2'],
    /--expansion must be a positive number, not '-2'/,
  ),
  trainRefused(
    'train-d-sae-huge',
    ['--d-sae', '1e12'],
    /d_sae 1000000000000 × d_in \d+ is \d+ weights per matrix, more than the \d+ Loupe trains/,
  ),
  trainRefused(
    'train-batch-huge',
    ['--batch', '1e9'],
    /a batch of 1000000000 tokens .* choose a smaller --batch/,
  ),
  trainRefused('train-arch-unknown', ['--arch', 'gelu'], /--arch must be topk or relu, not 'gelu'/),
  trainRefused('train-k-with-relu', ['--arch', 'relu', '--k', '4'], /--k goes with --arch topk/),
  trainRefused('train-context-zero', ['--context', '0'], positive('--context', '0')),
  trainRefused(
    'train-checkpoint-negative',
    ['--checkpoint-every', '-5'],
    positive('--checkpoint-every', '-5'),
  ),
  trainRefused('train-tokens-empty', ['--tokens', ''], /--tokens must be a positive integer, not ''/),

  // eval-sae / dashboards
  refused(
    'eval-tokens-zero',
    ['eval-sae', '--sae', DEFAULT_SAE, '--corpus', DEFAULT_MODEL],
    ['--tokens', '0'],
    positive('--tokens', '0'),
    false,
  ),
  refused(
    'eval-context-fraction',
    ['eval-sae', '--sae', DEFAULT_SAE, '--corpus', DEFAULT_MODEL],
    ['--context', '2.5'],
    positive('--context', '2.5'),
    false,
  ),
  {
    name: 'flags/dashboards-clusters-zero',
    area: 'flags',
    setup: (dir) => [
      'dashboards',
      '--sae',
      DEFAULT_SAE,
      '--corpus',
      prompt(dir),
      '--out',
      path.join(dir, 'db'),
      '--clusters',
      '0',
    ],
    expect: { error: positive('--clusters', '0') },
    untouched: ['prompt.py'],
  },
  {
    name: 'flags/dashboards-clusters-over-d-sae',
    area: 'flags',
    setup: (dir) => [
      'dashboards',
      '--sae',
      DEFAULT_SAE,
      '--corpus',
      prompt(dir),
      '--out',
      path.join(dir, 'db'),
      '--clusters',
      '1e6',
    ],
    expect: { error: /--clusters must be at most the SAE's \d+ features, not 1000000/ },
  },
  {
    name: 'flags/dashboards-seed-fraction',
    area: 'flags',
    setup: (dir) => [
      'dashboards',
      '--sae',
      DEFAULT_SAE,
      '--corpus',
      prompt(dir),
      '--out',
      path.join(dir, 'db'),
      '--seed',
      '1.5',
    ],
    expect: { error: /--seed must be an integer from 0 to 4294967295, not '1\.5'/ },
  },

  // bench
  refused(
    'bench-tokens-over-context',
    ['bench', 'forward'],
    ['--tokens', '1e9', '--repeat', '1'],
    /--tokens 1000000000 exceeds the model's context of \d+/,
    false,
  ),
  refused(
    'bench-batch-huge',
    ['bench', 'forward'],
    ['--batch', '1e9', '--repeat', '1'],
    /tokens per pass; at most 65536 are benchmarked/,
    false,
  ),
  refused(
    'bench-hooks-unknown',
    ['bench', 'forward'],
    ['--hooks', 'some'],
    /--hooks must be none, resid or all, not 'some'/,
    false,
  ),
  refused(
    'bench-repeat-fraction',
    ['bench', 'forward'],
    ['--repeat', '2.5'],
    positive('--repeat', '2.5'),
    false,
  ),

  // heads: negative positions count from the end, written either way.
  {
    name: 'flags/heads-position-negative-spaced',
    area: 'flags',
    setup: (dir) => ['heads', '--text', prompt(dir), '--position', '-1', '--json'],
    expect: {
      ok: true,
      check: (stdout) => {
        const r = JSON.parse(stdout) as { position: number; token: { end: number } };
        if (r.token.end !== PROMPT.length) throw new Error(`position -1 read token ending at ${r.token.end}`);
      },
    },
  },
  {
    name: 'flags/heads-position-negative-joined',
    area: 'flags',
    setup: (dir) => ['heads', '--text', prompt(dir), '--position=-2', '--top', '3'],
    expect: {
      ok: true,
      check: (stdout) => {
        if (!/^position \d+ \("/.test(stdout)) throw new Error('no attribution at the position');
      },
    },
  },
  refused(
    'heads-position-fraction',
    ['heads'],
    ['--position', '1.5'],
    /--position must be an integer \(negative counts from the end, as in -1\), not '1\.5'/,
  ),
  refused(
    'heads-position-before-start',
    ['heads'],
    ['--position', '-1000'],
    /position -1000 is outside the text's \d+ tokens/,
  ),
  refused(
    'heads-layer-negative',
    ['heads'],
    ['--layer', '-1', '--head', '0'],
    /--layer must be an integer ≥ 0, not '-1'/,
  ),
  refused(
    'heads-layer-out-of-range',
    ['heads'],
    ['--layer', '99', '--head', '0'],
    /layer 99 is out of range/,
  ),
  refused('heads-top-negative', ['heads'], ['--position', '1', '--top', '-1'], positive('--top', '-1')),

  // lens
  refused('lens-top-zero', ['lens'], ['--top', '0'], positive('--top', '0')),
  refused(
    'lens-kind-unknown',
    ['lens'],
    ['--kind', 'bogus'],
    /--kind must be logit, tuned or attention-free, not 'bogus'/,
  ),
  refused('lens-range-word', ['lens'], ['--range', 'abc'], /--range takes START:END/),
  {
    name: 'flags/lens-train-lr-negative',
    area: 'flags',
    setup: (dir) => ['lens', 'train', '--corpus', prompt(dir), '--out', path.join(dir, 'lens'), '--lr', '-1'],
    expect: { error: /--lr must be a positive number, not '-1'/ },
    untouched: ['.'],
  },
  {
    name: 'flags/lens-train-steps-fraction',
    area: 'flags',
    setup: (dir) => [
      'lens',
      'train',
      '--corpus',
      prompt(dir),
      '--out',
      path.join(dir, 'lens'),
      '--steps',
      '2.5',
    ],
    expect: { error: positive('--steps', '2.5') },
  },

  // probe
  ...(
    [
      [
        'probe-test-fraction-over-one',
        ['--test-fraction', '1.5'],
        /--test-fraction must be between 0 and 1 \(exclusive\), not '1\.5'/,
      ],
      ['probe-l2-negative', ['--l2', '-1'], /--l2 must be a number ≥ 0, not '-1'/],
      ['probe-pool-unknown', ['--pool', 'max'], /--pool must be last or mean, not 'max'/],
      ['probe-seed-word', ['--seed', 'abc'], /--seed must be an integer from 0 to 4294967295/],
      ['probe-tokens-nan', ['--tokens', 'NaN'], /--tokens must be a positive integer, not 'NaN'/],
    ] as const
  ).map(([name, flags, error]): FuzzCase => ({
    name: `flags/${name}`,
    area: 'flags',
    setup: (dir) => ['probe', '--regex', '^def$', '--corpus', prompt(dir), ...flags],
    expect: { error },
  })),

  // steer
  refused(
    'steer-strength-nan',
    ['steer', '--direction', 'feature:1', '--sae', DEFAULT_SAE],
    ['--strength', 'NaN'],
    /--strength must be a number, not 'NaN'/,
  ),
  refused(
    'steer-strength-missing',
    ['steer', '--direction', 'feature:1', '--sae', DEFAULT_SAE],
    ['--strength'],
    /--strength needs a value/,
  ),
  refused(
    'steer-tokens-zero',
    ['steer', '--direction', 'feature:1', '--sae', DEFAULT_SAE],
    ['--strength', '2', '--tokens', '0'],
    positive('--tokens', '0'),
  ),
  refused(
    'steer-temperature-zero',
    ['steer', '--direction', 'feature:1', '--sae', DEFAULT_SAE],
    ['--strength', '2', '--sample', '--temperature', '0'],
    /--temperature must be a positive number, not '0'/,
  ),
  refused(
    'steer-top-k-negative',
    ['steer', '--direction', 'feature:1', '--sae', DEFAULT_SAE],
    ['--strength', '2', '--sample', '--top-k', '-5'],
    positive('--top-k', '-5'),
  ),
  refused(
    'steer-feature-out-of-range',
    ['steer', '--direction', 'feature:99999', '--sae', DEFAULT_SAE],
    ['--strength', '2'],
    /feature 99999 does not exist/,
  ),
  {
    name: 'flags/steer-direction-with-nan',
    area: 'flags',
    setup: (dir) => {
      const width = JSON.parse(fs.readFileSync(path.join(DEFAULT_MODEL, 'config.json'), 'utf8')) as {
        n_embd?: number;
        hidden_size?: number;
      };
      const d = width.n_embd ?? width.hidden_size ?? 0;
      const values = new Float32Array(d).fill(0.1);
      values[3] = NaN;
      const file = path.join(dir, 'direction.safetensors');
      writeSafetensors(file, new Map([['direction', { dtype: 'F32', shape: [d], data: values }]]), {
        hook: 'blocks.0.hook_resid_post',
      });
      return ['steer', '--text', prompt(dir), '--direction', file, '--strength', '2'];
    },
    expect: {
      error: /direction\.safetensors: 'direction' has a value that is not a finite number at index 3/,
    },
    untouched: ['direction.safetensors'],
  },

  // tcav, patch, occlude, ablate
  refused(
    'tcav-runs-zero',
    ['tcav'],
    [
      '--concept',
      DEFAULT_MODEL + '/config.json',
      '--random',
      DEFAULT_MODEL,
      '--inputs',
      DEFAULT_MODEL + '/config.json',
      '--target',
      'x',
      '--runs',
      '0',
    ],
    positive('--runs', '0'),
    false,
  ),
  refused(
    'patch-site-unknown',
    ['patch'],
    [
      '--clean',
      DEFAULT_MODEL + '/config.json',
      '--corrupted',
      DEFAULT_MODEL + '/config.json',
      '--target',
      'x',
      '--versus',
      'y',
      '--site',
      'bogus',
    ],
    /--site must be resid_pre, resid_mid, resid_post, attn_out or mlp_out, not 'bogus'/,
    false,
  ),
  refused(
    'occlude-metric-unknown',
    ['occlude'],
    ['--metric', 'bogus'],
    /--metric must be logit or logprob, not 'bogus'/,
  ),
  refused('occlude-position-fraction', ['occlude'], ['--position', '2.5'], /--position must be an integer/),
  refused(
    'ablate-features-negative',
    ['ablate', '--sae', DEFAULT_SAE],
    ['--features', '-1'],
    /--features must be an integer ≥ 0, not '-1'/,
  ),
  refused(
    'ablate-features-words',
    ['ablate', '--sae', DEFAULT_SAE],
    ['--features', 'a,b'],
    /--features must be an integer ≥ 0, not 'a'/,
  ),
];
