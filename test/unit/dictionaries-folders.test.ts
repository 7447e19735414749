/**
 * The Models & SAEs tree's view of the published dictionary formats: found
 * in a hub cache laid out as huggingface_hub writes it (Gemma Scope's
 * layer_N/width_…/average_l0_… three levels down, a transcoder set at a
 * snapshot's root) and in folders asked for (sparsify hook points, a CLT,
 * SAELens transcoders), each with its format, architecture, hooks, width,
 * layers, L0 where the files say it, and the models it fits.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeFolders } from '../../src/engine/host/folders';
import { FIXTURES, tempDir } from './helpers';

const ROOT = path.join(FIXTURES, 'dictionaries');
const GPT2 = path.join(FIXTURES, 'gpt2');
const LLAMA = path.join(FIXTURES, 'llama-gqa');

/** Copies a fixture folder into a hub cache as a repository snapshot (plain files are enough here). */
function hubRepo(hub: string, repo: string, files: Record<string, string>): string {
  const snapshot = path.join(hub, `models--${repo.replace('/', '--')}`, 'snapshots', 'abc123');
  for (const [name, source] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(snapshot, name)), { recursive: true });
    fs.copyFileSync(source, path.join(snapshot, name));
  }
  return snapshot;
}

describe('dictionary folders in the Models & SAEs tree', () => {
  it('finds Gemma Scope SAEs and transcoder sets in the hub cache and describes every format', () => {
    const hub = tempDir();
    const gemma = hubRepo(hub, 'google/gemma-scope-tiny-res', {
      'layer_1/width_48/average_l0_9/params.npz': path.join(
        ROOT,
        'gemma-scope-tiny-res/layer_1/width_48/average_l0_9/params.npz',
      ),
    });
    const setDir = path.join(ROOT, 'transcoder-set-jumprelu');
    const set = hubRepo(hub, 'loupe-test/transcoders', {
      'config.yaml': path.join(setDir, 'config.yaml'),
      'layer_0.safetensors': path.join(setDir, 'layer_0.safetensors'),
      'layer_1.safetensors': path.join(setDir, 'layer_1.safetensors'),
    });
    const asked = [
      path.join(ROOT, 'sparsify-tiny', 'h.1.mlp'),
      path.join(ROOT, 'clt-llama-mlp-in'),
      path.join(ROOT, 'saelens-skip-transcoder'),
    ];
    const r = describeFolders({ models: [GPT2, LLAMA], saes: asked, hubCache: hub });
    const byDir = new Map(r.saes.map((s) => [s.dir, s]));
    for (const s of r.saes) assert.equal(s.problem, null, `${s.dir}: ${s.problem}`);

    const gs = byDir.get(path.join(gemma, 'layer_1', 'width_48', 'average_l0_9'))!;
    assert.ok(gs, `Gemma Scope SAE found three levels down: ${[...byDir.keys()].join(', ')}`);
    assert.equal(gs.foundIn, 'google/gemma-scope-tiny-res/layer_1/width_48/average_l0_9');
    assert.deepEqual(
      { ...gs.config, hasFeatureDatabase: undefined },
      {
        format: 'gemma-scope',
        architecture: 'jumprelu',
        hook: 'blocks.1.hook_resid_post',
        outputHook: null,
        layers: 1,
        dIn: 32,
        dSae: 48,
        k: null,
        l0: 9,
        modelName: null,
        contextSize: null,
        trainedByLoupe: false,
        trainingTokens: null,
        hasFeatureDatabase: undefined,
      },
    );
    assert.deepEqual(gs.fits, [GPT2]);

    const ts = byDir.get(set)!;
    assert.equal(ts.config?.format, 'transcoder-set');
    assert.equal(ts.config?.hook, 'blocks.0.hook_resid_mid');
    assert.equal(ts.config?.outputHook, 'blocks.0.hook_mlp_out');
    assert.equal(ts.config?.layers, 2);
    assert.equal(ts.config?.architecture, 'jumprelu + skip');
    assert.deepEqual(ts.fits, [GPT2]);

    const sp = byDir.get(asked[0])!;
    assert.equal(sp.config?.format, 'sparsify');
    assert.equal(sp.config?.hook, 'blocks.1.ln2.hook_normalized');
    assert.equal(sp.config?.outputHook, 'blocks.1.hook_mlp_out');
    assert.equal(sp.config?.k, 5);
    assert.equal(sp.config?.l0, 5);

    const clt = byDir.get(asked[1])!;
    assert.equal(clt.config?.format, 'cross-layer-transcoder');
    assert.equal(clt.config?.dIn, 64);
    assert.deepEqual(clt.fits, [LLAMA], 'd_model 64: the llama fixture, not gpt2');

    const sl = byDir.get(asked[2])!;
    assert.equal(sl.config?.format, 'saelens-transcoder');
    assert.equal(sl.config?.architecture, 'skip_transcoder');
    assert.equal(sl.config?.outputHook, 'blocks.0.hook_mlp_out');
  });

  it('says in one line what keeps a dictionary folder from loading', () => {
    const dir = tempDir();
    const broken = path.join(dir, 'broken-set');
    fs.mkdirSync(broken);
    fs.writeFileSync(
      path.join(broken, 'config.yaml'),
      'model_kind: sae_set\nfeature_input_hook: a\nfeature_output_hook: b\n',
    );
    const r = describeFolders({ models: [GPT2], saes: [broken], hubCache: path.join(dir, 'no-hub') });
    assert.equal(r.saes[0].config, null);
    assert.match(r.saes[0].problem ?? '', /model_kind 'sae_set' is not one circuit-tracer knows/);
  });
});
