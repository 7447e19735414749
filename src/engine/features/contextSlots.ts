/**
 * Fixed-size storage for the contexts a feature pass keeps: every slot holds
 * up to `width` tokens around one focus token (ids, spans in their document,
 * and one feature's activation on each), in flat typed arrays allocated once.
 * The pass overwrites slots in place as better contexts arrive, so memory is
 * fixed by (features × slots per feature × width), never by the corpus.
 */

/** One context window of the pass as the scan sees it. */
export interface ScanWindow {
  /** Index of the document in the pass's document table. */
  readonly doc: number;
  /** Token ids, BOS first. */
  readonly ids: Int32Array;
  /** Each token's span in the document's text (BOS: 0, 0). */
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  /** Row of position 1 in the batch's [rows, d_sae] activations (BOS has no row). */
  readonly firstRow: number;
}

export class ContextSlots {
  readonly ids: Int32Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly acts: Float32Array;
  /** Tokens in each slot (0: empty). */
  readonly lengths: Uint8Array;
  /** Index of the focus token within each slot. */
  readonly focus: Uint8Array;
  readonly docs: Int32Array;
  readonly width: number;

  constructor(
    readonly count: number,
    readonly left: number,
    readonly right: number,
  ) {
    this.width = left + 1 + right;
    if (this.width > 255) throw new Error('a context holds at most 255 tokens');
    const n = count * this.width;
    this.ids = new Int32Array(n);
    this.starts = new Int32Array(n);
    this.ends = new Int32Array(n);
    this.acts = new Float32Array(n);
    this.lengths = new Uint8Array(count);
    this.focus = new Uint8Array(count);
    this.docs = new Int32Array(count).fill(-1);
  }

  /**
   * Copies the context of position `pos` of a window into `slot`, with
   * feature `feature`'s activation on each token read from `acts`
   * ([rows, dSae]). BOS (position 0) is never part of a context.
   */
  capture(slot: number, w: ScanWindow, pos: number, feature: number, acts: Float32Array, dSae: number): void {
    const first = Math.max(1, pos - this.left);
    const last = Math.min(w.ids.length - 1, pos + this.right);
    const o = slot * this.width;
    for (let p = first, i = o; p <= last; p++, i++) {
      this.ids[i] = w.ids[p];
      this.starts[i] = w.starts[p];
      this.ends[i] = w.ends[p];
      this.acts[i] = acts[(w.firstRow + p - 1) * dSae + feature];
    }
    this.lengths[slot] = last - first + 1;
    this.focus[slot] = pos - first;
    this.docs[slot] = w.doc;
  }
}
