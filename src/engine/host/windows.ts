/**
 * How a document longer than the model's context is cut into windows. Each
 * window is run on its own, starting with BOS (as the model was trained), and
 * overlaps the one before it, so a token near a window's start still sees
 * `overlap` tokens of context; each token's result is taken from exactly one
 * window, the earliest that gives it that context.
 */

export interface TokenWindow {
  /** The window's tokens are body[start..end) (body: the document's tokens after any BOS). */
  readonly start: number;
  readonly end: number;
  /** Results for body[keepFrom..end) come from this window; the tokens before are context only. */
  readonly keepFrom: number;
}

/**
 * Windows of at most `size` body tokens over `count` tokens, each after the
 * first starting `overlap` tokens before the previous one ended.
 */
export function planWindows(count: number, size: number, overlap: number): TokenWindow[] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`window size must be at least 1, not ${size}`);
  const lap = Math.max(0, Math.min(overlap, size - 1));
  const windows: TokenWindow[] = [];
  let keepFrom = 0;
  while (keepFrom < count) {
    const start = Math.max(0, keepFrom - lap);
    const end = Math.min(count, start + size);
    windows.push({ start, end, keepFrom });
    keepFrom = end;
  }
  return windows;
}

/** The window that gives body token i its result (windows as planWindows makes them). */
export function windowOf(windows: readonly TokenWindow[], i: number): number {
  let lo = 0;
  let hi = windows.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (windows[mid].keepFrom <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
