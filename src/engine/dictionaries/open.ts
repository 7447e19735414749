/**
 * Opening a dictionary from a path, whatever its format: the one place that
 * tells the formats apart (by the files they hold) and the one place that
 * turns each into the `Dictionary` shape.
 *
 * - `cfg.json` + `sae_weights.safetensors`: SAELens (its SAE class for
 *   standard, gated, jumprelu, topk; saelensTranscoder.ts for transcoders and
 *   batchtopk checkpoints)
 * - `cfg.json` + `sae.safetensors`: a sparsify hook point (a folder of them:
 *   pick one with `layer`)
 * - `params.npz` (or the file): Gemma Scope
 * - `config.yaml`: a circuit-tracer transcoder set or CLT
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import { LoupeError } from '../errors';
import { checkFolder, isPresent, regularFileSize } from '../inputFiles';
import { recoverResult } from '../safeWrite';
import { SAE_CFG_FILE, SAE_WEIGHTS_FILE, Sae, SaeOptions } from '../sae/sae';
import { CoderActivation, Dictionary, SparseCoder, SparseEncoder, describeActivation } from './dictionary';
import { EncoderGraphOptions } from './encoderGraph';
import { gemmaScopeFile, openGemmaScope } from './gemmaScope';
import { circuitTracerInput, circuitTracerOutput, userHook } from './hookNames';
import { openSaelensExtended, saelensExtendedArchitecture } from './saelensTranscoder';
import { isSparsifyFolder, openSparsify, sparsifyHookPoints } from './sparsify';
import {
  TranscoderLayer,
  TranscoderSetFolder,
  isTranscoderSetFolder,
  openTranscoderSet,
} from './transcoderSet';

export interface OpenDictionaryOptions extends SaeOptions {
  /** `--hook`: the hook it reads, where the files do not say (Gemma Scope) or to override them. */
  readonly hook?: string | null;
  /** `--layer`: one layer of a dictionary that has several (a sparsify checkpoint, a transcoder set or CLT). */
  readonly layer?: number | null;
}

/** A SAELens SAE in the dictionary shape; `sae` is kept so that fitting can centre as SAELens's SAE class decides. */
export interface SaelensCoder extends SparseCoder {
  readonly sae: Sae;
}

export function isSaelensCoder(c: SparseCoder): c is SaelensCoder {
  return (c as Partial<SaelensCoder>).sae instanceof Sae;
}

/** `--sae PATH`: one dictionary (one coder) in any format. */
export function openDictionary(p: string, options: OpenDictionaryOptions = {}): Dictionary {
  const hook = options.hook ?? null;
  const layer = options.layer ?? null;
  if (p.endsWith('.npz')) {
    regularFileSize(p, 'Gemma Scope file');
    return openGemmaScope(p, hook, options);
  }
  recoverResult(p); // a save a kill cut short is finished (or rolled back) before the folder is read
  if (!isPresent(p)) throw new LoupeError(`${p}: no such SAE folder (nor transcoder or dictionary file)`);
  checkFolder(p, 'dictionary folder');
  if (isTranscoderSetFolder(p)) {
    const set = openTranscoders(p, options);
    if (layer === null) {
      throw new LoupeError(
        `${p}: a ${set.format} with ${set.coders.length} layers; pass --layer L for one of them, or --transcoders ${p} for every layer`,
      );
    }
    const coder = set.coders[layer];
    if (!coder)
      throw new LoupeError(`${p}: --layer ${layer}, but the set has layers 0..${set.coders.length - 1}`);
    return { ...set, coders: [hook ? { ...coder, input: userHook(hook) } : coder] };
  }
  if (gemmaScopeFile(p)) return openGemmaScope(p, hook, options);
  if (isSparsifyFolder(p)) return openSparsify(p, hook, options);
  const cfgFile = path.join(p, SAE_CFG_FILE);
  if (fs.existsSync(cfgFile) && fs.existsSync(path.join(p, SAE_WEIGHTS_FILE))) {
    if (saelensExtendedArchitecture(readJsonObject(cfgFile, JSON_KINDS.saeConfig)))
      return openSaelensExtended(p, hook, options);
    return saelensDictionary(p, hook, options);
  }
  const points = sparsifyHookPoints(p);
  if (points.length > 0) {
    if (layer === null) {
      throw new LoupeError(
        `${p}: a sparsify checkpoint with ${points.length} hook points (${points.slice(0, 6).join(', ')}${points.length > 6 ? ', …' : ''}); pass --layer L or the hook point's folder`,
      );
    }
    const pick = points.filter((name) =>
      new RegExp(`^(?:[a-z_]+\\.)*(?:layers|h)\\.${layer}(\\.|$)`).test(name),
    );
    const exact = pick.find((name) => !name.includes('.mlp') && !name.includes('attn')) ?? pick[0];
    if (!exact) throw new LoupeError(`${p}: no hook point for --layer ${layer}; it has ${points.join(', ')}`);
    if (pick.length > 1) {
      throw new LoupeError(
        `${p}: --layer ${layer} matches ${pick.join(', ')}; pass the hook point's folder instead`,
      );
    }
    return openSparsify(path.join(p, exact), hook, options);
  }
  // Let SAELens's loader give its own message (no cfg.json, a pickle, another name).
  return saelensDictionary(p, hook, options);
}

