/** A dense f32 tensor in row-major order; the engine's common currency. */
export interface Tensor {
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function tensor(dims: readonly number[], data?: Float32Array): Tensor {
  const n = numel(dims);
  if (data && data.length !== n) {
    throw new Error(`tensor data has ${data.length} values, dims [${dims.join(', ')}] need ${n}`);
  }
  return { dims: [...dims], data: data ?? new Float32Array(n) };
}

/**
 * Batch item b of a batched, right-padded result, with every axis listed in
 * `tokenAxes` cut to the item's real length: how padded positions are kept out
 * of what callers see (an attention pattern has two token axes).
 */
export function cropBatchItem(t: Tensor, b: number, tokenAxes: readonly number[], length: number): Tensor {
  const inDims = t.dims;
  const outDims = inDims.map((d, i) => (i === 0 ? 1 : tokenAxes.includes(i) ? length : d));
  const out = new Float32Array(numel(outDims));
  const rank = inDims.length;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= inDims[i];
  }
  // Copy whole innermost rows at a time; recurse over the outer axes.
  const last = rank - 1;
  const rowLen = outDims[last];
  let o = 0;
  const walk = (axis: number, offset: number): void => {
    if (axis === last) {
      out.set(t.data.subarray(offset, offset + rowLen), o);
      o += rowLen;
      return;
    }
    for (let i = 0; i < outDims[axis]; i++) walk(axis + 1, offset + i * inStrides[axis]);
  };
  walk(1, b * inStrides[0]);
  return { dims: outDims, data: out };
}
