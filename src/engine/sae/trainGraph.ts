/**
 * One dictionary training step as an ONNX graph: forward, the hand-derived
 * backward pass, global-norm gradient clipping and an Adam update, all inside
 * onnxruntime so every matrix product runs on its optimised GEMM. Parameters
 * and Adam moments go in as inputs and come out updated (the trainer
 * alternates two sets of buffers, so no output overwrites an input still being
 * read). Transposed products use Gemm's trans flags instead of materialising
 * transposes.
 *
 * The same step trains an SAE (the target is the input x) and a transcoder
 * (the target is a second input y, an MLP's output, and an optional skip
 * term x W_skipᵀ joins the prediction: Paulo et al. 2025).
 *
 * Architectures (ŷ = f W_dec + b_dec [+ x W_skipᵀ], t the target):
 *  - relu: f = relu(x W_enc + b_enc),
 *    loss = mean_b ‖t − ŷ‖² + λ · mean_b Σ_i f_i ‖W_dec,i‖ (Anthropic, April 2024).
 *  - topk: f = relu(topk_k(x W_enc + b_enc)) (or topk_k(…) as it is), loss = mean_b ‖t − ŷ‖² +
 *    α · mean_b ‖e − ê‖², where e = t − ŷ (held fixed) and ê decodes the
 *    k_aux largest pre-activations of the dead latents (Gao et al. 2024);
 *    decoder rows are renormalised to unit length after each step.
 *  - jumprelu: f = pre · [pre > θ], θ = exp(log_threshold),
 *    loss = mean_b ‖t − ŷ‖² + λ · mean_b Σ_i [pre_i > θ_i], with the
 *    straight-through pseudo-derivatives of Rajamanoharan et al. 2024 for θ
 *    (rectangle kernel of width ε).
 * Inputs are already scaled so that E‖x‖ = √d_in (and E‖y‖ = √d_out).
 */
import { GraphBuilder } from '../graph/builder';

export type TrainArchitecture = 'relu' | 'topk';
/** What the step graph trains: the SAE trainer's architectures, and JumpReLU for transcoders. */
export type StepArchitecture = TrainArchitecture | 'jumprelu';

export interface TrainGraphSpec {
  readonly architecture: StepArchitecture;
  readonly dIn: number;
  readonly dSae: number;
  /** TopK: active latents per token. */
  readonly k: number;
  /** TopK: latents in the auxiliary loss. */
  readonly kAux: number;
  readonly auxCoefficient: number;
  /** TopK: rows of each batch the auxiliary loss is taken over. */
  readonly auxRows: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly adamEps: number;
  readonly clipNorm: number;
  /** A transcoder: the target is the input `y`, not `x`. */
  readonly transcoder?: boolean;
  /** A transcoder with a skip term x W_skipᵀ (W_skip [d, d]). */
  readonly skip?: boolean;
  /**
   * TopK keeps the k largest pre-activations as they are (circuit-tracer's TopK,
   * which transcoder sets are read with) instead of their ReLU (Gao et al.).
   */
  readonly topkWithoutRelu?: boolean;
  /**
   * TopK's products: 'sparse' (the default) gathers the k active decoder rows
   * and scatters their gradients, whose cost follows k; 'dense' scatters the k
   * values into a [batch, d_sae] matrix and multiplies it whole, which is
   * faster where d_sae is a small multiple of k (`topkProducts`).
   */
  readonly topkProducts?: 'sparse' | 'dense';
  /** JumpReLU: the straight-through estimator's kernel width ε. */
  readonly bandwidth?: number;
}

/** An SAE's parameters. */
export const PARAMS = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
export type ParamName = (typeof PARAMS)[number];
/** Every parameter a step can train: an SAE's, a transcoder's skip matrix, JumpReLU's thresholds. */
export type StepParam = ParamName | 'W_skip' | 'log_threshold';

/** The parameters a step with this spec trains, in the order the graph takes them. */
export function stepParams(spec: Pick<TrainGraphSpec, 'architecture' | 'skip'>): StepParam[] {
  const out: StepParam[] = [...PARAMS];
  if (spec.skip) out.push('W_skip');
  if (spec.architecture === 'jumprelu') out.push('log_threshold');
  return out;
}

