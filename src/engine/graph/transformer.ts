/**
 * Builds the ONNX graph of a decoder-only Transformer from its ModelSpec, for
 * one *variant*: which hooks are graph outputs and at which hooks an edit
 * `x' = x · mul + add` is applied (mul and add are graph inputs, broadcast
 * against the hook's shape). A variant with no hooks and no edits is the plain
 * forward pass: fused LayerNormalization, one QKV matmul, no per-head output
 * projection; hooks that need extra work (hook_scale, hook_result) change the
 * graph only in variants that ask for them. So a run pays only for what it
 * fetches or edits.
 *
 * A variant without logits ends at its last hook.
 *
 * Inputs are right-padded: a text's real tokens sit at positions 0..n-1 and
 * causal attention keeps them from ever seeing the padding that follows.
 */
import { ModelSpec } from '../families/spec';
import { ExternalTensor, GraphBuilder } from './builder';

export interface GraphVariant {
  /** Hook names to return. */
  readonly outputs: ReadonlySet<string>;
  /** Hook names that take an edit. */
  readonly edits: ReadonlySet<string>;
  /**
   * Whether the graph computes logits. Without them it stops after the last
   * layer a hook or edit needs: reading one early layer then skips the later
   * blocks and the unembedding, often the largest matmul of a small model.
   */
  readonly logits: boolean;
}

export interface BuiltGraph {
  readonly bytes: Uint8Array;
  /** Hook name → graph output holding its value (hooks with equal values share one). */
  readonly hookOutputs: ReadonlyMap<string, string>;
}

export const INPUT_IDS = 'input_ids';
export const LOGITS = 'logits';

export function editInputNames(hook: string): { mul: string; add: string } {
  return { mul: `edit:${hook}:mul`, add: `edit:${hook}:add` };
}

