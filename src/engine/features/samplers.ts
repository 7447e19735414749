/**
 * The two per-feature samplers of the feature pass, each over a fixed set of
 * context slots (see contextSlots.ts):
 *
 * - `TopContexts`: a min-heap of the k largest activations per feature. A
 *   new value enters only when it beats the heap's root, so after warm-up
 *   almost every offer is one comparison.
 *
 * - `BandSamples`: uniform samples from bands of equal width between 0 and the
 *   feature's maximum (SAE-Vis / SAEDashboard show such "interval" groups
 *   below the top activations). The maximum is not known until the pass ends,
 *   so bands follow the running maximum. Each positive activation gets a
 *   random key, and a band keeps the `perBand` activations with the smallest
 *   keys it has seen: a bottom-k sample, which is a uniform sample without
 *   replacement of the band's activations. When the running maximum grows,
 *   every kept sample is re-assigned to the band its value falls in under the
 *   new maximum and each band again keeps its smallest keys. Bands only widen,
 *   so an old band falls inside one new band except at most one old band per
 *   new boundary; only samples from such straddling bands can be missing from
 *   a new band's sample. Activations seen after the maximum settles are
 *   sampled exactly.
 */
export class TopContexts {
  private readonly heapAct: Float32Array;
  private readonly heapSlot: Int32Array;
  private readonly sizes: Int32Array;

  /** Slots run from f·k to f·k + k − 1 for feature f. */
  constructor(
    readonly features: number,
    readonly k: number,
  ) {
    this.heapAct = new Float32Array(features * k);
    this.heapSlot = new Int32Array(features * k);
    this.sizes = new Int32Array(features);
  }

  /** The value a new activation must beat to enter (0 while the heap is not full). */
  threshold(f: number): number {
    return this.sizes[f] < this.k ? 0 : this.heapAct[f * this.k];
  }

  /**
   * Offers activation `a` for feature `f`. Returns the slot the caller must
   * fill with its context, or -1 when it did not make the top k.
   */
  offer(f: number, a: number): number {
    const k = this.k;
    const base = f * k;
    const act = this.heapAct;
    const slot = this.heapSlot;
    const n = this.sizes[f];
    if (n < k) {
      // Append and sift up.
      let i = n;
      const s = base + n;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (act[base + parent] <= a) break;
        act[base + i] = act[base + parent];
        slot[base + i] = slot[base + parent];
        i = parent;
      }
      act[base + i] = a;
      slot[base + i] = s;
      this.sizes[f] = n + 1;
      return s;
    }
    if (!(a > act[base])) return -1;
    // Replace the root (the smallest) and sift down; its slot is reused.
    const s = slot[base];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= k) break;
      const r = l + 1;
      const c = r < k && act[base + r] < act[base + l] ? r : l;
      if (act[base + c] >= a) break;
      act[base + i] = act[base + c];
      slot[base + i] = slot[base + c];
      i = c;
    }
    act[base + i] = a;
    slot[base + i] = s;
    return s;
  }

  /** Feature f's kept entries, largest first (ties: lower slot first). */
  sorted(f: number): { slot: number; act: number }[] {
    const out: { slot: number; act: number }[] = [];
    for (let i = 0; i < this.sizes[f]; i++) {
      out.push({ slot: this.heapSlot[f * this.k + i], act: this.heapAct[f * this.k + i] });
    }
    return out.sort((a, b) => b.act - a.act || a.slot - b.slot);
  }
}

export class BandSamples {
  /** Slots per feature: feature f's run from f·perFeature. */
  readonly perFeature: number;
  readonly slotAct: Float32Array;
  private readonly slotKey: Float64Array;
  /** Band of each slot, -1 when free. */
  private readonly slotBand: Int8Array;
  private readonly bandCount: Int32Array;
  private readonly bandMaxKey: Float64Array;
  /** The running maximum each feature's bands are relative to. */
  readonly max: Float32Array;

  constructor(
    readonly features: number,
    readonly bands: number,
    readonly perBand: number,
    private readonly random: () => number,
  ) {
    if (bands < 1 || bands > 100) throw new Error('bands must be between 1 and 100');
    this.perFeature = bands * perBand;
    const n = features * this.perFeature;
    this.slotAct = new Float32Array(n);
    this.slotKey = new Float64Array(n);
    this.slotBand = new Int8Array(n).fill(-1);
    this.bandCount = new Int32Array(features * bands);
    this.bandMaxKey = new Float64Array(features * bands);
    this.max = new Float32Array(features);
  }

  bandOf(a: number, max: number): number {
    return Math.min(this.bands - 1, Math.floor((this.bands * a) / max));
  }

  /**
   * Offers positive activation `a` for feature `f`. Returns the slot the
   * caller must fill with its context, or -1 when it is not sampled.
   */
  offer(f: number, a: number): number {
    if (a > this.max[f]) {
      this.max[f] = a;
      this.rebin(f);
    }
    const j = this.bandOf(a, this.max[f]);
    const key = this.random();
    const b = f * this.bands + j;
    const first = f * this.perFeature;
    const end = first + this.perFeature;
    if (this.bandCount[b] < this.perBand) {
      let s = first;
      while (this.slotBand[s] !== -1) s++;
      this.slotBand[s] = j;
      this.slotAct[s] = a;
      this.slotKey[s] = key;
      this.bandCount[b]++;
      if (key > this.bandMaxKey[b] || this.bandCount[b] === 1) this.bandMaxKey[b] = key;
      return s;
    }
    if (key >= this.bandMaxKey[b]) return -1;
    let victim = -1;
    let newMax = key;
    for (let s = first; s < end; s++) {
      if (this.slotBand[s] !== j) continue;
      if (victim === -1 && this.slotKey[s] === this.bandMaxKey[b]) victim = s;
      else if (this.slotKey[s] > newMax) newMax = this.slotKey[s];
    }
    this.slotAct[victim] = a;
    this.slotKey[victim] = key;
    this.bandMaxKey[b] = newMax;
    return victim;
  }

  /** Feature f's samples in band j, largest activation first. */
  band(f: number, j: number): { slot: number; act: number }[] {
    const out: { slot: number; act: number }[] = [];
    const first = f * this.perFeature;
    for (let s = first; s < first + this.perFeature; s++) {
      if (this.slotBand[s] === j) out.push({ slot: s, act: this.slotAct[s] });
    }
    return out.sort((a, b) => b.act - a.act || a.slot - b.slot);
  }

  private rebin(f: number): void {
    const first = f * this.perFeature;
    const end = first + this.perFeature;
    const max = this.max[f];
    for (let s = first; s < end; s++) {
      if (this.slotBand[s] !== -1) this.slotBand[s] = this.bandOf(this.slotAct[s], max);
    }
    for (let j = 0; j < this.bands; j++) {
      const b = f * this.bands + j;
      const members: number[] = [];
      for (let s = first; s < end; s++) if (this.slotBand[s] === j) members.push(s);
      members.sort((x, y) => this.slotKey[x] - this.slotKey[y]);
      for (let m = this.perBand; m < members.length; m++) this.slotBand[members[m]] = -1;
      const kept = Math.min(members.length, this.perBand);
      this.bandCount[b] = kept;
      this.bandMaxKey[b] = kept > 0 ? this.slotKey[members[kept - 1]] : 0;
    }
  }
}
