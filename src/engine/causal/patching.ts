/**
 * Activation patching between a clean and a corrupted text of the same
 * length: run one of them with a single activation taken from the other, and
 * see how far that moves the logit difference between two tokens at one
 * position ("why A and not B"). Denoising (default) runs the corrupted text
 * and restores one clean activation; noising runs the clean text and
 * corrupts one. The metric is normalised so that
 *   0 = the logit difference of the corrupted run,  1 = that of the clean run:
 *   (LD_patched − LD_corrupted) / (LD_clean − LD_corrupted).
 *
 * Grids (cells are batch items; many run in one pass, every hook edited in
 * every pass so one compiled graph serves them all):
 *   residual  layer × position: blocks.L.hook_resid_pre (or _mid, _post, attn_out, mlp_out) at one position
 *   heads     layer × head: blocks.L.attn.hook_z of one head at every position
 *   heads, per position   (layer, head) × position
 */
import { CancelledError, LoupeError } from '../errors';
import { hookShape } from '../hooks';
import { HookEdit, HookedModel } from '../model';
import { Tensor } from '../tensor';
import { FINAL_NORMALIZED, checkTokenId, logitReadout, readLogit, resolvePosition } from './predictions';

export type ResidualSite = 'resid_pre' | 'resid_mid' | 'resid_post' | 'attn_out' | 'mlp_out';

export interface PatchOptions {
  /** logit(target) − logit(versus) is the metric. */
  readonly target: number;
  readonly versus: number;
  /** Where the metric is read; default the last position (negative counts from the end). */
  readonly position?: number;
  /** 'denoise' (default): corrupted run, clean activation patched in; 'noise': the reverse. */
  readonly direction?: 'denoise' | 'noise';
  /** Batch items per forward pass; default 32. */
  readonly maxBatch?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface PatchGrid {
  readonly kind: 'residual' | 'heads' | 'head-positions';
  /** The hook patched on each row. */
  readonly hooks: string[];
  readonly rowLabels: string[];
  readonly columnLabels: string[];
  /** Normalised metric, [row][column]: 1 = the clean run's logit difference, 0 = the corrupted run's. */
  readonly values: number[][];
  /** The raw logit differences behind `values`. */
  readonly logitDiffs: number[][];
  readonly cleanLogitDiff: number;
  readonly corruptedLogitDiff: number;
  readonly position: number;
  readonly target: number;
  readonly versus: number;
  readonly direction: 'denoise' | 'noise';
}

/** One cell: at `hook`, the values at these positions and these per-position indices come from the source run. */
interface Cell {
  readonly row: number;
  readonly column: number;
  readonly hook: string;
  readonly positions: readonly number[] | 'all';
  readonly select: (innerIndex: number) => boolean;
}

function checkPair(
  model: HookedModel,
  clean: readonly number[],
  corrupted: readonly number[],
  o: PatchOptions,
): number {
  if (clean.length === 0) throw new LoupeError('the clean text has no tokens');
  if (clean.length !== corrupted.length) {
    throw new LoupeError(
      `the clean text has ${clean.length} tokens and the corrupted text ${corrupted.length}; activation patching needs the same number of tokens (see 'loupe tokenize')`,
    );
  }
  checkTokenId(o.target, model.spec.dVocab, 'the target');
  checkTokenId(o.versus, model.spec.dVocab, 'the versus');
  if (o.target === o.versus)
    throw new LoupeError('the target and versus tokens are the same; their logit difference is always 0');
  return resolvePosition(o.position, clean.length);
}

/** Residual stream patching: one cell per layer × position. */
export async function patchResidual(
  model: HookedModel,
  clean: readonly number[],
  corrupted: readonly number[],
  options: PatchOptions & { readonly site?: ResidualSite },
): Promise<PatchGrid> {
  checkPair(model, clean, corrupted, options);
  const site = options.site ?? 'resid_pre';
  if (site === 'resid_mid' && model.spec.parallelResidual) {
    throw new LoupeError(
      'this model has parallel attention and MLP, so no hook_resid_mid; patch resid_pre or resid_post',
    );
  }
  const L = model.spec.nLayers;
  const T = clean.length;
  const hooks = Array.from({ length: L }, (_, l) => `blocks.${l}.hook_${site}`);
  const cells: Cell[] = [];
  for (let l = 0; l < L; l++) {
    for (let p = 0; p < T; p++)
      cells.push({ row: l, column: p, hook: hooks[l], positions: [p], select: () => true });
  }
  return runGrid(model, clean, corrupted, options, {
    kind: 'residual',
    hooks,
    rowLabels: hooks.map((_, l) => `L${l}`),
    columnLabels: Array.from({ length: T }, (_, p) => String(p)),
    cells,
  });
}

/** Per-head patching of blocks.L.attn.hook_z: layer × head (all positions), or (layer, head) × position. */
export async function patchHeads(
  model: HookedModel,
  clean: readonly number[],
  corrupted: readonly number[],
  options: PatchOptions & { readonly perPosition?: boolean },
): Promise<PatchGrid> {
  checkPair(model, clean, corrupted, options);
  const { nLayers: L, nHeads: H, dHead } = model.spec;
  const T = clean.length;
  const layerHooks = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  const cells: Cell[] = [];
  const rowLabels: string[] = [];
  const hooks: string[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const select = (i: number): boolean => Math.floor(i / dHead) === h;
      if (options.perPosition) {
        const row = rowLabels.length;
        rowLabels.push(`L${l}H${h}`);
        hooks.push(layerHooks[l]);
        for (let p = 0; p < T; p++)
          cells.push({ row, column: p, hook: layerHooks[l], positions: [p], select });
      } else {
        cells.push({ row: l, column: h, hook: layerHooks[l], positions: 'all', select });
      }
    }
    if (!options.perPosition) {
      rowLabels.push(`L${l}`);
      hooks.push(layerHooks[l]);
    }
  }
  return runGrid(model, clean, corrupted, options, {
    kind: options.perPosition ? 'head-positions' : 'heads',
    hooks,
    rowLabels,
    columnLabels: options.perPosition
      ? Array.from({ length: T }, (_, p) => String(p))
      : Array.from({ length: H }, (_, h) => `H${h}`),
    cells,
  });
}

