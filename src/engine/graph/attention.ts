/**
 * Attention: one QKV matmul split into heads, rotary embeddings where the
 * model has them, causal masking, grouped-query attention, and the output
 * projection (per head only when hook_result is read or edited).
 */
import { GraphContext } from './context';

/** What every layer's attention reads from the positions of the run, made once per graph. */
export interface PositionTables {
  /** Additive causal mask [T, T]: 0 on and below the diagonal, -inf above. */
  readonly causal: string;
  /** Rotary cos/sin gathered at the run's positions, [1, T, 1, rotaryDims]; empty without rotary. */
  readonly rotCos: string;
  readonly rotSin: string;
}

export function positionTables(ctx: GraphContext, positions: string): PositionTables {
  const g = ctx.g;
  const rows = g.op('Unsqueeze', [positions, g.constI64([1])]);
  const cols = g.op('Unsqueeze', [positions, g.constI64([0])]);
  const causal = g.op('Where', [g.op('LessOrEqual', [cols, rows]), g.scalarF32(0), g.scalarF32(-Infinity)]);
  if (ctx.spec.positional !== 'rotary') return { causal, rotCos: '', rotSin: '' };
  const at = (t: string): string =>
    g.op('Unsqueeze', [g.op('Gather', [ctx.w(t), positions]), g.constI64([0, 2])]);
  return { causal, rotCos: at('rotary.cos'), rotSin: at('rotary.sin') };
}

/** Rotary embedding (rotate-half form) on the leading rotaryDims of each head; x is [B, T, n, d_head]. */
function rotary(ctx: GraphContext, x: string, tables: PositionTables): string {
  const { g, spec } = ctx;
  const rd = spec.rotaryDims;
  const half = rd / 2;
  const axis3 = g.constI64([3]);
  const slice = (t: string, from: number, to: number): string =>
    g.op('Slice', [t, g.constI64([from]), g.constI64([to]), axis3]);
  const xr = rd === spec.dHead ? x : slice(x, 0, rd);
  const rotated = g.op('Concat', [g.op('Neg', [slice(xr, half, rd)]), slice(xr, 0, half)], { axis: 3 });
  const turned = g.op('Add', [g.op('Mul', [xr, tables.rotCos]), g.op('Mul', [rotated, tables.rotSin])]);
  return rd === spec.dHead ? turned : g.op('Concat', [turned, slice(x, rd, spec.dHead)], { axis: 3 });
}

export function attention(ctx: GraphContext, x: string, l: number, tables: PositionTables): string {
  const { g, spec } = ctx;
  const H = spec.nHeads;
  const Hkv = spec.nKvHeads;
  const dh = spec.dHead;
  const p = `blocks.${l}.attn.`;
  const qkv = ctx.linear(x, `${p}W_QKV`, `${p}b_QKV`);
  const [q0, k0, v0] = g.node('Split', [qkv, g.constI64([H * dh, Hkv * dh, Hkv * dh])], { axis: -1 }, 3);
  let q = ctx.hook(`${p}hook_q`, g.op('Reshape', [q0, g.constI64([0, 0, H, dh])]));
  let k = ctx.hook(`${p}hook_k`, g.op('Reshape', [k0, g.constI64([0, 0, Hkv, dh])]));
  const v = ctx.hook(`${p}hook_v`, g.op('Reshape', [v0, g.constI64([0, 0, Hkv, dh])]));
  if (spec.positional === 'rotary') {
    q = ctx.hook(`${p}hook_rot_q`, rotary(ctx, q, tables));
    k = ctx.hook(`${p}hook_rot_k`, rotary(ctx, k, tables));
  }
  const qT = g.op('Transpose', [q], { perm: [0, 2, 1, 3] }); // [B, H, T, dh]
  let kT = g.op('Transpose', [k], { perm: [0, 2, 3, 1] }); // [B, Hkv, dh, T]
  let vT = g.op('Transpose', [v], { perm: [0, 2, 1, 3] }); // [B, Hkv, T, dh]
  if (Hkv !== H) {
    // Grouped-query attention: query head h reads key/value head floor(h / (H / Hkv)).
    const group = H / Hkv;
    const repeat = (t: string, shape: number[]): string =>
      g.op('Reshape', [
        g.op('Expand', [g.op('Unsqueeze', [t, g.constI64([2])]), g.constI64([1, 1, group, 1, 1])]),
        g.constI64(shape),
      ]);
    kT = repeat(kT, [0, H, dh, -1]);
    vT = repeat(vT, [0, H, -1, dh]);
  }
  const scaled = g.op('Mul', [g.op('MatMul', [qT, kT]), g.scalarF32(spec.attnScale[l])]);
  const scores = ctx.hook(`${p}hook_attn_scores`, g.op('Add', [scaled, tables.causal]));
  const pattern = ctx.hook(`${p}hook_pattern`, g.op('Softmax', [scores], { axis: -1 }));
  const z = ctx.hook(
    `${p}hook_z`,
    g.op('Transpose', [g.op('MatMul', [pattern, vT])], { perm: [0, 2, 1, 3] }),
  );
  if (!ctx.wanted(`${p}hook_result`))
    return ctx.linear(g.op('Reshape', [z, g.constI64([0, 0, H * dh])]), `${p}W_O`, `${p}b_O`);
  const perHeadWO = g.op('Reshape', [ctx.w(`${p}W_O`), g.constI64([H, dh, spec.dModel])]);
  const result = ctx.hook(`${p}hook_result`, g.op('Einsum', [z, perHeadWO], { equation: 'bthk,hkd->bthd' }));
  const out = g.op('ReduceSum', [result, g.constI64([2])], { keepdims: 0 });
  return ctx.hasW(`${p}b_O`) ? g.op('Add', [out, ctx.w(`${p}b_O`)]) : out;
}
