/**
 * Reading the compiled model's weights on the host: the lenses need a few of
 * them in JavaScript (unembedding rows of chosen tokens, the final norm,
 * attention output weights and biases), read straight from the compiled f32
 * file, a row range at a time, so a large unembedding is never loaded whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { WEIGHTS_FILE } from '../compile';
import { HookedModel } from '../model';

/** The engine weight holding the unembedding as [d_vocab, d_model]: W_U_T, or W_E for tied models. */
export function unembeddingName(model: HookedModel): string {
  return model.compiled.weights.has('W_U_T') ? 'W_U_T' : 'W_E';
}

export function hasEngineWeight(model: HookedModel, name: string): boolean {
  return model.compiled.weights.has(name);
}

/** An engine weight (or rows [start, start + count) of its first axis) as f32. */
export function readEngineWeight(
  model: HookedModel,
  name: string,
  rows?: { readonly start: number; readonly count: number },
): Float32Array {
  const ext = model.compiled.weights.get(name);
  if (!ext) throw new Error(`compiled weights lack '${name}'`);
  const rowBytes = ext.dims.length === 0 ? ext.length : ext.length / ext.dims[0];
  const offset = ext.offset + (rows ? rows.start * rowBytes : 0);
  const length = rows ? rows.count * rowBytes : ext.length;
  const out = new Float32Array(length / 4);
  const fd = fs.openSync(path.join(model.compiled.dir, WEIGHTS_FILE), 'r');
  try {
    // One read call takes at most 2 GiB; a 256k-token unembedding is more.
    const bytes = new Uint8Array(out.buffer);
    for (let done = 0; done < length;) {
      const n = fs.readSync(fd, bytes, done, Math.min(READ_SLICE_BYTES, length - done), offset + done);
      if (n === 0) throw new Error(`compiled weights end inside '${name}'`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** The unembedding row of each token: [ids.length, d_model]. */
export function unembeddingRows(model: HookedModel, ids: readonly number[]): Float32Array {
  const d = model.spec.dModel;
  const out = new Float32Array(ids.length * d);
  const name = unembeddingName(model);
  ids.forEach((id, i) => out.set(readEngineWeight(model, name, { start: id, count: 1 }), i * d));
  return out;
}

const FINGERPRINT_SLICE_BYTES = 16 << 20;
const READ_SLICE_BYTES = 1 << 30;

/**
 * A fingerprint of the weights a lens depends on (the final norm, the
 * unembedding, the first block's attention and the last block's MLP): stable
 * across cache layouts, and different for any other model in practice.
 */
export function modelFingerprint(model: HookedModel): string {
  const L = model.spec.nLayers;
  const names = ['ln_final.w', unembeddingName(model), 'blocks.0.attn.W_QKV', `blocks.${L - 1}.mlp.W_out`];
  const hash = crypto.createHash('sha256');
  hash.update(`${model.spec.nLayers}:${model.spec.dModel}:${model.spec.dVocab}\n`);
  // Read in slices of rows: a 256k-token unembedding is gigabytes.
  for (const name of names) {
    const ext = model.compiled.weights.get(name);
    const rows = ext?.dims.length ? ext.dims[0] : 1;
    const step = Math.max(1, Math.floor((rows * FINGERPRINT_SLICE_BYTES) / Math.max(1, ext?.length ?? 1)));
    for (let start = 0; start < rows; start += step) {
      const w = readEngineWeight(
        model,
        name,
        ext?.dims.length ? { start, count: Math.min(step, rows - start) } : undefined,
      );
      hash.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    }
  }
  return hash.digest('hex').slice(0, 32);
}
