/**
 * A SAELens `cfg.json`, read from either of its layouts into one shape, and
 * written back in the newer one.
 *
 * - The older flat layout (SAELens before 6.0) keeps everything at the top
 *   level: `d_in`, `d_sae`, `hook_name` (or the older `hook_point`),
 *   `activation_fn_str` ('relu' | 'topk') with `activation_fn_kwargs: {k}`,
 *   `architecture` (missing in the oldest files), `model_name`, ...
 * - The newer layout (SAELens 6) keeps the SAE's own fields at the top
 *   (`architecture`, `d_in`, `d_sae`, `dtype`, `apply_b_dec_to_input`,
 *   `normalize_activations`, `k` for TopK, ...) and the model, hook and dataset
 *   under `metadata` (`meta` in some releases).
 *
 * Whether the SAE expects centred residual activations is decided here too
 * (see `centerWritingWeights`).
 */
import { LoupeError } from '../errors';

export type SaeArchitecture = 'standard' | 'gated' | 'jumprelu' | 'topk';
export const SAE_ARCHITECTURES: readonly SaeArchitecture[] = ['standard', 'gated', 'jumprelu', 'topk'];

export type ActivationNormalization =
  'none' | 'expected_average_only_in' | 'constant_norm_rescale' | 'layer_norm';
const NORMALIZATIONS: readonly ActivationNormalization[] = [
  'none',
  'expected_average_only_in',
  'constant_norm_rescale',
  'layer_norm',
];

/** Where the centring decision came from, so a UI can say why. */
export type CenterSource =
  /** `model_from_pretrained_kwargs.center_writing_weights` says so. */
  | 'config'
  /** `model_from_pretrained_kwargs` is given without it: SAELens 3.19.2+ trains on the unprocessed model. */
  | 'no-processing-default'
  /** No `model_from_pretrained_kwargs` at all: SAELens before 3.19.2 trained on TransformerLens's processed model. */
  | 'processed-model-default';

