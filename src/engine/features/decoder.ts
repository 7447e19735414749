/**
 * What the decoder directions say, computed in onnxruntime in chunks of
 * features (the products are d_sae × d_vocab and d_sae × d_sae: far too much
 * for JavaScript loops on a real SAE):
 *
 * - Logit effects: each feature's decoder direction read through the final
 *   norm's weight and the unembedding, with the 10 most promoted and the 10
 *   most suppressed tokens (MatMul + TopK in one graph).
 * - Cosine neighbours: the features whose decoder directions point most
 *   nearly the same way (normalised rows, MatMul + TopK).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError } from '../errors';
import { ExternalTensor, GraphBuilder } from '../graph/builder';
import { HookedModel } from '../model';
import { GraphSession } from '../runtime';
import { Sae } from '../sae/sae';
import { WEIGHTS_FILE } from '../compile';
import { writeFileAtomic } from '../safeWrite';

/**
 * Each feature's decoder row as it acts on the model, [d_sae × d_in]: W_dec
 * with what the SAE's decoder folds into it (old SAELens's finetuning
 * `scaling_factor`, TopK's division by decoder norms) and divided by the
 * 'expected_average_only_in' factor, so a row is the change at the hook per
 * unit of feature activation.
 */
export function decoderRows(sae: Sae): Float32Array {
  const { dIn, dSae, architecture, rescaleActsByDecoderNorm, finetuningScalingFactor } = sae.config;
  const w = sae.params.get('W_dec')!.data;
  const out = Float32Array.from(w);
  const scale = sae.params.get('scaling_factor')?.data;
  const factor = sae.normScalingFactor ?? 1;
  for (let i = 0; i < dSae; i++) {
    const row = out.subarray(i * dIn, (i + 1) * dIn);
    let s = 1 / factor;
    if (finetuningScalingFactor && scale) s *= scale[i];
    if (architecture === 'topk' && rescaleActsByDecoderNorm) {
      let n = 0;
      for (let j = 0; j < dIn; j++) n += w[i * dIn + j] * w[i * dIn + j];
      s /= Math.sqrt(n) || 1;
    }
    if (s !== 1) for (let j = 0; j < dIn; j++) row[j] *= s;
  }
  return out;
}

/** Rows scaled to unit length (zero rows stay zero). */
export function normalizeRows(rows: Float32Array, width: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let r = 0; r < rows.length / width; r++) {
    let n = 0;
    for (let j = 0; j < width; j++) n += rows[r * width + j] ** 2;
    const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
    for (let j = 0; j < width; j++) out[r * width + j] = rows[r * width + j] * inv;
  }
  return out;
}

export interface TopKRows {
  readonly k: number;
  /** [rows × k] */
  readonly indices: Int32Array;
  readonly values: Float32Array;
}

export interface LogitEffectsResult {
  readonly promoted: TopKRows;
  readonly suppressed: TopKRows;
}

