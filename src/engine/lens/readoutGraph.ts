/**
 * The graph every lens decodes through: rows of the residual stream →
 * (optionally a tuned-lens translator, h + h·Aᵀ + b) → the model's final
 * norm → the unembedding (soft-capped as the model caps its logits) →
 * log-probabilities, reduced inside onnxruntime to
 * what a lens shows: the k most likely tokens, one chosen token's
 * log-probability and rank, and the entropy. Only these small results leave
 * the graph, never the [rows × d_vocab] logits.
 */
import { ModelSpec } from '../families/spec';
import { ExternalTensor, GraphBuilder } from '../graph/builder';
import { softcap } from '../graph/softcap';

export const READOUT_INPUTS = {
  resid: 'resid',
  targets: 'targets',
  k: 'k',
  translatorWeight: 'translator_weight',
  translatorBias: 'translator_bias',
} as const;

export const READOUT_OUTPUTS = [
  'top_logprobs',
  'top_ids',
  'target_logprobs',
  'target_ranks',
  'entropy',
] as const;

/** The final norm: LayerNorm, or RMSNorm (x / rms(x) · w). */
export function finalNorm(
  g: GraphBuilder,
  spec: ModelSpec,
  x: string,
  w: (name: string) => string,
  hasW: (name: string) => boolean,
): string {
  if (spec.norm === 'layernorm') {
    return g.op('LayerNormalization', [x, w('ln_final.w'), w('ln_final.b')], {
      axis: -1,
      epsilon: { float: spec.normEps },
    });
  }
  const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x]), g.constI64([-1])], { keepdims: 1 });
  const normalized = g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSq, g.scalarF32(spec.normEps)])])]);
  const y = g.op('Mul', [normalized, w('ln_final.w')]);
  return hasW('ln_final.b') ? g.op('Add', [y, w('ln_final.b')]) : y;
}

/** Logits [rows, d_vocab] from final-norm outputs [rows, d_model], soft-capped where the model caps them. */
export function unembed(
  g: GraphBuilder,
  spec: ModelSpec,
  y: string,
  w: (name: string) => string,
  hasW: (name: string) => boolean,
): string {
  const unembedding = hasW('W_U_T') ? w('W_U_T') : w('W_E');
  const logits = g.op('Gemm', hasW('b_U') ? [y, unembedding, w('b_U')] : [y, unembedding], { transB: 1 });
  return softcap(g, logits, spec.finalSoftcap);
}

export function buildReadoutGraph(
  spec: ModelSpec,
  weights: ReadonlyMap<string, ExternalTensor>,
  weightsFile: string,
  translated: boolean,
): Uint8Array {
  const g = new GraphBuilder(weightsFile);
  const w = (name: string): string => {
    const ext = weights.get(name);
    if (!ext) throw new Error(`compiled weights lack '${name}'`);
    return g.weight(name, ext);
  };
  const hasW = (name: string): boolean => weights.has(name);
  const d = spec.dModel;
  let x = g.input(READOUT_INPUTS.resid, 'float', ['rows', d]);
  const targets = g.input(READOUT_INPUTS.targets, 'int64', ['rows']);
  const k = g.input(READOUT_INPUTS.k, 'int64', [1]);
  if (translated) {
    // tuned-lens's translators are nn.Linear: [d_out, d_in], added to the stream (h + A·h + b).
    const A = g.input(READOUT_INPUTS.translatorWeight, 'float', [d, d]);
    const b = g.input(READOUT_INPUTS.translatorBias, 'float', [d]);
    x = g.op('Add', [x, g.op('Gemm', [x, A, b], { transB: 1 })]);
  }
  const logits = unembed(g, spec, finalNorm(g, spec, x, w, hasW), w, hasW);
  const last = g.constI64([-1]);
  const logprobs = g.op('Sub', [logits, g.op('ReduceLogSumExp', [logits, last], { keepdims: 1 })]);
  const [topV, topI] = g.node('TopK', [logprobs, k], { axis: -1, largest: 1, sorted: 1 }, 2);
  g.op('Identity', [topV], {}, 'top_logprobs');
  g.op('Cast', [topI], { to: 1 }, 'top_ids');
  const target = g.op('GatherElements', [logprobs, g.op('Unsqueeze', [targets, last])], { axis: 1 }); // [rows, 1]
  g.op('Squeeze', [target, last], {}, 'target_logprobs');
  // Rank 1 is the most likely token: one more than the number of tokens strictly more likely.
  const above = g.op('ReduceSum', [g.op('Cast', [g.op('Greater', [logprobs, target])], { to: 1 }), last], {
    keepdims: 0,
  });
  g.op('Add', [above, g.scalarF32(1)], {}, 'target_ranks');
  const plogp = g.op('Mul', [g.op('Exp', [logprobs]), logprobs]);
  g.op('Neg', [g.op('ReduceSum', [plogp, last], { keepdims: 0 })], {}, 'entropy');
  for (const name of READOUT_OUTPUTS) g.output(name);
  return g.encode('lens_readout');
}
