/**
 * Every dictionary format against the independent reference
 * (tools/reference/dictionaries_reference.py): Gemma Scope npz (no b_dec
 * subtraction; att SAEs over flattened heads), sparsify SAEs and skip
 * transcoders (b_dec subtracted only for SAEs; h.N module names), SAELens
 * skip/jumprelu transcoders and batchtopk checkpoints, circuit-tracer
 * transcoder sets (transposed W_enc, thresholds, W_skip, TopK without ReLU,
 * f16) and CLTs (every later layer decoded; an RMSNorm model's mlp.hook_in),
 * each read at its hook on the fixture models: features and reconstructions to 1e-4.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { Dictionary, reconstructOutputs } from '../../src/engine/dictionaries/dictionary';
import { dictionaryFeatures, fitDictionary } from '../../src/engine/dictionaries/fit';
import { openDictionary, openTranscoders } from '../../src/engine/dictionaries/open';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const ROOT = path.join(FIXTURES, 'dictionaries');

interface ReferenceCase {
  name: string;
  sae?: string;
  transcoders?: string;
  model: string;
  ids: number[];
  layers: number[];
  inputs: string[];
  outputs: string[];
  format: string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const INDEX = require(path.join(ROOT, 'index.json')) as { tolerance: number; cases: ReferenceCase[] };

describe('dictionaries against the reference', function () {
  const cacheDir = tempDir();
  const models = new Map<string, Promise<HookedModel>>();
  const model = (name: string): Promise<HookedModel> => {
    if (!models.has(name))
      models.set(name, HookedModel.open(path.join(FIXTURES, name), { cacheDir, threads: 1 }));
    return models.get(name)!;
  };
  after(async () => {
    for (const m of models.values()) await (await m).dispose();
  });

  for (const c of INDEX.cases) {
    it(`${c.name}: features and reconstructions match`, async () => {
      const dir = path.join(ROOT, c.sae ?? c.transcoders!);
      const dict: Dictionary = c.sae ? openDictionary(dir, { cacheDir }) : openTranscoders(dir, { cacheDir });
      assert.equal(dict.format, c.format);
      assert.deepEqual(
        dict.coders.map((k) => k.layer),
        c.layers,
      );
      assert.deepEqual(
        dict.coders.map((k) => k.input.hook),
        c.inputs,
      );
      const fitted = fitDictionary(await model(c.model), dict);
      const runs = await dictionaryFeatures(fitted, c.ids);
      const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
      runs.forEach((run, i) => {
        const name = ref.tensors.has('acts') ? 'acts' : `acts.${c.layers[i]}`;
        assert.deepEqual(run.acts.dims, ref.info(name).shape, name);
        const diff = maxAbsDiff(run.acts.data, ref.readF32(name));
        assert.ok(diff < INDEX.tolerance, `${name}: max abs diff ${diff}`);
      });
      const recon = reconstructOutputs(dict.coders, runs);
      for (const name of [...ref.tensors.keys()].filter((n) => n.startsWith('recon.'))) {
        const hook = name.slice('recon.'.length);
        assert.ok(recon.has(hook), `no reconstruction at ${hook}`);
        const diff = maxAbsDiff(recon.get(hook)!, ref.readF32(name));
        assert.ok(diff < INDEX.tolerance, `${name}: max abs diff ${diff}`);
      }
      assert.deepEqual([...new Set(dict.coders.flatMap((k) => k.outputHooks))].sort(), [...c.outputs].sort());
      await dict.dispose();
    });
  }
});
