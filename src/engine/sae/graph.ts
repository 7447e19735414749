/**
 * The ONNX graph of an SAE, so that encoding thousands of tokens runs in
 * onnxruntime's matmuls rather than in JavaScript. Two variants:
 *
 * - 'encode': x [n, d_in] → feature_acts [n, d_sae].
 * - 'forward': x, feature_mul, feature_add → feature_acts, sae_out (the
 *   reconstruction) and sae_out_edited (the reconstruction from
 *   feature_acts · feature_mul + feature_add, the edits broadcast against
 *   [n, d_sae]): what splicing needs, in one pass.
 *
 * - 'decode': feature_acts [n, d_sae] → sae_out, for SAEs whose input
 *   normalization is not per token (the others need the input to undo it).
 *
 * 'encode' and 'forward' take `center` (subtract each row's mean before encoding and add it
 * back after decoding; see SaeConfig.centerWritingWeights). The stored
 * tensors are initializers read as they are from an external f32 file; every
 * derived quantity (exp(r_mag), decoder norms, folded scale factors) is a node
 * over them that onnxruntime folds into a constant when the session loads.
 */
import { ExternalTensor, GraphBuilder } from '../graph/builder';
import { SaeConfig } from './config';

export type SaeGraphMode = 'encode' | 'forward' | 'decode';

export const SAE_INPUT = 'x';
export const FEATURE_MUL = 'feature_mul';
export const FEATURE_ADD = 'feature_add';
export const FEATURE_ACTS = 'feature_acts';
export const SAE_OUT = 'sae_out';
export const SAE_OUT_EDITED = 'sae_out_edited';

/** SAELens's epsilon for the 'layer_norm' input normalization. */
const LAYER_NORM_EPS = 1e-5;

