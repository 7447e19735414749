/**
 * Rotary embeddings' frequencies: Hugging Face's `rope_scaling` read from a
 * config (one reader for every family) and the inverse frequencies computed
 * as `modeling_rope_utils` computes them, in f32 (`Math.fround` where torch
 * rounds), so the angles the graph makes from them match position for position.
 */
import { LoupeError } from '../errors';
import { ConfigReader, ModelSpec, RopeScaling, RopeSpec } from './spec';

/**
 * Reads `rope_scaling` (null, `default`, `linear`, `llama3`); every other type
 * (`dynamic`, `yarn`, `longrope`, `su`, ...) is refused by name, since each
 * changes the angles.
 */
export function readRopeScaling(c: ConfigReader, key = 'rope_scaling'): RopeScaling {
  const sub = c.optionalObject(key);
  if (!sub) return { type: 'default' };
  const type = sub.has('rope_type') ? sub.str('rope_type', '') : sub.str('type', 'default');
  switch (type) {
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: sub.positive('factor') };
    case 'llama3': {
      const lowFreqFactor = sub.positive('low_freq_factor');
      const highFreqFactor = sub.positive('high_freq_factor');
      if (highFreqFactor <= lowFreqFactor) {
        throw new LoupeError(
          `${c.file}: '${key}.high_freq_factor' (${highFreqFactor}) must be larger than 'low_freq_factor' (${lowFreqFactor})`,
        );
      }
      return {
        type: 'llama3',
        factor: sub.positive('factor'),
        lowFreqFactor,
        highFreqFactor,
        originalMaxPositions: sub.int('original_max_position_embeddings'),
      };
    }
    default:
      throw new LoupeError(
        `${c.file}: '${key}' type '${type}' is not supported; Loupe runs rotary scaling 'linear' and 'llama3' (or none)`,
      );
  }
}

/** `inv_freq` [rotaryDims / 2] for one layer's rotary embedding, in f32 as torch computes it. */
export function inverseFrequencies(rope: RopeSpec, rotaryDims: number): Float32Array {
  const f = Math.fround;
  const half = rotaryDims / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(rope.base, f((2 * i) / rotaryDims))));
  const s = rope.scaling;
  if (s.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = f(inv[i] / s.factor);
  } else if (s.type === 'llama3') {
    // Long wavelengths are slowed by `factor`, short ones kept, and the band between blended smoothly.
    const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = f(f(2 * Math.PI) / inv[i]);
      const scaled = wavelen > lowFreqWavelen ? f(inv[i] / s.factor) : inv[i];
      if (wavelen < highFreqWavelen || wavelen > lowFreqWavelen) {
        inv[i] = scaled;
        continue;
      }
      const smooth = f(
        f(f(s.originalMaxPositions / wavelen) - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor),
      );
      inv[i] = f(f(f(f(1 - smooth) * scaled) / s.factor) + f(smooth * scaled));
    }
  }
  return inv;
}

/** The rotary tables a model needs: one per distinct RopeSpec, and each layer's index into them. */
export function rotaryTables(spec: ModelSpec): { tables: RopeSpec[]; ofLayer: number[] } {
  const tables: RopeSpec[] = [];
  const keys: string[] = [];
  const ofLayer = spec.rope.map((r) => {
    const key = JSON.stringify(r);
    let i = keys.indexOf(key);
    if (i < 0) {
      i = keys.push(key) - 1;
      tables.push(r);
    }
    return i;
  });
  return { tables, ofLayer };
}

/** Engine weight name of a rotary table's inverse frequencies. */
export function invFreqWeight(table: number): string {
  return `rotary.${table}.inv_freq`;
}
