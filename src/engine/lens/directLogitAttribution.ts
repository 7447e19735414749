/**
 * Direct logit attribution: how much each attention head, each MLP, the
 * embeddings and each attention output bias write, directly, into the logit
 * of one token at one position, or into the difference between two tokens'
 * logits ("why A and not B").
 *
 * Each component c of the final residual stream is read through the final
 * norm with that position's cached scale, as TransformerLens's
 * `apply_ln_to_stack` does: centred over d_model for LayerNorm (RMSNorm does
 * not centre) and divided by `ln_final.hook_scale`; then dotted with
 * w_ln ⊙ u, where u is the token's unembedding row (or A's minus B's). The
 * components add up to the logit (difference) exactly, with the final norm's
 * bias and the unembedding bias as a constant: `total` is that sum and
 * `logit` the model's own, so a view can show both. Where attention's output
 * is normalised again before it joins the stream (Gemma 2/3's ln1_post), each
 * head is read through that norm too, with its scale at the position frozen,
 * as the final norm's is.
 *
 * Attribution is linear, so it is of the logit before a final soft-cap
 * (Gemma 2's cap·tanh(x/cap), which no sum of parts passes through):
 * `logit` is that pre-cap logit, read from ln_final.hook_normalized, and
 * `cappedLogit` the model's soft-capped one. No [tokens × vocabulary] logits
 * are made: the default target comes from the lens readout's top token.
 */
import { logitReadout, readLogit } from '../causal/predictions';
import { HookedModel } from '../model';
import { hasEngineWeight, readEngineWeight, unembeddingRows } from './engineWeights';
import { tokenPositions } from './positions';
import { LensReadout } from './readout';

export interface AttributedToken {
  readonly id: number;
  readonly text: string;
}

export interface LogitAttribution {
  readonly position: number;
  readonly target: AttributedToken;
  readonly versus: AttributedToken | null;
  /** The model's logit of the target (minus the versus token's) at the position, before any final soft-cap. */
  readonly logit: number;
  /** The same after the model's final soft-cap, or null for a model that does not cap its logits. */
  readonly cappedLogit: number | null;
  /** hook_embed's share. */
  readonly embed: number;
  /** hook_pos_embed's share (learned positions only). */
  readonly posEmbed: number | null;
  /** [layer][head]: each head's hook_result. */
  readonly heads: readonly (readonly number[])[];
  /** [layer]: each attention layer's output bias b_O (0 without one). */
  readonly attnBias: readonly number[];
  /** [layer]: each hook_mlp_out. */
  readonly mlp: readonly number[];
  /** The final norm's bias and the unembedding bias: the part no component writes. */
  readonly constant: number;
  /** Every share above added up; equals `logit` up to rounding. */
  readonly total: number;
}

export interface AttributionRequest {
  readonly position: number;
  /** Default: the model's most likely next token at the position. */
  readonly target?: number;
  readonly versus?: number | null;
}