export function buildTransformerGraph(
  spec: ModelSpec,
  weights: ReadonlyMap<string, ExternalTensor>,
  weightsFile: string,
  variant: GraphVariant,
): BuiltGraph {
  const g = new GraphBuilder(weightsFile);
  const hookOutputs = new Map<string, string>();
  const wanted = (name: string): boolean => variant.outputs.has(name) || variant.edits.has(name);

  const w = (name: string): string => {
    const ext = weights.get(name);
    if (!ext) throw new Error(`compiled weights lack '${name}'`);
    return g.weight(name, ext);
  };
  const hasW = (name: string): boolean => weights.has(name);

  /** Applies an edit and records an output at a hook point; returns the (possibly edited) value. */
  const hook = (name: string, value: string): string => {
    let v = value;
    if (variant.edits.has(name)) {
      const e = editInputNames(name);
      g.input(e.mul, 'float');
      g.input(e.add, 'float');
      v = g.op('Add', [g.op('Mul', [v, e.mul]), e.add]);
    }
    if (variant.outputs.has(name)) {
      hookOutputs.set(name, v);
      g.output(v);
    }
    return v;
  };

  const linear = (x: string, W: string, b?: string): string => {
    const y = g.op('MatMul', [x, w(W)]);
    return b && hasW(b) ? g.op('Add', [y, w(b)]) : y;
  };

  const ids = g.input(INPUT_IDS, 'int64', ['batch', 'pos']);
  const seqLen = g.op('Squeeze', [g.op('Shape', [ids], { start: 1, end: 2 }), g.constI64([0])]);
  const positions = g.op('Range', [g.constI64([0], []), seqLen, g.constI64([1], [])]);

  // Causal mask as an additive bias: 0 on and below the diagonal, -inf above.
  const rows = g.op('Unsqueeze', [positions, g.constI64([1])]);
  const cols = g.op('Unsqueeze', [positions, g.constI64([0])]);
  const causal = g.op('Where', [g.op('LessOrEqual', [cols, rows]), g.scalarF32(0), g.scalarF32(-Infinity)]);

  let rotCos = '';
  let rotSin = '';
  if (spec.positional === 'rotary') {
    const at = (t: string): string =>
      g.op('Unsqueeze', [g.op('Gather', [w(t), positions]), g.constI64([0, 2])]);
    rotCos = at('rotary.cos'); // [1, pos, 1, rotaryDims]
    rotSin = at('rotary.sin');
  }

  // Constants are made where used (the builder shares repeats), so no graph carries unused ones.
  const eps = (): string => g.scalarF32(spec.normEps);
  const two = (): string => g.scalarF32(2);
  const lastAxis = (): string => g.constI64([-1]);

  /** The block's normalisation, with TransformerLens's hook_scale / hook_normalized. */
  const norm = (x: string, prefix: string): string => {
    const scaleHook = `${prefix}.hook_scale`;
    const normHook = `${prefix}.hook_normalized`;
    const wt = w(`${prefix}.w`);
    if (spec.norm === 'rmsnorm') {
      const meanSq = g.op('ReduceMean', [g.op('Pow', [x, two()]), lastAxis()], { keepdims: 1 });
      const scale = hook(scaleHook, g.op('Sqrt', [g.op('Add', [meanSq, eps()])]));
      const normalized = hook(normHook, g.op('Div', [x, scale]));
      return g.op('Mul', [normalized, wt]);
    }
    if (!wanted(scaleHook)) {
      const y = g.op('LayerNormalization', [x, wt, w(`${prefix}.b`)], {
        axis: -1,
        epsilon: { float: spec.normEps },
      });
      return hook(normHook, y);
    }
    const centred = g.op('Sub', [x, g.op('ReduceMean', [x, lastAxis()], { keepdims: 1 })]);
    const variance = g.op('ReduceMean', [g.op('Pow', [centred, two()]), lastAxis()], { keepdims: 1 });
    const scale = hook(scaleHook, g.op('Sqrt', [g.op('Add', [variance, eps()])]));
    const y = g.op('Add', [g.op('Mul', [g.op('Div', [centred, scale]), wt]), w(`${prefix}.b`)]);
    return hook(normHook, y);
  };

  /** Rotary embedding (rotate-half form) on the leading rotaryDims of each head; x is [B, T, n, d_head]. */
  const rotary = (x: string): string => {
    const rd = spec.rotaryDims;
    const half = rd / 2;
    const axis3 = g.constI64([3]);
    const slice = (t: string, from: number, to: number): string =>
      g.op('Slice', [t, g.constI64([from]), g.constI64([to]), axis3]);
    const xr = rd === spec.dHead ? x : slice(x, 0, rd);
    const rotated = g.op('Concat', [g.op('Neg', [slice(xr, half, rd)]), slice(xr, 0, half)], { axis: 3 });
    const turned = g.op('Add', [g.op('Mul', [xr, rotCos]), g.op('Mul', [rotated, rotSin])]);
    return rd === spec.dHead ? turned : g.op('Concat', [turned, slice(x, rd, spec.dHead)], { axis: 3 });
  };

  const H = spec.nHeads;
  const Hkv = spec.nKvHeads;
  const dh = spec.dHead;

  const attention = (x: string, l: number): string => {
    const p = `blocks.${l}.attn.`;
    const qkv = linear(x, `${p}W_QKV`, `${p}b_QKV`);
    const [q0, k0, v0] = g.node('Split', [qkv, g.constI64([H * dh, Hkv * dh, Hkv * dh])], { axis: -1 }, 3);
    let q = hook(`${p}hook_q`, g.op('Reshape', [q0, g.constI64([0, 0, H, dh])]));
    let k = hook(`${p}hook_k`, g.op('Reshape', [k0, g.constI64([0, 0, Hkv, dh])]));
    const v = hook(`${p}hook_v`, g.op('Reshape', [v0, g.constI64([0, 0, Hkv, dh])]));
    if (spec.positional === 'rotary') {
      q = hook(`${p}hook_rot_q`, rotary(q));
      k = hook(`${p}hook_rot_k`, rotary(k));
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
    const scores = hook(`${p}hook_attn_scores`, g.op('Add', [scaled, causal]));
    const pattern = hook(`${p}hook_pattern`, g.op('Softmax', [scores], { axis: -1 }));
    const z = hook(`${p}hook_z`, g.op('Transpose', [g.op('MatMul', [pattern, vT])], { perm: [0, 2, 1, 3] }));
    let out: string;
    if (wanted(`${p}hook_result`)) {
      const perHeadWO = g.op('Reshape', [w(`${p}W_O`), g.constI64([H, dh, spec.dModel])]);
      const result = hook(`${p}hook_result`, g.op('Einsum', [z, perHeadWO], { equation: 'bthk,hkd->bthd' }));
      out = g.op('ReduceSum', [result, g.constI64([2])], { keepdims: 0 });
      if (hasW(`${p}b_O`)) out = g.op('Add', [out, w(`${p}b_O`)]);
    } else {
      out = linear(g.op('Reshape', [z, g.constI64([0, 0, H * dh])]), `${p}W_O`, `${p}b_O`);
    }
    return hook(`blocks.${l}.hook_attn_out`, out);
  };

  const activation = (x: string): string => {
    switch (spec.act) {
      case 'gelu_tanh':
        return g.op('Gelu', [x], { approximate: 'tanh' });
      case 'gelu':
        return g.op('Gelu', [x]);
      case 'relu':
        return g.op('Relu', [x]);
      case 'silu':
        return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    }
  };

  const mlp = (x: string, l: number): string => {
    const p = `blocks.${l}.mlp.`;
    let post: string;
    if (spec.gatedMlp) {
      const gate = hook(`${p}hook_pre`, linear(x, `${p}W_gate`, `${p}b_gate`));
      const up = hook(`${p}hook_pre_linear`, linear(x, `${p}W_in`, `${p}b_in`));
      post = hook(`${p}hook_post`, g.op('Mul', [activation(gate), up]));
    } else {
      const pre = hook(`${p}hook_pre`, linear(x, `${p}W_in`, `${p}b_in`));
      post = hook(`${p}hook_post`, activation(pre));
    }
    return hook(`blocks.${l}.hook_mlp_out`, linear(post, `${p}W_out`, `${p}b_out`));
  };

  // ---- forward ----
  let resid = hook('hook_embed', g.op('Gather', [w('W_E'), ids]));
  if (spec.positional === 'learned') {
    let pos = g.op('Gather', [w('W_pos'), positions]); // [T, d]
    if (wanted('hook_pos_embed')) pos = hook('hook_pos_embed', g.op('Expand', [pos, g.op('Shape', [resid])]));
    resid = g.op('Add', [resid, pos]);
  }
  const layers = variant.logits ? spec.nLayers : layersNeeded(spec, variant);
  for (let l = 0; l < Math.min(layers, spec.nLayers); l++) {
    const b = `blocks.${l}.`;
    resid = hook(`${b}hook_resid_pre`, resid);
    const attnOut = attention(norm(resid, `${b}ln1`), l);
    if (spec.parallelResidual) {
      const mlpOut = mlp(norm(resid, `${b}ln2`), l);
      resid = g.op('Add', [g.op('Add', [resid, attnOut]), mlpOut]);
    } else {
      const mid = hook(`${b}hook_resid_mid`, g.op('Add', [resid, attnOut]));
      resid = g.op('Add', [mid, mlp(norm(mid, `${b}ln2`), l)]);
    }
    resid = hook(`${b}hook_resid_post`, resid);
  }
  if (layers <= spec.nLayers && !variant.logits) return { bytes: g.encode('loupe'), hookOutputs };
  const final = norm(resid, 'ln_final');
  if (!variant.logits) return { bytes: g.encode('loupe'), hookOutputs };
  // Unembedding as Gemm with transB on [vocab, d] weights, so a tied model reads W_E itself, with no transposed copy.
  const flat = g.op('Reshape', [final, g.constI64([-1, spec.dModel])]);
  const unembed = hasW('W_U_T') ? w('W_U_T') : w('W_E');
  const gemmInputs = hasW('b_U') ? [flat, unembed, w('b_U')] : [flat, unembed];
  const logits2d = g.op('Gemm', gemmInputs, { transB: 1 });
  const outShape = g.op('Concat', [g.op('Shape', [ids]), g.constI64([spec.dVocab])], { axis: 0 });
  g.op('Reshape', [logits2d, outShape], {}, LOGITS);
  g.output(LOGITS);

  return { bytes: g.encode('loupe'), hookOutputs };
}

/**
 * How many blocks a variant without logits must run: up to the deepest
 * `blocks.L.` hook it reads or edits, none for the embeddings alone, and one
 * past the last block (the final norm too) for `ln_final` hooks.
 */
function layersNeeded(spec: ModelSpec, variant: GraphVariant): number {
  let n = 0;
  for (const name of [...variant.outputs, ...variant.edits]) {
    const m = /^blocks\.(\d+)\./.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
    else if (name.startsWith('ln_final.')) n = spec.nLayers + 1;
  }
  return n;
}
