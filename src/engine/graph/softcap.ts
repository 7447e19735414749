/** Soft-capping, Gemma 2's bound on attention scores and final logits. */
import { GraphBuilder } from './builder';

/** cap · tanh(x / cap): Gemma 2's soft-cap of attention scores and final logits. */
export function softcap(g: GraphBuilder, x: string, cap: number | null): string {
  if (cap === null) return x;
  return g.op('Mul', [g.op('Tanh', [g.op('Div', [x, g.scalarF32(cap)])]), g.scalarF32(cap)]);
}
