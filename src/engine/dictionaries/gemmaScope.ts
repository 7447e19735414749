/**
 * Gemma Scope SAEs: a folder with `params.npz` (`W_enc` [d_model, d_sae],
 * `W_dec` [d_sae, d_model], `b_enc`, `b_dec`, `threshold`) and no config.
 * JumpReLU, and, unlike SAELens's default, b_dec is NOT subtracted from the
 * input: pre = x · W_enc + b_enc, f = relu(pre) · [pre > threshold]
 * (Gemma Scope's own JumpReLUSAE.encode, and SAELens's loader for it, which
 * sets apply_b_dec_to_input False). The hook comes from the caller or the
 * path (see hookNames.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from '../errors';
import { Dictionary, SparseCoder, SparseEncoder, transposed } from './dictionary';
import { gemmaScopeHookFromPath, layerOfHook, userHook } from './hookNames';
import { EncoderGraphOptions } from './encoderGraph';
import { NpzFile } from './npz';

export const GEMMA_SCOPE_FILE = 'params.npz';

/** The params.npz of a Gemma Scope folder (or the file itself), or null. */
export function gemmaScopeFile(p: string): string | null {
  if (p.endsWith('.npz')) return p;
  const file = path.join(p, GEMMA_SCOPE_FILE);
  return fs.existsSync(file) ? file : null;
}

export function openGemmaScope(
  p: string,
  hook: string | null,
  options: EncoderGraphOptions = {},
): Dictionary {
  const file = gemmaScopeFile(p) ?? path.join(p, GEMMA_SCOPE_FILE);
  const npz = NpzFile.open(file);
  const inferred = hook === null ? gemmaScopeHookFromPath(file) : null;
  const hookName = hook ?? inferred?.hook;
  if (!hookName) {
    throw new LoupeError(
      `${file}: a Gemma Scope SAE has no config, and this path does not say its site and layer ` +
        `(gemma-scope-…-res|mlp|att/…/layer_N/width_…); pass --hook NAME, e.g. --hook blocks.12.hook_resid_post`,
    );
  }
  for (const name of ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold']) {
    if (!npz.arrays.has(name)) {
      throw new LoupeError(
        `${file}: no '${name}' array; a Gemma Scope params.npz holds W_enc, b_enc, W_dec, b_dec, threshold`,
      );
    }
  }
  const enc = npz.info('W_enc').shape;
  if (enc.length !== 2)
    throw new LoupeError(`${file}: 'W_enc' has shape [${enc.join(', ')}]; Gemma Scope's is [d_model, d_sae]`);
  const [dIn, width] = enc;
  const expect = (name: string, want: number[]): void => {
    const got = npz.info(name).shape;
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw new LoupeError(
        `${file}: '${name}' has shape [${got.join(', ')}] but W_enc [${dIn}, ${width}] needs [${want.join(', ')}]`,
      );
    }
  };
  expect('b_enc', [width]);
  expect('W_dec', [width, dIn]);
  expect('b_dec', [dIn]);
  expect('threshold', [width]);
  const input = userHook(hookName);
  const label = `${file} (Gemma Scope)`;
  const activation = { kind: 'jumprelu' } as const;
  const encoder = new SparseEncoder(
    label,
    dIn,
    width,
    activation,
    () => ({
      wEnc: transposed(npz.readF32('W_enc'), dIn, width),
      bEnc: npz.readF32('b_enc'),
      threshold: npz.readF32('threshold'),
      inputShift: null,
    }),
    options,
  );
  const coder: SparseCoder = {
    layer: layerOfHook(hookName),
    input,
    outputHooks: [hookName],
    dIn,
    dOut: dIn,
    width,
    activation,
    architecture: 'jumprelu',
    hasSkip: false,
    encode: async (x) => encoder.encode(x),
    decoderRows: (features) => npz.readRowsF32('W_dec', features),
    decoderBias: () => npz.readF32('b_dec'),
    skipWeight: () => null,
  };
  const notes = [`hook ${hookName}${inferred ? ` ${inferred.how}` : ' (from --hook)'}`];
  return { path: file, format: 'gemma-scope', coders: [coder], notes, dispose: () => encoder.dispose() };
}
