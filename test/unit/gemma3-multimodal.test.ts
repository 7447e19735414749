/**
 * A multimodal Gemma 3 checkpoint (`model_type: gemma3`, as the 4B and larger
 * uploads are): the gemma3 fixture's text model nested under `text_config`,
 * its tensors under `language_model.model.` (saves before transformers 4.52)
 * or `model.language_model.` (later ones), beside vision tensors. Loupe runs
 * the text model, so its logits are the reference's for the text-only fixture.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../../src/engine/safetensors';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const FIXTURE = path.join(FIXTURES, 'gemma3');

function writeMultimodal(dir: string, textPrefix: string, lmHead: string | null): void {
  fs.mkdirSync(dir, { recursive: true });
  const text = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const config = {
    architectures: ['Gemma3ForConditionalGeneration'],
    model_type: 'gemma3',
    text_config: text,
    vision_config: { model_type: 'siglip_vision_model', hidden_size: 8, num_hidden_layers: 1 },
    mm_tokens_per_image: 4,
    image_token_index: 5,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const src = SafetensorsFile.open(path.join(FIXTURE, 'model.safetensors'));
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, info] of src.tensors) {
    const renamed = name === 'lm_head.weight' ? lmHead : name.replace(/^model\./, textPrefix);
    if (renamed) tensors.set(renamed, { dtype: 'F32', shape: info.shape, data: src.readF32(name) });
  }
  tensors.set('vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight', {
    dtype: 'F32',
    shape: [8, 8],
    data: new Float32Array(64).fill(0.5),
  });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
}

describe('multimodal Gemma 3 checkpoints (text model under text_config)', () => {
  const cacheDir = tempDir('loupe-gemma3mm-cache-');
  const ref = SafetensorsFile.open(path.join(FIXTURE, 'reference.safetensors'));
  const cases = (
    JSON.parse(fs.readFileSync(path.join(FIXTURE, 'reference.json'), 'utf8')) as {
      cases: { name: string; input_ids: number[] }[];
    }
  ).cases;

  for (const [layout, prefix, lmHead] of [
    ['language_model.model.*', 'language_model.model.', 'language_model.lm_head.weight'],
    ['model.language_model.*', 'model.language_model.', 'lm_head.weight'],
  ] as const) {
    it(`runs the text model of a ${layout} save as the reference does`, async () => {
      const dir = tempDir('loupe-gemma3mm-');
      writeMultimodal(dir, prefix, lmHead);
      const model = await HookedModel.open(dir, { cacheDir, threads: 1 });
      try {
        assert.equal(model.spec.modelType, 'gemma3');
        assert.ok(model.spec.qkNorm && model.spec.postNorms);
        for (const c of cases) {
          const [run] = await model.run([c.input_ids], { hooks: ['blocks.0.attn.hook_pattern'] });
          const diff = maxAbsDiff(run.logits.data, ref.readF32(`${c.name}.logits`));
          assert.ok(diff <= 1e-4, `${c.name} logits: max abs diff ${diff}`);
          const pattern = maxAbsDiff(
            run.hooks.get('blocks.0.attn.hook_pattern')!.data,
            ref.readF32(`${c.name}.blocks.0.attn.hook_pattern`),
          );
          assert.ok(pattern <= 1e-4, `${c.name} pattern: max abs diff ${pattern}`);
        }
      } finally {
        await model.dispose();
      }
    });
  }
});
