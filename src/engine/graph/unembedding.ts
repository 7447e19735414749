/** The unembedding: final-normed residual → logits [batch, pos, d_vocab], soft-capped where the model caps them. */
import { GraphContext } from './context';
import { softcap } from './softcap';

/** Logits [batch, pos, d_vocab], or [rows, d_vocab] at the flat rows `rows` of [batch · pos] when given. */
export function unembedding(
  ctx: GraphContext,
  final: string,
  ids: string,
  name: string,
  rows?: string,
): void {
  const { g, spec } = ctx;
  // Gemm with transB on [vocab, d] weights, so a tied model reads W_E itself, with no transposed copy.
  let flat = g.op('Reshape', [final, g.constI64([-1, spec.dModel])]);
  if (rows) flat = g.op('Gather', [flat, rows], { axis: 0 });
  const unembed = ctx.hasW('W_U_T') ? ctx.w('W_U_T') : ctx.w('W_E');
  const gemmInputs = ctx.hasW('b_U') ? [flat, unembed, ctx.w('b_U')] : [flat, unembed];
  const logits2d = softcap(g, g.op('Gemm', gemmInputs, { transB: 1 }), spec.finalSoftcap);
  if (rows) {
    g.op('Identity', [logits2d], {}, name);
  } else {
    const outShape = g.op('Concat', [g.op('Shape', [ids]), g.constI64([spec.dVocab])], { axis: 0 });
    g.op('Reshape', [logits2d, outShape], {}, name);
  }
  g.output(name);
}
