/**
 * Builds the ONNX graph of a decoder-only Transformer from its ModelSpec, for
 * one *variant*: which hooks are graph outputs and at which hooks an edit
 * `x' = x · mul + add` is applied (mul and add are graph inputs, broadcast
 * against the hook's shape). A variant with no hooks and no edits is the plain
 * forward pass: fused LayerNormalization, one QKV matmul, no per-head output
 * projection; hooks that need extra work (hook_scale, hook_result) change the
 * graph only in variants that ask for them. So a run pays only for what it
 * fetches or edits.
 *
 * The model's parts live in their own modules (embedding, norm, attention,
 * mlp, unembedding); this one wires them into blocks and the residual stream:
 * pre-norm sublayers, sequential or parallel (GPT-NeoX), with Gemma's
 * post-norms on each sublayer's output where the model has them.
 *
 * A variant without logits ends at its last hook.
 *
 * Inputs are right-padded: a text's real tokens sit at positions 0..n-1 and
 * causal attention keeps them from ever seeing the padding that follows.
 */
import { ModelSpec } from '../families/spec';
import { ExternalTensor } from './builder';
import { PositionTables, attention } from './attention';
import { GraphContext, GraphVariant } from './context';
import { embedding } from './embedding';
import { mlp } from './mlp';
import { norm } from './norm';
import { unembedding } from './unembedding';

export { GraphVariant, editInputNames } from './context';

export interface BuiltGraph {
  readonly bytes: Uint8Array;
  /** Hook name → graph output holding its value (hooks with equal values share one). */
  readonly hookOutputs: ReadonlyMap<string, string>;
}

export const INPUT_IDS = 'input_ids';
export const LOGITS = 'logits';
/** Flat rows b · T + t whose logits a 'rows' variant computes, int64 [rows]. */
export const LOGIT_ROWS = 'logit_rows';

export function buildTransformerGraph(
  spec: ModelSpec,
  weights: ReadonlyMap<string, ExternalTensor>,
  weightsFile: string,
  variant: GraphVariant,
): BuiltGraph {
  const ctx = new GraphContext(spec, weights, weightsFile, variant);
  const g = ctx.g;
  const done = (): BuiltGraph => ({ bytes: g.encode('loupe'), hookOutputs: ctx.hookOutputs });

  const ids = g.input(INPUT_IDS, 'int64', ['batch', 'pos']);
  const seqLen = g.op('Squeeze', [g.op('Shape', [ids], { start: 1, end: 2 }), g.constI64([0])]);
  const positions = g.op('Range', [g.constI64([0], []), seqLen, g.constI64([1], [])]);
  const tables = new PositionTables(ctx, positions);

  let resid = embedding(ctx, ids, positions);
  const layers = variant.logits ? spec.nLayers : layersNeeded(spec, variant);
  for (let l = 0; l < Math.min(layers, spec.nLayers); l++) {
    const b = `blocks.${l}.`;
    resid = ctx.hook(`${b}hook_resid_pre`, resid);
    // Gemma 2/3 normalise each sublayer's output too (ln1_post, ln2_post) before it joins the stream.
    const post = (y: string, prefix: string): string => (spec.postNorms ? norm(ctx, y, prefix) : y);
    const attnIn = norm(ctx, resid, `${b}ln1`);
    const attnOut = ctx.hook(`${b}hook_attn_out`, post(attention(ctx, attnIn, l, tables), `${b}ln1_post`));
    const mlpOut = (x: string): string =>
      ctx.hook(`${b}hook_mlp_out`, post(mlp(ctx, norm(ctx, x, `${b}ln2`), l), `${b}ln2_post`));
    if (spec.parallelResidual) {
      resid = g.op('Add', [g.op('Add', [resid, attnOut]), mlpOut(resid)]);
    } else {
      const mid = ctx.hook(`${b}hook_resid_mid`, g.op('Add', [resid, attnOut]));
      resid = g.op('Add', [mid, mlpOut(mid)]);
    }
    resid = ctx.hook(`${b}hook_resid_post`, resid);
  }
  if (layers <= spec.nLayers && !variant.logits) return done();
  const final = norm(ctx, resid, 'ln_final');
  if (!variant.logits) return done();
  if (variant.logits === 'rows') unembedding(ctx, final, ids, LOGITS, g.input(LOGIT_ROWS, 'int64', ['rows']));
  else unembedding(ctx, final, ids, LOGITS);
  return done();
}

/**
 * How many blocks a variant without logits must run: up to the deepest
 * `blocks.L.` hook it reads or edits, none for the embeddings alone, and one
 * past the last block (the final norm too) for `ln_final` hooks.
 */
function layersNeeded(spec: ModelSpec, variant: GraphVariant): number {
  let n = 0;
  for (const name of [...variant.outputs, ...variant.edits]) {
    const m = /^blocks\.(\d+)\./.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
    else if (name.startsWith('ln_final.')) n = spec.nLayers + 1;
  }
  return n;
}