/** A parameter's shape (W_enc as [d_in, d_sae], the layout the graph multiplies by). */
export function paramDims(spec: Pick<TrainGraphSpec, 'dIn' | 'dSae'>, p: StepParam): number[] {
  const d = spec.dIn;
  const s = spec.dSae;
  const dims: Record<StepParam, number[]> = {
    W_enc: [d, s],
    b_enc: [s],
    W_dec: [s, d],
    b_dec: [d],
    W_skip: [d, d],
    log_threshold: [s],
  };
  return dims[p];
}

/**
 * Which TopK products are faster: dense GEMMs cost d_sae per token, gathering
 * and scattering the active rows k rows several times over, at a slower rate
 * per value. Measured on 2 cores (d_in 256, k 32, batch 4096): dense 1.23×
 * faster at d_sae 2048, 0.78× at 4096, 0.5× at 8192.
 */
export function topkProducts(dSae: number, k: number): 'sparse' | 'dense' {
  return dSae <= 80 * k ? 'dense' : 'sparse';
}

/** Graph input/output names for a parameter and its Adam moments. */
export const io = {
  param: (p: StepParam) => p,
  m: (p: StepParam) => `${p}.m`,
  v: (p: StepParam) => `${p}.v`,
  out: (name: string) => `${name}.next`,
};

/** Scalar inputs fed each step (and `y` for a transcoder). */
export const STEP_INPUTS = ['x', 'lr', 'l1', 'bc1', 'bc2', 'dead'] as const;
/** Per-step metrics returned. */
export const METRICS = ['loss', 'mse', 'sparsity', 'l0', 'fired', 'grad_norm', 'aux'] as const;

