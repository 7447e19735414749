/**
 * What the Models & SAEs tree says about a dictionary folder that is not one
 * of SAELens's SAEs (those keep their own description in host/folders.ts):
 * format, architecture, the hooks it reads and writes, width, L0 where the
 * files say it. Only headers and small files are read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import { SAE_CFG_FILE, SAE_WEIGHTS_FILE } from '../sae/sae';
import { Dictionary } from './dictionary';
import { GEMMA_SCOPE_FILE } from './gemmaScope';
import { openDictionary, openTranscoders } from './open';
import { saelensExtendedArchitecture } from './saelensTranscoder';
import { isSparsifyFolder } from './sparsify';
import { isTranscoderSetFolder } from './transcoderSet';

export interface DictionarySummary {
  readonly format: string;
  readonly architecture: string;
  /** The input hook (of layer 0 for a set). */
  readonly hook: string;
  /** Where the decoder writes when that is not the input hook (transcoders), else null. */
  readonly outputHook: string | null;
  /** Coders: 1, or a set's layers. */
  readonly layers: number;
  readonly dIn: number;
  readonly width: number;
  /** TopK's k, else null. */
  readonly k: number | null;
  /** The average L0 the files state (Gemma Scope's `average_l0_N` folder), or k; null where unknown. */
  readonly l0: number | null;
}

/** A folder in one of the formats this module reads besides SAELens's SAE class: the tree lists it. */
export function isOtherDictionaryFolder(dir: string): boolean {
  if (
    fs.existsSync(path.join(dir, GEMMA_SCOPE_FILE)) ||
    isTranscoderSetFolder(dir) ||
    isSparsifyFolder(dir)
  ) {
    return true;
  }
  const cfg = path.join(dir, SAE_CFG_FILE);
  if (!fs.existsSync(cfg) || !fs.existsSync(path.join(dir, SAE_WEIGHTS_FILE))) return false;
  try {
    return saelensExtendedArchitecture(readJsonObject(cfg, JSON_KINDS.saeConfig)) !== null;
  } catch {
    return false;
  }
}

/** Opens the folder as the loader would (headers only) for the tree. */
export function openForDescription(dir: string): Dictionary {
  return isTranscoderSetFolder(dir) ? openTranscoders(dir) : openDictionary(dir);
}

export function summarizeDictionary(dict: Dictionary): DictionarySummary {
  const first = dict.coders[0];
  const out = first.outputHooks[0];
  const k =
    first.activation.kind === 'topk' || first.activation.kind === 'groupmax' ? first.activation.k : null;
  const stated = /(?:^|[\\/])average_l0_(\d+)(?:$|[\\/])/.exec(dict.path);
  return {
    format: dict.format,
    architecture: first.architecture,
    hook: first.input.hook,
    outputHook: out !== first.input.hook ? out : null,
    layers: dict.coders.length,
    dIn: first.dIn,
    width: first.width,
    k,
    l0: stated ? Number(stated[1]) : k,
  };
}
