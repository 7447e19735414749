/**
 * A tuned lens (Belrose et al. 2023): per layer l < L an affine translator,
 * decoded as W_U · N(h + A_l·h + b_l); the last layer decodes as it is.
 *
 * On disk it is tuned-lens's folder with the parameters in safetensors
 * instead of a pickle: `config.json` (tuned-lens's TunedLensConfig: d_model,
 * num_hidden_layers, bias, lens_type, ...) and `params.safetensors` with
 * tuned-lens's state-dict names, `{i}.weight` [d_model, d_model] (nn.Linear's
 * [out, in]) and `{i}.bias` [d_model]. A public lens's `params.pt` converts
 * with tools/convert_tuned_lens.py; Loupe never unpickles it. Lenses Loupe
 * trains also record a fingerprint of the model's weights, so a lens is not
 * applied to another model by mistake.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from '../errors';
import { isPresent } from '../inputFiles';
import { HookedModel } from '../model';
import { SafetensorsFile, TensorToWrite, safetensorsChunks } from '../safetensors';
import { recoverResult, writeResultFolder } from '../safeWrite';
import { modelFingerprint } from './engineWeights';
import { Translator } from './readout';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';

export const LENS_CONFIG = 'config.json';
export const LENS_PARAMS = 'params.safetensors';

export interface TunedLensConfig {
  readonly base_model_name_or_path: string;
  readonly d_model: number;
  readonly num_hidden_layers: number;
  readonly bias: boolean;
  readonly base_model_revision: string | null;
  readonly unembed_hash: string | null;
  readonly lens_type: string;
  /** Loupe's fingerprint of the model's weights (see engineWeights.modelFingerprint); absent in public lenses. */
  readonly loupe_model_fingerprint?: string;
  /** How Loupe trained it: steps, tokens, final KL per layer. */
  readonly loupe_training?: Record<string, unknown>;
}

export class TunedLens {
  constructor(
    readonly config: TunedLensConfig,
    /** One per layer 0..L-1. */
    readonly translators: readonly Translator[],
    readonly dir: string | null = null,
  ) {}

  /** A lens whose translators are all zero: it decodes exactly as the logit lens does (training starts here). */
  static identity(model: HookedModel): TunedLens {
    const d = model.spec.dModel;
    const translators = Array.from({ length: model.spec.nLayers }, () => ({
      weight: new Float32Array(d * d),
      bias: new Float32Array(d),
    }));
    return new TunedLens(
      {
        base_model_name_or_path: path.basename(model.checkpoint.dir),
        d_model: d,
        num_hidden_layers: model.spec.nLayers,
        bias: true,
        base_model_revision: null,
        unembed_hash: null,
        lens_type: 'linear_tuned_lens',
        loupe_model_fingerprint: modelFingerprint(model),
      },
      translators,
    );
  }

