/**
 * One SAE training step as an ONNX graph: forward, the hand-derived backward
 * pass, global-norm gradient clipping and an Adam update, all inside
 * onnxruntime so every matrix product runs on its optimised GEMM. Parameters
 * and Adam moments go in as inputs and come out updated (the trainer
 * alternates two sets of buffers, so no output overwrites an input still being
 * read). Transposed products use Gemm's trans flags instead of materialising
 * transposes.
 *
 * Architectures:
 *  - relu: f = relu(x W_enc + b_enc), x̂ = f W_dec + b_dec,
 *    loss = mean_b ‖x − x̂‖² + λ · mean_b Σ_i f_i ‖W_dec,i‖ (Anthropic, April 2024).
 *  - topk: f = relu(topk_k(x W_enc + b_enc)), loss = mean_b ‖x − x̂‖² +
 *    α · mean_b ‖e − ê‖², where e = x − x̂ (held fixed) and ê decodes the
 *    k_aux largest pre-activations of the dead latents (Gao et al. 2024);
 *    decoder rows are renormalised to unit length after each step.
 * Inputs x are already scaled so that E‖x‖ = √d_in.
 */
import { GraphBuilder } from '../graph/builder';

export type TrainArchitecture = 'relu' | 'topk';

export interface TrainGraphSpec {
  readonly architecture: TrainArchitecture;
  readonly dIn: number;
  readonly dSae: number;
  /** TopK: active latents per token. */
  readonly k: number;
  /** TopK: latents in the auxiliary loss. */
  readonly kAux: number;
  readonly auxCoefficient: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly adamEps: number;
  readonly clipNorm: number;
}

export const PARAMS = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
export type ParamName = (typeof PARAMS)[number];

/** Graph input/output names for a parameter and its Adam moments. */
export const io = {
  param: (p: ParamName) => p,
  m: (p: ParamName) => `${p}.m`,
  v: (p: ParamName) => `${p}.v`,
  out: (name: string) => `${name}.next`,
};

/** Scalar inputs fed each step. */
export const STEP_INPUTS = ['x', 'lr', 'l1', 'bc1', 'bc2', 'dead'] as const;
/** Per-step metrics returned. */
export const METRICS = ['loss', 'mse', 'sparsity', 'l0', 'fired', 'grad_norm', 'aux'] as const;

