/** The MLP: plain (W_in, activation, W_out) or gated (activation(gate) · up, then W_out). */
import { GraphContext } from './context';

function activation(ctx: GraphContext, x: string): string {
  const g = ctx.g;
  switch (ctx.spec.act) {
    case 'gelu_tanh':
      return g.op('Gelu', [x], { approximate: 'tanh' });
    case 'gelu':
      return g.op('Gelu', [x]);
    case 'relu':
      return g.op('Relu', [x]);
    case 'silu':
      return g.op('Mul', [x, g.op('Sigmoid', [x])]);
  }
}

export function mlp(ctx: GraphContext, x: string, l: number): string {
  const p = `blocks.${l}.mlp.`;
  let post: string;
  if (ctx.spec.gatedMlp) {
    const gate = ctx.hook(`${p}hook_pre`, ctx.linear(x, `${p}W_gate`, `${p}b_gate`));
    const up = ctx.hook(`${p}hook_pre_linear`, ctx.linear(x, `${p}W_in`, `${p}b_in`));
    post = ctx.hook(`${p}hook_post`, ctx.g.op('Mul', [activation(ctx, gate), up]));
  } else {
    const pre = ctx.hook(`${p}hook_pre`, ctx.linear(x, `${p}W_in`, `${p}b_in`));
    post = ctx.hook(`${p}hook_post`, activation(ctx, pre));
  }
  return ctx.linear(post, `${p}W_out`, `${p}b_out`);
}
