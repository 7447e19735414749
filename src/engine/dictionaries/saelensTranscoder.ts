/**
 * SAELens's architectures beyond the four its SAE class runs (sae.ts):
 * - `transcoder`, `skip_transcoder`, `jumprelu_transcoder`,
 *   `jumprelu_skip_transcoder`: `W_enc` [d_in, d_sae], `b_enc`, `W_dec`
 *   [d_sae, d_out], `b_dec` [d_out], `threshold` [d_sae] for JumpReLU,
 *   `W_skip` [d_out, d_in] applied as x · W_skipᵀ; the input hook is
 *   `hook_name` and the output `hook_name_out` (top level, or under
 *   `metadata`); b_dec is never subtracted from the input (it lives in the
 *   output space).
 * - `batchtopk` and `matryoshka_batchtopk` training checkpoints: at inference
 *   a JumpReLU whose threshold is the learnt `topk_threshold` (SAELens saves
 *   them as JumpReLU SAEs, `threshold` = topk_threshold for every feature);
 *   with `rescale_acts_by_decoder_norm` the pre-activations are scaled by
 *   ‖W_dec,i‖ and the decoder rows divided by it.
 */
import * as path from 'node:path';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import { LoupeError } from '../errors';
import { SafetensorsFile, assertFinite } from '../safetensors';
import { CoderActivation, Dictionary, SparseCoder, SparseEncoder, transposed } from './dictionary';
import { EncoderGraphOptions } from './encoderGraph';
import { layerOfHook, userHook } from './hookNames';

const TRANSCODERS = ['transcoder', 'skip_transcoder', 'jumprelu_transcoder', 'jumprelu_skip_transcoder'];
const BATCH_TOPK = ['batchtopk', 'matryoshka_batchtopk'];

/** The cfg.json's architecture when this module reads it (not SAELens's SAE class), else null. */
export function saelensExtendedArchitecture(cfg: Record<string, unknown>): string | null {
  const a = cfg.architecture;
  return typeof a === 'string' && (TRANSCODERS.includes(a) || BATCH_TOPK.includes(a)) ? a : null;
}

