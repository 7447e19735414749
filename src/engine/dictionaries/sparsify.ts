/**
 * EleutherAI sparsify's folders: one per hook point, named by the Hugging
 * Face module it hooks (`layers.6`, `layers.6.mlp`), with `cfg.json`
 * (`d_in`, `num_latents` or `expansion_factor`, `k`, `activation` topk |
 * groupmax, `transcode`, `skip_connection`) and `sae.safetensors`
 * (`encoder.weight` [latents, d_in], `encoder.bias`, `W_dec` [latents, d_in],
 * `b_dec` [d_in], optional `W_skip` [d_in, d_in], applied as x · W_skipᵀ).
 * Encoding is sparsify's: x − b_dec unless transcoding, then
 * relu(x · encoder.weightᵀ + encoder.bias), then the k largest (or the
 * largest of each of k groups).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import { LoupeError } from '../errors';
import { SafetensorsFile, assertFinite } from '../safetensors';
import { CoderActivation, Dictionary, SparseCoder, SparseEncoder, describeActivation } from './dictionary';
import { EncoderGraphOptions } from './encoderGraph';
import { layerOfHook, sparsifyHooks, userHook } from './hookNames';

export const SPARSIFY_WEIGHTS_FILE = 'sae.safetensors';

export function isSparsifyFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'cfg.json')) && fs.existsSync(path.join(dir, SPARSIFY_WEIGHTS_FILE));
}

/** Hook-point folders inside a sparsify checkpoint's root, for the message that asks to pick one. */
export function sparsifyHookPoints(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  return fs
    .readdirSync(dir)
    .filter((e) => isSparsifyFolder(path.join(dir, e)))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

export function openSparsify(
  dir: string,
  hook: string | null,
  options: EncoderGraphOptions = {},
): Dictionary {
  const cfgFile = path.join(dir, 'cfg.json');
  const cfg = readJsonObject(cfgFile, JSON_KINDS.saeConfig);
  const int = (key: string, fallback?: number): number => {
    const v = cfg[key] ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new LoupeError(
        `${cfgFile}: ${key} must be a non-negative integer, not ${JSON.stringify(cfg[key])}`,
      );
    }
    return v as number;
  };
  const dIn = int('d_in');
  const width = int('num_latents', 0) || dIn * int('expansion_factor', 32);
  const k = int('k', 32);
  const transcode = cfg.transcode === true;
  const kind = cfg.activation ?? 'topk';
  if (kind !== 'topk' && kind !== 'groupmax') {
    throw new LoupeError(`${cfgFile}: activation ${JSON.stringify(kind)} is not sparsify's topk or groupmax`);
  }
  if (k === 0 || k > width || (kind === 'groupmax' && width % k !== 0)) {
    throw new LoupeError(
      `${cfgFile}: k = ${k} does not fit ${width} latents${kind === 'groupmax' ? ' in equal groups' : ''}`,
    );
  }
  const activation: CoderActivation =
    kind === 'topk' ? { kind: 'topk', k, relu: true } : { kind: 'groupmax', k };
  const file = SafetensorsFile.open(path.join(dir, SPARSIFY_WEIGHTS_FILE));
  const expect = (name: string, want: number[]): void => {
    if (!file.tensors.has(name))
      throw new LoupeError(`${file.file}: no tensor '${name}', which sparsify's SparseCoder has`);
    const got = file.info(name).shape;
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw new LoupeError(
        `${file.file}: '${name}' has shape [${got.join(', ')}] but cfg.json's d_in = ${dIn} and ${width} latents need [${want.join(', ')}]`,
      );
    }
  };
  expect('encoder.weight', [width, dIn]);
  expect('encoder.bias', [width]);
  expect('W_dec', [width, dIn]);
  expect('b_dec', [dIn]);
  const hasSkip = file.tensors.has('W_skip');
  if (hasSkip) expect('W_skip', [dIn, dIn]);
  const hookPoint = path.basename(path.resolve(dir));
  const mapped = hook === null ? sparsifyHooks(hookPoint, transcode, dir) : null;
  const input = mapped?.input ?? userHook(hook!);
  const output = mapped?.output ?? hook!;
  const read = (name: string): Float32Array => {
    const v = file.readF32(name);
    assertFinite(v, `${file.file}: tensor '${name}'`);
    return v;
  };
  const encoder = new SparseEncoder(
    `${dir} (sparsify)`,
    dIn,
    width,
    activation,
    () => ({
      wEnc: read('encoder.weight'),
      bEnc: read('encoder.bias'),
      threshold: null,
      inputShift: transcode ? null : read('b_dec'),
    }),
    options,
  );
  const what = transcode ? 'transcoder' : 'SAE';
  const coder: SparseCoder = {
    layer: mapped?.layer ?? layerOfHook(input.hook),
    input,
    outputHooks: [output],
    dIn,
    dOut: dIn,
    width,
    activation,
    architecture: `${describeActivation(activation)}${transcode ? ' transcoder' : ''}${hasSkip ? ' + skip' : ''}`,
    hasSkip,
    encode: async (x) => encoder.encode(x),
    decoderRows: (features) => file.readRowsF32('W_dec', features),
    decoderBias: () => read('b_dec'),
    skipWeight: () => (hasSkip ? read('W_skip') : null),
  };
  const notes = [
    mapped
      ? `sparsify ${what} on '${hookPoint}': reads ${input.hook}${input.mlpInput ? ' (the MLP input)' : ''}, writes ${output}`
      : `sparsify ${what} on '${hookPoint}': hook ${hook} (from --hook)`,
  ];
  return { path: dir, format: 'sparsify', coders: [coder], notes, dispose: () => encoder.dispose() };
}
