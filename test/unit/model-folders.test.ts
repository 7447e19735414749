/**
 * What the Models & SAEs tree learns about folders (engine/host/folders.ts):
 * key configuration read by the engine's own readers, one-line problems,
 * checkpoints found in a Hugging Face hub cache laid out as huggingface_hub
 * lays it out (blobs, symlinked snapshots, refs/main), pickle-only snapshots
 * marked, SAEs found inside model folders and hub snapshots, and which models
 * each SAE fits. Also through the engine process, so the reply passes the
 * protocol's checks.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeFolders, hubCacheDir } from '../../src/engine/host/folders';
import { EngineClient } from '../../src/extension/engineClient';
import { FIXTURES, tempDir, writeRandomSae } from './helpers';

const MODEL = path.join(FIXTURES, 'gpt2');
const WORKER = path.join(__dirname, '..', '..', 'src', 'engine', 'host', 'worker.ts');

/** A repository in the cache as huggingface_hub writes it: files in blobs/, symlinked from snapshots/REV/. */
function writeHubRepo(hub: string, repo: string, revision: string, files: Record<string, string>): string {
  const root = path.join(hub, `models--${repo.replace('/', '--')}`);
  const snapshot = path.join(root, 'snapshots', revision);
  for (const [name, source] of Object.entries(files)) {
    const blob = path.join(root, 'blobs', `${revision}-${name.replace(/\//g, '_')}`);
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.copyFileSync(source, blob);
    const link = path.join(snapshot, name);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(link), blob), link);
  }
  return snapshot;
}