  static load(dir: string): TunedLens {
    const configFile = path.join(dir, LENS_CONFIG);
    const paramsFile = path.join(dir, LENS_PARAMS);
    recoverResult(dir);
    if (!fs.existsSync(dir)) throw new LoupeError(`${dir}: no such tuned-lens folder`);
    if (!isPresent(paramsFile)) {
      if (fs.existsSync(path.join(dir, 'params.pt'))) {
        throw new LoupeError(
          `${dir}: params.pt is a PyTorch pickle, which Loupe does not load (unpickling can run code); convert it once with 'python3 tools/convert_tuned_lens.py ${dir}'`,
        );
      }
      throw new LoupeError(
        `${dir}: no ${LENS_PARAMS}; a tuned-lens folder holds ${LENS_CONFIG} and ${LENS_PARAMS}`,
      );
    }
    if (!isPresent(configFile)) throw new LoupeError(`${dir}: no ${LENS_CONFIG} beside ${LENS_PARAMS}`);
    const raw = readJsonObject(configFile, JSON_KINDS.lensConfig);
    const int = (key: string): number => {
      const v = raw[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
        throw new LoupeError(`${configFile}: '${key}' must be a positive integer, got ${JSON.stringify(v)}`);
      return v;
    };
    const lensType = typeof raw.lens_type === 'string' ? raw.lens_type : 'linear_tuned_lens';
    if (lensType !== 'linear_tuned_lens') {
      throw new LoupeError(
        `${configFile}: lens_type '${lensType}' is not a tuned lens Loupe reads (linear_tuned_lens)`,
      );
    }
    const config: TunedLensConfig = {
      base_model_name_or_path:
        typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : '',
      d_model: int('d_model'),
      num_hidden_layers: int('num_hidden_layers'),
      bias: raw.bias !== false,
      base_model_revision: typeof raw.base_model_revision === 'string' ? raw.base_model_revision : null,
      unembed_hash: typeof raw.unembed_hash === 'string' ? raw.unembed_hash : null,
      lens_type: lensType,
      ...(typeof raw.loupe_model_fingerprint === 'string'
        ? { loupe_model_fingerprint: raw.loupe_model_fingerprint }
        : {}),
      ...(raw.loupe_training && typeof raw.loupe_training === 'object'
        ? { loupe_training: raw.loupe_training as Record<string, unknown> }
        : {}),
    };
    const d = config.d_model;
    const file = SafetensorsFile.open(paramsFile);
    const read = (name: string, shape: readonly number[]): Float32Array => {
      if (!file.tensors.has(name)) throw new LoupeError(`${paramsFile}: no tensor '${name}'`);
      const info = file.info(name);
      if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i])) {
        throw new LoupeError(
          `${paramsFile}: '${name}' has shape [${info.shape.join(', ')}], but config.json's d_model ${d} needs [${shape.join(', ')}]`,
        );
      }
      const data = file.readF32(name);
      if (data.some((v) => !Number.isFinite(v)))
        throw new LoupeError(`${paramsFile}: '${name}' holds NaN or infinity`);
      return data;
    };
    const translators = Array.from({ length: config.num_hidden_layers }, (_, i) => ({
      weight: read(`${i}.weight`, [d, d]),
      bias: config.bias ? read(`${i}.bias`, [d]) : new Float32Array(d),
    }));
    return new TunedLens(config, translators, dir);
  }

  /** Refuses a lens made for another model, with a message that says how they differ. */
  checkFits(model: HookedModel): void {
    const where = this.dir ?? 'the tuned lens';
    const { d_model, num_hidden_layers } = this.config;
    if (d_model !== model.spec.dModel || num_hidden_layers !== model.spec.nLayers) {
      throw new LoupeError(
        `${where}: this tuned lens is for a model with d_model ${d_model} and ${num_hidden_layers} layers, but ${model.checkpoint.dir} has d_model ${model.spec.dModel} and ${model.spec.nLayers} layers`,
      );
    }
    const fingerprint = this.config.loupe_model_fingerprint;
    if (fingerprint !== undefined && fingerprint !== modelFingerprint(model)) {
      throw new LoupeError(
        `${where}: this tuned lens was trained for another model (its weights differ from ${model.checkpoint.dir}'s); train one for this model with 'loupe lens train'`,
      );
    }
  }

  /** Saves the lens folder, replacing a previous lens there in one step (safeWrite.ts). */
  save(dir: string): void {
    const d = this.config.d_model;
    const tensors = new Map<string, TensorToWrite>();
    this.translators.forEach((t, i) => {
      tensors.set(`${i}.weight`, { dtype: 'F32', shape: [d, d], data: t.weight });
      tensors.set(`${i}.bias`, { dtype: 'F32', shape: [d], data: t.bias });
    });
    writeResultFolder(dir, 'tuned-lens', (out) => {
      out.file(LENS_PARAMS, safetensorsChunks(tensors, { format: 'pt' }));
      out.file(LENS_CONFIG, `${JSON.stringify(this.config, null, 2)}\n`);
    });
  }
}
