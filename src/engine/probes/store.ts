/**
 * Saved probes: a folder with `probe.json` (what was trained on what, and the
 * per-hook results a chart of accuracy by layer is drawn from) and
 * `probe.safetensors` (per hook `<hook>.weight` [outputs, width] and
 * `<hook>.bias` [outputs], in the raw activation space: a notebook scores
 * activations with `x @ weight.T + bias`; one output row for two classes, the
 * logit of labels[1] against labels[0], else one per class). Versioned, so a
 * later Loupe can read what an earlier one wrote.
 */
import * as path from 'node:path';
import { LoupeError } from '../errors';
import { isPresent } from '../inputFiles';
import { HookedModel } from '../model';
import { SafetensorsFile, TensorToWrite, safetensorsChunks } from '../safetensors';
import { recoverResult, writeResultFolder } from '../safeWrite';
import { hookWidth } from '../sae/activations';
import {
  arrayOf,
  bool,
  int,
  literal,
  nonNegInt,
  nullable,
  num,
  openObject,
  recordOf,
  str,
} from '../../shared/schema';
import { JSON_KINDS, checkJson, readJsonObject } from '../untrustedJson';
import { LinearClassifier } from './logistic';
import { ProbeResults } from './probing';

export const PROBE_JSON = 'probe.json';
export const PROBE_TENSORS = 'probe.safetensors';
export const PROBE_FORMAT = 'loupe-probe';
export const PROBE_VERSION = 1;

/** One hook's results, as saved (the classifier lives in the safetensors file). */
export interface SavedHookResult {
  readonly hook: string;
  readonly layer: number;
  readonly width: number;
  readonly accuracy: number;
  readonly trainAccuracy: number;
  readonly majorityBaseline: number;
  readonly controlAccuracy: number | null;
  readonly selectivity: number | null;
  readonly trainLoss: number;
  readonly iterations: number;
  readonly converged: boolean;
}

export interface ProbeMetadata {
  readonly format: typeof PROBE_FORMAT;
  readonly version: number;
  readonly model: {
    readonly name: string;
    readonly modelType: string;
    readonly nLayers: number;
    readonly dModel: number;
    readonly dVocab: number;
  };
  readonly dataset: string;
  readonly labels: string[];
  readonly counts: Record<string, number>;
  readonly split: ProbeResults['split'];
  readonly options: ProbeResults['options'];
  readonly hooks: SavedHookResult[];
  readonly seconds: number;
}

export interface SavedProbe {
  readonly dir: string | null;
  readonly meta: ProbeMetadata;
  readonly classifiers: ReadonlyMap<string, LinearClassifier>;
}

/** A trained set of probes with its metadata, as saved. */
export function probeFromResults(model: HookedModel, results: ProbeResults): SavedProbe {
  const spec = model.spec;
  const meta: ProbeMetadata = {
    format: PROBE_FORMAT,
    version: PROBE_VERSION,
    model: {
      name: path.basename(model.checkpoint.dir),
      modelType: spec.modelType,
      nLayers: spec.nLayers,
      dModel: spec.dModel,
      dVocab: spec.dVocab,
    },
    dataset: results.dataset,
    labels: results.labels,
    counts: results.counts,
    split: results.split,
    options: results.options,
    hooks: results.hooks.map((h) => ({
      hook: h.hook,
      layer: h.layer,
      width: h.classifier.dim,
      accuracy: h.accuracy,
      trainAccuracy: h.trainAccuracy,
      majorityBaseline: h.majorityBaseline,
      controlAccuracy: h.controlAccuracy,
      selectivity: h.selectivity,
      trainLoss: h.trainLoss,
      iterations: h.iterations,
      converged: h.converged,
    })),
    seconds: results.seconds,
  };
  return { dir: null, meta, classifiers: new Map(results.hooks.map((h) => [h.hook, h.classifier])) };
}

/** Saves a probe folder, replacing a previous probe there in one step (safeWrite.ts). */
export function saveProbe(dir: string, probe: SavedProbe): void {
  const tensors = new Map<string, TensorToWrite>();
  for (const [hook, c] of probe.classifiers) {
    const outputs = c.bias.length;
    tensors.set(`${hook}.weight`, { dtype: 'F32', shape: [outputs, c.dim], data: c.weight });
    tensors.set(`${hook}.bias`, { dtype: 'F32', shape: [outputs], data: c.bias });
  }
  writeResultFolder(dir, 'probe', (out) => {
    out.file(
      PROBE_TENSORS,
      safetensorsChunks(tensors, {
        format: PROBE_FORMAT,
        version: String(PROBE_VERSION),
        labels: JSON.stringify(probe.meta.labels),
      }),
    );
    out.file(PROBE_JSON, `${JSON.stringify(probe.meta, null, 2)}\n`);
  });
}

