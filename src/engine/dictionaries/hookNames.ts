/**
 * The hook names other tools give a dictionary, turned into Loupe's
 * (TransformerLens's `blocks.L.…`): circuit-tracer's per-block names,
 * sparsify's Hugging Face module names, and Gemma Scope's folder paths.
 */
import * as path from 'node:path';
import { LoupeError } from '../errors';
import { CoderInput } from './dictionary';

const MLP_INPUT = (layer: number): CoderInput => ({
  hook: `blocks.${layer}.ln2.hook_normalized`,
  flattenHeads: false,
  mlpInput: true,
});

const plain = (hook: string): CoderInput => ({
  hook,
  flattenHeads: hook.endsWith('.attn.hook_z'),
  mlpInput: false,
});

/**
 * circuit-tracer's `feature_input_hook` at a layer. Its names are
 * TransformerLens's within a block, plus its replacement MLP's `mlp.hook_in`
 * (the MLP's input, after the norm) and `mlp.hook_out`; `hook_mlp_in` is
 * TransformerLens's residual stream entering ln2, `hook_resid_mid` in the
 * sequential blocks its published sets are for (a parallel-residual model has
 * none, and the fit says so).
 */
export function circuitTracerInput(name: string, layer: number): CoderInput {
  switch (name) {
    case 'mlp.hook_in':
      return MLP_INPUT(layer);
    case 'hook_mlp_in':
      return plain(`blocks.${layer}.hook_resid_mid`);
    default:
      return plain(`blocks.${layer}.${name}`);
  }
}

/** circuit-tracer's `feature_output_hook` at a layer. */
export function circuitTracerOutput(name: string, layer: number): string {
  return `blocks.${layer}.${name === 'mlp.hook_out' ? 'hook_mlp_out' : name}`;
}

/** What a sparsify hook point reads and writes, in Loupe's names. */
export interface SparsifyHooks {
  readonly layer: number;
  readonly input: CoderInput;
  readonly output: string;
}

/**
 * sparsify hooks a module of the base model by name (`layers.6`,
 * `layers.6.mlp`; GPT-2's `h.6`, `h.6.mlp`). An SAE encodes and rebuilds the
 * module's output; a transcoder reads its input and predicts its output.
 * The output of a decoder layer is the residual stream after the block; of an
 * MLP, hook_mlp_out; of attention, hook_attn_out. Inputs: a block reads
 * hook_resid_pre, an MLP the normalised stream (ln2).
 */
export function sparsifyHooks(hookPoint: string, transcode: boolean, where: string): SparsifyHooks {
  const m =
    /^(?:(?:model|transformer|gpt_neox)\.)?(?:layers|h|blocks)\.(\d+)(?:\.(mlp|self_attn|attn|attention))?$/.exec(
      hookPoint,
    );
  if (!m) {
    throw new LoupeError(
      `${where}: hook point '${hookPoint}' is not one Loupe can map (layers.N, layers.N.mlp, layers.N.self_attn); ` +
        `pass --hook NAME with the TransformerLens name it reads`,
    );
  }
  const layer = Number(m[1]);
  const site = m[2];
  const b = `blocks.${layer}.`;
  if (site === undefined) {
    return {
      layer,
      input: plain(transcode ? `${b}hook_resid_pre` : `${b}hook_resid_post`),
      output: `${b}hook_resid_post`,
    };
  }
  if (site === 'mlp') {
    return {
      layer,
      input: transcode ? MLP_INPUT(layer) : plain(`${b}hook_mlp_out`),
      output: `${b}hook_mlp_out`,
    };
  }
  if (transcode) {
    throw new LoupeError(
      `${where}: a transcoder on attention ('${hookPoint}') reads the attention's normalised input, which Loupe does not map; ` +
        `pass --hook NAME with the TransformerLens name it reads`,
    );
  }
  return { layer, input: plain(`${b}hook_attn_out`), output: `${b}hook_attn_out` };
}

/** A Gemma Scope hook inferred from its path, with the words that say how. */
export interface InferredHook {
  readonly hook: string;
  readonly layer: number;
  readonly how: string;
}

/**
 * Gemma Scope keeps site and layer in the path: the repository
 * (`gemma-scope-2b-pt-res`, `…-mlp`, `…-att`, also as a hub cache folder
 * `models--google--gemma-scope-2b-pt-res`) and `layer_N/width_16k/average_l0_82`.
 * Null when the path does not say both.
 */
export function gemmaScopeHookFromPath(file: string): InferredHook | null {
  const parts = path.resolve(file).split(path.sep);
  let site: string | null = null;
  for (const part of parts) {
    const m = /gemma-scope-.*-(res|mlp|att)(?:-canonical)?$/.exec(part);
    if (m) site = m[1];
  }
  let layer: number | null = null;
  for (let i = 0; i < parts.length; i++) {
    const m = /^layer_(\d+)$/.exec(parts[i]);
    if (m && /^width_/.test(parts[i + 1] ?? '')) layer = Number(m[1]);
  }
  if (site === null || layer === null) return null;
  const hook = {
    res: `blocks.${layer}.hook_resid_post`,
    mlp: `blocks.${layer}.hook_mlp_out`,
    att: `blocks.${layer}.attn.hook_z`,
  }[site as 'res' | 'mlp' | 'att'];
  return { hook, layer, how: `inferred from the path (gemma-scope-…-${site}, layer_${layer})` };
}

/** The layer of a `blocks.L.…` hook, or null. */
export function layerOfHook(hook: string): number | null {
  const m = /^blocks\.(\d+)\./.exec(hook);
  return m ? Number(m[1]) : null;
}

/** A `--hook` given by the user, as a coder input. */
export function userHook(hook: string): CoderInput {
  return plain(hook);
}
