/**
 * One training step of one tuned-lens translator as an ONNX graph: forward,
 * the hand-derived backward pass and an Adam update, all in onnxruntime.
 * The layers' translators are independent, so the same graph runs once per
 * layer with that layer's hidden states and parameters.
 *
 * Forward, for hidden states h [n × d] and the final stream f [n × d]:
 *   u = h + h·Wᵀ + b                       (tuned-lens's residual nn.Linear)
 *   q = softmax(C(W_U · N(u))),  p = softmax(C(W_U · N(f)))
 *   (C the model's final soft-cap cap·tanh(x/cap), the identity for most models)
 *   loss = mean_n KL(p ‖ q) = mean_n Σ_v p_v (log p_v − log q_v)
 * Backward:
 *   ∂/∂logits = (q − p) / n ⊙ (1 − (C/cap)²);  ∂/∂y = that · W_U;  ∂/∂n̂ = ∂/∂y ⊙ w_ln
 *   LayerNorm (n̂ = c/s, c = u − mean u, s = √(mean c² + ε)):
 *     ∂/∂u = (∂n̂ − mean(∂n̂) − n̂·mean(∂n̂ ⊙ n̂)) / s
 *   RMSNorm (n̂ = u/s, s = √(mean u² + ε)):  ∂/∂u = (∂n̂ − n̂·mean(∂n̂ ⊙ n̂)) / s
 *   ∂/∂W = (∂/∂u)ᵀ·h,  ∂/∂b = Σ_n ∂/∂u
 * Adam: m' = β1·m + (1−β1)·g, v' = β2·v + (1−β2)·g², θ' = θ − lr·bc1·m' / (√(v'·bc2) + ε),
 * with bc1 = 1/(1−β1^t), bc2 = 1/(1−β2^t) fed each step. Checked against
 * PyTorch autograd (tools/reference/lens_reference.py).
 */
import { ModelSpec } from '../families/spec';
import { ExternalTensor, GraphBuilder } from '../graph/builder';
import { finalNorm, unembed } from './readoutGraph';

export const STEP_PARAMS = ['W', 'b'] as const;
export type StepParam = (typeof STEP_PARAMS)[number];

export const stepIo = {
  m: (p: StepParam) => `${p}.m`,
  v: (p: StepParam) => `${p}.v`,
  next: (name: string) => `${name}.next`,
};

