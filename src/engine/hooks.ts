/**
 * The hook table: every TransformerLens hook point a model has, with its
 * shape. Graph outputs, edit inputs, the CLI's `--hooks` and the UI's menus
 * all derive from this one list, so a researcher can guess any name.
 *
 * Values are those of the unprocessed model (no LayerNorm folding). LayerNorm
 * hooks follow TransformerLens: `hook_scale` = sqrt(mean((x - mean)²) + eps),
 * `hook_normalized` = (x - mean) / scale · w + b; for RMSNorm `hook_normalized`
 * is x / scale, before the weight (w, or 1 + w for Gemma). `hook_q`/`hook_k`
 * are the projections before any q/k norm and rotary embeddings
 * (`hook_rot_q`/`hook_rot_k` after both); `hook_k`/`hook_v` have the
 * key/value heads of grouped-query attention. `hook_attn_scores` are scaled,
 * soft-capped where the model caps them (`cap · tanh(s / cap)`), and masked
 * with -inf, causally and outside a layer's sliding window (a window of W
 * lets query i see key j iff i - W < j <= i). `hook_embed` is the token
 * embedding as it enters the residual stream, so Gemma's × √d_model is in it.
 *
 * Points only some families have, with TransformerLens's names:
 * - `blocks.L.ln1_post.hook_scale` [batch, pos, 1] and `.hook_normalized`
 *   [batch, pos, d_model]: the RMSNorm after attention (Gemma 2/3), and
 *   `blocks.L.ln2_post` (same two) after the MLP. `hook_attn_out` and `hook_mlp_out`
 *   are after these norms, what is added to the residual stream.
 * - `blocks.L.attn.q_norm.hook_scale` [batch, pos, head, 1] and
 *   `.hook_normalized` [batch, pos, head, d_head], and `attn.k_norm` likewise with
 *   kv_head: the per-head RMSNorm of queries and keys before rotary (Qwen3,
 *   Gemma 3).
 * - `blocks.L.mlp.hook_pre_linear`: the up projection of gated MLPs, beside
 *   `hook_pre` (the gate, before its activation).
 */
import { LoupeError } from './errors';
import { ModelSpec } from './families/spec';

/** Symbolic dimensions, resolved against a model and a run. */
type Dim = 'batch' | 'pos' | 'd_model' | 'head' | 'kv_head' | 'd_head' | 'd_mlp' | 'one';

export interface HookPoint {
  readonly name: string;
  /** Block index, or -1 for hooks outside the blocks. */
  readonly layer: number;
  readonly dims: readonly Dim[];
}

