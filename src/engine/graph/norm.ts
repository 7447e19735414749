/**
 * The model's normalisations (LayerNorm or RMSNorm) with TransformerLens's
 * hook_scale / hook_normalized: the block's ln1/ln2, Gemma's ln1_post/ln2_post,
 * the per-head q_norm/k_norm (over d_head) and ln_final.
 */
import { GraphContext } from './context';

/**
 * Normalises x over its last axis with the weights `${prefix}.w` (and `.b`
 * for LayerNorm). Without a hook_scale to show, LayerNorm is the fused op.
 * q/k norms are RMSNorms whatever the block's norm is.
 */
export function norm(ctx: GraphContext, x: string, prefix: string, kind = ctx.spec.norm): string {
  const { g, spec } = ctx;
  const scaleHook = `${prefix}.hook_scale`;
  const normHook = `${prefix}.hook_normalized`;
  const wt = ctx.w(`${prefix}.w`);
  const eps = g.scalarF32(spec.normEps);
  const two = g.scalarF32(2);
  if (kind === 'rmsnorm') {
    const meanSq = g.op('ReduceMean', [g.op('Pow', [x, two]), ctx.lastAxis()], { keepdims: 1 });
    const scale = ctx.hook(scaleHook, g.op('Sqrt', [g.op('Add', [meanSq, eps])]));
    const normalized = ctx.hook(normHook, g.op('Div', [x, scale]));
    return g.op('Mul', [normalized, wt]);
  }
  if (!ctx.wanted(scaleHook)) {
    const y = g.op('LayerNormalization', [x, wt, ctx.w(`${prefix}.b`)], {
      axis: -1,
      epsilon: { float: spec.normEps },
    });
    return ctx.hook(normHook, y);
  }
  const centred = g.op('Sub', [x, g.op('ReduceMean', [x, ctx.lastAxis()], { keepdims: 1 })]);
  const variance = g.op('ReduceMean', [g.op('Pow', [centred, two]), ctx.lastAxis()], { keepdims: 1 });
  const scale = ctx.hook(scaleHook, g.op('Sqrt', [g.op('Add', [variance, eps])]));
  const y = g.op('Add', [g.op('Mul', [g.op('Div', [centred, scale]), wt]), ctx.w(`${prefix}.b`)]);
  return ctx.hook(normHook, y);
}
