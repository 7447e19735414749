/**
 * A dictionary fitted to a model: every coder's input hook found in the
 * model's hook table with the width the coder expects, every output hook
 * too, each mismatch refused in one line naming both sides; then the feature
 * activations of a text's tokens, every coder read at its input hook in one
 * forward pass.
 */
import { LoupeError } from '../errors';
import { ModelSpec } from '../families/spec';
import { HookPoint, hookPoints, hookShape } from '../hooks';
import { HookedModel } from '../model';
import { AttachedSae, attachSae, saeFeatures, saeFeaturesPadded, saeFitsModel } from '../sae/splice';
import { Tensor } from '../tensor';
import { Dictionary, SparseCoder } from './dictionary';
import { isSaelensCoder } from './open';

export interface FittedCoder {
  readonly coder: SparseCoder;
  readonly hook: HookPoint;
  /** RMSNorm's ln2 weight, multiplied into `ln2.hook_normalized` to give the MLP's input; null where the hook is it. */
  readonly inputScale: Float32Array | null;
  /** SAELens SAEs go through their own attach (centring as their cfg says). */
  readonly attached: AttachedSae | null;
}

export interface FittedDictionary {
  readonly dictionary: Dictionary;
  readonly model: HookedModel;
  readonly coders: readonly FittedCoder[];
}

export function fitDictionary(model: HookedModel, dictionary: Dictionary): FittedDictionary {
  const coders = dictionary.coders.map((coder, i): FittedCoder => {
    if (isSaelensCoder(coder)) {
      const attached = attachSae(model, coder.sae);
      return { coder, hook: attached.hook, inputScale: null, attached };
    }
    const problem = coderMismatch(model.spec, model.checkpoint.dir, dictionary, i);
    if (problem) throw new LoupeError(problem);
    const hook = model.hookTable.find((h) => h.name === coder.input.hook)!;
    return {
      coder,
      hook,
      inputScale: coder.input.mlpInput ? mlpInputScale(model, hook.layer) : null,
      attached: null,
    };
  });
  return { dictionary, model, coders };
}

/** Whether every coder of the dictionary reads and writes hooks the model has, at their widths. */
export function dictionaryFitsModel(spec: ModelSpec, dictionary: Dictionary): boolean {
  return dictionary.coders.every((c, i) =>
    isSaelensCoder(c) ? saeFitsModel(spec, c.sae.config) : coderMismatch(spec, '', dictionary, i) === null,
  );
}

/** Why coder `i` does not fit the model, naming both sides; null when it fits. */
function coderMismatch(spec: ModelSpec, modelName: string, dictionary: Dictionary, i: number): string | null {
  const coder = dictionary.coders[i];
  const table = hookPoints(spec);
  const nLayers = spec.nLayers;
  const who = dictionary.coders.length > 1 ? `${dictionary.path} layer ${coder.layer ?? i}` : dictionary.path;
  if (coder.layer !== null && coder.layer >= nLayers) {
    const of =
      dictionary.coders.length > 1 ? ` of a ${dictionary.coders.length}-layer ${dictionary.format}` : '';
    return `${who}: reads layer ${coder.layer}${of} (${coder.input.hook}), but model ${modelName} has ${nLayers} layers (0..${nLayers - 1})`;
  }
  const hook = table.find((h) => h.name === coder.input.hook);
  if (!hook) {
    return `${who}: reads hook '${coder.input.hook}', which model ${modelName} does not have (see 'loupe hooks --model DIR')`;
  }
  const width = hookWidth(spec, hook, coder.input.flattenHeads);
  if (width !== coder.dIn) {
    return `${who}: d_in is ${coder.dIn}, but model ${modelName} has width ${width} at ${hook.name}; the dictionary was made for another model`;
  }
  for (const out of coder.outputHooks) {
    const o = table.find((h) => h.name === out);
    if (!o)
      return `${who}: writes to hook '${out}', which model ${modelName} does not have (${nLayers} layers)`;
    const w = hookWidth(spec, o, o.name.endsWith('.attn.hook_z'));
    if (w !== coder.dOut)
      return `${who}: d_out is ${coder.dOut}, but model ${modelName} has width ${w} at ${out}`;
  }
  return null;
}

/** One coder's run over a text: its input rows [T, d_in] and feature activations [T, width]. */
export interface CoderRun {
  readonly input: Tensor;
  readonly acts: Tensor;
}

