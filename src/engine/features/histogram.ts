/**
 * Activation histograms in fixed log-spaced bins. A streaming pass cannot use
 * bins relative to a feature's maximum (it is not known until the end), so
 * bins are fixed in absolute value: BINS_PER_OCTAVE per doubling from 2^MIN_EXP
 * to 2^MAX_EXP, with anything outside clamped into the end bins. Log bins also
 * suit SAE activations, which spread over orders of magnitude. At the end a
 * feature's histogram is cut to its occupied bins and, if still long, merged
 * pairwise to at most MAX_OUTPUT_BINS.
 */
import { ActivationHistogram } from './types';

export const BINS_PER_OCTAVE = 8;
export const MIN_EXP = -24;
export const MAX_EXP = 16;
export const HIST_BINS = (MAX_EXP - MIN_EXP) * BINS_PER_OCTAVE;
const MAX_OUTPUT_BINS = 64;

/** The bin of a positive activation. */
export function histBin(a: number): number {
  const b = Math.floor((Math.log2(a) - MIN_EXP) * BINS_PER_OCTAVE);
  return b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b;
}

export function binEdge(i: number, binsPerOctave = BINS_PER_OCTAVE): number {
  return Math.pow(2, MIN_EXP + i / binsPerOctave);
}

/** A feature's counts (HIST_BINS of them) as stored: occupied range only, at most MAX_OUTPUT_BINS bins. */
export function finishHistogram(counts: ArrayLike<number>): ActivationHistogram | null {
  let lo = -1;
  let hi = -1;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0) {
      if (lo === -1) lo = i;
      hi = i;
    }
  }
  if (lo === -1) return null;
  let perOctave = BINS_PER_OCTAVE;
  // Work in units of the current bin width; merging halves bins per octave, so align lo to even.
  let start = lo;
  let bins = Array.from({ length: hi - lo + 1 }, (_, i) => counts[lo + i]);
  while (bins.length > MAX_OUTPUT_BINS && perOctave > 1) {
    if (start % 2 === 1) {
      bins = [0, ...bins];
      start -= 1;
    }
    const merged: number[] = [];
    for (let i = 0; i < bins.length; i += 2) merged.push(bins[i] + (bins[i + 1] ?? 0));
    bins = merged;
    start /= 2;
    perOctave /= 2;
  }
  const edges = Array.from({ length: bins.length + 1 }, (_, i) =>
    Number(binEdge(start + i, perOctave).toPrecision(5)),
  );
  return { scale: 'log2', binsPerOctave: perOctave, edges, counts: bins };
}

/**
 * The fraction of a histogram's mass in [lo, hi), counting a bin that
 * straddles a bound in proportion to its overlap (uniform within the bin;
 * the top bin is taken to end at the feature's maximum `max`).
 */
export function massBetween(h: ActivationHistogram, lo: number, hi: number, max: number): number {
  let total = 0;
  let inside = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    total += c;
    const a = h.edges[i];
    const b = Math.max(a, Math.min(h.edges[i + 1], max));
    if (b === a) {
      if (a >= lo && a < hi) inside += c;
      continue;
    }
    const overlap = Math.max(0, Math.min(b, hi) - Math.max(a, lo));
    if (overlap > 0) inside += (c * overlap) / (b - a);
  }
  return total > 0 ? inside / total : 0;
}