export interface SaeConfig {
  readonly architecture: SaeArchitecture;
  readonly dIn: number;
  readonly dSae: number;
  /** The dtype the cfg names ('float32', 'float16', 'bfloat16', ...); Loupe computes in f32 regardless. */
  readonly dtype: string;
  readonly applyBDecToInput: boolean;
  readonly normalizeActivations: ActivationNormalization;
  /**
   * For 'expected_average_only_in': the factor the inputs were multiplied by
   * in training (√d_in / E‖x‖ over the training data). Null when neither the
   * cfg nor the folder holds it.
   */
  readonly normScalingFactor: number | null;
  /** TopK's k (null for other architectures). */
  readonly k: number | null;
  /** TopK: pre-activations are multiplied by ‖W_dec,i‖ and the decoder divides them back out. */
  readonly rescaleActsByDecoderNorm: boolean;
  /** Old SAELens: feature activations are multiplied by the `scaling_factor` tensor before decoding. */
  readonly finetuningScalingFactor: boolean;
  /** 'hook_z': the SAE reads attn.hook_z with its heads flattened into one d_in axis. */
  readonly reshapeActivations: 'none' | 'hook_z';
  readonly hookName: string;
  readonly hookLayer: number | null;
  readonly modelName: string | null;
  readonly prependBos: boolean | null;
  readonly contextSize: number | null;
  readonly datasetPath: string | null;
  readonly modelFromPretrainedKwargs: Readonly<Record<string, unknown>> | null;
  /**
   * The SAE was trained on TransformerLens's processed model with centred
   * writing weights: residual-stream activations there are the raw ones minus
   * their per-token mean over d_model. It applies only to hooks that write to
   * the residual stream of LayerNorm models (TransformerLens skips centring
   * for RMSNorm models); `attachSae` makes that call.
   */
  readonly centerWritingWeights: boolean;
  readonly centerSource: CenterSource;
  /** Everything the cfg held under `metadata`/`meta` (or the flat layout's model keys), for writing back. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** The model, hook and dataset keys SAELens 6 keeps under `metadata` (and reads from a flat cfg's top level). */
const METADATA_KEYS = [
  'model_name',
  'hook_name',
  'model_class_name',
  'hook_head_index',
  'model_from_pretrained_kwargs',
  'prepend_bos',
  'exclude_special_tokens',
  'neuronpedia_id',
  'context_size',
  'seqpos_slice',
  'dataset_path',
  'sae_lens_version',
  'sae_lens_training_version',
];

/** The SAELens release that stopped training on TransformerLens's processed (centred) model by default. */
const NO_PROCESSING_SINCE = [3, 19, 2];

/** Reads a parsed cfg.json; `file` names it in errors. */
export function parseSaeConfig(json: Record<string, unknown>, file: string): SaeConfig {
  const bad = (what: string): LoupeError => new LoupeError(`${file}: ${what}`);
  const metaRaw = json.metadata ?? json.meta;
  if (metaRaw !== undefined && metaRaw !== null && !isObject(metaRaw)) {
    throw bad(`'${json.metadata !== undefined ? 'metadata' : 'meta'}' is not an object`);
  }
  const meta: Record<string, unknown> = isObject(metaRaw) ? metaRaw : {};
  // Model, hook and dataset keys: under metadata in the newer layout, at the top in the flat one.
  const info = (key: string): unknown => (meta[key] !== undefined ? meta[key] : json[key]);

  const positiveInt = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw bad(`'${key}' must be a positive integer, not ${JSON.stringify(value)}`);
    }
    return value;
  };
  const optionalBool = (key: string, value: unknown, fallback: boolean): boolean => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') throw bad(`'${key}' must be true or false, not ${JSON.stringify(value)}`);
    return value;
  };

  if (json.d_in === undefined) throw bad(`no 'd_in'; is this a SAELens cfg.json?`);
  const dIn = positiveInt('d_in', json.d_in);
  let dSae: number;
  if (json.d_sae !== undefined && json.d_sae !== null) dSae = positiveInt('d_sae', json.d_sae);
  else if (json.expansion_factor !== undefined)
    dSae = dIn * positiveInt('expansion_factor', json.expansion_factor);
  else throw bad(`no 'd_sae' (nor 'expansion_factor')`);

  // Architecture, with the flat layout's activation function folded in.
  const archRaw = json.architecture ?? 'standard';
  if (typeof archRaw !== 'string') throw bad(`'architecture' must be a string`);
  const actRaw = json.activation_fn_str ?? json.activation_fn ?? null;
  if (actRaw !== null && typeof actRaw !== 'string') throw bad(`'activation_fn_str' must be a string`);
  const kwargs = json.activation_fn_kwargs;
  if (kwargs !== undefined && kwargs !== null && !isObject(kwargs)) {
    throw bad(`'activation_fn_kwargs' must be an object`);
  }
  let architecture: SaeArchitecture;
  if (!(SAE_ARCHITECTURES as readonly string[]).includes(archRaw)) {
    throw bad(`architecture '${archRaw}' is not supported; Loupe reads ${SAE_ARCHITECTURES.join(', ')} SAEs`);
  }
  architecture = archRaw as SaeArchitecture;
  if (actRaw === 'topk') {
    if (architecture !== 'standard' && architecture !== 'topk') {
      throw bad(`activation_fn 'topk' does not go with architecture '${architecture}'`);
    }
    architecture = 'topk';
  } else if (actRaw !== null && actRaw !== 'relu') {
    throw bad(`activation function '${actRaw}' is not supported; Loupe reads 'relu' and 'topk'`);
  }
  let k: number | null = null;
  if (architecture === 'topk') {
    const kRaw = json.k ?? (isObject(kwargs) ? kwargs.k : undefined);
    // SAELens's TopKSAEConfig defaults k to 100.
    k = kRaw === undefined || kRaw === null ? 100 : positiveInt('k', kRaw);
    if (k > dSae) throw bad(`TopK's k = ${k} exceeds d_sae = ${dSae}`);
  }

  // normalize_activations: SAELens once wrote a boolean (true meant the April 2024 scheme).
  const normRaw = json.normalize_activations;
  let normalizeActivations: ActivationNormalization;
  if (normRaw === undefined || normRaw === null || normRaw === false) normalizeActivations = 'none';
  else if (normRaw === true) normalizeActivations = 'expected_average_only_in';
  else if (typeof normRaw === 'string' && (NORMALIZATIONS as readonly string[]).includes(normRaw)) {
    normalizeActivations = normRaw as ActivationNormalization;
  } else {
    throw bad(`normalize_activations ${JSON.stringify(normRaw)} is not one of ${NORMALIZATIONS.join(', ')}`);
  }
  const factorRaw = info('norm_scaling_factor') ?? null;
  if (factorRaw !== null && (typeof factorRaw !== 'number' || !(factorRaw > 0) || !isFinite(factorRaw))) {
    throw bad(`'norm_scaling_factor' must be a positive number, not ${JSON.stringify(factorRaw)}`);
  }

  const hookRaw = info('hook_name') ?? info('hook_point');
  if (typeof hookRaw !== 'string' || hookRaw.length === 0) {
    throw bad(`no 'hook_name'${isObject(metaRaw) ? ' (looked at the top level and under metadata)' : ''}`);
  }
  const headIndex = info('hook_head_index') ?? info('hook_point_head_index');
  if (headIndex !== undefined && headIndex !== null) {
    throw bad(
      `SAEs on a single attention head (hook_head_index ${JSON.stringify(headIndex)}) are not supported`,
    );
  }
  const reshapeRaw = json.reshape_activations ?? (hookRaw.endsWith('hook_z') ? 'hook_z' : 'none');
  if (reshapeRaw !== 'none' && reshapeRaw !== 'hook_z') {
    throw bad(`reshape_activations ${JSON.stringify(reshapeRaw)} is not 'none' or 'hook_z'`);
  }

  const layerRaw = info('hook_layer') ?? info('hook_point_layer');
  const hookLayer =
    typeof layerRaw === 'number' && Number.isInteger(layerRaw)
      ? layerRaw
      : /^blocks\.(\d+)\./.test(hookRaw)
        ? Number(/^blocks\.(\d+)\./.exec(hookRaw)![1])
        : null;

  const kwargsRaw = info('model_from_pretrained_kwargs');
  if (kwargsRaw !== undefined && kwargsRaw !== null && !isObject(kwargsRaw)) {
    throw bad(`'model_from_pretrained_kwargs' must be an object`);
  }
  const modelFromPretrainedKwargs = isObject(kwargsRaw) ? kwargsRaw : null;
  const { center, source } = centring(modelFromPretrainedKwargs, info, bad);

  const dtypeRaw = json.dtype ?? 'float32';
  if (typeof dtypeRaw !== 'string') throw bad(`'dtype' must be a string`);

  const metadata: Record<string, unknown> = {};
  for (const key of METADATA_KEYS) if (info(key) !== undefined) metadata[key] = info(key);
  for (const [key, value] of Object.entries(meta)) metadata[key] = value;
  if (metadata.hook_name === undefined) metadata.hook_name = hookRaw;

  const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  const contextRaw = info('context_size');
  return {
    architecture,
    dIn,
    dSae,
    dtype: dtypeRaw.replace(/^torch\./, ''),
    applyBDecToInput: optionalBool('apply_b_dec_to_input', json.apply_b_dec_to_input, true),
    normalizeActivations,
    normScalingFactor: factorRaw,
    k,
    rescaleActsByDecoderNorm:
      architecture === 'topk' &&
      optionalBool('rescale_acts_by_decoder_norm', json.rescale_acts_by_decoder_norm, false),
    finetuningScalingFactor: optionalBool('finetuning_scaling_factor', json.finetuning_scaling_factor, false),
    reshapeActivations: reshapeRaw,
    hookName: hookRaw,
    hookLayer,
    modelName: str(info('model_name')),
    prependBos: typeof info('prepend_bos') === 'boolean' ? (info('prepend_bos') as boolean) : null,
    contextSize: typeof contextRaw === 'number' ? contextRaw : null,
    datasetPath: str(info('dataset_path')),
    modelFromPretrainedKwargs,
    centerWritingWeights: center,
    centerSource: source,
    metadata,
  };
}