export async function directLogitAttribution(
  model: HookedModel,
  ids: readonly number[],
  request: AttributionRequest,
  tokenText: (id: number) => Promise<string> = async (id) =>
    model.tokenizer ? model.tokenizer.displayText(id) : `<${id}>`,
  readout?: LensReadout,
): Promise<LogitAttribution> {
  const spec = model.spec;
  const { nLayers: L, nHeads: H, dModel: d } = spec;
  const [p] = tokenPositions(ids.length, [request.position]);
  const last = `blocks.${L - 1}.hook_resid_post`;
  const hooks = ['hook_embed', 'ln_final.hook_scale', 'ln_final.hook_normalized', last];
  if (spec.positional === 'learned') hooks.push('hook_pos_embed');
  for (let l = 0; l < L; l++) hooks.push(`blocks.${l}.attn.hook_result`, `blocks.${l}.hook_mlp_out`);
  if (spec.postNorms) for (let l = 0; l < L; l++) hooks.push(`blocks.${l}.ln1_post.hook_scale`);
  // One unpadded text: each hook is [1, T, ...].
  const run = await model.runHooksPadded([ids], hooks);
  const target =
    request.target ?? (await mostLikely(model, run.hooks.get(last)!.data.slice(p * d, (p + 1) * d), readout));
  const versus = request.versus ?? null;

  // direction = w_ln ⊙ (u_target − u_versus), centred for LayerNorm (the same as centring every component).
  const rows = unembeddingRows(model, versus === null ? [target] : [target, versus]);
  const u = new Float64Array(d);
  for (let j = 0; j < d; j++) u[j] = rows[j] - (versus === null ? 0 : rows[d + j]);
  const wLn = readEngineWeight(model, 'ln_final.w');
  const direction = new Float64Array(d);
  for (let j = 0; j < d; j++) direction[j] = u[j] * wLn[j];
  if (spec.norm === 'layernorm') {
    let mean = 0;
    for (let j = 0; j < d; j++) mean += direction[j];
    mean /= d;
    for (let j = 0; j < d; j++) direction[j] -= mean;
  }
  const scale = run.hooks.get('ln_final.hook_scale')!.data[p];
  const read = (values: ArrayLike<number>, offset: number, through: Float64Array = direction): number => {
    let s = 0;
    for (let j = 0; j < d; j++) s += values[offset + j] * through[j];
    return s / scale;
  };
  // Gemma 2/3 normalise the attention output before it joins the stream: with that norm's
  // scale at the position frozen, each head's share passes through w_post / scale_post.
  const headDirection = (l: number): Float64Array => {
    if (!spec.postNorms) return direction;
    const w = readEngineWeight(model, `blocks.${l}.ln1_post.w`);
    const s = run.hooks.get(`blocks.${l}.ln1_post.hook_scale`)!.data[p];
    return direction.map((x, j) => (x * w[j]) / s);
  };

  const embed = read(run.hooks.get('hook_embed')!.data, p * d);
  const posEmbed = spec.positional === 'learned' ? read(run.hooks.get('hook_pos_embed')!.data, p * d) : null;
  const heads: number[][] = [];
  const attnBias: number[] = [];
  const mlp: number[] = [];
  for (let l = 0; l < L; l++) {
    const result = run.hooks.get(`blocks.${l}.attn.hook_result`)!.data; // [1, T, H, d]
    const through = headDirection(l);
    heads.push(Array.from({ length: H }, (_, h) => read(result, (p * H + h) * d, through)));
    const bO = `blocks.${l}.attn.b_O`;
    attnBias.push(hasEngineWeight(model, bO) ? read(readEngineWeight(model, bO), 0, through) : 0);
    mlp.push(read(run.hooks.get(`blocks.${l}.hook_mlp_out`)!.data, p * d));
  }
  const normalized = run.hooks.get('ln_final.hook_normalized')!;
  const logit = logitReadout(model, target, versus);
  let constant = 0;
  if (hasEngineWeight(model, 'ln_final.b')) {
    const b = readEngineWeight(model, 'ln_final.b');
    for (let j = 0; j < d; j++) constant += b[j] * u[j];
  }
  if (hasEngineWeight(model, 'b_U')) {
    const bU = readEngineWeight(model, 'b_U');
    constant += bU[target] - (versus === null ? 0 : bU[versus]);
  }
  const total =
    embed +
    (posEmbed ?? 0) +
    heads.flat().reduce((a, b) => a + b, 0) +
    attnBias.reduce((a, b) => a + b, 0) +
    mlp.reduce((a, b) => a + b, 0) +
    constant;
  return {
    position: p,
    target: { id: target, text: await tokenText(target) },
    versus: versus === null ? null : { id: versus, text: await tokenText(versus) },
    logit: readLogit(normalized, 0, p, { ...logit, cap: null }),
    cappedLogit: logit.cap === null ? null : readLogit(normalized, 0, p, logit),
    embed,
    posEmbed,
    heads,
    attnBias,
    mlp,
    constant,
    total,
  };
}

/** The model's most likely next token after a final residual row, through the readout (made for the call if none is given). */
async function mostLikely(model: HookedModel, resid: Float32Array, readout?: LensReadout): Promise<number> {
  const r = readout ?? new LensReadout(model);
  try {
    const [row] = await r.read(resid, [null], 1);
    return row.top[0].id;
  } finally {
    if (!readout) await r.dispose();
  }
}
