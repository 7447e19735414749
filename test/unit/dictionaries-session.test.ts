/**
 * The editor's engine session with a transcoder set loaded: a file is
 * analysed with every layer at its input hook, the Token Inspector's answer
 * carries each feature's layer and index there (the reference's activations),
 * and a heat map of one layer's feature covers the file; all through the
 * message schemas the host checks. Also a Gemma Scope folder, whose inferred
 * hook is said in the load's warnings.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { EngineSession } from '../../src/engine/host/session';
import { engineMethods } from '../../src/engine/host/protocol';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { FIXTURES, tempDir } from './helpers';

const ROOT = path.join(FIXTURES, 'dictionaries');
// Tokenised with BOS, its first ten tokens are the ids the reference ran.
const TEXT = 'The heads read the residual stream and write to it.';
const NOT_CANCELLED = { cancelled: false };

describe('the engine session with a transcoder set', function () {
  this.timeout(120_000);
  const session = new EngineSession();
  const set = path.join(ROOT, 'transcoder-set-jumprelu');
  const ref = SafetensorsFile.open(path.join(set, 'reference.safetensors'));
  const width = ref.info('acts.0').shape[1];

  before(async () => {
    const loaded = await session.load(
      { model: path.join(FIXTURES, 'gpt2'), sae: set, threads: 1, cacheDir: tempDir() },
      () => undefined,
    );
    engineMethods.load.result.parse(loaded);
    assert.equal(loaded.saeError, null);
    assert.equal(loaded.sae?.format, 'transcoder-set');
    assert.equal(loaded.sae?.layerWidth, width);
    assert.equal(loaded.sae?.dSae, 2 * width);
  });
  after(() => session.unload());

  it("inspects a token's features by layer, as the reference computes them", async () => {
    await session.tokenize({ document: 'a', version: 1, text: TEXT });
    await session.analyze({ document: 'a', version: 1 }, NOT_CANCELLED, () => undefined);
    const token = 3;
    const r = engineMethods.inspect.result.parse(
      await session.inspect({ document: 'a', version: 1, token, features: 100, predictions: 0 }),
    );
    const expected: { layer: number; layerIndex: number; act: number }[] = [];
    for (const layer of [0, 1]) {
      const acts = ref.readF32(`acts.${layer}`);
      for (let i = 0; i < width; i++) {
        const a = acts[token * width + i];
        if (a > 0) expected.push({ layer, layerIndex: i, act: a });
      }
    }
    assert.equal(r.activeFeatures, expected.length);
    for (const e of expected) {
      const got = r.features.find((f) => f.layer === e.layer && f.layerIndex === e.layerIndex);
      assert.ok(got, `L${e.layer} #${e.layerIndex} is listed`);
      assert.equal(got.index, e.layer * width + e.layerIndex);
      assert.ok(Math.abs(got.act - e.act) < 1e-4, `L${e.layer} #${e.layerIndex}: ${got.act} vs ${e.act}`);
    }
    const best = r.features[0];
    const map = engineMethods.featureMap.result.parse(
      session.featureMap({ document: 'a', version: 1, feature: best.index }),
    );
    assert.ok(Math.abs(map.acts[token] - best.act) < 1e-6);
    const acts = ref.readF32(`acts.${best.layer}`);
    for (let t = 1; t < 10; t++) {
      assert.ok(Math.abs(map.acts[t] - acts[t * width + best.layerIndex!]) < 1e-4, `token ${t}`);
    }
  });

  it('loads a Gemma Scope folder and says where its hook came from', async () => {
    const other = new EngineSession();
    const dir = path.join(ROOT, 'gemma-scope-tiny-res', 'layer_1', 'width_48', 'average_l0_9');
    const loaded = await other.load(
      { model: path.join(FIXTURES, 'gpt2'), sae: dir, threads: 1, cacheDir: tempDir() },
      () => undefined,
    );
    await other.unload();
    assert.equal(loaded.saeError, null);
    assert.equal(loaded.sae?.hook, 'blocks.1.hook_resid_post');
    assert.equal(loaded.sae?.layerWidth, null);
    assert.ok(loaded.warnings.some((w) => /inferred from the path/.test(w)));
  });
});
