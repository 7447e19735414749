/**
 * The pool of text directions TextSpan chooses from, in the space where the
 * heads' outputs are read (after the final norm's centring and scale, before
 * its weight): a token v's direction is w_ln ⊙ (its unembedding row), so
 * that a head output's dot product with it is the head's direct effect on v's
 * logit. For LayerNorm models the directions are centred (the outputs are),
 * and every direction has unit length, as the CLIP text embeddings in the
 * authors' code do.
 *
 * - 'unembed': every token of the vocabulary.
 * - 'words': the user's words and phrases, one per entry; a phrase's
 *   direction is the mean of its tokens' unembedding rows (tokenized as
 *   written, without BOS; start a word with a space for its mid-sentence form).
 */
import { LoupeError } from '../errors';
import { HookedModel } from '../model';
import { readEngineWeight, unembeddingName, unembeddingRows } from './engineWeights';

export type PoolSpec =
  { readonly kind: 'unembed' } | { readonly kind: 'words'; readonly phrases: readonly string[] };

export interface TextPool {
  readonly kind: PoolSpec['kind'];
  /** [size × d_model], unit rows. */
  readonly directions: Float32Array;
  readonly size: number;
  /** Token id of each row ('unembed'), or null ('words'). */
  tokenId(row: number): number | null;
  /** How a row reads: its token, or the phrase. */
  label(row: number): Promise<string>;
}

export async function buildTextPool(model: HookedModel, spec: PoolSpec): Promise<TextPool> {
  const d = model.spec.dModel;
  const wLn = readEngineWeight(model, 'ln_final.w');
  const centre = model.spec.norm === 'layernorm';
  if (spec.kind === 'unembed') {
    const directions = readEngineWeight(model, unembeddingName(model));
    const size = model.spec.dVocab;
    for (let v = 0; v < size; v++) shapeDirection(directions.subarray(v * d, (v + 1) * d), wLn, centre);
    return {
      kind: 'unembed',
      directions,
      size,
      tokenId: (row) => row,
      label: async (row) => (model.tokenizer ? model.tokenizer.displayText(row) : `<${row}>`),
    };
  }
  const phrases = spec.phrases.filter((p) => p.length > 0);
  if (phrases.length === 0) throw new LoupeError('the word pool is empty: give at least one word or phrase');
  const directions = new Float32Array(phrases.length * d);
  for (let i = 0; i < phrases.length; i++) {
    const ids = (await model.tokenize(phrases[i], { prependBos: false })).map((t) => t.id);
    if (ids.length === 0) throw new LoupeError(`the phrase ${JSON.stringify(phrases[i])} has no tokens`);
    const rows = unembeddingRows(model, ids);
    const row = directions.subarray(i * d, (i + 1) * d);
    for (let t = 0; t < ids.length; t++) for (let j = 0; j < d; j++) row[j] += rows[t * d + j] / ids.length;
    shapeDirection(row, wLn, centre);
  }
  return {
    kind: 'words',
    directions,
    size: phrases.length,
    tokenId: () => null,
    label: async (row) => phrases[row],
  };
}

/** In place: ⊙ w_ln, centred (LayerNorm), unit length. */
function shapeDirection(row: Float32Array, wLn: Float32Array, centre: boolean): void {
  const d = row.length;
  let mean = 0;
  for (let j = 0; j < d; j++) {
    row[j] *= wLn[j];
    mean += row[j];
  }
  mean = centre ? mean / d : 0;
  let norm = 0;
  for (let j = 0; j < d; j++) {
    row[j] -= mean;
    norm += row[j] * row[j];
  }
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let j = 0; j < d; j++) row[j] *= inv;
}