/** Each coder's feature activations over one text's tokens, in the dictionary's order. */
export async function dictionaryFeatures(
  fitted: FittedDictionary,
  ids: readonly number[],
): Promise<CoderRun[]> {
  const plain = fitted.coders.filter((c) => c.attached === null);
  const hooks = [...new Set(plain.map((c) => c.hook.name))];
  const run = hooks.length > 0 ? await fitted.model.runHooksPadded([ids], hooks) : null;
  const out: CoderRun[] = [];
  for (const c of fitted.coders) {
    if (c.attached) {
      const [acts] = await saeFeatures(c.attached, [ids]);
      const x = (await fitted.model.runHooksPadded([ids], [c.hook.name])).hooks.get(c.hook.name)!;
      out.push({
        acts,
        input: { dims: [ids.length, c.coder.dIn], data: x.data.slice(0, ids.length * c.coder.dIn) },
      });
      continue;
    }
    const x = run!.hooks.get(c.hook.name)!;
    // [1, T, ...] is contiguous: T rows of d_in (heads flattened for hook_z).
    const rows = ids.length;
    const data = x.data.slice(0, rows * c.coder.dIn);
    if (c.inputScale) {
      const s = c.inputScale;
      for (let i = 0; i < data.length; i++) data[i] *= s[i % s.length];
    }
    const input = { dims: [rows, c.coder.dIn], data };
    out.push({ input, acts: await c.coder.encode(input) });
  }
  return out;
}

function hookWidth(spec: ModelSpec, hook: HookPoint, flattenHeads: boolean): number {
  const shape = hookShape(spec, hook, 1, 1);
  return flattenHeads ? shape.slice(2).reduce((a, d) => a * d, 1) : shape[shape.length - 1];
}

/** The MLP input of an RMSNorm model is ln2.hook_normalized (x / scale) times ln2's weight, read from the checkpoint. */
function mlpInputScale(model: HookedModel, layer: number): Float32Array | null {
  if (model.spec.norm === 'layernorm') return null;
  const ckpt = model.checkpoint;
  const recipes = ckpt.family.weightRecipes(
    ckpt.spec,
    new Set(ckpt.weights.files.flatMap((f) => [...f.tensors.keys()])),
  );
  const name = `blocks.${layer}.ln2.w`;
  const recipe = recipes.get(name);
  if (!recipe) throw new LoupeError(`${ckpt.dir}: no ${name} for the MLP's input at layer ${layer}`);
  return recipe.make((n) => ckpt.weights.read(n)).data;
}

/** Columns each coder's features take in the concatenated activations: coder c's feature i is column offset[c] + i. */
export function featureOffsets(fitted: FittedDictionary): number[] {
  const out: number[] = [];
  let o = 0;
  for (const c of fitted.coders) {
    out.push(o);
    o += c.coder.width;
  }
  return out;
}

/**
 * Every coder's activations over a right-padded batch, side by side:
 * [B, T_max, Σ width] (coder c's features from `featureOffsets(fitted)[c]`),
 * in one forward pass for all coders that read a hook.
 */
export async function dictionaryFeaturesPadded(
  fitted: FittedDictionary,
  batch: readonly (readonly number[])[],
): Promise<{ readonly lengths: readonly number[]; readonly acts: Tensor }> {
  const offsets = featureOffsets(fitted);
  const total = fitted.coders.reduce((a, c) => a + c.coder.width, 0);
  const hooks = [...new Set(fitted.coders.map((c) => c.hook.name))];
  const run = await fitted.model.runHooksPadded(batch, hooks);
  const T = run.hooks.get(hooks[0])!.dims[1];
  const acts = new Float32Array(batch.length * T * total);
  for (const [c, fc] of fitted.coders.entries()) {
    const { dIn, width } = fc.coder;
    let coderActs: Tensor;
    if (fc.attached) {
      coderActs = (await saeFeaturesPadded(fc.attached, batch)).acts;
    } else {
      const x = run.hooks.get(fc.hook.name)!;
      const data = x.data.slice(0, batch.length * T * dIn);
      if (fc.inputScale) for (let i = 0; i < data.length; i++) data[i] *= fc.inputScale[i % dIn];
      coderActs = await fc.coder.encode({ dims: [batch.length * T, dIn], data });
    }
    for (let r = 0; r < batch.length * T; r++) {
      acts.set(coderActs.data.subarray(r * width, (r + 1) * width), r * total + offsets[c]);
    }
  }
  return { lengths: run.lengths, acts: { dims: [batch.length, T, total], data: acts } };
}
