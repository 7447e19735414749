/**
 * A model's architecture in a few words, as the Models & SAEs tree shows it:
 * what its family computes beyond a plain pre-norm Transformer (norms,
 * attention windows, soft-caps, rotary bases and scaling, q/k norms), so a
 * researcher sees at a glance what Loupe will run.
 */
import { ModelSpec, RopeSpec } from './spec';

export function describeArchitecture(spec: ModelSpec): string[] {
  const out: string[] = [];
  out.push(spec.norm === 'layernorm' ? 'LayerNorm' : 'RMSNorm');
  if (spec.postNorms) out.push('norms after attention and MLP');
  if (spec.nKvHeads !== spec.nHeads) out.push(`${spec.nKvHeads} key/value heads`);
  if (spec.dHead * spec.nHeads !== spec.dModel) out.push(`head_dim ${spec.dHead}`);
  if (spec.qkNorm) out.push('q/k norms');
  if (spec.positional === 'learned') out.push('learned positions');
  else out.push(...rotaryWords(spec));
  const windows = spec.slidingWindow.filter((w): w is number => w !== null);
  if (windows.length > 0) {
    const sizes = [...new Set(windows)].join('/');
    const where =
      windows.length === spec.nLayers ? 'every layer' : `${windows.length} of ${spec.nLayers} layers`;
    out.push(`sliding window ${sizes} on ${where}`);
  }
  if (spec.attnSoftcap !== null) out.push(`attention soft-cap ${spec.attnSoftcap}`);
  if (spec.finalSoftcap !== null) out.push(`logit soft-cap ${spec.finalSoftcap}`);
  if (spec.gatedMlp)
    out.push(spec.act === 'silu' ? 'SwiGLU' : spec.act === 'gelu_tanh' ? 'GeGLU (tanh)' : 'gated MLP');
  if (spec.parallelResidual) out.push('parallel attention and MLP');
  if (spec.embedScale !== null) out.push('embeddings × √d_model');
  if (spec.tiedEmbeddings) out.push('tied unembedding');
  return out;
}

function rotaryWords(spec: ModelSpec): string[] {
  const partial = spec.rotaryDims < spec.dHead ? ` on ${spec.rotaryDims} of ${spec.dHead} dims` : '';
  const kinds = new Map<string, RopeSpec>();
  for (const r of spec.rope) kinds.set(JSON.stringify(r), r);
  const words = [...kinds.values()].map((r) => {
    const s = r.scaling;
    const scaling = s.type === 'default' ? '' : ` ${s.type} ×${s.factor}`;
    return `θ ${r.base}${scaling}`;
  });
  return [`rotary ${words.join(' / ')}${partial}`];
}