export function buildTrainGraph(spec: TrainGraphSpec): Uint8Array {
  const g = new GraphBuilder('unused.bin');
  const d = spec.dIn;
  const s = spec.dSae;
  const f32 = (v: number): string => g.scalarF32(v);
  const axes = (...a: number[]): string => g.constI64(a);

  const x = g.input('x', 'float', ['batch', d]);
  const lr = g.input('lr', 'float', []);
  const l1 = g.input('l1', 'float', []);
  const bc1 = g.input('bc1', 'float', []); // 1 / (1 - beta1^t)
  const bc2 = g.input('bc2', 'float', []); // 1 / (1 - beta2^t)
  const dead = g.input('dead', 'float', [s]); // 1 for latents that have not fired lately
  const P: Record<ParamName, string> = {
    W_enc: g.input('W_enc', 'float', [d, s]),
    b_enc: g.input('b_enc', 'float', [s]),
    W_dec: g.input('W_dec', 'float', [s, d]),
    b_dec: g.input('b_dec', 'float', [d]),
  };
  const M = {} as Record<ParamName, string>;
  const V = {} as Record<ParamName, string>;
  for (const p of PARAMS) {
    const dims = p === 'W_enc' ? [d, s] : p === 'W_dec' ? [s, d] : p === 'b_enc' ? [s] : [d];
    M[p] = g.input(io.m(p), 'float', dims);
    V[p] = g.input(io.v(p), 'float', dims);
  }

  const batch = g.op('Cast', [g.op('Shape', [x], { start: 0, end: 1 })], { to: 1 }); // [1] float
  const invB = g.op('Div', [f32(1), g.op('Squeeze', [batch, axes(0)])]);

  // ---- forward ----
  const pre = g.op('Gemm', [x, P.W_enc, P.b_enc]); // [B, s]
  let f: string;
  let activeMask: string; // where gradients flow back into pre
  if (spec.architecture === 'relu') {
    f = g.op('Relu', [pre]);
    activeMask = g.op('Cast', [g.op('Greater', [pre, f32(0)])], { to: 1 });
  } else {
    const [, idx] = g.node('TopK', [pre, g.constI64([spec.k])], { axis: -1 }, 2);
    const topMask = g.op(
      'ScatterElements',
      [g.op('Mul', [pre, f32(0)]), idx, g.op('Expand', [f32(1), g.op('Shape', [idx])])],
      {
        axis: 1,
      },
    );
    activeMask = g.op('Mul', [topMask, g.op('Cast', [g.op('Greater', [pre, f32(0)])], { to: 1 })]);
    f = g.op('Mul', [pre, activeMask]);
  }
  const xHat = g.op('Gemm', [f, P.W_dec, P.b_dec]); // [B, d]
  const err = g.op('Sub', [xHat, x]);
  const mse = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [err, err])], { keepdims: 0 }), invB]);
  const decNorms = g.op('Sqrt', [
    g.op('ReduceSum', [g.op('Mul', [P.W_dec, P.W_dec]), axes(1)], { keepdims: 0 }),
  ]); // [s]
  const fSum = g.op('ReduceSum', [f, axes(0)], { keepdims: 0 }); // [s]
  const firedCount = g.op('ReduceSum', [g.op('Cast', [g.op('Greater', [f, f32(0)])], { to: 1 }), axes(0)], {
    keepdims: 0,
  });
  const l0 = g.op('Mul', [g.op('ReduceSum', [firedCount], { keepdims: 0 }), invB]);

  // ---- backward ----
  const gXHat = g.op('Mul', [err, g.op('Mul', [f32(2), invB])]); // [B, d]
  let gDecRows: string; // [B, d] rows decoded by W_dec, paired with latents fDec [B', s]
  let fDec: string;
  let sparsity: string;
  let aux: string;
  let gF: string;
  if (spec.architecture === 'relu') {
    sparsity = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [fSum, decNorms])], { keepdims: 0 }), invB]);
    gDecRows = gXHat;
    fDec = f;
    // d/df of λ·mean_b Σ f_i‖W_dec,i‖ is λ‖W_dec,i‖/B.
    gF = g.op('Add', [
      g.op('Gemm', [gXHat, P.W_dec], { transB: 1 }),
      g.op('Mul', [decNorms, g.op('Mul', [l1, invB])]),
    ]);
    aux = f32(0);
  } else {
    sparsity = f32(0);
    // Auxiliary loss on dead latents: decode their k_aux largest pre-activations into the residual.
    const deadPre = g.op('Add', [
      g.op('Mul', [pre, dead]),
      g.op('Mul', [g.op('Sub', [f32(1), dead]), f32(-1e9)]),
    ]);
    const [, auxIdx] = g.node('TopK', [deadPre, g.constI64([spec.kAux])], { axis: -1 }, 2);
    const auxTop = g.op(
      'ScatterElements',
      [g.op('Mul', [pre, f32(0)]), auxIdx, g.op('Expand', [f32(1), g.op('Shape', [auxIdx])])],
      {
        axis: 1,
      },
    );
    const auxMask = g.op('Mul', [
      g.op('Mul', [auxTop, dead]),
      g.op('Cast', [g.op('Greater', [pre, f32(0)])], { to: 1 }),
    ]);
    const fAux = g.op('Mul', [pre, auxMask]);
    const eHat = g.op('Gemm', [fAux, P.W_dec]); // [B, d], no bias
    const residual = g.op('Sub', [x, xHat]);
    const auxErr = g.op('Sub', [eHat, residual]);
    const anyDead = g.op('Cast', [g.op('Greater', [g.op('ReduceSum', [dead], { keepdims: 0 }), f32(0)])], {
      to: 1,
    });
    const alpha = g.op('Mul', [f32(spec.auxCoefficient), anyDead]);
    aux = g.op('Mul', [
      g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [auxErr, auxErr])], { keepdims: 0 }), invB]),
      alpha,
    ]);
    const gEHat = g.op('Mul', [auxErr, g.op('Mul', [g.op('Mul', [f32(2), invB]), alpha])]);
    // One GEMM for both decodings: stack the main and auxiliary rows.
    gDecRows = g.op('Concat', [gXHat, gEHat], { axis: 0 }); // [2B, d]
    fDec = g.op('Concat', [f, fAux], { axis: 0 }); // [2B, s]
    const gBoth = g.op('Gemm', [gDecRows, P.W_dec], { transB: 1 }); // [2B, s]
    const [gMain, gAux] = g.node(
      'Split',
      [
        gBoth,
        g.op('Concat', [g.op('Shape', [x], { start: 0, end: 1 }), g.op('Shape', [x], { start: 0, end: 1 })], {
          axis: 0,
        }),
      ],
      { axis: 0 },
      2,
    );
    // Each gradient flows back only through the latents it decoded.
    gF = g.op('Add', [g.op('Mul', [gMain, activeMask]), g.op('Mul', [gAux, auxMask])]);
  }
  const gPre = spec.architecture === 'relu' ? g.op('Mul', [gF, activeMask]) : gF;
  const grads: Record<ParamName, string> = {
    W_enc: g.op('Gemm', [x, gPre], { transA: 1 }), // [d, s]
    b_enc: g.op('ReduceSum', [gPre, axes(0)], { keepdims: 0 }),
    W_dec: g.op('Gemm', [fDec, gDecRows], { transA: 1 }), // [s, d]
    b_dec: g.op('ReduceSum', [gXHat, axes(0)], { keepdims: 0 }),
  };
  if (spec.architecture === 'relu') {
    // The penalty's pull on each decoder row: λ · mean_b f_i · W_dec,i / ‖W_dec,i‖.
    const rowScale = g.op('Div', [
      g.op('Mul', [fSum, g.op('Mul', [l1, invB])]),
      g.op('Add', [decNorms, f32(1e-12)]),
    ]);
    grads.W_dec = g.op('Add', [grads.W_dec, g.op('Mul', [P.W_dec, g.op('Unsqueeze', [rowScale, axes(1)])])]);
  }

  // ---- clip the global gradient norm ----
  const sq = PARAMS.map((p) => g.op('ReduceSum', [g.op('Mul', [grads[p], grads[p]])], { keepdims: 0 }));
  const gradNorm = g.op('Sqrt', [g.op('Sum', sq)]);
  const clip = g.op('Min', [f32(1), g.op('Div', [f32(spec.clipNorm), g.op('Add', [gradNorm, f32(1e-6)])])]);

  // ---- Adam ----
  const b1 = f32(spec.beta1);
  const b2 = f32(spec.beta2);
  const nb1 = f32(1 - spec.beta1);
  const nb2 = f32(1 - spec.beta2);
  const step = g.op('Mul', [lr, bc1]);
  for (const p of PARAMS) {
    const grad = g.op('Mul', [grads[p], clip]);
    const m = g.op('Add', [g.op('Mul', [M[p], b1]), g.op('Mul', [grad, nb1])], {}, io.out(io.m(p)));
    const v = g.op(
      'Add',
      [g.op('Mul', [V[p], b2]), g.op('Mul', [g.op('Mul', [grad, grad]), nb2])],
      {},
      io.out(io.v(p)),
    );
    const denom = g.op('Add', [g.op('Sqrt', [g.op('Mul', [v, bc2])]), f32(spec.adamEps)]);
    const updated = g.op('Sub', [P[p], g.op('Mul', [g.op('Div', [m, denom]), step])]);
    if (p === 'W_dec' && spec.architecture === 'topk') {
      const norms = g.op('Sqrt', [
        g.op('ReduceSum', [g.op('Mul', [updated, updated]), axes(1)], { keepdims: 1 }),
      ]);
      g.op('Div', [updated, g.op('Add', [norms, f32(1e-12)])], {}, io.out(p));
    } else {
      g.op('Identity', [updated], {}, io.out(p));
    }
    g.output(io.out(io.m(p)));
    g.output(io.out(io.v(p)));
    g.output(io.out(p));
  }

  g.op('Add', [g.op('Add', [mse, g.op('Mul', [sparsity, l1])]), aux], {}, 'loss');
  g.op('Identity', [mse], {}, 'mse');
  g.op('Identity', [sparsity], {}, 'sparsity');
  g.op('Identity', [l0], {}, 'l0');
  g.op('Identity', [firedCount], {}, 'fired');
  g.op('Identity', [gradNorm], {}, 'grad_norm');
  g.op('Identity', [aux], {}, 'aux');
  for (const name of METRICS) g.output(name);
  return g.encode('sae_train_step');
}