function saelensDictionary(p: string, hook: string | null, options: SaeOptions): Dictionary {
  if (hook !== null) {
    throw new LoupeError(
      `${p}: --hook is for dictionaries without a config (Gemma Scope); a SAELens folder names its hook in cfg.json`,
    );
  }
  const sae = Sae.load(p, options);
  const cfg = sae.config;
  const activation: CoderActivation =
    cfg.architecture === 'topk'
      ? { kind: 'topk', k: cfg.k ?? 0, relu: true }
      : cfg.architecture === 'jumprelu'
        ? { kind: 'jumprelu' }
        : { kind: 'relu' };
  const coder: SaelensCoder = {
    sae,
    layer: cfg.hookLayer,
    input: { hook: cfg.hookName, flattenHeads: cfg.reshapeActivations === 'hook_z', mlpInput: false },
    outputHooks: [cfg.hookName],
    dIn: cfg.dIn,
    dOut: cfg.dIn,
    width: cfg.dSae,
    activation,
    architecture: cfg.architecture,
    hasSkip: false,
    encode: (x) => sae.encode(x),
    decoderRows: (features) => {
      const w = sae.params.get('W_dec')!.data;
      const out = new Float32Array(features.length * cfg.dIn);
      features.forEach((f, i) => out.set(w.subarray(f * cfg.dIn, (f + 1) * cfg.dIn), i * cfg.dIn));
      return out;
    },
    decoderBias: () => sae.params.get('b_dec')!.data,
    skipWeight: () => null,
  };
  return {
    path: sae.dir ?? p,
    format: 'saelens',
    coders: [coder],
    notes: [...sae.warnings],
    dispose: () => sae.dispose(),
  };
}

/** `--transcoders SET_DIR`: every layer of a circuit-tracer transcoder set or CLT. */
export function openTranscoders(dir: string, options: EncoderGraphOptions = {}): Dictionary {
  const set = openTranscoderSet(dir);
  const format = set.config.modelKind === 'transcoder_set' ? 'transcoder-set' : 'cross-layer-transcoder';
  const encoders: SparseEncoder[] = [];
  const coders = set.layers.map((l) => transcoderCoder(set, l, options, encoders));
  const first = coders[0];
  const notes = [
    `${format}: ${set.nLayers} layers of ${set.dTranscoder} features, ${first.architecture}; ` +
      `reads ${set.config.featureInputHook} (${first.input.hook} at layer 0), writes ${set.config.featureOutputHook}`,
  ];
  const dispose = async (): Promise<void> => {
    await Promise.all(encoders.map((e) => e.dispose()));
  };
  return { path: dir, format, coders, notes, dispose };
}

function transcoderCoder(
  set: TranscoderSetFolder,
  l: TranscoderLayer,
  options: EncoderGraphOptions,
  encoders: SparseEncoder[],
): SparseCoder {
  const activation: CoderActivation =
    l.activation.kind === 'topk'
      ? { kind: 'topk', k: l.activation.k, relu: false }
      : l.activation.kind === 'jump_relu'
        ? { kind: 'jumprelu' }
        : { kind: 'relu' };
  const { dModel, dTranscoder } = set;
  const encoder = new SparseEncoder(
    `${set.dir} layer ${l.layer}`,
    dModel,
    dTranscoder,
    activation,
    () => ({
      wEnc: l.readEncoder(),
      bEnc: l.readEncoderBias(),
      threshold: l.readThreshold(),
      inputShift: null,
    }),
    options,
  );
  encoders.push(encoder);
  return {
    layer: l.layer,
    input: circuitTracerInput(set.config.featureInputHook, l.layer),
    outputHooks: l.outputLayers.map((o) => circuitTracerOutput(set.config.featureOutputHook, o)),
    dIn: dModel,
    dOut: dModel,
    width: dTranscoder,
    activation,
    architecture: `${describeActivation(activation)}${l.hasSkip ? ' + skip' : ''}`,
    hasSkip: l.hasSkip,
    encode: async (x) => encoder.encode(x),
    decoderRows: (features) => l.readDecoderRows(features),
    decoderBias: () => l.readDecoderBias(),
    skipWeight: () => l.readSkip(),
  };
}
