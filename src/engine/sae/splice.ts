/**
 * An SAE fitted to a model: the check that the SAE reads a hook the model has,
 * with the model's width there; the features of a text's tokens; and the
 * splice, which runs the model with the SAE's reconstruction in place of the
 * activation at its hook (optionally plus the SAE's error, optionally with
 * features ablated or clamped) and reports what that does to the next-token
 * distribution.
 */
import { LoupeError } from '../errors';
import { ModelSpec } from '../families/spec';
import { HookPoint, hookShape, hookPoints } from '../hooks';
import { HookedModel } from '../model';
import { Tensor, cropBatchItem, numel } from '../tensor';
import { SaeConfig } from './config';
import { Sae } from './sae';
import { logSumExp } from '../logits';

/** Hooks whose values are written into (or are) the residual stream, which centred writing weights centre. */
const WRITES_RESIDUAL =
  /^(hook_embed|hook_pos_embed|blocks\.\d+\.(hook_resid_(pre|mid|post)|hook_attn_out|hook_mlp_out))$/;

export interface AttachedSae {
  readonly model: HookedModel;
  readonly sae: Sae;
  readonly hook: HookPoint;
  /** Activations are centred (per-token mean over d_model removed) before encoding. */
  readonly center: boolean;
  /** Why `center` is what it is, in a sentence. */
  readonly centerReason: string;
}

/** Checks that the SAE fits the model at its hook and decides centring. */
export function attachSae(model: HookedModel, sae: Sae): AttachedSae {
  const cfg = sae.config;
  const hook = model.hookTable.find((h) => h.name === cfg.hookName);
  const modelName = model.checkpoint.dir;
  if (!hook) {
    const layers = model.spec.nLayers;
    throw new LoupeError(
      `${sae.label}: the SAE reads hook '${cfg.hookName}', which model ${modelName} does not have ` +
        `(${layers} layer${layers === 1 ? '' : 's'}, ${hookPoints(model.spec).length} hooks; see 'loupe hooks --model DIR')`,
    );
  }
  const flattenHeads = cfg.reshapeActivations === 'hook_z';
  if (flattenHeads && !hook.name.endsWith('hook_z')) {
    throw new LoupeError(
      `${sae.label}: reshape_activations 'hook_z' needs an attn.hook_z hook, not '${hook.name}'`,
    );
  }
  const width = saeInputWidth(model.spec, hook, flattenHeads);
  if (width !== cfg.dIn) {
    throw new LoupeError(
      `${sae.label}: the SAE's d_in is ${cfg.dIn} at ${cfg.hookName}, but model ${modelName} has ` +
        `${flattenHeads ? 'n_heads × d_head' : 'last dimension'} ${width} there; the SAE was trained for another model`,
    );
  }
  let center = false;
  let centerReason: string;
  if (!cfg.centerWritingWeights) {
    centerReason =
      cfg.centerSource === 'config'
        ? 'cfg.json sets center_writing_weights to false'
        : 'cfg.json gives model_from_pretrained_kwargs without center_writing_weights: trained on the unprocessed model';
  } else if (model.spec.norm !== 'layernorm') {
    centerReason = 'TransformerLens does not centre writing weights of RMSNorm models';
  } else if (!WRITES_RESIDUAL.test(hook.name)) {
    centerReason = `${hook.name} is not written by the residual stream's writing weights`;
  } else {
    center = true;
    centerReason =
      cfg.centerSource === 'config'
        ? 'cfg.json sets center_writing_weights: the SAE saw residual activations minus their mean'
        : 'cfg.json has no model_from_pretrained_kwargs: an older SAELens trained it on the processed (centred) model';
  }
  return { model, sae, hook, center, centerReason };
}

/** The width an SAE reads at a hook: its last dimension, or n_heads × d_head where hook_z's heads are flattened. */
function saeInputWidth(spec: ModelSpec, hook: HookPoint, flattenHeads: boolean): number {
  const shape = hookShape(spec, hook, 1, 1);
  return flattenHeads ? shape[shape.length - 1] * shape[shape.length - 2] : shape[shape.length - 1];
}

/** Whether `attachSae` would accept the SAE on a model of this spec (its hook exists there, with width d_in). */
export function saeFitsModel(spec: ModelSpec, cfg: SaeConfig): boolean {
  const hook = hookPoints(spec).find((h) => h.name === cfg.hookName);
  const flattenHeads = cfg.reshapeActivations === 'hook_z';
  if (!hook || (flattenHeads && !hook.name.endsWith('hook_z'))) return false;
  return saeInputWidth(spec, hook, flattenHeads) === cfg.dIn;
}

