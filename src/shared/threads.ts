/**
 * How many onnxruntime threads Loupe accepts, for the `--threads` flag and
 * the `loupe.threads` setting alike: more than a few per core only slows the
 * work down (and a huge number hangs onnxruntime while it starts them).
 */
export const MAX_THREADS_CAP = 256;

/** The most threads accepted on a machine with `cores` cores: 4 per core, at most MAX_THREADS_CAP. */
export function maxThreads(cores: number): number {
  return Math.min(MAX_THREADS_CAP, 4 * Math.max(1, cores));
}