export function buildSaeGraph(
  cfg: SaeConfig,
  weights: ReadonlyMap<string, ExternalTensor>,
  weightsFile: string,
  variant: {
    readonly mode: SaeGraphMode;
    readonly center: boolean;
    readonly normScalingFactor: number | null;
  },
): Uint8Array {
  const g = new GraphBuilder(weightsFile);
  const w = (name: string): string => {
    const ext = weights.get(name);
    if (!ext) throw new Error(`SAE weights lack '${name}'`);
    return g.weight(name, ext);
  };
  const lastAxis = (): string => g.constI64([-1]);
  if (variant.mode === 'decode') {
    const f = g.input(FEATURE_ACTS, 'float', ['n', cfg.dSae]);
    let out = g.op('Add', [g.op('MatMul', [f, decoderWeights(cfg, g, w, null)]), w('b_dec')]);
    const s = variant.normScalingFactor;
    if (cfg.normalizeActivations === 'expected_average_only_in' && s !== null) {
      out = g.op('Div', [out, g.scalarF32(s)]);
    }
    g.output(g.op('Identity', [out], {}, SAE_OUT));
    return g.encode('sae_decode');
  }
  const x = g.input(SAE_INPUT, 'float', ['n', cfg.dIn]);

  // Into the SAE's input space: centre, then normalize as the cfg says.
  let sae = x;
  let mean: string | null = null;
  if (variant.center) {
    mean = g.op('ReduceMean', [x, lastAxis()], { keepdims: 1 });
    sae = g.op('Sub', [x, mean]);
  }
  let undo: (v: string) => string = (v) => v;
  switch (cfg.normalizeActivations) {
    case 'expected_average_only_in': {
      const s = variant.normScalingFactor;
      if (s !== null) {
        sae = g.op('Mul', [sae, g.scalarF32(s)]);
        undo = (v) => g.op('Div', [v, g.scalarF32(s)]);
      }
      break;
    }
    case 'constant_norm_rescale': {
      // Each row rescaled to norm √d_in, and back after decoding.
      const coeff = g.op('Div', [
        g.scalarF32(Math.sqrt(cfg.dIn)),
        g.op('ReduceL2', [sae, lastAxis()], { keepdims: 1 }),
      ]);
      sae = g.op('Mul', [sae, coeff]);
      undo = (v) => g.op('Div', [v, coeff]);
      break;
    }
    case 'layer_norm': {
      // torch's x.std() is the unbiased one (divides by d_in - 1); eps is added to the std.
      const mu = g.op('ReduceMean', [sae, lastAxis()], { keepdims: 1 });
      const centred = g.op('Sub', [sae, mu]);
      const sumSq = g.op('ReduceSum', [g.op('Mul', [centred, centred]), lastAxis()], { keepdims: 1 });
      const std = g.op('Sqrt', [g.op('Div', [sumSq, g.scalarF32(Math.max(1, cfg.dIn - 1))])]);
      sae = g.op('Div', [centred, g.op('Add', [std, g.scalarF32(LAYER_NORM_EPS)])]);
      undo = (v) => g.op('Add', [g.op('Mul', [v, std]), mu]);
      break;
    }
    case 'none':
      break;
  }
  if (cfg.applyBDecToInput) sae = g.op('Sub', [sae, w('b_dec')]);

  const zero = g.scalarF32(0);
  const projected = g.op('MatMul', [sae, w('W_enc')]);
  let decoderNorms: string | null = null;
  let acts: string;
  switch (cfg.architecture) {
    case 'standard':
      acts = g.op('Relu', [g.op('Add', [projected, w('b_enc')])]);
      break;
    case 'jumprelu': {
      const pre = g.op('Add', [projected, w('b_enc')]);
      acts = g.op('Where', [g.op('Greater', [pre, w('threshold')]), g.op('Relu', [pre]), zero]);
      break;
    }
    case 'gated': {
      // One matmul serves both paths: x @ (W_enc · exp(r_mag)) = (x @ W_enc) · exp(r_mag).
      const gate = g.op('Greater', [g.op('Add', [projected, w('b_gate')]), zero]);
      const magnitude = g.op('Relu', [
        g.op('Add', [g.op('Mul', [projected, g.op('Exp', [w('r_mag')])]), w('b_mag')]),
      ]);
      acts = g.op('Where', [gate, magnitude, zero]);
      break;
    }
    case 'topk': {
      let pre = g.op('Add', [projected, w('b_enc')]);
      if (cfg.rescaleActsByDecoderNorm) {
        decoderNorms = g.op('ReduceL2', [w('W_dec'), lastAxis()], { keepdims: 0 });
        pre = g.op('Mul', [pre, decoderNorms]);
      }
      const [values, indices] = g.node(
        'TopK',
        [pre, g.constI64([cfg.k!])],
        { axis: -1, largest: 1, sorted: 0 },
        2,
      );
      acts = g.op(
        'ScatterElements',
        [g.op('ConstantOfShape', [g.op('Shape', [pre])]), indices, g.op('Relu', [values])],
        { axis: -1 },
      );
      break;
    }
  }
  g.output(g.op('Identity', [acts], {}, FEATURE_ACTS));
  if (variant.mode === 'encode') return g.encode('sae_encode');

  // Decoding: f @ W_dec + b_dec, then out of the SAE's space.
  const decoder = decoderWeights(cfg, g, w, decoderNorms);
  const decode = (f: string, name: string): void => {
    let out = undo(g.op('Add', [g.op('MatMul', [f, decoder]), w('b_dec')]));
    if (mean) out = g.op('Add', [out, mean]);
    g.output(g.op('Identity', [out], {}, name));
  };
  decode(FEATURE_ACTS, SAE_OUT);
  const mul = g.input(FEATURE_MUL, 'float');
  const add = g.input(FEATURE_ADD, 'float');
  decode(g.op('Add', [g.op('Mul', [FEATURE_ACTS, mul]), add]), SAE_OUT_EDITED);
  return g.encode('sae_forward');
}

/**
 * W_dec with what the decoder applies to feature activations folded into its
 * rows: old SAELens's finetuning `scaling_factor`, and TopK's division by the
 * decoder norms when pre-activations were rescaled by them.
 */
function decoderWeights(
  cfg: SaeConfig,
  g: GraphBuilder,
  w: (name: string) => string,
  decoderNorms: string | null,
): string {
  const rowwise = (v: string): string => g.op('Unsqueeze', [v, g.constI64([-1])]);
  let decoder = w('W_dec');
  if (cfg.finetuningScalingFactor) decoder = g.op('Mul', [decoder, rowwise(w('scaling_factor'))]);
  if (cfg.architecture === 'topk' && cfg.rescaleActsByDecoderNorm) {
    const norms = decoderNorms ?? g.op('ReduceL2', [w('W_dec'), g.constI64([-1])], { keepdims: 0 });
    decoder = g.op('Div', [decoder, rowwise(norms)]);
  }
  return decoder;
}