export function buildTrainGraph(spec: TrainGraphSpec): Uint8Array {
  const g = new GraphBuilder('unused.bin');
  const d = spec.dIn;
  const s = spec.dSae;
  const f32 = (v: number): string => g.scalarF32(v);
  const axes = (...a: number[]): string => g.constI64(a);
  const params = stepParams(spec);

  const x = g.input('x', 'float', ['batch', d]);
  const target = spec.transcoder ? g.input('y', 'float', ['batch', d]) : x;
  const lr = g.input('lr', 'float', []);
  const l1 = g.input('l1', 'float', []);
  const bc1 = g.input('bc1', 'float', []); // 1 / (1 - beta1^t)
  const bc2 = g.input('bc2', 'float', []); // 1 / (1 - beta2^t)
  const dead = g.input('dead', 'float', [s]); // 1 for latents that have not fired lately
  const P = {} as Record<StepParam, string>;
  const M = {} as Record<StepParam, string>;
  const V = {} as Record<StepParam, string>;
  for (const p of params) P[p] = g.input(io.param(p), 'float', paramDims(spec, p));
  for (const p of params) {
    M[p] = g.input(io.m(p), 'float', paramDims(spec, p));
    V[p] = g.input(io.v(p), 'float', paramDims(spec, p));
  }

  const batch = g.op('Cast', [g.op('Shape', [x], { start: 0, end: 1 })], { to: 1 }); // [1] float
  const invB = g.op('Div', [f32(1), g.op('Squeeze', [batch, axes(0)])]);

  // The skip term's part of the prediction, and its gradient once the output's is known.
  const skipTerm = spec.skip ? g.op('Gemm', [x, P.W_skip], { transB: 1 }) : null;
  const predict = (decoded: string): string => (skipTerm ? g.op('Add', [decoded, skipTerm]) : decoded);

  const ctx: StepContext = { g, spec, x, target, predict, P, l1, dead, invB, f32, axes };
  const body =
    spec.architecture === 'relu'
      ? reluBody(ctx)
      : spec.architecture === 'topk'
        ? topkBody(ctx)
        : jumpReluBody(ctx);
  const { mse, sparsity, aux, l0, fired } = body;
  const grads: Partial<Record<StepParam, string>> = { ...body.grads };
  if (spec.skip) grads.W_skip = g.op('Gemm', [body.gOut, x], { transA: 1 }); // [d, d]

  // ---- clip the global gradient norm ----
  const sq = params.map((p) => g.op('ReduceSum', [g.op('Mul', [grads[p]!, grads[p]!])], { keepdims: 0 }));
  const gradNorm = g.op('Sqrt', [g.op('Sum', sq)]);
  const clip = g.op('Min', [f32(1), g.op('Div', [f32(spec.clipNorm), g.op('Add', [gradNorm, f32(1e-6)])])]);

  // ---- Adam ----
  const b1 = f32(spec.beta1);
  const b2 = f32(spec.beta2);
  const nb1 = f32(1 - spec.beta1);
  const nb2 = f32(1 - spec.beta2);
  const step = g.op('Mul', [lr, bc1]);
  for (const p of params) {
    const grad = g.op('Mul', [grads[p]!, clip]);
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
  g.op('Identity', [fired], {}, 'fired');
  g.op('Identity', [gradNorm], {}, 'grad_norm');
  g.op('Identity', [aux], {}, 'aux');
  for (const name of METRICS) g.output(name);
  return g.encode(spec.transcoder ? 'transcoder_train_step' : 'sae_train_step');
}

interface StepContext {
  readonly g: GraphBuilder;
  readonly spec: TrainGraphSpec;
  readonly x: string;
  /** What the prediction is compared with: x for an SAE, y for a transcoder. */
  readonly target: string;
  /** The prediction from the decoded features (adds the skip term where there is one). */
  readonly predict: (decoded: string) => string;
  readonly P: Record<StepParam, string>;
  readonly l1: string;
  readonly dead: string;
  readonly invB: string;
  readonly f32: (v: number) => string;
  readonly axes: (...a: number[]) => string;
}

interface StepBody {
  readonly grads: Record<ParamName, string> & Partial<Record<StepParam, string>>;
  /** The gradient of the loss at the prediction ŷ ([B, d]), which the skip term's gradient is taken from. */
  readonly gOut: string;
  readonly mse: string;
  readonly sparsity: string;
  readonly aux: string;
  readonly l0: string;
  readonly fired: string;
}

/** Mean squared error over the batch and its gradient at the prediction. */
function squaredError(
  { g, target, invB, f32 }: StepContext,
  prediction: string,
): { err: string; mse: string; gOut: string } {
  const err = g.op('Sub', [prediction, target]);
  const mse = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [err, err])], { keepdims: 0 }), invB]);
  const gOut = g.op('Mul', [err, g.op('Mul', [f32(2), invB])]); // [B, d]
  return { err, mse, gOut };
}

/** ReLU + decoder-norm-weighted L1: dense products throughout (activity is data-dependent). */
function reluBody(ctx: StepContext): StepBody {
  const { g, x, P, l1, invB, f32, axes } = ctx;
  const pre = g.op('Gemm', [x, P.W_enc, P.b_enc]); // [B, s]
  const f = g.op('Relu', [pre]);
  const activeMask = g.op('Cast', [g.op('Greater', [pre, f32(0)])], { to: 1 });
  const { mse, gOut } = squaredError(ctx, ctx.predict(g.op('Gemm', [f, P.W_dec, P.b_dec])));
  const decNorms = g.op('Sqrt', [
    g.op('ReduceSum', [g.op('Mul', [P.W_dec, P.W_dec]), axes(1)], { keepdims: 0 }),
  ]);
  const fSum = g.op('ReduceSum', [f, axes(0)], { keepdims: 0 }); // [s]
  const fired = g.op('ReduceSum', [activeMask, axes(0)], { keepdims: 0 });
  const l0 = g.op('Mul', [g.op('ReduceSum', [fired], { keepdims: 0 }), invB]);
  const sparsity = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [fSum, decNorms])], { keepdims: 0 }), invB]);

  // d/df of λ·mean_b Σ f_i‖W_dec,i‖ is λ‖W_dec,i‖/B: Gemm's bias input adds it for free.
  const gF = g.op('Gemm', [gOut, P.W_dec, g.op('Mul', [decNorms, g.op('Mul', [l1, invB])])], { transB: 1 });
  const gPre = g.op('Mul', [gF, activeMask]);
  // The penalty's pull on each decoder row: λ · mean_b f_i · W_dec,i / ‖W_dec,i‖.
  const rowScale = g.op('Div', [
    g.op('Mul', [fSum, g.op('Mul', [l1, invB])]),
    g.op('Add', [decNorms, f32(1e-12)]),
  ]);
  const grads = {
    W_enc: g.op('Gemm', [x, gPre], { transA: 1 }), // [d, s]
    b_enc: g.op('ReduceSum', [gPre, axes(0)], { keepdims: 0 }),
    W_dec: g.op('Add', [
      g.op('Gemm', [f, gOut], { transA: 1 }),
      g.op('Mul', [P.W_dec, g.op('Unsqueeze', [rowScale, axes(1)])]),
    ]),
    b_dec: g.op('ReduceSum', [gOut, axes(0)], { keepdims: 0 }),
  };
  return { grads, gOut, mse, sparsity, aux: f32(0), l0, fired };
}