/**
 * Did the SAE see TransformerLens's centred residual stream? SAELens loads its
 * training model with `HookedTransformer.from_pretrained_no_processing(**model_from_pretrained_kwargs)`
 * since 3.19.2 (no centring unless the kwargs ask for it) and writes those
 * kwargs into cfg.json; before that it used `from_pretrained`, whose
 * `center_writing_weights` defaults to true, and wrote no kwargs (SAELens's
 * own directory marks those releases, gpt2-small-res-jb among them, as centred).
 */
function centring(
  kwargs: Record<string, unknown> | null,
  info: (key: string) => unknown,
  bad: (what: string) => LoupeError,
): { center: boolean; source: CenterSource } {
  if (kwargs && kwargs.center_writing_weights !== undefined) {
    if (typeof kwargs.center_writing_weights !== 'boolean') {
      throw bad(`model_from_pretrained_kwargs.center_writing_weights must be true or false`);
    }
    return { center: kwargs.center_writing_weights, source: 'config' };
  }
  if (kwargs) return { center: false, source: 'no-processing-default' };
  const version = info('sae_lens_training_version') ?? info('sae_lens_version');
  if (typeof version === 'string' && versionAtLeast(version, NO_PROCESSING_SINCE)) {
    return { center: false, source: 'no-processing-default' };
  }
  return { center: true, source: 'processed-model-default' };
}

