/**
 * Token (and learned position) embeddings: what enters the residual stream.
 * Gemma scales the token embedding by √d_model; hook_embed shows it scaled.
 */
import { GraphContext } from './context';

export function embedding(ctx: GraphContext, ids: string, positions: string): string {
  const g = ctx.g;
  let tokens = g.op('Gather', [ctx.w('W_E'), ids]);
  if (ctx.spec.embedScale !== null) tokens = g.op('Mul', [tokens, g.scalarF32(ctx.spec.embedScale)]);
  const resid = ctx.hook('hook_embed', tokens);
  if (ctx.spec.positional !== 'learned') return resid;
  let pos = g.op('Gather', [ctx.w('W_pos'), positions]); // [T, d]
  if (ctx.wanted('hook_pos_embed'))
    pos = ctx.hook('hook_pos_embed', g.op('Expand', [pos, g.op('Shape', [resid])]));
  return g.op('Add', [resid, pos]);
}