/** Flattens a hook's activation to [rows, d_in] (hook_z's heads into one axis); the data is shared. */
function asRows(att: AttachedSae, t: Tensor): Tensor {
  const d = att.sae.config.dIn;
  return { dims: [t.data.length / d, d], data: t.data };
}

/**
 * Feature activations [n, d_sae] of each text's tokens (token ids as the model
 * runs them). The model runs only up to the SAE's hook.
 */
export async function saeFeatures(
  att: AttachedSae,
  batch: readonly (readonly number[])[],
): Promise<Tensor[]> {
  const { lengths, acts } = await saeFeaturesPadded(att, batch);
  const [, T, dSae] = acts.dims;
  return lengths.map((n, b) => ({
    dims: [n, dSae],
    data: acts.data.slice(b * T * dSae, (b * T + n) * dSae),
  }));
}

/** The batched form of `saeFeatures`: [B, T_max, d_sae], right-padded, for callers that skip the padding themselves. */
export async function saeFeaturesPadded(
  att: AttachedSae,
  batch: readonly (readonly number[])[],
): Promise<{ readonly lengths: readonly number[]; readonly acts: Tensor }> {
  const padded = await att.model.runHooksPadded(batch, [att.hook.name]);
  const x = padded.hooks.get(att.hook.name)!;
  const acts = await att.sae.encode(asRows(att, x), { center: att.center });
  return {
    lengths: padded.lengths,
    acts: { dims: [batch.length, x.dims[1], att.sae.config.dSae], data: acts.data },
  };
}

export interface FeatureActivation {
  readonly index: number;
  readonly act: number;
}

/** The k largest positive activations of each row of [n, d_sae], largest first (ties: lower index first). */
export function topFeatures(acts: Tensor, k: number): FeatureActivation[][] {
  const dSae = acts.dims[acts.dims.length - 1];
  const rows = acts.data.length / dSae;
  const out: FeatureActivation[][] = [];
  for (let r = 0; r < rows; r++) {
    const row = acts.data.subarray(r * dSae, (r + 1) * dSae);
    const positive: FeatureActivation[] = [];
    for (let i = 0; i < dSae; i++) if (row[i] > 0) positive.push({ index: i, act: row[i] });
    positive.sort((a, b) => b.act - a.act || a.index - b.index);
    out.push(positive.slice(0, k));
  }
  return out;
}

/** One feature edited during a splice: clamped to `value`, or ablated (set to 0) when there is none. */
export interface FeatureEdit {
  readonly index: number;
  readonly value?: number;
  /** Token positions to edit; all when absent. */
  readonly positions?: readonly number[];
}

export interface SpliceOptions {
  /** Add the SAE's error (input − reconstruction) back, so only the feature edits change anything. Default false. */
  readonly errorTerm?: boolean;
  readonly features?: readonly FeatureEdit[];
  /** How many top next tokens to list per position; default 5. */
  readonly topTokens?: number;
}

export interface TokenProbability {
  readonly id: number;
  readonly prob: number;
}

export interface SplicePosition {
  /** KL(clean ‖ spliced) of the next-token distributions, in nats. */
  readonly kl: number;
  /** −log p(next token), clean and spliced; null at the last position. */
  readonly ceClean: number | null;
  readonly ceSpliced: number | null;
  readonly topClean: TokenProbability[];
  readonly topSpliced: TokenProbability[];
  /** Features active at this position (before edits). */
  readonly l0: number;
}

export interface SpliceResult {
  readonly cleanLogits: Tensor;
  readonly splicedLogits: Tensor;
  /** [n, d_sae], before edits. */
  readonly featureActs: Tensor;
  readonly positions: SplicePosition[];
  readonly meanKl: number;
  /** Mean next-token loss over positions 0..n-2 (NaN for a one-token text). */
  readonly ceClean: number;
  readonly ceSpliced: number;
}

/**
 * Runs each text clean and with the SAE spliced in at its hook. The spliced
 * activation is the reconstruction from the (edited) features, plus the
 * SAE's error when `errorTerm` is set: then, without edits, the spliced run
 * reproduces the clean one.
 */
