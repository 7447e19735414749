/**
 * Attention: one QKV matmul split into heads, per-head q/k RMSNorm and rotary
 * embeddings where the model has them, scores soft-capped where it caps them,
 * causal (and sliding-window) masking, grouped-query attention, and the output
 * projection (per head only when hook_result is read or edited).
 */
import { invFreqWeight, rotaryTables } from '../families/rope';
import { GraphContext } from './context';
import { norm } from './norm';
import { softcap } from './softcap';

/**
 * What layers' attention reads from the run's positions: masks and rotary
 * angles, made on first use once per distinct window or rotary table, so a
 * graph carries only those of the layers it runs.
 */
export class PositionTables {
  private readonly rows: string;
  private readonly cols: string;
  private readonly masks = new Map<number | null, string>();
  private readonly angles = new Map<number, { cos: string; sin: string }>();
  private readonly tableOfLayer: readonly number[];

  constructor(
    private readonly ctx: GraphContext,
    private readonly positions: string,
  ) {
    const g = ctx.g;
    this.rows = g.op('Unsqueeze', [positions, g.constI64([1])]);
    this.cols = g.op('Unsqueeze', [positions, g.constI64([0])]);
    this.tableOfLayer = ctx.spec.positional === 'rotary' ? rotaryTables(ctx.spec).ofLayer : [];
  }

  /** Layer l's additive mask [T, T]: 0 where query i sees key j (j <= i, and i - W < j in a window of W), -inf elsewhere. */
  mask(l: number): string {
    const window = this.ctx.spec.slidingWindow[l];
    const known = this.masks.get(window);
    if (known) return known;
    const g = this.ctx.g;
    let keep = g.op('LessOrEqual', [this.cols, this.rows]);
    if (window !== null) {
      const start = g.op('Sub', [this.rows, g.constI64([window], [])]);
      keep = g.op('And', [keep, g.op('Greater', [this.cols, start])]);
    }
    const m = g.op('Where', [keep, g.scalarF32(0), g.scalarF32(-Infinity)]);
    this.masks.set(window, m);
    return m;
  }

  /** Layer l's rotary cos and sin, [1, T, 1, rotaryDims]. */
  rotary(l: number): { cos: string; sin: string } {
    const t = this.tableOfLayer[l];
    const known = this.angles.get(t);
    if (known) return known;
    const g = this.ctx.g;
    // As Hugging Face computes them: angle = position · inv_freq in f32, the half-dimensions repeated.
    const pos = g.op('Unsqueeze', [g.op('Cast', [this.positions], { to: 1 }), g.constI64([1])]);
    const freqs = g.op('Mul', [pos, this.ctx.w(invFreqWeight(t))]);
    const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
    const at = (op: string): string => g.op('Unsqueeze', [g.op(op, [emb]), g.constI64([0, 2])]);
    const a = { cos: at('Cos'), sin: at('Sin') };
    this.angles.set(t, a);
    return a;
  }
}

/** Rotary embedding (rotate-half form) on the leading rotaryDims of each head; x is [B, T, n, d_head]. */
function rotary(ctx: GraphContext, x: string, angles: { cos: string; sin: string }): string {
  const { g, spec } = ctx;
  const rd = spec.rotaryDims;
  const half = rd / 2;
  const axis3 = g.constI64([3]);
  const slice = (t: string, from: number, to: number): string =>
    g.op('Slice', [t, g.constI64([from]), g.constI64([to]), axis3]);
  const xr = rd === spec.dHead ? x : slice(x, 0, rd);
  const rotated = g.op('Concat', [g.op('Neg', [slice(xr, half, rd)]), slice(xr, 0, half)], { axis: 3 });
  const turned = g.op('Add', [g.op('Mul', [xr, angles.cos]), g.op('Mul', [rotated, angles.sin])]);
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
  if (spec.qkNorm) {
    q = norm(ctx, q, `${p}q_norm`, 'rmsnorm');
    k = norm(ctx, k, `${p}k_norm`, 'rmsnorm');
  }
  if (spec.positional === 'rotary') {
    const angles = tables.rotary(l);
    q = ctx.hook(`${p}hook_rot_q`, rotary(ctx, q, angles));
    k = ctx.hook(`${p}hook_rot_k`, rotary(ctx, k, angles));
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
  const capped = softcap(g, scaled, spec.attnSoftcap);
  const scores = ctx.hook(`${p}hook_attn_scores`, g.op('Add', [capped, tables.mask(l)]));
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