async function runGrid(
  model: HookedModel,
  clean: readonly number[],
  corrupted: readonly number[],
  options: PatchOptions,
  grid: {
    kind: PatchGrid['kind'];
    hooks: string[];
    rowLabels: string[];
    columnLabels: string[];
    cells: Cell[];
  },
): Promise<PatchGrid> {
  const position = resolvePosition(options.position, clean.length);
  const direction = options.direction ?? 'denoise';
  const { target, versus } = options;
  const T = clean.length;
  const editHooks = [...new Set(grid.cells.map((c) => c.hook))];
  // The metric needs two logits at one position: read them off the final norm's output.
  const readout = logitReadout(model, target, versus);
  const ld = (normalized: Tensor, b: number): number => readLogit(normalized, b, position, readout);
  // Both texts once, with every hook the cells read.
  const both = await model.runHooksPadded([clean, corrupted], [...editHooks, FINAL_NORMALIZED]);
  const cleanLd = ld(both.hooks.get(FINAL_NORMALIZED)!, 0);
  const corruptedLd = ld(both.hooks.get(FINAL_NORMALIZED)!, 1);
  if (Math.abs(cleanLd - corruptedLd) < 1e-6 * Math.max(1, Math.abs(cleanLd))) {
    throw new LoupeError(
      `the clean and corrupted texts give the same logit difference (${cleanLd.toFixed(4)}) at position ${position}; there is nothing to restore, so choose texts or tokens that differ`,
    );
  }
  const source = direction === 'denoise' ? 0 : 1;
  const base = direction === 'denoise' ? corrupted : clean;
  const values = grid.rowLabels.map(() => new Array<number>(grid.columnLabels.length).fill(NaN));
  const logitDiffs = grid.rowLabels.map(() => new Array<number>(grid.columnLabels.length).fill(NaN));
  const maxBatch = options.maxBatch ?? 32;
  for (let c0 = 0; c0 < grid.cells.length; c0 += maxBatch) {
    if (options.signal?.aborted) throw new CancelledError();
    const chunk = grid.cells.slice(c0, c0 + maxBatch);
    const B = chunk.length;
    const edits: HookEdit[] = editHooks.map((hook) => {
      const mine = chunk.map((c) => (c.hook === hook ? c : null));
      if (mine.every((c) => c === null)) return { hook };
      const shape = hookShape(model.spec, model.hookByName(hook), B, T);
      const src = both.hooks.get(hook)!;
      const perItem = src.data.length / 2;
      const width = perItem / T;
      const mul = new Float32Array(B * perItem).fill(1);
      const add = new Float32Array(B * perItem);
      mine.forEach((cell, b) => {
        if (!cell) return;
        const positions = cell.positions === 'all' ? Array.from({ length: T }, (_, p) => p) : cell.positions;
        for (const p of positions) {
          for (let j = 0; j < width; j++) {
            if (!cell.select(j)) continue;
            const at = b * perItem + p * width + j;
            mul[at] = 0;
            add[at] = src.data[source * perItem + p * width + j];
          }
        }
      });
      return { hook, mul: { dims: shape, data: mul }, add: { dims: shape, data: add } };
    });
    const out = await model.runEditedHooksPadded(
      chunk.map(() => base),
      [FINAL_NORMALIZED],
      edits,
    );
    chunk.forEach((cell, b) => {
      const v = ld(out.hooks.get(FINAL_NORMALIZED)!, b);
      logitDiffs[cell.row][cell.column] = v;
      values[cell.row][cell.column] = (v - corruptedLd) / (cleanLd - corruptedLd);
    });
    options.onProgress?.(Math.min(grid.cells.length, c0 + B), grid.cells.length);
  }
  return {
    kind: grid.kind,
    hooks: grid.hooks,
    rowLabels: grid.rowLabels,
    columnLabels: grid.columnLabels,
    values,
    logitDiffs,
    cleanLogitDiff: cleanLd,
    corruptedLogitDiff: corruptedLd,
    position,
    target,
    versus,
    direction,
  };
}
