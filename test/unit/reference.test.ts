/**
 * The engine against the independent PyTorch reference (tools/reference):
 * every hook and the logits of tiny checkpoints of each family, alone and
 * batched with padding, and with edits, to 1e-4 max abs.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookEdit, HookedModel } from '../../src/engine/model';
import { SafetensorsFile, toInts } from '../../src/engine/safetensors';
import { Tensor } from '../../src/engine/tensor';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const TOLERANCE = 1e-4;

interface ReferenceCase {
  name: string;
  length: number;
}
interface ReferenceEdit {
  name: string;
  case: string;
  hooks: string[];
  outputs: string[];
}
interface ReferenceIndex {
  cases: ReferenceCase[];
  hooks: string[];
  edits: ReferenceEdit[];
}

const fixtureNames = fs.existsSync(FIXTURES)
  ? fs.readdirSync(FIXTURES).filter((n) => fs.existsSync(path.join(FIXTURES, n, 'reference.json')))
  : [];

describe('engine vs the PyTorch reference', function () {
  const cacheDir = tempDir('loupe-ref-cache-');

  it('has fixtures for every family', () => {
    for (const name of ['gpt2', 'gpt2-noprefix', 'neox-parallel', 'neox-sequential', 'llama-gqa', 'qwen2']) {
      assert.ok(fixtureNames.includes(name), `missing fixture ${name}; run tools/reference/make_fixtures.py`);
    }
  });

  for (const name of fixtureNames) {
    describe(name, () => {
      const dir = path.join(FIXTURES, name);
      let model: HookedModel;
      let ref: SafetensorsFile;
      let index: ReferenceIndex;
      const expected = (key: string): Tensor => ({ dims: ref.info(key).shape, data: ref.readF32(key) });
      const ids = (c: string): number[] => {
        const info = ref.info(`${c}.input_ids`);
        return toInts(info.dtype, ref.readBytes(`${c}.input_ids`), `${c}.input_ids`);
      };
      const check = (label: string, actual: Tensor, want: Tensor): void => {
        assert.deepEqual(actual.dims, want.dims, `${label}: shape`);
        const diff = maxAbsDiff(actual.data, want.data);
        assert.ok(diff <= TOLERANCE, `${label}: max abs diff ${diff}`);
      };

      before(async () => {
        index = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as ReferenceIndex;
        ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
        model = await HookedModel.open(dir, { cacheDir, threads: 1 });
      });
      after(async () => model?.dispose());

      it('knows exactly the reference hook names', () => {
        assert.deepEqual([...model.hookTable.map((h) => h.name)].sort(), [...index.hooks].sort());
      });

      it('matches logits and every hook, one text at a time', async () => {
        for (const c of index.cases) {
          const [result] = await model.run([ids(c.name)], { hooks: 'all' });
          check(`${c.name} logits`, result.logits, expected(`${c.name}.logits`));
          for (const hook of index.hooks) {
            check(`${c.name} ${hook}`, result.hooks.get(hook)!, expected(`${c.name}.${hook}`));
          }
        }
      });

      it('matches in one padded batch of different lengths', async () => {
        const results = await model.run(
          index.cases.map((c) => ids(c.name)),
          { hooks: 'all' },
        );
        index.cases.forEach((c, i) => {
          check(`batched ${c.name} logits`, results[i].logits, expected(`${c.name}.logits`));
          for (const hook of index.hooks) {
            check(`batched ${c.name} ${hook}`, results[i].hooks.get(hook)!, expected(`${c.name}.${hook}`));
          }
        });
      });

      it('matches without hooks (the plain graph)', async () => {
        for (const c of index.cases) {
          const [result] = await model.run([ids(c.name)]);
          check(`${c.name} plain logits`, result.logits, expected(`${c.name}.logits`));
        }
      });

      it('applies edits as the reference does', async () => {
        for (const e of index.edits) {
          const edits: HookEdit[] = e.hooks.map((hook) => ({
            hook,
            mul: ref.tensors.has(`${e.name}.${hook}.mul`) ? expected(`${e.name}.${hook}.mul`) : undefined,
            add: ref.tensors.has(`${e.name}.${hook}.add`) ? expected(`${e.name}.${hook}.add`) : undefined,
          }));
          const fetch = e.outputs.filter((o) => o !== 'logits');
          const [result] = await model.run([ids(e.case)], { hooks: fetch, edits });
          check(`${e.name} logits`, result.logits, expected(`${e.name}.logits`));
          for (const o of fetch) check(`${e.name} ${o}`, result.hooks.get(o)!, expected(`${e.name}.${o}`));
        }
      });
    });
  }
});