export async function spliceSae(
  att: AttachedSae,
  batch: readonly (readonly number[])[],
  options: SpliceOptions = {},
): Promise<SpliceResult[]> {
  const { model, sae, hook } = att;
  const dSae = sae.config.dSae;
  const clean = await model.runPadded(batch, { hooks: [hook.name] });
  const x = clean.hooks.get(hook.name)!;
  const T = x.dims[1];
  const rows = batch.length * T;
  const edits = options.features ?? [];
  for (const e of edits) {
    if (!Number.isInteger(e.index) || e.index < 0 || e.index >= dSae) {
      throw new LoupeError(`${sae.label}: feature ${e.index} does not exist (d_sae = ${dSae})`);
    }
    if (e.value !== undefined && !Number.isFinite(e.value)) {
      throw new LoupeError(`${sae.label}: feature ${e.index} cannot be clamped to ${e.value}`);
    }
  }
  const perPosition = edits.some((e) => e.positions !== undefined);
  const editRows = perPosition ? rows : 1;
  const mul = new Float32Array(editRows * dSae).fill(1);
  const add = new Float32Array(editRows * dSae);
  for (let r = 0; r < editRows; r++) {
    const t = r % T;
    for (const e of edits) {
      if (e.positions && !e.positions.includes(t)) continue;
      mul[r * dSae + e.index] = 0;
      add[r * dSae + e.index] = e.value ?? 0;
    }
  }
  const out = await sae.forward(asRows(att, x), {
    center: att.center,
    featureMul: { dims: [editRows, dSae], data: mul },
    featureAdd: { dims: [editRows, dSae], data: add },
  });
  const spliced = out.saeOutEdited.data;
  if (options.errorTerm) {
    const recon = out.saeOut.data;
    for (let i = 0; i < spliced.length; i++) spliced[i] += x.data[i] - recon[i];
  }
  const patched = await model.runPadded(batch, {
    edits: [
      {
        hook: hook.name,
        mul: { dims: [1], data: new Float32Array([0]) },
        add: { dims: x.dims, data: spliced },
      },
    ],
  });
  const topN = options.topTokens ?? 5;
  return clean.lengths.map((n, b) => {
    const cleanLogits = cropBatchItem(clean.logits, b, [1], n);
    const splicedLogits = cropBatchItem(patched.logits, b, [1], n);
    const featureActs = {
      dims: [n, dSae],
      data: out.featureActs.data.slice(b * T * dSae, (b * T + n) * dSae),
    };
    const positions = comparePositions(cleanLogits, splicedLogits, batch[b], topN, featureActs);
    const mean = (vals: number[]): number =>
      vals.length ? vals.reduce((a, v) => a + v, 0) / vals.length : NaN;
    return {
      cleanLogits,
      splicedLogits,
      featureActs,
      positions,
      meanKl: mean(positions.map((p) => p.kl)),
      ceClean: mean(positions.flatMap((p) => (p.ceClean === null ? [] : [p.ceClean]))),
      ceSpliced: mean(positions.flatMap((p) => (p.ceSpliced === null ? [] : [p.ceSpliced]))),
    };
  });
}

function comparePositions(
  clean: Tensor,
  spliced: Tensor,
  ids: readonly number[],
  topN: number,
  featureActs: Tensor,
): SplicePosition[] {
  const V = clean.dims[clean.dims.length - 1];
  const n = numel(clean.dims) / V;
  const dSae = featureActs.dims[1];
  const out: SplicePosition[] = [];
  for (let t = 0; t < n; t++) {
    const lp = logSoftmax(clean.data.subarray(t * V, (t + 1) * V));
    const lq = logSoftmax(spliced.data.subarray(t * V, (t + 1) * V));
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(lp[v]);
      if (p > 0) kl += p * (lp[v] - lq[v]);
    }
    const next = t + 1 < n ? ids[t + 1] : null;
    let l0 = 0;
    for (let i = 0; i < dSae; i++) if (featureActs.data[t * dSae + i] > 0) l0++;
    out.push({
      kl: Math.max(0, kl),
      ceClean: next === null ? null : -lp[next],
      ceSpliced: next === null ? null : -lq[next],
      topClean: topTokens(lp, topN),
      topSpliced: topTokens(lq, topN),
      l0,
    });
  }
  return out;
}

function logSoftmax(logits: Float32Array): Float64Array {
  const lse = logSumExp(logits);
  return Float64Array.from(logits, (v) => v - lse);
}

function topTokens(logProbs: Float64Array, k: number): TokenProbability[] {
  const best: TokenProbability[] = [];
  for (let id = 0; id < logProbs.length; id++) {
    const prob = Math.exp(logProbs[id]);
    if (best.length < k || prob > best[best.length - 1].prob) {
      best.push({ id, prob });
      best.sort((a, b) => b.prob - a.prob || a.id - b.id);
      if (best.length > k) best.pop();
    }
  }
  return best;
}