function versionAtLeast(version: string, min: readonly number[]): boolean {
  const parts = version
    .replace(/^v/, '')
    .split(/[.+-]/)
    .map((p) => Number(p));
  for (let i = 0; i < min.length; i++) {
    const p = Number.isFinite(parts[i]) ? parts[i] : 0;
    if (p !== min[i]) return p > min[i];
  }
  return true;
}

/** The first SAELens version whose loader reads the layout `saeConfigToJson` writes. */
export const SAELENS_FORMAT_VERSION = '6.0.0';

/**
 * The newer (SAELens 6) layout: the SAE's own fields at the top, model, hook
 * and dataset under `metadata`. `metadata.sae_lens_version` must be 6.0 or
 * later, or SAELens reads the file as the flat layout and drops the metadata.
 * `normalize_activations` 'expected_average_only_in' with a known factor is
 * written as 'none' because `saveSae` folds the factor into the weights.
 */
export function saeConfigToJson(cfg: SaeConfig, foldedNormScaling = false): Record<string, unknown> {
  const metadata: Record<string, unknown> = { ...cfg.metadata };
  metadata.hook_name = cfg.hookName;
  if (cfg.modelName !== null) metadata.model_name = cfg.modelName;
  if (cfg.prependBos !== null) metadata.prepend_bos = cfg.prependBos;
  if (cfg.contextSize !== null) metadata.context_size = cfg.contextSize;
  if (cfg.datasetPath !== null) metadata.dataset_path = cfg.datasetPath;
  // Write the centring decision out, so no reader has to guess from version numbers.
  metadata.model_from_pretrained_kwargs = {
    ...(cfg.modelFromPretrainedKwargs ?? {}),
    center_writing_weights: cfg.centerWritingWeights,
  };
  const version = typeof metadata.sae_lens_version === 'string' ? metadata.sae_lens_version : '';
  if (!versionAtLeast(version || '0', [6, 0, 0])) metadata.sae_lens_version = SAELENS_FORMAT_VERSION;
  if (metadata.sae_lens_training_version === undefined) metadata.sae_lens_training_version = null;
  delete metadata.norm_scaling_factor;
  const out: Record<string, unknown> = {
    architecture: cfg.architecture,
    d_in: cfg.dIn,
    d_sae: cfg.dSae,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: cfg.applyBDecToInput,
    normalize_activations:
      foldedNormScaling && cfg.normalizeActivations === 'expected_average_only_in'
        ? 'none'
        : cfg.normalizeActivations,
    reshape_activations: cfg.reshapeActivations,
  };
  if (cfg.architecture === 'topk') {
    out.k = cfg.k;
    out.rescale_acts_by_decoder_norm = cfg.rescaleActsByDecoderNorm;
  }
  out.metadata = metadata;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