/** probe.json as loadProbe reads it: what the views and `probeHook` use, checked field by field. */
const probeMetadataSchema = openObject({
  format: literal(PROBE_FORMAT),
  version: nonNegInt,
  model: openObject({ name: str, modelType: str, nLayers: nonNegInt, dModel: nonNegInt, dVocab: nonNegInt }),
  dataset: str,
  labels: arrayOf(str),
  counts: recordOf(nonNegInt),
  split: openObject({
    trainDocuments: nonNegInt,
    testDocuments: nonNegInt,
    trainExamples: nonNegInt,
    testExamples: nonNegInt,
  }),
  options: openObject({ l2: num, testFraction: num, seed: num, control: bool }),
  hooks: arrayOf(
    openObject({
      hook: str,
      layer: int,
      width: nonNegInt,
      accuracy: num,
      trainAccuracy: num,
      majorityBaseline: num,
      controlAccuracy: nullable(num),
      selectivity: nullable(num),
      trainLoss: num,
      iterations: nonNegInt,
      converged: bool,
    }),
  ),
  seconds: num,
});

/** Opens a saved probe folder (or its probe.json). */
export function loadProbe(dirOrFile: string): SavedProbe {
  const dir = path.basename(dirOrFile) === PROBE_JSON ? path.dirname(dirOrFile) : dirOrFile;
  recoverResult(dir);
  const file = path.join(dir, PROBE_JSON);
  if (!isPresent(file)) throw new LoupeError(`${dir}: no ${PROBE_JSON}; not a saved Loupe probe`);
  const json = readJsonObject(file, JSON_KINDS.probe);
  if (json.format !== PROBE_FORMAT)
    throw new LoupeError(`${file}: not a Loupe probe (format '${String(json.format)}')`);
  if (typeof json.version !== 'number' || json.version > PROBE_VERSION) {
    throw new LoupeError(
      `${file}: probe format version ${String(json.version)} is newer than this Loupe reads (${PROBE_VERSION}); update Loupe`,
    );
  }
  const meta: ProbeMetadata = checkJson(json, probeMetadataSchema, file);
  if (meta.labels.length < 2) throw new LoupeError(`${file}: 'labels' must hold at least two labels`);
  const tensors = SafetensorsFile.open(path.join(dir, PROBE_TENSORS));
  const K = meta.labels.length;
  const outputs = K === 2 ? 1 : K;
  const classifiers = new Map<string, LinearClassifier>();
  for (const h of meta.hooks) {
    const w = tensors.tensors.get(`${h.hook}.weight`);
    const b = tensors.tensors.get(`${h.hook}.bias`);
    if (!w || !b) throw new LoupeError(`${tensors.file}: no weight and bias for hook ${h.hook}`);
    if (w.shape.length !== 2 || w.shape[0] !== outputs || b.shape.length !== 1 || b.shape[0] !== outputs) {
      throw new LoupeError(
        `${tensors.file}: ${h.hook}.weight is [${w.shape.join(', ')}] and .bias [${b.shape.join(', ')}], but ${K} labels need ${outputs} output row${outputs === 1 ? '' : 's'}`,
      );
    }
    classifiers.set(h.hook, {
      classes: K,
      dim: w.shape[1],
      weight: tensors.readF32(w.name),
      bias: tensors.readF32(b.name),
    });
  }
  return { dir, meta, classifiers };
}

/**
 * The hook to read a probe at: the one named (it must be in the probe), or
 * the one with the best held-out accuracy. Checks the model has it, at the
 * width the probe was trained at.
 */
export function probeHook(model: HookedModel, probe: SavedProbe, hook?: string): string {
  const where = probe.dir ?? 'the probe';
  let chosen = hook;
  if (chosen === undefined) {
    const best = [...probe.meta.hooks].sort((a, b) => b.accuracy - a.accuracy)[0];
    if (!best) throw new LoupeError(`${where}: holds no hooks`);
    chosen = best.hook;
  }
  const c = probe.classifiers.get(chosen);
  if (!c) {
    throw new LoupeError(
      `${where}: no probe at ${chosen}; it has ${[...probe.classifiers.keys()].join(', ')}`,
    );
  }
  const width = hookWidth(model, chosen);
  if (width !== c.dim) {
    throw new LoupeError(
      `${where}: the probe at ${chosen} reads ${c.dim} values, but this model has ${width} there; it was trained on another model (${probe.meta.model.name})`,
    );
  }
  return chosen;
}
