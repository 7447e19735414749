/**
 * The probes' logistic regression against the exact minimisers the PyTorch
 * reference finds by Newton's method (tools/reference/causal_reference.py),
 * in both of its backends, and the Student-t tail TCAV's test rests on.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { SafetensorsFile, toInts } from '../../src/engine/safetensors';
import { fitLogistic, predictClasses } from '../../src/engine/probes/logistic';
import { minimizeLbfgs } from '../../src/engine/probes/lbfgs';
import { FIXTURES, seededRandom } from './helpers';

const file = SafetensorsFile.open(path.join(FIXTURES, 'causal', 'logistic.safetensors'));
const cases = JSON.parse(file.metadata.cases) as Record<
  string,
  { n: number; d: number; classes: number; l2: number; train_loss: number; train_accuracy: number }
>;

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

describe('probe logistic regression vs the reference', () => {
  for (const [name, c] of Object.entries(cases)) {
    for (const backend of ['js', 'onnx'] as const) {
      it(`${name} (${c.classes} classes), ${backend}`, async () => {
        const x = file.readF32(`${name}.x`);
        const info = file.info(`${name}.y`);
        const y = Int32Array.from(toInts(info.dtype, file.readBytes(`${name}.y`), 'y'));
        const fit = await fitLogistic(x, c.n, c.d, [y], { classes: c.classes, l2: c.l2, backend });
        const [clf] = fit.classifiers;
        const tolerance = backend === 'js' ? 1e-5 : 2e-3;
        const wErr = relativeError(clf.weight, file.readF32(`${name}.weight`));
        const bErr = relativeError(clf.bias, file.readF32(`${name}.bias`));
        assert.ok(wErr < tolerance, `weight: relative error ${wErr}`);
        assert.ok(bErr < tolerance, `bias: relative error ${bErr}`);
        assert.ok(Math.abs(fit.trainLoss[0] - c.train_loss) < (backend === 'js' ? 1e-7 : 1e-4));
        assert.ok(Math.abs(fit.trainAccuracy[0] - c.train_accuracy) < 1e-9);
        assert.ok(fit.converged);
        // The rows were not touched (no `overwrite`), and predictions agree with the reported accuracy.
        const pred = predictClasses(clf, file.readF32(`${name}.x`), c.n);
        assert.ok(
          Math.abs(pred.reduce((a, p, i) => a + (p === y[i] ? 1 : 0), 0) / c.n - c.train_accuracy) < 1e-9,
        );
      });
    }
  }

  it('fits two tasks on the same rows as if each were fitted alone', async () => {
    const c = cases.binary;
    const x = file.readF32('binary.x');
    const y = Int32Array.from(toInts('I64', file.readBytes('binary.y'), 'y'));
    const rand = seededRandom(3);
    const other = Int32Array.from(y, () => (rand() > 0 ? 1 : 0));
    const joint = await fitLogistic(x, c.n, c.d, [y, other], { classes: 2, l2: c.l2, backend: 'js' });
    const alone = await fitLogistic(x, c.n, c.d, [other], { classes: 2, l2: c.l2, backend: 'js' });
    assert.ok(relativeError(joint.classifiers[0].weight, file.readF32('binary.weight')) < 1e-5);
    assert.ok(relativeError(joint.classifiers[1].weight, alone.classifiers[0].weight) < 1e-5);
  });

  it('leaves constant features inert and refuses a single class', async () => {
    const n = 40;
    const x = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      x[i * 2] = 5; // constant
      x[i * 2 + 1] = i % 2 ? 1 + i / n : -1 - i / n;
      y[i] = i % 2;
    }
    const fit = await fitLogistic(x, n, 2, [y], { classes: 2 });
    assert.equal(fit.classifiers[0].weight[0], 0);
    assert.ok(fit.classifiers[0].weight[1] > 0);
    assert.equal(fit.trainAccuracy[0], 1);
    await assert.rejects(fitLogistic(x, n, 2, [y], { classes: 1 }), /at least 2 classes/);
  });

  it('L-BFGS minimises a badly scaled quadratic', async () => {
    const scales = [1, 10, 100, 1000];
    const result = await minimizeLbfgs(
      (theta, grad) => {
        let f = 0;
        theta.forEach((t, i) => {
          f += 0.5 * scales[i] * (t - i) ** 2;
          grad[i] = scales[i] * (t - i);
        });
        return Promise.resolve(f);
      },
      new Float64Array(4),
      { gradientTolerance: 1e-9 },
    );
    assert.ok(result.converged);
    result.theta.forEach((t, i) => assert.ok(Math.abs(t - i) < 1e-7, `θ${i} = ${t}`));
  });
});