/**
 * JumpReLU with an L0 penalty. The Heaviside step has no useful derivative,
 * so θ gets the straight-through pseudo-derivatives: ∂f_i/∂θ_i =
 * −(θ_i/ε)·K((pre_i − θ_i)/ε) and ∂[pre_i > θ_i]/∂θ_i = −(1/ε)·K(…), with K
 * the rectangle 1[|u| < ½]; pre-activations see the gate only. The threshold
 * is trained as log θ, so its gradient is θ · ∂L/∂θ.
 */
function jumpReluBody(ctx: StepContext): StepBody {
  const { g, spec, x, P, l1, invB, f32, axes } = ctx;
  const eps = spec.bandwidth ?? 0.001;
  const pre = g.op('Gemm', [x, P.W_enc, P.b_enc]); // [B, s]
  const theta = g.op('Exp', [P.log_threshold]); // [s]
  const gate = g.op('Cast', [g.op('Greater', [pre, theta])], { to: 1 });
  const f = g.op('Mul', [pre, gate]);
  const { mse, gOut } = squaredError(ctx, ctx.predict(g.op('Gemm', [f, P.W_dec, P.b_dec])));
  const fired = g.op('ReduceSum', [gate, axes(0)], { keepdims: 0 });
  const l0 = g.op('Mul', [g.op('ReduceSum', [fired], { keepdims: 0 }), invB]);

  const gF = g.op('Gemm', [gOut, P.W_dec], { transB: 1 }); // [B, s]
  const gPre = g.op('Mul', [gF, gate]);
  const kernel = g.op('Mul', [
    g.op('Cast', [g.op('Less', [g.op('Abs', [g.op('Sub', [pre, theta])]), f32(eps / 2)])], { to: 1 }),
    f32(1 / eps),
  ]);
  // ∂L/∂θ = −Σ_b K/ε · (gF·θ + λ/B); then · θ for log θ.
  const perRow = g.op('Add', [g.op('Mul', [gF, theta]), g.op('Mul', [l1, invB])]);
  const gTheta = g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [kernel, perRow]), axes(0)], { keepdims: 0 })]);
  const grads = {
    W_enc: g.op('Gemm', [x, gPre], { transA: 1 }), // [d, s]
    b_enc: g.op('ReduceSum', [gPre, axes(0)], { keepdims: 0 }),
    W_dec: g.op('Gemm', [f, gOut], { transA: 1 }),
    b_dec: g.op('ReduceSum', [gOut, axes(0)], { keepdims: 0 }),
    log_threshold: g.op('Mul', [gTheta, theta]),
  };
  return { grads, gOut, mse, sparsity: l0, aux: f32(0), l0, fired };
}

