/**
 * Zero and mean ablation: knock out attention heads, whole attention or MLP
 * layers, MLP neurons, or SAE features, and see what the text's next-token
 * loss and one chosen prediction do. Mean ablation replaces the component's
 * output with its average over reference texts (all their positions but BOS,
 * whose attention-sink activations are not typical), so the model sees a
 * plausible value that carries no information about this text.
 *
 * Each group of components is ablated together, in its own batch item; many
 * groups (every head, one at a time) run as one batched pass per chunk.
 * Where each component lives:
 *   head L.h   blocks.L.attn.hook_z [.., H, d_head], head h
 *   attn L     blocks.L.hook_attn_out
 *   mlp L      blocks.L.hook_mlp_out
 *   neuron L.i blocks.L.mlp.hook_post, unit i
 *   feature i  the SAE's latent i, spliced in with its error term (sae/splice.ts)
 */
import { CancelledError, LoupeError } from '../errors';
import { hookShape } from '../hooks';
import { HookEdit, HookedModel } from '../model';
import { AttachedSae, saeFeatures, spliceSae } from '../sae/splice';
import { Tensor } from '../tensor';
import {
  TokenLogit,
  argmax,
  checkTokenId,
  logitRow,
  meanNextTokenLoss,
  resolvePosition,
  topTokens,
} from './predictions';

export type AblationTarget =
  | { readonly kind: 'head'; readonly layer: number; readonly head: number }
  | { readonly kind: 'attn'; readonly layer: number }
  | { readonly kind: 'mlp'; readonly layer: number }
  | { readonly kind: 'neuron'; readonly layer: number; readonly index: number };

export type AblationMode = 'zero' | 'mean';

export interface PredictionChoice {
  /** Position whose prediction is watched; default the last (negative counts from the end). */
  readonly position?: number;
  /** Token whose logit is watched; default the clean run's top prediction there. */
  readonly target?: number;
  /** A second token: the logit difference target − versus is reported too. */
  readonly versus?: number;
}