interface ChunkOptions {
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * The weight that carries the SAE's d_in space into the residual stream, or
 * null when the hook's activations are residual-stream vectors already;
 * undefined when there is no such linear map (the effect on logits is then
 * not a property of the direction alone).
 */
export function residualMap(sae: Sae): string | null | undefined {
  const hook = sae.config.hookName;
  if (
    /^(hook_embed|hook_pos_embed|blocks\.\d+\.(hook_resid_(pre|mid|post)|hook_attn_out|hook_mlp_out))$/.test(
      hook,
    )
  )
    return null;
  const mlp = /^blocks\.(\d+)\.mlp\.hook_post$/.exec(hook);
  if (mlp) return `blocks.${mlp[1]}.mlp.W_out`;
  const z = /^blocks\.(\d+)\.attn\.hook_z$/.exec(hook);
  if (z && sae.config.reshapeActivations === 'hook_z') return `blocks.${z[1]}.attn.W_O`;
  return undefined;
}

/**
 * Logit effects: for each feature, (d ⊙ w_ln) · W_U with d the decoder row in
 * the residual stream (through W_out or W_O for MLP-neuron and hook_z SAEs).
 *
 * Why the final norm's weight is applied and the rest ignored: a direction d
 * added to the residual stream reaches the logits through the final norm,
 * LN(x) = (x − mean(x)) / σ(x) · w + b, then W_U. The elementwise weight w
 * rescales each coordinate of d before W_U and changes which tokens d
 * favours, so it belongs in the product. 1/σ(x) is one positive scale per
 * token position, set by the whole residual stream, not by the feature: it
 * changes the size of every token's logit alike, never their order, and
 * has no value without a context, so it is left out (values are per unit
 * activation at σ = 1). The bias b (and W_U's own bias) adds the same vector
 * whatever the feature, so it cancels from any feature's effect. For
 * LayerNorm (not RMSNorm) models the mean over d_model is subtracted first:
 * LayerNorm removes that component of d before it can reach the logits.
 * This is the direct path only; layers after the SAE's hook can change what
 * the feature does (as in SAE-Vis's and Neuronpedia's logit tables). The
 * effects are linear, so of the logits before a final soft-cap (Gemma 2);
 * the cap is increasing, so it would not change which tokens come first.
 */
export async function logitEffects(
  model: HookedModel,
  sae: Sae,
  k: number,
  options: ChunkOptions = {},
): Promise<LogitEffectsResult | string> {
  const map = residualMap(sae);
  if (map === undefined) {
    return `logit effects need a hook in the residual stream (or mlp.hook_post, or hook_z); ${sae.config.hookName} is not`;
  }
  const weights = model.compiled.weights;
  const unembed = weights.has('W_U_T') ? 'W_U_T' : 'W_E';
  const V = model.spec.dVocab;
  const kk = Math.min(k, V);
  const dIn = sae.config.dIn;
  const g = new GraphBuilder(WEIGHTS_FILE);
  const w = (name: string): string => g.weight(name, weights.get(name) as ExternalTensor);
  const input = g.input('directions', 'float', ['n', dIn]);
  let r = map === null ? input : g.op('MatMul', [input, w(map)]);
  if (model.spec.norm === 'layernorm') {
    r = g.op('Sub', [r, g.op('ReduceMean', [r, g.constI64([-1])], { keepdims: 1 })]);
  }
  r = g.op('Mul', [r, w('ln_final.w')]);
  const logits = g.op('Gemm', [r, w(unembed)], { transB: 1 });
  const K = g.constI64([kk]);
  const [upV, upI] = g.node('TopK', [logits, K], { axis: -1, largest: 1, sorted: 1 }, 2);
  const [downV, downI] = g.node('TopK', [logits, K], { axis: -1, largest: 0, sorted: 1 }, 2);
  g.output(g.op('Identity', [upV], {}, 'up_values'));
  g.output(g.op('Cast', [upI], { to: 1 }, 'up_ids'));
  g.output(g.op('Identity', [downV], {}, 'down_values'));
  g.output(g.op('Cast', [downI], { to: 1 }, 'down_ids'));
  const file = path.join(model.compiled.dir, `graph-features-logits-${map ?? 'resid'}-${kk}.onnx`);
  const session = await sessionFor(file, g.encode('feature_logits'), options.threads, model.prepack);
  const rows = decoderRows(sae);
  const dSae = sae.config.dSae;
  const out: LogitEffectsResult = {
    promoted: { k: kk, indices: new Int32Array(dSae * kk), values: new Float32Array(dSae * kk) },
    suppressed: { k: kk, indices: new Int32Array(dSae * kk), values: new Float32Array(dSae * kk) },
  };
  // About 32 MB of logits per call.
  const chunk = Math.max(1, Math.min(dSae, Math.floor((1 << 23) / V)));
  try {
    for (let r0 = 0; r0 < dSae; r0 += chunk) {
      if (options.signal?.aborted) throw new CancelledError();
      const n = Math.min(chunk, dSae - r0);
      const res = await session.run(
        { directions: { type: 'float32', dims: [n, dIn], data: rows.subarray(r0 * dIn, (r0 + n) * dIn) } },
        ['up_values', 'up_ids', 'down_values', 'down_ids'],
      );
      out.promoted.values.set(res.get('up_values')!.data, r0 * kk);
      out.promoted.indices.set(res.get('up_ids')!.data, r0 * kk);
      out.suppressed.values.set(res.get('down_values')!.data, r0 * kk);
      out.suppressed.indices.set(res.get('down_ids')!.data, r0 * kk);
      options.onProgress?.(r0 + n, dSae);
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * For each row of `a` ([n × d], unit rows) the k rows of `b` ([m × d], unit
 * rows) with the largest dot product, i.e. cosine; with `self` the row of b
 * at a's own index (a ⊆ b by `aIndex`) is skipped.
 */
export async function topCosine(
  a: Float32Array,
  b: Float32Array,
  d: number,
  k: number,
  graphDir: string,
  options: ChunkOptions & { readonly aIndex?: Int32Array | null } = {},
): Promise<TopKRows> {
  const n = a.length / d;
  const m = b.length / d;
  const skipSelf = options.aIndex !== undefined && options.aIndex !== null;
  const want = Math.min(m, k + (skipSelf ? 1 : 0));
  const kOut = Math.min(k, want - (skipSelf ? 1 : 0));
  const indices = new Int32Array(n * Math.max(0, kOut)).fill(-1);
  const values = new Float32Array(n * Math.max(0, kOut));
  if (kOut <= 0 || n === 0) return { k: Math.max(0, kOut), indices, values };
  const g = new GraphBuilder(WEIGHTS_FILE);
  const x = g.input('a', 'float', ['n', d]);
  const y = g.input('b', 'float', ['m', d]);
  const sims = g.op('Gemm', [x, y], { transB: 1 });
  const [v, i] = g.node('TopK', [sims, g.constI64([want])], { axis: -1, largest: 1, sorted: 1 }, 2);
  g.output(g.op('Identity', [v], {}, 'values'));
  g.output(g.op('Cast', [i], { to: 1 }, 'indices'));
  fs.mkdirSync(graphDir, { recursive: true });
  const session = await sessionFor(
    path.join(graphDir, `graph-features-cosine-${want}.onnx`),
    g.encode('cosine_topk'),
    options.threads,
    true, // inputs only: no model weights to keep mapped
  );
  const chunk = Math.max(1, Math.min(n, Math.floor((1 << 23) / Math.max(1, m))));
  try {
    for (let r0 = 0; r0 < n; r0 += chunk) {
      if (options.signal?.aborted) throw new CancelledError();
      const rows = Math.min(chunk, n - r0);
      const res = await session.run(
        {
          a: { type: 'float32', dims: [rows, d], data: a.subarray(r0 * d, (r0 + rows) * d) },
          b: { type: 'float32', dims: [m, d], data: b },
        },
        ['values', 'indices'],
      );
      const vs = res.get('values')!.data;
      const is = res.get('indices')!.data;
      for (let r = 0; r < rows; r++) {
        const self = skipSelf ? options.aIndex![r0 + r] : -1;
        let o = 0;
        for (let j = 0; j < want && o < kOut; j++) {
          const idx = is[r * want + j];
          if (idx === self) continue;
          indices[(r0 + r) * kOut + o] = idx;
          values[(r0 + r) * kOut + o] = vs[r * want + j];
          o++;
        }
      }
      options.onProgress?.(r0 + rows, n);
    }
  } finally {
    await session.release();
  }
  return { k: kOut, indices, values };
}

async function sessionFor(
  file: string,
  bytes: Uint8Array,
  threads: number | undefined,
  prepack: boolean,
): Promise<GraphSession> {
  // Graphs are kilobytes: always rewrite, so a graph never outlives the code that built it.
  writeFileAtomic(file, bytes);
  return GraphSession.create(file, { threads: threads ?? 0, prepack });
}
