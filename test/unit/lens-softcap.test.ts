/**
 * Views that read the final norm and the unembedding themselves, on a model
 * that soft-caps its logits (the gemma2 fixture: final_logit_softcapping 30):
 * the lens readout's probabilities are softmax of the model's own (capped)
 * logits, patching's logit difference is that of the capped logits, and
 * direct logit attribution stays linear in the pre-cap logit x, with the
 * capped one 30 · tanh(x / 30) beside it (Gemma 2's definition); TextSpan's
 * head moments read each head through the norm after attention (ln1_post:
 * y = x / scale · w) as well as the final norm.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { logitReadout, readLogit } from '../../src/engine/causal/predictions';
import { directLogitAttribution } from '../../src/engine/lens/directLogitAttribution';
import { collectHeadMoments } from '../../src/engine/lens/headMoments';
import { LensReadout } from '../../src/engine/lens/readout';
import { HookedModel } from '../../src/engine/model';
import { FIXTURES, tempDir } from './helpers';

const CAP = 30;

describe('views on a soft-capped model (gemma2)', () => {
  let model: HookedModel;
  const ids = [2, 17, 301, 45, 9, 88, 120, 7, 64, 250];
  const last = ids.length - 1;

  before(async () => {
    model = await HookedModel.open(path.join(FIXTURES, 'gemma2'), { cacheDir: tempDir(), threads: 1 });
    assert.equal(model.spec.finalSoftcap, CAP);
  });
  after(async () => model?.dispose());

  const logitsAt = async (p: number): Promise<Float32Array> => {
    const [run] = await model.run([ids]);
    const V = model.spec.dVocab;
    return run.logits.data.slice(p * V, (p + 1) * V);
  };

  it('reads the lens out as softmax of the capped logits', async () => {
    const L = model.spec.nLayers;
    const hook = `blocks.${L - 1}.hook_resid_post`;
    const [run] = await model.run([ids], { hooks: [hook] });
    const d = model.spec.dModel;
    const readout = new LensReadout(model);
    try {
      const resid = run.hooks.get(hook)!.data.slice(last * d, (last + 1) * d);
      const [row] = await readout.read(resid, [ids[3]], 3);
      const logits = await logitsAt(last);
      let max = -Infinity;
      for (const v of logits) max = Math.max(max, v);
      let sum = 0;
      for (const v of logits) sum += Math.exp(v - max);
      const prob = (id: number): number => Math.exp(logits[id] - max) / sum;
      for (const t of row.top) assert.ok(Math.abs(t.prob - prob(t.id)) < 1e-5, `token ${t.id}`);
      assert.ok(Math.abs(row.target!.prob - prob(ids[3])) < 1e-5);
    } finally {
      await readout.dispose();
    }
  });

  it('takes the logit difference of the capped logits when patching', async () => {
    const [run] = await model.run([ids], { hooks: ['ln_final.hook_normalized'] });
    const logits = await logitsAt(last);
    const [a, b] = [5, 40];
    const got = readLogit(run.hooks.get('ln_final.hook_normalized')!, 0, last, logitReadout(model, a, b));
    assert.ok(Math.abs(got - (logits[a] - logits[b])) < 1e-4, `${got} vs ${logits[a] - logits[b]}`);
  });

  it('attributes the pre-cap logit linearly and gives the capped one beside it', async () => {
    const logits = await logitsAt(last);
    const a = await directLogitAttribution(model, ids, { position: last, target: 5, versus: null });
    assert.ok(Math.abs(a.total - a.logit) < 1e-4, `parts ${a.total} vs logit ${a.logit}`);
    assert.ok(a.cappedLogit !== null);
    assert.ok(Math.abs(a.cappedLogit - CAP * Math.tanh(a.logit / CAP)) < 1e-5);
    assert.ok(Math.abs(a.cappedLogit - logits[5]) < 1e-4, `${a.cappedLogit} vs the model's ${logits[5]}`);
    // The default target is the model's most likely next token.
    const top = await directLogitAttribution(model, ids, { position: last });
    assert.equal(top.target.id, logits.indexOf(Math.max(...logits)));
  });

  it("reads each head's moments through ln1_post's scale as well as the final norm's", async () => {
    const { nHeads: H, dHead: dh } = model.spec;
    const l = 1;
    const moments = await collectHeadMoments(model, [ids]);
    const hooks = [`blocks.${l}.attn.hook_z`, `blocks.${l}.ln1_post.hook_scale`, 'ln_final.hook_scale'];
    const [run] = await model.run([ids], { hooks });
    const z = run.hooks.get(hooks[0])!.data;
    const post = run.hooks.get(hooks[1])!.data;
    const final = run.hooks.get(hooks[2])!.data;
    // Mean over positions after BOS of z / (post scale · final scale), per head.
    for (let h = 0; h < H; h++) {
      for (let k = 0; k < dh; k++) {
        let sum = 0;
        for (let t = 1; t < ids.length; t++) sum += z[(t * H + h) * dh + k] / (post[t] * final[t]);
        const want = sum / (ids.length - 1);
        const got = moments.layers[l].mean[h * dh + k];
        assert.ok(
          Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)),
          `head ${h} dim ${k}: ${got} vs ${want}`,
        );
      }
    }
  });
});
