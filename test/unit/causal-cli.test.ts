/** `loupe patch`, `ablate`, `occlude`, `steer` and `tcav` end to end, and their one-line errors. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { CLI, CliRun, FIXTURES, runCli, tempDir } from './helpers';

const MODEL = path.join(FIXTURES, 'gpt2');

function loupe(args: string[], cacheDir: string): CliRun {
  return runCli([...args, '--model', MODEL, '--threads', '1'], cacheDir);
}

describe('loupe causal commands', function () {
  let dir: string;
  let cache: string;
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  before(function () {
    if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
    dir = tempDir();
    cache = tempDir();
  });

  it('patch prints a layer × position grid and a layer × head grid', () => {
    const clean = file('clean.txt', 'The hidden layer reads the ids\n');
    const corrupted = file('corrupted.txt', 'The hidden layer reads to ids\n');
    const r = loupe(
      ['patch', '--clean', clean, '--corrupted', corrupted, '--target', ' the', '--versus', ' to', '--json'],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const grid = JSON.parse(r.stdout) as {
      values: number[][];
      rowLabels: string[];
      tokens: { clean: string[] };
    };
    assert.deepEqual(grid.rowLabels, ['L0', 'L1']);
    assert.equal(grid.values[0].length, grid.tokens.clean.length);
    assert.ok(!grid.tokens.clean.includes('\n'), 'the final line break is not a token');
    const heads = loupe(
      [
        'patch',
        '--clean',
        clean,
        '--corrupted',
        corrupted,
        '--target',
        ' the',
        '--versus',
        '#267',
        '--per-head',
      ],
      cache,
    );
    assert.equal(heads.code, 0, heads.stderr);
    assert.match(heads.stdout, /H3/);
    const short = file('short.txt', 'The hidden\n');
    const bad = loupe(
      ['patch', '--clean', clean, '--corrupted', short, '--target', ' the', '--versus', ' to'],
      cache,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /the clean text has \d+ tokens and the corrupted text \d+/);
    const multi = loupe(
      ['patch', '--clean', clean, '--corrupted', corrupted, '--target', 'residual', '--versus', ' to'],
      cache,
    );
    assert.equal(multi.code, 1);
    assert.match(multi.stderr, /--target "residual" is \d tokens/);
  });

  it('ablate sweeps heads and SAE features', () => {
    const text = file('text.txt', 'def forward(self, x): return x\n');
    const r = loupe(['ablate', '--text', text, '--ablate', 'heads', '--json'], cache);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { effects: { name: string; deltaLoss: number }[] };
    assert.equal(report.effects.length, 8);
    const sae = path.join(FIXTURES, 'causal', 'sae-gpt2');
    const f = loupe(
      ['ablate', '--text', text, '--features', '21,36', '--sae', sae, '--each', '--mean'],
      cache,
    );
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /^mean ablation/);
    assert.match(f.stdout, /F21 .*Δloss/);
    const bad = loupe(['ablate', '--text', text, '--ablate', 'L9H0'], cache);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /L9H0: the model has layers 0\.\.1/);
  });

  it('occlude gives every token an effect', () => {
    const text = file('occlude.txt', 'def forward(self, x): return x\n');
    const r = loupe(['occlude', '--text', text, '--json'], cache);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { tokens: { effect: number; start: number }[]; metric: string };
    assert.equal(out.metric, 'logit');
    assert.equal(out.tokens[0].effect, 0);
    assert.ok(out.tokens.slice(1).some((t) => t.effect !== 0));
  });

  it('steer generates side by side, along an exported direction or a feature', () => {
    const prompt = file('prompt.txt', 'def forward(self, x):\n');
    const direction = path.join(dir, 'direction.safetensors');
    // A probe direction exported by `loupe probe --export` carries its hook.
    const data = file(
      'data.jsonl',
      Array.from({ length: 6 }, (_, i) =>
        JSON.stringify({ text: `x${i} = ${i}`, label: i % 2 ? 'odd' : 'even' }),
      ).join('\n'),
    );
    const probeDir = path.join(dir, 'probe');
    assert.equal(
      loupe(['probe', '--dataset', data, '--hooks', 'blocks.0.hook_resid_post', '--out', probeDir], cache)
        .code,
      0,
    );
    assert.equal(loupe(['probe', '--export', probeDir, '--out', direction], cache).code, 0);
    const r = loupe(
      ['steer', '--text', prompt, '--direction', direction, '--strength', '20', '--tokens', '4', '--json'],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      hook: string;
      unsteered: { ids: number[] };
      steered: { ids: number[] };
    };
    assert.equal(out.hook, 'blocks.0.hook_resid_post');
    assert.equal(out.unsteered.ids.length, 4);
    assert.equal(out.steered.ids.length, 4);
    // probe:DIR steers along the same direction at unit length.
    const w = SafetensorsFile.open(direction).readF32('direction');
    const norm = Math.sqrt(w.reduce((a, v) => a + v * v, 0));
    const steerWith = (spec: string, strength: number): number[] => {
      const res = loupe(
        [
          'steer',
          '--text',
          prompt,
          '--direction',
          spec,
          '--strength',
          String(strength),
          '--tokens',
          '4',
          '--json',
        ],
        cache,
      );
      assert.equal(res.code, 0, res.stderr);
      return (JSON.parse(res.stdout) as typeof out).steered.ids;
    };
    assert.deepEqual(steerWith(`probe:${probeDir}`, 60), steerWith(direction, 60 / norm));
    const sae = path.join(FIXTURES, 'causal', 'sae-gpt2');
    const feature = loupe(
      [
        'steer',
        '--text',
        prompt,
        '--direction',
        'feature:21',
        '--sae',
        sae,
        '--strength',
        '5',
        '--tokens',
        '3',
        '--sample',
        '--seed',
        '4',
      ],
      cache,
    );
    assert.equal(feature.code, 0, feature.stderr);
    assert.match(feature.stdout, /^sampled \(seed 4/);
    const bad = loupe(['steer', '--text', prompt, '--direction', 'feature:21', '--strength', '5'], cache);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /needs --sae DIR/);
  });

  it('tcav reports scores and a p-value per hook', () => {
    const concept = file(
      'concept.txt',
      ['for layer in hidden', 'for ids in layer', 'for x in ids', 'for layer in ids'].join('\n'),
    );
    const random = file('random.txt', 'The heads read the residual stream and write to it. '.repeat(20));
    const inputs = file('inputs.txt', ['hidden = layer(hidden) for', 'return self.unembed('].join('\n'));
    const r = loupe(
      [
        'tcav',
        '--concept',
        concept,
        '--random',
        random,
        '--inputs',
        inputs,
        '--target',
        ' the',
        '--runs',
        '3',
        '--json',
      ],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      hooks: { hook: string; scores: number[]; pValue: number; cav: number[] }[];
    };
    assert.deepEqual(
      out.hooks.map((h) => h.hook),
      ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post'],
    );
    for (const h of out.hooks) {
      assert.equal(h.scores.length, 3);
      assert.ok(h.pValue >= 0 && h.pValue <= 1);
      assert.equal(h.cav.length, 32);
    }
  });
});