export interface AdamSettings {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export const ADAM: AdamSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export function buildTunedLensStepGraph(
  spec: ModelSpec,
  weights: ReadonlyMap<string, ExternalTensor>,
  weightsFile: string,
  adam: AdamSettings = ADAM,
): Uint8Array {
  const g = new GraphBuilder(weightsFile);
  const w = (name: string): string => {
    const ext = weights.get(name);
    if (!ext) throw new Error(`compiled weights lack '${name}'`);
    return g.weight(name, ext);
  };
  const hasW = (name: string): boolean => weights.has(name);
  const d = spec.dModel;
  const f32 = (v: number): string => g.scalarF32(v);
  const last = g.constI64([-1]);
  const mean = (x: string): string => g.op('ReduceMean', [x, last], { keepdims: 1 });

  const h = g.input('h', 'float', ['n', d]);
  const final = g.input('final', 'float', ['n', d]);
  const P: Record<StepParam, string> = { W: g.input('W', 'float', [d, d]), b: g.input('b', 'float', [d]) };
  const M = {} as Record<StepParam, string>;
  const V = {} as Record<StepParam, string>;
  for (const p of STEP_PARAMS) {
    const dims = p === 'W' ? [d, d] : [d];
    M[p] = g.input(stepIo.m(p), 'float', dims);
    V[p] = g.input(stepIo.v(p), 'float', dims);
  }
  const lr = g.input('lr', 'float', []);
  const bc1 = g.input('bc1', 'float', []);
  const bc2 = g.input('bc2', 'float', []);
  const n = g.op('Cast', [g.op('Squeeze', [g.op('Shape', [h], { start: 0, end: 1 }), g.constI64([0])])], {
    to: 1,
  });

  // ---- forward ----
  const u = g.op('Add', [h, g.op('Gemm', [h, P.W, P.b], { transB: 1 })]);
  const eps = f32(spec.normEps);
  const layernorm = spec.norm === 'layernorm';
  const c = layernorm ? g.op('Sub', [u, mean(u)]) : u;
  const s = g.op('Sqrt', [g.op('Add', [mean(g.op('Mul', [c, c])), eps])]); // [n, 1]
  const nHat = g.op('Div', [c, s]);
  let y = g.op('Mul', [nHat, w('ln_final.w')]);
  if (hasW('ln_final.b')) y = g.op('Add', [y, w('ln_final.b')]);
  const logSoftmax = (logits: string): string =>
    g.op('Sub', [logits, g.op('ReduceLogSumExp', [logits, last], { keepdims: 1 })]);
  const zq = unembed(g, spec, y, w, hasW);
  const logq = logSoftmax(zq);
  const logp = logSoftmax(unembed(g, spec, finalNorm(g, spec, final, w, hasW), w, hasW));
  const p = g.op('Exp', [logp]);
  const klRows = g.op('ReduceSum', [g.op('Mul', [p, g.op('Sub', [logp, logq])]), last], { keepdims: 0 });
  g.op('Div', [g.op('ReduceSum', [klRows], { keepdims: 0 }), n], {}, 'kl');

  // ---- backward ----
  let gLogits = g.op('Div', [g.op('Sub', [g.op('Exp', [logq]), p]), n]); // [n, V]
  const cap = spec.finalSoftcap;
  if (cap !== null) {
    // Through the soft-cap z = cap·tanh(x/cap): ∂z/∂x = 1 − (z/cap)².
    const t = g.op('Div', [zq, f32(cap)]);
    gLogits = g.op('Mul', [gLogits, g.op('Sub', [f32(1), g.op('Mul', [t, t])])]);
  }
  const unembedding = hasW('W_U_T') ? w('W_U_T') : w('W_E'); // [V, d]
  const gY = g.op('MatMul', [gLogits, unembedding]); // [n, d]
  const gN = g.op('Mul', [gY, w('ln_final.w')]);
  let inner = g.op('Sub', [gN, g.op('Mul', [nHat, mean(g.op('Mul', [gN, nHat]))])]);
  if (layernorm) inner = g.op('Sub', [inner, mean(gN)]);
  const gU = g.op('Div', [inner, s]);
  const grads: Record<StepParam, string> = {
    W: g.op('Gemm', [gU, h], { transA: 1 }),
    b: g.op('ReduceSum', [gU, g.constI64([0])], { keepdims: 0 }),
  };

  // ---- Adam ----
  const step = g.op('Mul', [lr, bc1]);
  for (const name of STEP_PARAMS) {
    const grad = grads[name];
    const m = g.op(
      'Add',
      [g.op('Mul', [M[name], f32(adam.beta1)]), g.op('Mul', [grad, f32(1 - adam.beta1)])],
      {},
      stepIo.next(stepIo.m(name)),
    );
    const v = g.op(
      'Add',
      [
        g.op('Mul', [V[name], f32(adam.beta2)]),
        g.op('Mul', [g.op('Mul', [grad, grad]), f32(1 - adam.beta2)]),
      ],
      {},
      stepIo.next(stepIo.v(name)),
    );
    const denom = g.op('Add', [g.op('Sqrt', [g.op('Mul', [v, bc2])]), f32(adam.eps)]);
    g.op('Sub', [P[name], g.op('Mul', [g.op('Div', [m, denom]), step])], {}, stepIo.next(name));
    g.output(stepIo.next(name));
    g.output(stepIo.next(stepIo.m(name)));
    g.output(stepIo.next(stepIo.v(name)));
  }
  g.output('kl');
  return g.encode('tuned_lens_step');
}
