/**
 * `loupe features` with the published dictionary formats: `--sae` on a
 * Gemma Scope folder (hook inferred from its path and shown), a sparsify
 * checkpoint with `--layer`, and `--transcoders` on a transcoder set, each
 * checked against the reference activations (the top K of the reference's
 * own rows); and every mismatch refused in one line naming both sides.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { FIXTURES, runCli, tempDir } from './helpers';

const ROOT = path.join(FIXTURES, 'dictionaries');
const GPT2 = path.join(FIXTURES, 'gpt2');
// Tokenised with BOS, its first ten tokens are the ids the reference ran.
const TEXT = 'The heads read the residual stream and write to it.';
const REFERENCE_IDS = [296, 51, 258, 220, 258, 285, 284, 64, 67, 260];
const TOP = 3;

interface Feature {
  index: number;
  act: number;
}

/** The K largest positive values of each row of a reference tensor, largest first. */
function referenceTop(file: string, name: string): Feature[][] {
  const st = SafetensorsFile.open(file);
  const [rows, width] = st.info(name).shape;
  const data = st.readF32(name);
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length: width }, (_, i) => ({ index: i, act: data[r * width + i] }))
      .filter((f) => f.act > 0)
      .sort((a, b) => b.act - a.act)
      .slice(0, TOP),
  );
}

function assertFeatures(got: Feature[], want: Feature[], what: string): void {
  assert.deepEqual(
    got.map((f) => f.index),
    want.map((f) => f.index),
    what,
  );
  got.forEach((f, i) =>
    assert.ok(Math.abs(f.act - want[i].act) < 1e-4, `${what}: ${f.act} vs ${want[i].act}`),
  );
}

describe('loupe features with published dictionaries', function () {
  const cache = tempDir();
  const dir = tempDir();
  const text = path.join(dir, 'text.txt');
  fs.writeFileSync(text, TEXT);
  const args = ['features', '--model', GPT2, '--text', text, '--top', String(TOP), '--json'];

  it('reads a Gemma Scope folder at the hook its path names, and says so', () => {
    const sae = path.join(ROOT, 'gemma-scope-tiny-res', 'layer_1', 'width_48', 'average_l0_9');
    const r = runCli([...args, '--sae', sae], cache);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /hook blocks\.1\.hook_resid_post inferred from the path/);
    const rows = JSON.parse(r.stdout) as {
      id: number;
      text: string;
      start: number;
      end: number;
      features: Feature[];
    }[];
    assert.deepEqual(Object.keys(rows[0]), ['id', 'text', 'start', 'end', 'features']);
    const want = referenceTop(path.join(sae, 'reference.safetensors'), 'acts');
    REFERENCE_IDS.forEach((id, i) => {
      assert.equal(rows[i].id, id);
      assertFeatures(rows[i].features, want[i], `token ${i}`);
    });
  });

  it('reads one hook point of a sparsify checkpoint with --layer', () => {
    const r = runCli([...args, '--sae', path.join(ROOT, 'sparsify-tiny'), '--layer', '0'], cache);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sparsify SAE on 'h\.0': reads blocks\.0\.hook_resid_post/);
    const rows = JSON.parse(r.stdout) as { features: Feature[] }[];
    const want = referenceTop(path.join(ROOT, 'sparsify-tiny', 'h.0', 'reference.safetensors'), 'acts');
    REFERENCE_IDS.forEach((_, i) => assertFeatures(rows[i].features, want[i], `token ${i}`));
  });

  it('prints every layer of a transcoder set, each read at its input hook', () => {
    const set = path.join(ROOT, 'transcoder-set-jumprelu');
    const r = runCli([...args, '--transcoders', set], cache);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as {
      id: number;
      layers: { layer: number; features: Feature[] }[];
    }[];
    assert.deepEqual(Object.keys(rows[0]), ['id', 'text', 'start', 'end', 'layers']);
    for (const layer of [0, 1]) {
      const want = referenceTop(path.join(set, 'reference.safetensors'), `acts.${layer}`);
      REFERENCE_IDS.forEach((id, i) => {
        assert.equal(rows[i].id, id);
        assert.deepEqual(Object.keys(rows[i].layers[layer]), ['layer', 'features']);
        assert.equal(rows[i].layers[layer].layer, layer);
        assertFeatures(rows[i].layers[layer].features, want[i], `layer ${layer} token ${i}`);
      });
    }
  });

  it('refuses mismatches and missing information in one line naming both sides', () => {
    const noPath = path.join(dir, 'plain-folder');
    fs.mkdirSync(noPath);
    fs.copyFileSync(
      path.join(ROOT, 'gemma-scope-tiny-res', 'layer_1', 'width_48', 'average_l0_9', 'params.npz'),
      path.join(noPath, 'params.npz'),
    );
    const threeLayers = path.join(dir, 'three-layers');
    fs.cpSync(path.join(ROOT, 'transcoder-set-jumprelu'), threeLayers, { recursive: true });
    fs.copyFileSync(
      path.join(threeLayers, 'layer_1.safetensors'),
      path.join(threeLayers, 'layer_2.safetensors'),
    );
    const base = ['features', '--text', text, '--json'];
    const cases: [string[], RegExp][] = [
      [[...base, '--model', GPT2, '--sae', noPath], /does not say its site and layer .*pass --hook NAME/],
      [
        [
          ...base,
          '--model',
          path.join(FIXTURES, 'llama-gqa'),
          '--transcoders',
          path.join(ROOT, 'transcoder-set-jumprelu'),
        ],
        /layer 0: d_in is 32, but model .*llama-gqa has width 64 at blocks\.0\.hook_resid_mid/,
      ],
      [
        [...base, '--model', GPT2, '--transcoders', threeLayers],
        /layer 2: reads layer 2 of a 3-layer transcoder-set \(blocks\.2\.hook_resid_mid\), but model .*gpt2 has 2 layers/,
      ],
      [
        [
          ...base,
          '--model',
          path.join(FIXTURES, 'neox-parallel'),
          '--transcoders',
          path.join(ROOT, 'clt-gpt2'),
        ],
        /reads hook 'blocks\.0\.hook_resid_mid', which model .*neox-parallel does not have/,
      ],
      [
        [...base, '--model', GPT2, '--sae', noPath, '--hook', 'blocks.9.hook_resid_post'],
        /reads layer 9 \(blocks\.9\.hook_resid_post\), but model .*gpt2 has 2 layers/,
      ],
      [
        [...base, '--model', GPT2, '--sae', path.join(ROOT, 'transcoder-set-jumprelu')],
        /pass --layer L for one of them, or --transcoders/,
      ],
      [
        [...base, '--model', GPT2, '--sae', path.join(ROOT, 'sparsify-tiny')],
        /sparsify checkpoint with 2 hook points \(h\.0, h\.1\.mlp\); pass --layer L/,
      ],
      [[...base, '--model', GPT2, '--sae', noPath, '--transcoders', threeLayers], /not both/],
      [[...base, '--model', GPT2, '--transcoders', noPath], /no .*config\.yaml|transcoder config not found/],
    ];
    for (const [argv, pattern] of cases) {
      const r = runCli(argv, cache);
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line for ${argv.join(' ')}: ${r.stderr}`);
      assert.match(lines[0], /^loupe: /);
      assert.match(lines[0], pattern);
    }
  });
});