/**
 * TopK: only the encoder's product is dense. The k active latents of each
 * token are gathered (decoder rows by index), and every gradient that touches
 * them (decoder rows, encoder columns, encoder bias) is scattered back by
 * index, so the cost of decoding and of the backward pass scales with k, not
 * d_sae. With `topkProducts: 'dense'` the k values are scattered into a
 * [B, d_sae] matrix instead and the products are GEMMs, which is faster where
 * d_sae is a small multiple of k. The auxiliary loss on dead latents is taken
 * over the first `auxRows` rows of the (shuffled) batch, gathered and
 * scattered in both.
 */
function topkBody(ctx: StepContext): StepBody {
  const { g, spec, x, target, P, dead, f32, axes } = ctx;
  const d = spec.dIn;
  const s = spec.dSae;
  const pre = g.op('Gemm', [x, P.W_enc, P.b_enc]); // [B, s]
  const [vals, idx] = g.node('TopK', [pre, g.constI64([spec.k])], { axis: -1 }, 2); // [B, k]
  const act = spec.topkWithoutRelu ? vals : g.op('Relu', [vals]);
  const actMask = g.op('Cast', [g.op('Greater', [vals, f32(spec.topkWithoutRelu ? -3.4e38 : 0)])], { to: 1 });
  const decode = (a: string, r: string): string =>
    g.op('ReduceSum', [g.op('Mul', [g.op('Unsqueeze', [a, axes(-1)]), r]), axes(1)], { keepdims: 0 });
  // Gradient reaching each gathered latent: its decoder row · the output gradient.
  const dotRows = (r: string, grad: string): string =>
    g.op('ReduceSum', [g.op('Mul', [r, g.op('Unsqueeze', [grad, axes(1)])]), axes(2)], { keepdims: 0 });
  const l0 = g.op('Mul', [g.op('ReduceSum', [actMask], { keepdims: 0 }), ctx.invB]);
  let main: {
    yHat: string;
    gOut: string;
    mse: string;
    sparse: { gVals: string } | null;
    dense: { f: string; mask: string; gPre: string } | null;
  };
  if (spec.topkProducts === 'dense') {
    // The k values scattered into [B, s]: decoding and the latents' gradients are then three GEMMs.
    const zeros = g.op('ConstantOfShape', [g.op('Shape', [pre])]);
    const f = g.op('ScatterElements', [zeros, idx, act], { axis: 1 });
    const mask = g.op('ScatterElements', [zeros, idx, actMask], { axis: 1 });
    const yHat = ctx.predict(g.op('Gemm', [f, P.W_dec, P.b_dec]));
    const { mse, gOut } = squaredError(ctx, yHat);
    const gPre = g.op('Mul', [g.op('Gemm', [gOut, P.W_dec], { transB: 1 }), mask]); // [B, s]
    main = { yHat, gOut, mse, sparse: null, dense: { f, mask, gPre } };
  } else {
    const rows = g.op('Gather', [P.W_dec, idx], { axis: 0 }); // [B, k, d]
    const yHat = ctx.predict(g.op('Add', [decode(act, rows), P.b_dec])); // [B, d]
    const { mse, gOut } = squaredError(ctx, yHat);
    const gVals = g.op('Mul', [dotRows(rows, gOut), actMask]); // [B, k]
    main = { yHat, gOut, mse, sparse: { gVals }, dense: null };
  }
  const { yHat, gOut, mse } = main;

  // ---- auxiliary loss on dead latents, over the first auxRows rows ----
  const R = g.constI64([spec.auxRows]);
  const firstRows = (t: string): string => g.op('Slice', [t, g.constI64([0]), R, axes(0)]);
  const xR = firstRows(x);
  const preR = firstRows(pre);
  const invR = g.op('Div', [
    f32(1),
    g.op('Cast', [g.op('Squeeze', [g.op('Shape', [xR], { start: 0, end: 1 }), axes(0)])], { to: 1 }),
  ]);
  const deadPre = g.op('Add', [
    g.op('Mul', [preR, dead]),
    g.op('Mul', [g.op('Sub', [f32(1), dead]), f32(-1e9)]),
  ]);
  const [auxVals, auxIdx] = g.node('TopK', [deadPre, g.constI64([spec.kAux])], { axis: -1 }, 2); // [R, kAux]
  const auxAct = g.op('Relu', [auxVals]);
  const auxRowsW = g.op('Gather', [P.W_dec, auxIdx], { axis: 0 }); // [R, kAux, d]
  const eHat = decode(auxAct, auxRowsW); // [R, d], no bias
  const auxErr = g.op('Sub', [eHat, g.op('Sub', [firstRows(target), firstRows(yHat)])]); // the residual is held fixed
  const anyDead = g.op('Cast', [g.op('Greater', [g.op('ReduceSum', [dead], { keepdims: 0 }), f32(0)])], {
    to: 1,
  });
  const alpha = g.op('Mul', [f32(spec.auxCoefficient), anyDead]);
  const aux = g.op('Mul', [
    g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [auxErr, auxErr])], { keepdims: 0 }), invR]),
    alpha,
  ]);
  const gEHat = g.op('Mul', [auxErr, g.op('Mul', [g.op('Mul', [f32(2), invR]), alpha])]); // [R, d]
  const auxMask = g.op('Cast', [g.op('Greater', [auxVals, f32(0)])], { to: 1 });
  const gAuxVals = g.op('Mul', [dotRows(auxRowsW, gEHat), auxMask]); // [R, kAux]

  // ---- scatter the sparse gradients back by latent index ----
  const flat = (t: string): string => g.op('Reshape', [t, g.constI64([-1, 1])]);
  const outer = (a: string, v: string): string =>
    g.op('Reshape', [
      g.op('Mul', [g.op('Unsqueeze', [a, axes(-1)]), g.op('Unsqueeze', [v, axes(1)])]),
      g.constI64([-1, d]),
    ]);
  const scatterAt = (index: string, shape: number[], updates: string): string =>
    g.op('ScatterND', [g.op('ConstantOfShape', [g.constI64(shape)]), index, updates], { reduction: 'add' });
  const flat1 = (t: string): string => g.op('Reshape', [t, g.constI64([-1])]);
  let grads: StepBody['grads'];
  let fired: string;
  if (main.dense) {
    const { f, mask, gPre } = main.dense;
    const auxIndex = flat(auxIdx);
    grads = {
      W_enc: g.op('Add', [
        g.op('Gemm', [x, gPre], { transA: 1 }),
        g.op('Transpose', [scatterAt(auxIndex, [s, d], outer(gAuxVals, xR))], { perm: [1, 0] }),
      ]),
      b_enc: g.op('Add', [
        g.op('ReduceSum', [gPre, axes(0)], { keepdims: 0 }),
        scatterAt(auxIndex, [s], flat1(gAuxVals)),
      ]),
      W_dec: g.op('Add', [
        g.op('Gemm', [f, gOut], { transA: 1 }),
        scatterAt(auxIndex, [s, d], outer(auxAct, gEHat)),
      ]),
      b_dec: g.op('ReduceSum', [gOut, axes(0)], { keepdims: 0 }),
    };
    fired = g.op('ReduceSum', [mask, axes(0)], { keepdims: 0 });
  } else {
    const { gVals } = main.sparse!;
    const index = g.op('Concat', [flat(idx), flat(auxIdx)], { axis: 0 }); // [B·k + R·kAux, 1]
    const gEncT = scatterAt(
      index,
      [s, d],
      g.op('Concat', [outer(gVals, x), outer(gAuxVals, xR)], { axis: 0 }),
    ); // [s, d]
    grads = {
      W_enc: g.op('Transpose', [gEncT], { perm: [1, 0] }),
      b_enc: scatterAt(index, [s], g.op('Concat', [flat1(gVals), flat1(gAuxVals)], { axis: 0 })),
      W_dec: scatterAt(index, [s, d], g.op('Concat', [outer(act, gOut), outer(auxAct, gEHat)], { axis: 0 })),
      b_dec: g.op('ReduceSum', [gOut, axes(0)], { keepdims: 0 }),
    };
    fired = scatterAt(flat(idx), [s], flat1(actMask));
  }
  return { grads, gOut, mse, sparsity: f32(0), aux, l0, fired };
}
