/**
 * SAELens folders that do not hold what their cfg.json says: fields of the
 * wrong type or missing, sizes that disagree with the model or the weights,
 * weights of the wrong dtype or shape or with NaN in them, a JumpReLU
 * without its threshold. Each is one line naming cfg.json or the weights file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../../../src/engine/safetensors';
import type { FuzzCase } from '../case';
import { fifo, writeInput } from '../caseFiles';
import { TINY_GPT2, deepJson } from '../checkpointCopies';
import { writeRandomSae } from '../../unit/helpers';

type Json = Record<string, unknown>;
const D_MODEL = 32; // the tiny GPT-2's
const D_SAE = 64;
const HOOK = 'blocks.0.hook_resid_post';

/** A random SAE on the tiny GPT-2 at `dir/sae`, and `features` over a short text with it. */
function saeArgs(dir: string, prepare: (sae: string) => void, dIn = D_MODEL): string[] {
  const sae = path.join(dir, 'sae');
  writeRandomSae(sae, { dIn, dSae: D_SAE, hook: HOOK, contextSize: null });
  prepare(sae);
  const text = writeInput(dir, 'text.txt', 'def f(x):\n    return x\n');
  return ['features', '--model', TINY_GPT2, '--sae', sae, '--text', text, '--top', '3', '--json'];
}

function cfg(name: string, edit: (c: Json) => unknown, error: RegExp): FuzzCase {
  return {
    name: `sae/${name}`,
    area: 'sae',
    setup: (dir) =>
      saeArgs(dir, (sae) => {
        const file = path.join(sae, 'cfg.json');
        const edited = edit(JSON.parse(fs.readFileSync(file, 'utf8')) as Json);
        fs.writeFileSync(file, typeof edited === 'string' ? edited : JSON.stringify(edited));
      }),
    expect: { error },
    untouched: ['sae'],
  };
}

/** The SAE's weights rewritten: `edit` gets them as f32 and returns what to write. */
function weights(
  name: string,
  edit: (t: Map<string, TensorToWrite>) => Map<string, TensorToWrite>,
  error: RegExp,
  editCfg: (c: Json) => Json = (c) => c,
): FuzzCase {
  return {
    name: `sae/${name}`,
    area: 'sae',
    setup: (dir) =>
      saeArgs(dir, (sae) => {
        const file = path.join(sae, 'sae_weights.safetensors');
        const st = SafetensorsFile.open(file);
        const tensors = new Map<string, TensorToWrite>(
          [...st.tensors.keys()].map((n) => [
            n,
            { dtype: 'F32', shape: st.info(n).shape, data: st.readF32(n) },
          ]),
        );
        writeSafetensors(file, edit(tensors));
        const cfgFile = path.join(sae, 'cfg.json');
        fs.writeFileSync(
          cfgFile,
          JSON.stringify(editCfg(JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Json)),
        );
      }),
    expect: { error },
  };
}

