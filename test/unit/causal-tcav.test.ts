/**
 * TCAV: the Student-t tail against known values, a concept that matters
 * (the answer token of the one-head model) is significant, a random concept
 * is not, and bad input is refused.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import {
  logGamma,
  regularizedIncompleteBeta,
  studentTwoSidedP,
  tTestIndependent,
  tTestNewObservation,
} from '../../src/engine/causal/statistics';
import { runTcav } from '../../src/engine/causal/tcav';
import { FIXTURES, seededRandom, tempDir } from './helpers';

describe('TCAV', function () {
  it('Student t two-sided p-values, incomplete beta and ln Γ match known values', () => {
    // Tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2): critical values of the t distribution.
    const known: [number, number, number][] = [
      [12.706204736, 1, 0.05],
      [2.228138852, 10, 0.05],
      [3.169272673, 10, 0.01],
      [2.093024054, 19, 0.05],
      [2.660283029, 60, 0.01],
    ];
    for (const [t, df, p] of known)
      assert.ok(Math.abs(studentTwoSidedP(t, df) - p) < 1e-8, `t=${t} df=${df}`);
    assert.ok(Math.abs(studentTwoSidedP(2, 10) - 0.0733880347707) < 1e-10);
    // Large ν approaches the normal distribution; the value from integrating the density numerically.
    assert.ok(Math.abs(studentTwoSidedP(1.959963985, 1e6) - 0.0500002772) < 1e-8);
    assert.equal(studentTwoSidedP(0, 5), 1);
    assert.ok(Math.abs(studentTwoSidedP(1, 1) - 0.5) < 1e-12); // Cauchy: P(|T| ≥ 1) = 1/2
    // I_x(a, b) for integer a, b is a binomial tail: I_0.3(2, 5) = P(Bin(6, 0.3) ≥ 2).
    assert.ok(Math.abs(regularizedIncompleteBeta(0.3, 2, 5) - 0.579825) < 1e-12);
    assert.ok(
      Math.abs(regularizedIncompleteBeta(0.9, 0.5, 0.5) - (2 / Math.PI) * Math.asin(Math.sqrt(0.9))) < 1e-12,
    );
    assert.ok(Math.abs(logGamma(10) - Math.log(362880)) < 1e-12);
    assert.ok(Math.abs(logGamma(0.5) - 0.5 * Math.log(Math.PI)) < 1e-12);
  });

  it('the t-tests: pooled two-sample, and one new observation against a sample', () => {
    // Pooled variance: t = (2.5 − 5) / √(3.5·(1/4 + 1/5)) with 7 degrees of freedom; p by integrating the density.
    const r = tTestIndependent([1, 2, 3, 4], [3, 4, 5, 6, 7]);
    assert.ok(Math.abs(r.t + 2.5458753861) < 1e-9);
    assert.equal(r.df, 7);
    assert.ok(Math.abs(r.p - 0.0383337288) < 1e-8);
    assert.deepEqual(tTestIndependent([1, 1], [1, 1]), { t: 0, df: 2, p: 1 });
    assert.equal(tTestIndependent([1, 1], [0, 0]).p, 0);
    // A new observation: t = (x₀ − mean) / (sd·√(1 + 1/n)); here mean 5, sd √2.5, n = 5.
    const o = tTestNewObservation(9, [3, 4, 5, 6, 7]);
    assert.ok(Math.abs(o.t - 4 / (Math.sqrt(2.5) * Math.sqrt(1.2))) < 1e-12);
    assert.equal(o.df, 4);
    assert.ok(Math.abs(o.p - studentTwoSidedP(o.t, 4)) < 1e-15);
  });

  describe('on models', () => {
    const cacheDir = tempDir('loupe-tcav-');
    let oneHead: HookedModel;
    let gpt2: HookedModel;
    before(async () => {
      oneHead = await HookedModel.open(path.join(FIXTURES, 'causal', 'one-head'), { cacheDir, threads: 1 });
      gpt2 = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir, threads: 1 });
    });
    after(async () => {
      await oneHead.dispose();
      await gpt2.dispose();
    });

    /** Sequences [BOS, first, fillers...] of the one-head model. */
    const oneHeadSeqs = (n: number, first: () => number, seed: number): number[][] => {
      const rand = seededRandom(seed);
      const filler = () => 3 + Math.floor((rand() + 0.5) * 60);
      return Array.from({ length: n }, () => [63, first(), ...Array.from({ length: 6 }, filler)]);
    };

    it('finds the concept a prediction rests on significant', async () => {
      const rand = seededRandom(8);
      const result = await runTcav(
        oneHead,
        {
          concept: oneHeadSeqs(20, () => 1, 1),
          random: oneHeadSeqs(400, () => 3 + Math.floor((rand() + 0.5) * 60), 2),
          // Inputs answering A and inputs answering B: a direction that only rescales the residual
          // stream moves logit(A) up on one kind and down on the other; the concept's moves it up on both.
          inputs: [...oneHeadSeqs(6, () => 1, 3), ...oneHeadSeqs(6, () => 2, 4)],
        },
        { hooks: ['blocks.1.hook_resid_pre'], target: 1, runs: 10, seed: 1 },
      );
      const [h] = result.hooks;
      assert.equal(h.meanScore, 1);
      assert.ok(h.significant, `p = ${h.pValue}`);
      assert.ok(h.cavAccuracy > 0.95);
      assert.equal(h.scores.length, 10);
      assert.equal(h.randomScores.length, 10);
      assert.ok(h.pairwise.p < 0.05, "the paper's pairwise test agrees here");
      assert.ok(Math.abs(h.cav.reduce((a, v) => a + v * v, 0) - 1) < 1e-5, 'the CAV is a unit vector');
    });

    it('finds a random concept insignificant', async () => {
      // Random token sequences of the `gpt2` fixture: the "concept" is drawn like the random sets.
      const seqs = (n: number, seed: number): number[][] => {
        const rand = seededRandom(seed);
        return Array.from({ length: n }, () => [
          296,
          ...Array.from({ length: 7 }, () => Math.floor((rand() + 0.5) * 290)),
        ]);
      };
      let significant = 0;
      const pValues: number[] = [];
      for (const seed of [1, 2, 3, 4, 5]) {
        const result = await runTcav(
          gpt2,
          { concept: seqs(12, 100 + seed), random: seqs(60, 200 + seed), inputs: seqs(16, 300 + seed) },
          { hooks: ['blocks.0.hook_resid_post'], target: 260, runs: 10, seed },
        );
        pValues.push(result.hooks[0].pValue);
        assert.equal(result.hooks[0].scores.length, 10);
        if (result.hooks[0].significant) significant++;
      }
      // At α = 0.05 a random concept is significant one time in twenty; allow one of five.
      assert.ok(significant <= 1, `p-values ${pValues.join(', ')}`);
    });

    it('refuses what it cannot test', async () => {
      const s = oneHeadSeqs(4, () => 1, 1);
      const sets = { concept: s, random: s, inputs: s };
      const o = { hooks: ['blocks.1.hook_resid_pre'], target: 1 };
      await assert.rejects(runTcav(oneHead, sets, { ...o, runs: 1 }), /at least 2 random runs/);
      await assert.rejects(
        runTcav(oneHead, { ...sets, random: s.slice(0, 2) }, o),
        /the random pool has 2 examples/,
      );
      await assert.rejects(runTcav(oneHead, { ...sets, inputs: [] }, o), /at least one input/);
      await assert.rejects(
        runTcav(oneHead, sets, { ...o, hooks: ['blocks.1.attn.hook_z'] }),
        /\[batch, pos, d\]/,
      );
      await assert.rejects(runTcav(oneHead, sets, { ...o, hooks: ['nope'] }), /unknown hook 'nope'/);
      await assert.rejects(runTcav(oneHead, sets, { ...o, target: 64 }), /outside the vocabulary/);
    });
  });
});
