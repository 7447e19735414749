/** The lens fixtures written by tools/reference/lens_reference.py (test/fixtures/lens/<model>/). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, toInts } from '../../src/engine/safetensors';
import { FIXTURES } from './helpers';

export const LENS_FIXTURES = path.join(FIXTURES, 'lens');
export const LENS_MODELS = ['gpt2', 'neox-parallel', 'llama-gqa'];

export interface LensReference {
  readonly ref: SafetensorsFile;
  /** The text the lens fixtures read (BOS first). */
  readonly ids: number[];
  readonly index: {
    readonly layers: number;
    readonly dla: { name: string; position: number; target: number; versus: number | null }[];
    readonly textspan: { steps: number; rank: number };
    readonly step: { lr: number; t: number };
  };
}

export function lensReference(name: string): LensReference {
  const ref = SafetensorsFile.open(path.join(LENS_FIXTURES, name, 'lens.safetensors'));
  const index = JSON.parse(
    fs.readFileSync(path.join(LENS_FIXTURES, name, 'lens.json'), 'utf8'),
  ) as LensReference['index'];
  return { ref, ids: toInts('I64', ref.readBytes('ids'), 'ids'), index };
}