export function openSaelensExtended(
  dir: string,
  hookOverride: string | null,
  options: EncoderGraphOptions = {},
): Dictionary {
  const cfgFile = path.join(dir, 'cfg.json');
  const cfg = readJsonObject(cfgFile, JSON_KINDS.saeConfig);
  const arch = saelensExtendedArchitecture(cfg)!;
  const meta = [cfg.metadata, cfg.meta].find((m) => typeof m === 'object' && m !== null) as
    Record<string, unknown> | undefined;
  const field = (key: string): unknown => cfg[key] ?? meta?.[key];
  const int = (key: string, fallback?: number): number => {
    const v = field(key) ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      throw new LoupeError(
        `${cfgFile}: ${key} must be a positive integer, not ${JSON.stringify(field(key)) ?? 'missing'}`,
      );
    }
    return v as number;
  };
  const str = (key: string): string => {
    const v = field(key);
    if (typeof v !== 'string' || v.length === 0) {
      throw new LoupeError(
        `${cfgFile}: a ${arch} needs ${key} (at the top or under metadata), not ${JSON.stringify(v) ?? 'missing'}`,
      );
    }
    return v;
  };
  const norm = field('normalize_activations') ?? 'none';
  if (norm !== 'none') {
    throw new LoupeError(
      `${cfgFile}: normalize_activations '${String(norm)}' on a ${arch} is not read by Loupe; only 'none'`,
    );
  }
  const isTranscoder = TRANSCODERS.includes(arch);
  const dIn = int('d_in');
  const width = int('d_sae');
  const dOut = isTranscoder ? int('d_out', dIn) : dIn;
  const hookIn = hookOverride ?? str('hook_name');
  const hookOut = isTranscoder ? str('hook_name_out') : hookIn;
  const applyBDec = !isTranscoder && field('apply_b_dec_to_input') !== false;
  const rescale = !isTranscoder && field('rescale_acts_by_decoder_norm') === true;
  const file = SafetensorsFile.open(path.join(dir, 'sae_weights.safetensors'));
  const expect = (name: string, want: number[]): void => {
    if (!file.tensors.has(name))
      throw new LoupeError(`${file.file}: no tensor '${name}', which a SAELens ${arch} has`);
    const got = file.info(name).shape;
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw new LoupeError(
        `${file.file}: '${name}' has shape [${got.join(', ')}] but cfg.json's d_in = ${dIn}, d_sae = ${width}` +
          `${isTranscoder ? `, d_out = ${dOut}` : ''} need [${want.join(', ')}]`,
      );
    }
  };
  expect('W_enc', [dIn, width]);
  expect('b_enc', [width]);
  expect('W_dec', [width, dOut]);
  expect('b_dec', [dOut]);
  const jump = arch.startsWith('jumprelu') || BATCH_TOPK.includes(arch);
  const hasSkip = arch.includes('skip');
  if (hasSkip) expect('W_skip', [dOut, dIn]);
  let thresholdName: string | null = null;
  if (arch.startsWith('jumprelu')) {
    thresholdName = file.tensors.has('threshold') ? 'threshold' : 'log_threshold';
    expect(thresholdName, [width]);
  } else if (BATCH_TOPK.includes(arch)) {
    thresholdName = file.tensors.has('threshold') ? 'threshold' : 'topk_threshold';
    if (!file.tensors.has(thresholdName)) {
      throw new LoupeError(
        `${file.file}: a ${arch} checkpoint needs 'topk_threshold' (or 'threshold'), its threshold at inference`,
      );
    }
  }
  const read = (name: string): Float32Array => {
    const v = file.readF32(name);
    assertFinite(v, `${file.file}: tensor '${name}'`);
    return v;
  };
  // ‖W_dec,i‖ for rescaled batchtopk checkpoints, read once when first needed.
  let norms: Float32Array | null = null;
  const decoderNorms = (): Float32Array => {
    if (norms) return norms;
    const w = read('W_dec');
    norms = new Float32Array(width);
    for (let f = 0; f < width; f++) {
      let s = 0;
      for (let d = 0; d < dOut; d++) s += w[f * dOut + d] ** 2;
      norms[f] = Math.sqrt(s);
    }
    return norms;
  };
  const activation: CoderActivation = jump ? { kind: 'jumprelu' } : { kind: 'relu' };
  const encoder = new SparseEncoder(
    `${dir} (SAELens ${arch})`,
    dIn,
    width,
    activation,
    () => {
      const wEnc = transposed(read('W_enc'), dIn, width);
      const bEnc = read('b_enc');
      let threshold: Float32Array | null = null;
      if (thresholdName === 'log_threshold') threshold = read('log_threshold').map(Math.exp);
      else if (thresholdName === 'topk_threshold')
        threshold = new Float32Array(width).fill(read('topk_threshold')[0]);
      else if (thresholdName) threshold = read(thresholdName);
      if (rescale) {
        const n = decoderNorms();
        for (let f = 0; f < width; f++) {
          for (let d = 0; d < dIn; d++) wEnc[f * dIn + d] *= n[f];
          bEnc[f] *= n[f];
        }
      }
      return { wEnc, bEnc, threshold, inputShift: applyBDec ? read('b_dec') : null };
    },
    options,
  );
  const decoderRows = (features: readonly number[]): Float32Array => {
    const rows = file.readRowsF32('W_dec', features);
    if (rescale) {
      const n = decoderNorms();
      features.forEach((f, i) => {
        for (let d = 0; d < dOut; d++) rows[i * dOut + d] /= n[f];
      });
    }
    return rows;
  };
  const coder: SparseCoder = {
    layer: layerOfHook(hookIn),
    input: userHook(hookIn),
    outputHooks: [hookOut],
    dIn,
    dOut,
    width,
    activation,
    architecture: arch,
    hasSkip,
    encode: async (x) => encoder.encode(x),
    decoderRows,
    decoderBias: () => read('b_dec'),
    skipWeight: () => (hasSkip ? read('W_skip') : null),
  };
  const notes = isTranscoder
    ? [`SAELens ${arch}: reads ${hookIn}, writes ${hookOut}`]
    : [`SAELens ${arch}: JumpReLU at inference`];
  return {
    path: dir,
    format: isTranscoder ? 'saelens-transcoder' : 'saelens',
    coders: [coder],
    notes,
    dispose: () => encoder.dispose(),
  };
}