export function hookPoints(spec: ModelSpec): HookPoint[] {
  const out: HookPoint[] = [];
  const add = (name: string, layer: number, dims: Dim[]): void => {
    out.push({ name, layer, dims });
  };
  const resid: Dim[] = ['batch', 'pos', 'd_model'];
  add('hook_embed', -1, resid);
  if (spec.positional === 'learned') add('hook_pos_embed', -1, resid);
  for (let l = 0; l < spec.nLayers; l++) {
    const b = `blocks.${l}.`;
    add(`${b}hook_resid_pre`, l, resid);
    add(`${b}ln1.hook_scale`, l, ['batch', 'pos', 'one']);
    add(`${b}ln1.hook_normalized`, l, resid);
    add(`${b}attn.hook_q`, l, ['batch', 'pos', 'head', 'd_head']);
    add(`${b}attn.hook_k`, l, ['batch', 'pos', 'kv_head', 'd_head']);
    add(`${b}attn.hook_v`, l, ['batch', 'pos', 'kv_head', 'd_head']);
    if (spec.qkNorm) {
      add(`${b}attn.q_norm.hook_scale`, l, ['batch', 'pos', 'head', 'one']);
      add(`${b}attn.q_norm.hook_normalized`, l, ['batch', 'pos', 'head', 'd_head']);
      add(`${b}attn.k_norm.hook_scale`, l, ['batch', 'pos', 'kv_head', 'one']);
      add(`${b}attn.k_norm.hook_normalized`, l, ['batch', 'pos', 'kv_head', 'd_head']);
    }
    if (spec.positional === 'rotary') {
      add(`${b}attn.hook_rot_q`, l, ['batch', 'pos', 'head', 'd_head']);
      add(`${b}attn.hook_rot_k`, l, ['batch', 'pos', 'kv_head', 'd_head']);
    }
    add(`${b}attn.hook_attn_scores`, l, ['batch', 'head', 'pos', 'pos']);
    add(`${b}attn.hook_pattern`, l, ['batch', 'head', 'pos', 'pos']);
    add(`${b}attn.hook_z`, l, ['batch', 'pos', 'head', 'd_head']);
    add(`${b}attn.hook_result`, l, ['batch', 'pos', 'head', 'd_model']);
    if (spec.postNorms) {
      add(`${b}ln1_post.hook_scale`, l, ['batch', 'pos', 'one']);
      add(`${b}ln1_post.hook_normalized`, l, resid);
    }
    add(`${b}hook_attn_out`, l, resid);
    if (!spec.parallelResidual) add(`${b}hook_resid_mid`, l, resid);
    add(`${b}ln2.hook_scale`, l, ['batch', 'pos', 'one']);
    add(`${b}ln2.hook_normalized`, l, resid);
    add(`${b}mlp.hook_pre`, l, ['batch', 'pos', 'd_mlp']);
    if (spec.gatedMlp) add(`${b}mlp.hook_pre_linear`, l, ['batch', 'pos', 'd_mlp']);
    add(`${b}mlp.hook_post`, l, ['batch', 'pos', 'd_mlp']);
    if (spec.postNorms) {
      add(`${b}ln2_post.hook_scale`, l, ['batch', 'pos', 'one']);
      add(`${b}ln2_post.hook_normalized`, l, resid);
    }
    add(`${b}hook_mlp_out`, l, resid);
    add(`${b}hook_resid_post`, l, resid);
  }
  add('ln_final.hook_scale', -1, ['batch', 'pos', 'one']);
  add('ln_final.hook_normalized', -1, resid);
  return out;
}

/** Concrete shape of a hook for a run of `batch` texts padded to `pos` tokens. */
export function hookShape(spec: ModelSpec, hook: HookPoint, batch: number, pos: number): number[] {
  const size: Record<Dim, number> = {
    batch,
    pos,
    d_model: spec.dModel,
    head: spec.nHeads,
    kv_head: spec.nKvHeads,
    d_head: spec.dHead,
    d_mlp: spec.dMlp,
    one: 1,
  };
  return hook.dims.map((d) => size[d]);
}

/** Axes that run over token positions (cut back to a text's length after a padded batch). */
export function tokenAxes(hook: HookPoint): number[] {
  return hook.dims.flatMap((d, i) => (d === 'pos' ? [i] : []));
}

export type HookSelection = 'none' | 'resid' | 'all' | readonly string[];

/** The residual-stream hooks: what `--hooks resid` fetches. */
export function isResidualHook(name: string): boolean {
  return /^blocks\.\d+\.hook_resid_(pre|mid|post)$/.test(name);
}

/** Resolves `none`, `resid`, `all` or a list of names against the table; unknown names are an error. */
export function selectHooks(spec: ModelSpec, selection: HookSelection): HookPoint[] {
  const table = hookPoints(spec);
  if (selection === 'none') return [];
  if (selection === 'all') return table;
  if (selection === 'resid') return table.filter((h) => isResidualHook(h.name));
  const byName = new Map(table.map((h) => [h.name, h]));
  return selection.map((name) => {
    const h = byName.get(name);
    if (!h) throw new LoupeError(`unknown hook '${name}'${suggestHook(name, table)}`);
    return h;
  });
}

export function findHook(spec: ModelSpec, name: string): HookPoint {
  return selectHooks(spec, [name])[0];
}

function suggestHook(name: string, table: readonly HookPoint[]): string {
  const tail = name.split('.').pop() ?? name;
  const near = table.find((h) => h.name.endsWith(tail));
  if (near) return `; did you mean '${near.name}'? (see 'loupe hooks --model DIR')`;
  return `; see 'loupe hooks --model DIR' for this model's hook names`;
}
