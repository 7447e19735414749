/** One transcoder training step (forward, hand-derived backward, clipping, Adam) against PyTorch autograd. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Feed, GraphSession } from '../../src/engine/runtime';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { METRICS, StepArchitecture, buildTrainGraph, io, stepParams } from '../../src/engine/sae/trainGraph';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const DIR = path.join(FIXTURES, 'transcoder-train');

interface StepsFile {
  readonly [key: string]: number | { architecture: StepArchitecture; skip: boolean }[];
  readonly cases: { architecture: StepArchitecture; skip: boolean }[];
}

describe('transcoder training step vs PyTorch autograd', () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(DIR, 'steps.json'), 'utf8')) as StepsFile;
  const num = (key: string): number => cfg[key] as number;
  // TopK's two ways of computing the same step: gathered rows, or GEMMs over the scattered values.
  type Variant = { architecture: StepArchitecture; skip: boolean; products?: 'sparse' | 'dense' };
  const variants = cfg.cases.flatMap((c): Variant[] =>
    c.architecture === 'topk' ? (['sparse', 'dense'] as const).map((products) => ({ ...c, products })) : [c],
  );
  for (const { architecture, skip, products } of variants) {
    const name = `${architecture}${skip ? '-skip' : ''}`;
    it(`${name}${products ? ` (${products} products)` : ''}: updated parameters, moments and metrics match`, async () => {
      const ref = SafetensorsFile.open(path.join(DIR, `step-${name}.safetensors`));
      const t = (tensor: string): Float32Array => ref.readF32(tensor);
      const spec = {
        architecture,
        dIn: num('d_in'),
        dSae: num('d_sae'),
        k: num('k'),
        kAux: num('k_aux'),
        auxCoefficient: num('aux_coefficient'),
        auxRows: num('aux_rows'),
        beta1: num('beta1'),
        beta2: num('beta2'),
        adamEps: num('adam_eps'),
        clipNorm: num('clip_norm'),
        transcoder: true,
        topkWithoutRelu: true,
        topkProducts: products,
        skip,
        bandwidth: num('bandwidth'),
      };
      const file = path.join(tempDir(), 'step.onnx');
      fs.writeFileSync(file, buildTrainGraph(spec));
      const session = await GraphSession.create(file, { threads: 1 });
      const step = t('t')[0];
      const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
      const tensor = (n: string): Feed => ({ type: 'float32', dims: ref.info(n).shape, data: t(n) });
      const feeds: Record<string, Feed> = {
        x: tensor('x'),
        y: tensor('y'),
        lr: scalar(t('lr')[0]),
        l1: scalar(t('l1')[0]),
        bc1: scalar(1 / (1 - spec.beta1 ** step)),
        bc2: scalar(1 / (1 - spec.beta2 ** step)),
        dead: tensor('dead'),
      };
      const params = stepParams(spec);
      for (const p of params) for (const n of [io.param(p), io.m(p), io.v(p)]) feeds[n] = tensor(n);
      const outputs = [...params.flatMap((p) => [io.out(p), io.out(io.m(p)), io.out(io.v(p))]), ...METRICS];
      const got = await session.run(feeds, outputs);
      for (const n of outputs) {
        const want = t(`expected.${n}`);
        const diff = maxAbsDiff(got.get(n)!.data, want);
        const scale = Math.max(1, ...Array.from(want, Math.abs));
        assert.ok(diff <= 1e-4 * scale, `${n}: max abs diff ${diff}`);
      }
      await session.release();
    });
  }

  it('the fixtures exercise what they are meant to: JumpReLU thresholds inside the kernel, the skip term', () => {
    for (const { architecture, skip } of cfg.cases) {
      const ref = SafetensorsFile.open(
        path.join(DIR, `step-${architecture}${skip ? '-skip' : ''}.safetensors`),
      );
      // Adam's first moment moves away from 0.9·m only where the gradient is non-zero.
      const moved = (p: string): number => {
        const m = ref.readF32(`${p}.m`);
        const next = ref.readF32(`expected.${p}.m.next`);
        return next.filter((v, i) => Math.abs(v - 0.9 * m[i]) > 1e-7).length;
      };
      if (architecture === 'jumprelu') assert.ok(moved('log_threshold') > 0, 'no threshold gradient');
      if (skip) assert.equal(moved('W_skip'), ref.info('W_skip').shape[0] ** 2);
    }
  });
});
