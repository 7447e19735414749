/** One SAE training step (forward, hand-derived backward, clipping, Adam) against PyTorch autograd. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraphSession, Feed } from '../../src/engine/runtime';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { METRICS, PARAMS, TrainArchitecture, buildTrainGraph, io } from '../../src/engine/sae/trainGraph';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const DIR = path.join(FIXTURES, 'sae-train');

describe('SAE training step vs PyTorch autograd', () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(DIR, 'steps.json'), 'utf8')) as Record<string, number>;
  for (const arch of ['relu', 'topk'] as TrainArchitecture[]) {
    it(`${arch}: updated parameters, moments and metrics match`, async () => {
      const ref = SafetensorsFile.open(path.join(DIR, `step-${arch}.safetensors`));
      const t = (name: string): Float32Array => ref.readF32(name);
      const file = path.join(tempDir(), 'step.onnx');
      fs.writeFileSync(
        file,
        buildTrainGraph({
          architecture: arch,
          dIn: cfg.d_in,
          dSae: cfg.d_sae,
          k: cfg.k,
          kAux: cfg.k_aux,
          auxCoefficient: cfg.aux_coefficient,
          auxRows: cfg.aux_rows,
          beta1: cfg.beta1,
          beta2: cfg.beta2,
          adamEps: cfg.adam_eps,
          clipNorm: cfg.clip_norm,
        }),
      );
      const session = await GraphSession.create(file, { threads: 1 });
      const step = t('t')[0];
      const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
      const feeds: Record<string, Feed> = {
        x: { type: 'float32', dims: ref.info('x').shape, data: t('x') },
        lr: scalar(t('lr')[0]),
        l1: scalar(t('l1')[0]),
        bc1: scalar(1 / (1 - cfg.beta1 ** step)),
        bc2: scalar(1 / (1 - cfg.beta2 ** step)),
        dead: { type: 'float32', dims: [cfg.d_sae], data: t('dead') },
      };
      for (const p of PARAMS) {
        for (const name of [io.param(p), io.m(p), io.v(p)]) {
          feeds[name] = { type: 'float32', dims: ref.info(name).shape, data: t(name) };
        }
      }
      const outputs = [...PARAMS.flatMap((p) => [io.out(p), io.out(io.m(p)), io.out(io.v(p))]), ...METRICS];
      const got = await session.run(feeds, outputs);
      for (const name of outputs) {
        const want = t(`expected.${name}`);
        const diff = maxAbsDiff(got.get(name)!.data, want);
        const scale = Math.max(1, ...Array.from(want, Math.abs));
        assert.ok(diff <= 2e-5 * scale, `${name}: max abs diff ${diff}`);
      }
      await session.release();
    });
  }
});