export interface AblationOptions extends PredictionChoice {
  readonly mode?: AblationMode;
  /** Token sequences the means are taken over (mean ablation); default the text itself. */
  readonly meanOver?: readonly (readonly number[])[];
  /** Batch items per forward pass; default 16. */
  readonly maxBatch?: number;
  readonly topTokens?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface PredictionState {
  readonly loss: number;
  readonly logit: number;
  readonly prob: number;
  /** logit(target) − logit(versus), when a versus token is given. */
  readonly logitDiff: number | null;
  readonly top: TokenLogit[];
}

export interface AblationEffect {
  /** The group's components, as `targetName` writes them, joined by '+'. */
  readonly name: string;
  readonly targets: readonly (AblationTarget | { readonly kind: 'feature'; readonly index: number })[];
  readonly ablated: PredictionState;
  readonly deltaLoss: number;
  readonly deltaLogit: number;
  readonly deltaProb: number;
  readonly deltaLogitDiff: number | null;
}

export interface AblationReport {
  readonly mode: AblationMode;
  readonly position: number;
  readonly target: number;
  readonly versus: number | null;
  readonly clean: PredictionState;
  readonly effects: AblationEffect[];
}

/** `L1H3`, `L1.attn`, `L1.mlp`, `L1N42`. */
export function targetName(t: AblationTarget | { readonly kind: 'feature'; readonly index: number }): string {
  switch (t.kind) {
    case 'head':
      return `L${t.layer}H${t.head}`;
    case 'attn':
      return `L${t.layer}.attn`;
    case 'mlp':
      return `L${t.layer}.mlp`;
    case 'neuron':
      return `L${t.layer}N${t.index}`;
    case 'feature':
      return `F${t.index}`;
  }
}

/**
 * Parses what to ablate: comma-separated components ablated together
 * (`L0H1,L1.mlp`), or a sweep that ablates each one alone: `heads`, `attn`,
 * `mlps`. Returns the groups, one per batch item.
 */
export function parseAblationGroups(spec: string, model: HookedModel): AblationTarget[][] {
  const { nLayers, nHeads } = model.spec;
  const layers = Array.from({ length: nLayers }, (_, l) => l);
  switch (spec.trim()) {
    case 'heads':
      return layers.flatMap((layer) =>
        Array.from({ length: nHeads }, (_, head): AblationTarget[] => [{ kind: 'head', layer, head }]),
      );
    case 'attn':
      return layers.map((layer): AblationTarget[] => [{ kind: 'attn', layer }]);
    case 'mlps':
      return layers.map((layer): AblationTarget[] => [{ kind: 'mlp', layer }]);
  }
  const group = spec.split(',').map((part): AblationTarget => {
    const s = part.trim();
    let m: RegExpMatchArray | null;
    if ((m = /^L(\d+)H(\d+)$/i.exec(s))) return { kind: 'head', layer: Number(m[1]), head: Number(m[2]) };
    if ((m = /^L(\d+)\.attn$/i.exec(s))) return { kind: 'attn', layer: Number(m[1]) };
    if ((m = /^L(\d+)\.mlp$/i.exec(s))) return { kind: 'mlp', layer: Number(m[1]) };
    if ((m = /^L(\d+)N(\d+)$/i.exec(s))) return { kind: 'neuron', layer: Number(m[1]), index: Number(m[2]) };
    throw new LoupeError(
      `cannot read '${s}' as something to ablate; write L<layer>H<head>, L<layer>.attn, L<layer>.mlp, L<layer>N<neuron>, or heads, attn, mlps`,
    );
  });
  group.forEach((t) => checkTarget(t, model));
  return [group];
}

function checkTarget(t: AblationTarget, model: HookedModel): void {
  const { nLayers, nHeads, dMlp } = model.spec;
  if (t.layer < 0 || t.layer >= nLayers) {
    throw new LoupeError(`${targetName(t)}: the model has layers 0..${nLayers - 1}`);
  }
  if (t.kind === 'head' && (t.head < 0 || t.head >= nHeads)) {
    throw new LoupeError(`${targetName(t)}: the model has heads 0..${nHeads - 1} per layer`);
  }
  if (t.kind === 'neuron' && (t.index < 0 || t.index >= dMlp)) {
    throw new LoupeError(`${targetName(t)}: the MLP has neurons 0..${dMlp - 1}`);
  }
}

/** The hook a component lives at, and which of the hook's per-position values are its own. */
function location(t: AblationTarget, model: HookedModel): { hook: string; select: (i: number) => boolean } {
  const { dHead } = model.spec;
  switch (t.kind) {
    case 'head':
      return {
        hook: `blocks.${t.layer}.attn.hook_z`,
        select: (i) => Math.floor(i / dHead) === t.head,
      };
    case 'attn':
      return { hook: `blocks.${t.layer}.hook_attn_out`, select: () => true };
    case 'mlp':
      return { hook: `blocks.${t.layer}.hook_mlp_out`, select: () => true };
    case 'neuron':
      return { hook: `blocks.${t.layer}.mlp.hook_post`, select: (i) => i === t.index };
  }
}

/** Per-position mean of each hook over the sequences, BOS positions left out. */
async function hookMeans(
  model: HookedModel,
  sequences: readonly (readonly number[])[],
  hooks: readonly string[],
): Promise<Map<string, Float64Array>> {
  const bos = model.bosTokenId;
  const sums = new Map<string, Float64Array>();
  let count = 0;
  for (let s0 = 0; s0 < sequences.length; s0 += 8) {
    const batch = sequences.slice(s0, s0 + 8);
    const padded = await model.runHooksPadded(batch, hooks);
    for (const hook of hooks) {
      const t = padded.hooks.get(hook)!;
      const T = t.dims[1];
      const width = t.data.length / (t.dims[0] * T);
      const sum = sums.get(hook) ?? new Float64Array(width);
      sums.set(hook, sum);
      batch.forEach((ids, b) => {
        for (let p = ids[0] === bos && ids.length > 1 ? 1 : 0; p < ids.length; p++) {
          const row = t.data.subarray((b * T + p) * width, (b * T + p + 1) * width);
          for (let j = 0; j < width; j++) sum[j] += row[j];
        }
      });
    }
    batch.forEach((ids) => (count += ids[0] === bos && ids.length > 1 ? ids.length - 1 : ids.length));
  }
  for (const sum of sums.values()) for (let j = 0; j < sum.length; j++) sum[j] /= count;
  return sums;
}

function predictionState(
  row: Float32Array,
  loss: number,
  target: number,
  versus: number | null,
  k: number,
): PredictionState {
  const top = topTokens(row, k);
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return {
    loss,
    logit: row[target],
    prob: Math.exp(row[target] - max) / sum,
    logitDiff: versus === null ? null : row[target] - row[versus],
    top,
  };
}

function effectOf(
  name: string,
  targets: AblationEffect['targets'],
  clean: PredictionState,
  ablated: PredictionState,
): AblationEffect {
  return {
    name,
    targets,
    ablated,
    deltaLoss: ablated.loss - clean.loss,
    deltaLogit: ablated.logit - clean.logit,
    deltaProb: ablated.prob - clean.prob,
    deltaLogitDiff:
      clean.logitDiff === null || ablated.logitDiff === null ? null : ablated.logitDiff - clean.logitDiff,
  };
}

/** Ablates each group of model components (heads, layers, neurons) on one token sequence. */
export async function ablate(
  model: HookedModel,
  ids: readonly number[],
  groups: readonly (readonly AblationTarget[])[],
  options: AblationOptions = {},
): Promise<AblationReport> {
  const mode = options.mode ?? 'zero';
  if (ids.length === 0) throw new LoupeError('nothing to ablate on: the text has no tokens');
  if (groups.length === 0 || groups.some((g) => g.length === 0))
    throw new LoupeError('name something to ablate');
  groups.forEach((g) => g.forEach((t) => checkTarget(t, model)));
  const position = resolvePosition(options.position, ids.length);
  const k = options.topTokens ?? 5;
  const V = model.spec.dVocab;
  if (options.versus !== undefined) checkTokenId(options.versus, V, 'the versus');
  if (options.target !== undefined) checkTokenId(options.target, V, 'the target');

  const hooks = [...new Set(groups.flatMap((g) => g.map((t) => location(t, model).hook)))];
  const means =
    mode === 'mean'
      ? await hookMeans(model, options.meanOver ?? [ids], hooks)
      : new Map<string, Float64Array>();
  // Item 0 is the clean run; item i + 1 ablates groups[i]. Every chunk edits every hook (identity
  // where a chunk has nothing there), so all chunks share one compiled graph.
  const items = [[] as readonly AblationTarget[], ...groups];
  const maxBatch = options.maxBatch ?? 16;
  const rows: { row: Float32Array; loss: number }[] = [];
  for (let i0 = 0; i0 < items.length; i0 += maxBatch) {
    if (options.signal?.aborted) throw new CancelledError();
    const chunk = items.slice(i0, i0 + maxBatch);
    const B = chunk.length;
    const edits: HookEdit[] = hooks.map((hook) => {
      const shape = hookShape(model.spec, model.hookByName(hook), B, 1);
      const width = shape.slice(2).reduce((a, b) => a * b, 1);
      const mul = new Float32Array(B * width).fill(1);
      const add = new Float32Array(B * width);
      let used = false;
      chunk.forEach((group, b) => {
        for (const t of group) {
          const loc = location(t, model);
          if (loc.hook !== hook) continue;
          used = true;
          const mean = means.get(hook);
          for (let j = 0; j < width; j++) {
            if (!loc.select(j)) continue;
            mul[b * width + j] = 0;
            add[b * width + j] = mean ? mean[j] : 0;
          }
        }
      });
      if (!used) return { hook };
      return { hook, mul: { dims: shape, data: mul }, add: { dims: shape, data: add } };
    });
    const padded = await model.runPadded(
      chunk.map(() => ids),
      { edits },
    );
    for (let b = 0; b < B; b++) {
      rows.push({
        row: logitRow(padded.logits, b, position).slice(),
        loss: meanNextTokenLoss(padded.logits, b, ids),
      });
    }
    options.onProgress?.(Math.min(items.length, i0 + B) - 1, groups.length);
  }
  const target = options.target ?? argmax(rows[0].row);
  const versus = options.versus ?? null;
  const clean = predictionState(rows[0].row, rows[0].loss, target, versus, k);
  const effects = groups.map((g, i) =>
    effectOf(
      g.map(targetName).join('+'),
      g,
      clean,
      predictionState(rows[i + 1].row, rows[i + 1].loss, target, versus, k),
    ),
  );
  return { mode, position, target, versus, clean, effects };
}

/**
 * Ablates SAE features: the SAE is spliced in at its hook with its error term,
 * so only the edited features change anything; each group is zeroed (or set
 * to its mean activation over `meanOver`) together.
 */
export async function ablateSaeFeatures(
  att: AttachedSae,
  ids: readonly number[],
  groups: readonly (readonly number[])[],
  options: AblationOptions = {},
): Promise<AblationReport> {
  const mode = options.mode ?? 'zero';
  if (ids.length === 0) throw new LoupeError('nothing to ablate on: the text has no tokens');
  if (groups.length === 0 || groups.some((g) => g.length === 0))
    throw new LoupeError('name a feature to ablate');
  const model = att.model;
  const position = resolvePosition(options.position, ids.length);
  const k = options.topTokens ?? 5;
  const V = model.spec.dVocab;
  if (options.versus !== undefined) checkTokenId(options.versus, V, 'the versus');
  if (options.target !== undefined) checkTokenId(options.target, V, 'the target');
  let mean: Float64Array | null = null;
  if (mode === 'mean') {
    const bos = model.bosTokenId;
    const seqs = options.meanOver ?? [ids];
    const acts = await saeFeatures(att, seqs);
    const dSae = att.sae.config.dSae;
    mean = new Float64Array(dSae);
    let count = 0;
    acts.forEach((a: Tensor, s) => {
      const first = seqs[s][0] === bos && seqs[s].length > 1 ? 1 : 0;
      for (let p = first; p < seqs[s].length; p++) {
        for (let i = 0; i < dSae; i++) mean![i] += a.data[p * dSae + i];
        count++;
      }
    });
    for (let i = 0; i < dSae; i++) mean[i] /= count;
  }
  let clean: PredictionState | null = null;
  let target = options.target ?? -1;
  const versus = options.versus ?? null;
  const effects: AblationEffect[] = [];
  for (const [gi, group] of groups.entries()) {
    if (options.signal?.aborted) throw new CancelledError();
    const [res] = await spliceSae(att, [ids], {
      errorTerm: true,
      features: group.map((index) => ({ index, value: mean ? mean[index] : undefined })),
    });
    if (!clean) {
      const row = logitRow(res.cleanLogits, 0, position);
      if (target < 0) target = argmax(row);
      clean = predictionState(row, res.ceClean, target, versus, k);
    }
    const ablated = predictionState(
      logitRow(res.splicedLogits, 0, position),
      res.ceSpliced,
      target,
      versus,
      k,
    );
    const targets = group.map((index) => ({ kind: 'feature' as const, index }));
    effects.push(effectOf(targets.map(targetName).join('+'), targets, clean, ablated));
    options.onProgress?.(gi + 1, groups.length);
  }
  return { mode, position, target, versus, clean: clean!, effects };
}