describe('model and SAE folders', function () {
  let dir: string;
  let hub: string;
  let tinySnapshot: string;
  let userModel: string;
  let broken: string;
  let saeInModel: string;
  let otherSae: string;

  before(() => {
    dir = tempDir();
    hub = path.join(dir, 'hub');
    const f = (name: string) => path.join(MODEL, name);
    tinySnapshot = writeHubRepo(hub, 'loupe-test/tiny-gpt2', 'abc123', {
      'config.json': f('config.json'),
      'model.safetensors': f('model.safetensors'),
      'tokenizer.json': f('tokenizer.json'),
    });
    // An older revision that refs/main no longer names: from_pretrained would not load it.
    writeHubRepo(hub, 'loupe-test/tiny-gpt2', 'old000', { 'config.json': f('config.json') });
    fs.mkdirSync(path.join(hub, 'models--loupe-test--tiny-gpt2', 'refs'));
    fs.writeFileSync(path.join(hub, 'models--loupe-test--tiny-gpt2', 'refs', 'main'), 'abc123');

    const pickle = path.join(dir, 'pytorch_model.bin');
    fs.writeFileSync(pickle, 'not really a pickle');
    writeHubRepo(hub, 'loupe-test/pickled', 'def456', {
      'config.json': f('config.json'),
      'pytorch_model.bin': pickle,
    });
    const saeSource = path.join(dir, 'sae-source');
    writeRandomSae(saeSource, { dIn: 32, dSae: 64, hook: 'blocks.0.hook_resid_post', contextSize: 24 });
    writeHubRepo(hub, 'loupe-test/saes', 'r1', {
      'blocks.0.hook_resid_post/cfg.json': path.join(saeSource, 'cfg.json'),
      'blocks.0.hook_resid_post/sae_weights.safetensors': path.join(saeSource, 'sae_weights.safetensors'),
    });
    writeHubRepo(hub, 'loupe-test/tokenizer-only', 't1', { 'tokenizer.json': f('tokenizer.json') });
    fs.mkdirSync(path.join(hub, 'datasets--loupe-test--text', 'snapshots', 'd1'), { recursive: true });
    fs.writeFileSync(path.join(hub, 'version.txt'), '1');

    userModel = path.join(dir, 'my-model');
    fs.cpSync(MODEL, userModel, { recursive: true });
    saeInModel = path.join(userModel, 'saes', 'mlp-sae');
    writeRandomSae(saeInModel, {
      dIn: 64,
      dSae: 128,
      hook: 'blocks.1.mlp.hook_post',
      contextSize: null,
      k: 4,
    });
    broken = path.join(dir, 'broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'config.json'), JSON.stringify({ model_type: 'nope' }));
    otherSae = path.join(dir, 'other-sae');
    writeRandomSae(otherSae, { dIn: 48, dSae: 96, hook: 'blocks.0.hook_resid_post', contextSize: null });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const request = () => ({ models: [userModel, broken], saes: [otherSae], hubCache: hub });

  it('describes model folders with their configuration, or the problem, in one line', () => {
    const r = describeFolders(request());
    const [mine, bad] = r.models;
    assert.equal(mine.name, 'my-model');
    assert.deepEqual(mine.config, {
      modelType: 'gpt2',
      nLayers: 2,
      dModel: 32,
      nHeads: 4,
      dMlp: 64,
      nCtx: 64,
      dVocab: 300,
      weightsBytes: fs.statSync(path.join(MODEL, 'model.safetensors')).size,
      architecture: ['LayerNorm', 'learned positions', 'tied unembedding'],
    });
    assert.equal(mine.problem, null);
    assert.equal(bad.config, null);
    assert.match(bad.problem ?? '', /config\.json.*nope/);
    assert.ok(!bad.problem?.includes('\n'));
    assert.equal(bad.pickleOnly, false);
  });

  it('lists the newer families with what each computes beyond a plain Transformer', () => {
    const families = ['gemma2', 'gemma3', 'llama3', 'qwen2.5', 'phi3'].map((n) => path.join(FIXTURES, n));
    const r = describeFolders({ models: families, saes: [], hubCache: path.join(dir, 'no-hub') });
    const [gemma2, gemma3, llama3, qwen25, phi3] = r.models.map((m) => m.config?.architecture ?? []);
    // Gemma 2: layer 0 of 2 slides (Hugging Face alternates from layer 0), caps 50 and 30 as its config says.
    for (const part of [
      'norms after attention and MLP',
      'sliding window 4 on 1 of 2 layers',
      'attention soft-cap 50',
      'logit soft-cap 30',
      'GeGLU (tanh)',
      'embeddings × √d_model',
    ]) {
      assert.ok(gemma2.includes(part), `gemma2 lacks '${part}': ${gemma2.join(', ')}`);
    }
    // Gemma 3: layer_types slide on two of three layers, which turn with the local base.
    assert.ok(gemma3.includes('q/k norms'));
    assert.ok(gemma3.includes('sliding window 4 on 2 of 3 layers'));
    assert.ok(gemma3.includes('rotary θ 10000 / θ 1000000'), gemma3.join(', '));
    assert.ok(llama3.includes('rotary θ 500000 llama3 ×32'), llama3.join(', '));
    // Qwen2.5 sets sliding_window with use_sliding_window false: no window.
    assert.ok(!qwen25.some((p) => p.startsWith('sliding window')), qwen25.join(', '));
    assert.ok(phi3.includes('sliding window 5 on every layer'), phi3.join(', '));
  });

  it('finds checkpoints in the hub cache, marks pickle-only ones, and skips what is not a model', () => {
    const r = describeFolders(request());
    assert.equal(r.hub.dir, hub);
    assert.equal(r.hub.exists, true);
    assert.deepEqual(
      r.hub.models.map((m) => [m.name, m.hub?.revision]),
      [
        ['loupe-test/pickled', 'def456'],
        ['loupe-test/tiny-gpt2', 'abc123'],
      ],
    );
    const [pickled, tiny] = r.hub.models;
    assert.equal(tiny.dir, tinySnapshot);
    assert.equal(tiny.config?.dModel, 32);
    assert.equal(tiny.config?.weightsBytes, fs.statSync(path.join(MODEL, 'model.safetensors')).size);
    assert.equal(tiny.problem, null);
    assert.equal(tiny.pickleOnly, false);
    assert.equal(pickled.config, null);
    assert.equal(pickled.pickleOnly, true);
    assert.match(pickled.problem ?? '', /pytorch_model\.bin: PyTorch pickle weights are refused on purpose/);
    assert.match(pickled.problem ?? '', /safe_serialization=True/);

    const missing = describeFolders({ models: [], saes: [], hubCache: path.join(dir, 'no-hub') });
    assert.deepEqual(missing.hub, { dir: path.join(dir, 'no-hub'), exists: false, models: [] });
  });

  it('finds SAEs inside model folders and hub snapshots, and says which models each fits', () => {
    const r = describeFolders(request());
    const byDir = new Map(r.saes.map((s) => [s.dir, s]));
    assert.deepEqual(
      r.saes.map((s) => s.dir),
      [
        otherSae,
        saeInModel,
        path.join(hub, 'models--loupe-test--saes', 'snapshots', 'r1', 'blocks.0.hook_resid_post'),
      ],
    );
    const other = byDir.get(otherSae)!;
    assert.equal(other.foundIn, null);
    assert.deepEqual(other.fits, [], 'd_in 48 fits no 32-wide model');
    assert.equal(other.config?.dIn, 48);

    const inModel = byDir.get(saeInModel)!;
    assert.equal(inModel.foundIn, userModel);
    assert.deepEqual(inModel.config, {
      format: 'saelens',
      architecture: 'topk',
      hook: 'blocks.1.mlp.hook_post',
      outputHook: null,
      layers: 1,
      dIn: 64,
      dSae: 128,
      k: 4,
      l0: 4,
      modelName: null,
      contextSize: null,
      trainedByLoupe: false,
      trainingTokens: null,
      hasFeatureDatabase: false,
    });
    assert.deepEqual(inModel.fits, [userModel, tinySnapshot], 'd_mlp is 64 in both');

    const fromHub = r.saes[2];
    assert.equal(fromHub.foundIn, 'loupe-test/saes/blocks.0.hook_resid_post');
    assert.equal(fromHub.config?.contextSize, 24);
    assert.deepEqual(fromHub.fits, [userModel, tinySnapshot]);

    // A feature database beside the SAE shows; a broken cfg.json is a one-line problem.
    fs.mkdirSync(path.join(otherSae, 'features'));
    fs.writeFileSync(path.join(otherSae, 'features', 'index.json'), '{}');
    const cfg = path.join(saeInModel, 'cfg.json');
    const saved = fs.readFileSync(cfg, 'utf8');
    fs.writeFileSync(cfg, saved.replace('"d_in":64', '"d_in":-1'));
    try {
      const again = describeFolders(request());
      assert.equal(again.saes[0].config?.hasFeatureDatabase, true);
      assert.equal(again.saes[1].config, null);
      assert.match(again.saes[1].problem ?? '', /cfg\.json: 'd_in' must be a positive integer/);
    } finally {
      fs.writeFileSync(cfg, saved);
      fs.rmSync(path.join(otherSae, 'features'), { recursive: true });
    }
  });

  it('locates the hub cache as huggingface_hub does', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/a/hub', HF_HOME: '/b' }), '/a/hub');
    assert.equal(hubCacheDir({ HF_HOME: '/b' }), path.join('/b', 'hub'));
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/c', HOME: '/h' }), path.join('/c', 'huggingface', 'hub'));
    assert.equal(hubCacheDir({ HOME: '/h' }), path.join('/h', '.cache', 'huggingface', 'hub'));
  });

  it('answers the same through the engine process', async () => {
    const client = new EngineClient({
      workerFile: WORKER,
      execArgv: ['--import', 'tsx'],
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    try {
      const viaProcess = await client.request('describeFolders', request());
      assert.deepEqual(viaProcess, describeFolders(request()));
    } finally {
      client.dispose();
    }
  });
});
