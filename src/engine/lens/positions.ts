/**
 * Which layers and token positions a lens or head view looks at, checked
 * against the model and the text, with errors that say what is allowed.
 *
 * Lens layers follow TransformerLens's accumulated residual stream: layer l
 * (0 ≤ l < L) is the stream entering block l (`blocks.l.hook_resid_pre`,
 * layer 0 being the embeddings) and layer L the stream after the last block
 * (`blocks.{L-1}.hook_resid_post`), whose lens is the model's own prediction.
 */
import { LoupeError } from '../errors';
import { ModelSpec } from '../families/spec';

export function residualHook(spec: ModelSpec, layer: number): string {
  return layer < spec.nLayers
    ? `blocks.${layer}.hook_resid_pre`
    : `blocks.${spec.nLayers - 1}.hook_resid_post`;
}

/** The requested lens layers (default all, 0..L), sorted and unique. */
export function lensLayers(spec: ModelSpec, layers?: readonly number[]): number[] {
  const L = spec.nLayers;
  if (!layers) return Array.from({ length: L + 1 }, (_, i) => i);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l > L) {
      throw new LoupeError(
        `layer ${l} is out of range: lens layers are 0..${L} (the stream entering each of the ${L} blocks, and ${L} after the last)`,
      );
    }
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

/** A block index for head views, checked. */
export function checkBlock(spec: ModelSpec, layer: number): number {
  if (!Number.isInteger(layer) || layer < 0 || layer >= spec.nLayers) {
    throw new LoupeError(`layer ${layer} is out of range: this model's blocks are 0..${spec.nLayers - 1}`);
  }
  return layer;
}

export function checkHead(nHeads: number, head: number): number {
  if (!Number.isInteger(head) || head < 0 || head >= nHeads) {
    throw new LoupeError(`head ${head} is out of range: this model's heads are 0..${nHeads - 1}`);
  }
  return head;
}

/** The requested token positions of a text of `count` tokens (default all), sorted and unique. */
export function tokenPositions(count: number, positions?: readonly number[]): number[] {
  if (!positions) return Array.from({ length: count }, (_, i) => i);
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 0 || p >= count) {
      throw new LoupeError(
        `position ${p} is out of range: the text has ${count} tokens (positions 0..${count - 1})`,
      );
    }
  }
  return [...new Set(positions)].sort((a, b) => a - b);
}

/** Positions of the tokens whose spans overlap the UTF-16 range [start, end) (an empty range: the token at start). */
export function positionsInRange(
  tokens: readonly { readonly start: number; readonly end: number }[],
  start: number,
  end: number,
): number[] {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start) {
    throw new LoupeError(
      `the character range ${start}:${end} is not a range (START:END with 0 ≤ START ≤ END)`,
    );
  }
  const out: number[] = [];
  tokens.forEach((t, i) => {
    if (t.end === t.start) return; // BOS covers no text
    const hit = end === start ? t.start <= start && start < t.end : t.start < end && start < t.end;
    if (hit) out.push(i);
  });
  if (out.length === 0) throw new LoupeError(`no token overlaps the character range ${start}:${end}`);
  return out;
}

/** "3", "0,2,5" or "2-6" (inclusive) → the numbers. */
export function parseIndexList(value: string, flag: string): number[] {
  const out: number[] = [];
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new LoupeError(`${flag} takes numbers and ranges like 0,2-4, not '${value}'`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new LoupeError(`${flag}: the range ${a}-${b} runs backwards`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}