export const cases: FuzzCase[] = [
  {
    name: 'sae/intact',
    area: 'sae',
    setup: (dir) => saeArgs(dir, () => undefined),
    expect: { ok: true },
  },
  cfg(
    'd-in-a-string',
    (c) => ({ ...c, d_in: '32' }),
    /cfg\.json: 'd_in' must be a positive integer, not "32"/,
  ),
  cfg('d-in-missing', ({ d_in: _d, ...c }) => c, /cfg\.json: no 'd_in'; is this a SAELens cfg\.json\?/),
  cfg('d-sae-missing', ({ d_sae: _d, ...c }) => c, /cfg\.json: no 'd_sae' \(nor 'expansion_factor'\)/),
  cfg(
    'd-sae-negative',
    (c) => ({ ...c, d_sae: -64 }),
    /cfg\.json: 'd_sae' must be a positive integer, not -64/,
  ),
  cfg(
    'd-in-disagrees-with-weights',
    (c) => ({ ...c, d_in: 16 }),
    /sae_weights\.safetensors: tensor 'W_enc' has shape \[32, 64\] but cfg\.json's d_in = 16 and d_sae = 64 need \[16, 64\]/,
  ),
  cfg(
    'd-sae-disagrees-with-weights',
    (c) => ({ ...c, d_sae: 65 }),
    /sae_weights\.safetensors: tensor 'W_enc' has shape \[32, 64\] but cfg\.json's d_in = 32 and d_sae = 65 need \[32, 65\]/,
  ),
  cfg(
    'd-sae-a-trillion',
    (c) => ({ ...c, d_sae: 1e12 }),
    /sae_weights\.safetensors: tensor 'W_enc' has shape \[32, 64\] but .* d_sae = 1000000000000 need/,
  ),
  cfg(
    'architecture-unknown',
    (c) => ({ ...c, architecture: 'sparse-magic' }),
    /cfg\.json: architecture 'sparse-magic' is not supported/,
  ),
  cfg(
    'architecture-a-number',
    (c) => ({ ...c, architecture: 3 }),
    /cfg\.json: 'architecture' must be a string/,
  ),
  cfg('metadata-a-list', (c) => ({ ...c, metadata: [1] }), /cfg\.json: 'metadata' is not an object/),
  cfg('hook-name-missing', (c) => ({ ...c, metadata: {} }), /cfg\.json: no 'hook_name'/),
  cfg(
    'hook-not-in-the-model',
    (c) => ({ ...c, metadata: { ...(c.metadata as Json), hook_name: 'blocks.9.hook_resid_post' } }),
    /sae: the SAE reads hook 'blocks\.9\.hook_resid_post', which model .* does not have/,
  ),
  cfg(
    'normalize-activations-unknown',
    (c) => ({ ...c, normalize_activations: 'sometimes' }),
    /cfg\.json: normalize_activations "sometimes" is not one of/,
  ),
  cfg('dtype-a-number', (c) => ({ ...c, dtype: 32 }), /cfg\.json: 'dtype' must be a string/),
  cfg(
    'topk-k-beyond-d-sae',
    (c) => ({ ...c, architecture: 'topk', k: 1000 }),
    /cfg\.json: TopK's k = 1000 exceeds d_sae = 64/,
  ),
  cfg('not-json', () => '{"d_in": 32,', /cfg\.json: the SAE config is not valid JSON/),
  cfg(
    'nested-deep',
    () => `{"d_in": ${deepJson(200_000)}}`,
    /cfg\.json: the SAE config is nested more than 64 levels deep/,
  ),
  cfg('top-level-a-string', () => '"an SAE"', /cfg\.json: the top level must be an object, got "an SAE"/),
  {
    name: 'sae/cfg-a-fifo',
    area: 'sae',
    setup: (dir) =>
      saeArgs(dir, (sae) => {
        fs.rmSync(path.join(sae, 'cfg.json'));
        fifo(sae, 'cfg.json');
      }),
    expect: { error: /cfg\.json: SAE config is not a regular file/ },
    timeoutMs: 10_000,
  },
  weights(
    'jumprelu-without-threshold',
    (t) => t,
    /sae_weights\.safetensors: no tensor 'threshold', which a jumprelu SAE needs/,
    (c) => ({ ...c, architecture: 'jumprelu' }),
  ),
  weights(
    'nan-in-w-enc',
    (t) => {
      const w = t.get('W_enc')!;
      const data = Float32Array.from(w.data as Float32Array);
      data[7] = NaN;
      return new Map(t).set('W_enc', { ...w, data });
    },
    /sae_weights\.safetensors: tensor 'W_enc' holds a non-finite value .* at index 7/,
  ),
  weights(
    'w-enc-transposed',
    (t) => {
      const w = t.get('W_enc')!;
      return new Map(t).set('W_enc', { ...w, shape: [...w.shape].reverse() });
    },
    /sae_weights\.safetensors: tensor 'W_enc' has shape \[64, 32\] but .* need \[32, 64\]/,
  ),
  weights(
    'w-dec-missing',
    (t) => {
      const m = new Map(t);
      m.delete('W_dec');
      return m;
    },
    /sae_weights\.safetensors: no tensor 'W_dec', which a standard SAE needs/,
  ),
  weights(
    'weights-integer-dtype',
    (t) => {
      const w = t.get('b_dec')!;
      return new Map(t).set('b_dec', { dtype: 'I32', shape: w.shape, data: new Int32Array(w.shape[0]) });
    },
    /sae_weights\.safetensors: tensor 'b_dec' is I32; a floating-point tensor \(F32, F16, BF16\) was expected/,
  ),
  {
    name: 'sae/d-in-does-not-fit-the-model',
    area: 'sae',
    setup: (dir) => saeArgs(dir, () => undefined, 16),
    expect: {
      error:
        /sae: the SAE's d_in is 16 at blocks\.0\.hook_resid_post, but model .* has last dimension 32 there/,
    },
  },
  {
    name: 'sae/weights-file-missing',
    area: 'sae',
    setup: (dir) => saeArgs(dir, (sae) => fs.rmSync(path.join(sae, 'sae_weights.safetensors'))),
    expect: { error: /sae: no sae_weights\.safetensors/ },
  },
];
