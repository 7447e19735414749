/**
 * The engine's answers to the probe and causal requests (src/shared/causalSchemas.ts):
 * thin adapters from the editor's texts and caret offsets to the engine's
 * probes/* and causal/* modules, which do the work. Quick requests get the
 * model (and SAE) the engine process has loaded; probe training and TCAV open
 * their own in the jobs engine (see `withModel` in jobs.ts).
 *
 * A caret offset names the token that holds the character before it: the
 * request explains that token's next-token prediction. Texts longer than the
 * model's context are cut to one window that holds that token, BOS first.
 */
import * as path from 'node:path';
import { readCorpus } from '../corpus';
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { probeDirection, scoreText } from '../probes/apply';
import { ProbeDataset } from '../probes/dataset';
import { datasetFromRegex, datasetFromTexts, readLabelledJsonl } from '../probes/labels';
import { trainProbes } from '../probes/probing';
import { ProbeMetadata, loadProbe, probeFromResults, saveProbe } from '../probes/store';
import { writeSafetensors } from '../safetensors';
import { checkOutputFolder } from '../safeWrite';
import { AttachedSae } from '../sae/splice';
import { AblationReport, ablate, ablateSaeFeatures, parseAblationGroups } from '../causal/ablation';
import { occlude } from '../causal/occlusion';
import { patchHeads, patchResidual } from '../causal/patching';
import { logitRow, topTokens } from '../causal/predictions';
import { featureDirection, steer, unitDirection } from '../causal/steering';
import { runTcav } from '../causal/tcav';
import { resolveToken } from '../lens/tokens';
import { Token } from '../tokenizer';
import { CausalMethod, ProbeSummary, TokenRef } from '../../shared/causalSchemas';
import { EngineParams, EngineResult } from './protocol';
import { withModel } from './jobs';

type Progress = (message: string, fraction: number | null) => void;

/** What a request may use: the loaded model (null in the jobs engine, where none is), cancellation, progress. */
export interface CausalContext {
  readonly loaded: () => { model: HookedModel; sae: AttachedSae | null };
  readonly signal: AbortSignal;
  readonly progress: Progress;
}

/** Windows of reference text for means and random examples, at most this many. */
const MAX_REFERENCE_WINDOWS = 64;
/** Tokens per random TCAV piece at most (the concept examples' median length sets it). */
const TCAV_PIECES = 200;

export async function causalRequest<M extends CausalMethod>(
  method: M,
  params: EngineParams<M>,
  ctx: CausalContext,
): Promise<EngineResult<M>> {
  const handlers: { [K in CausalMethod]: (p: EngineParams<K>) => Promise<EngineResult<K>> } = {
    trainProbe: (p) => trainProbe(p, ctx),
    probeInfo: (p) => Promise.resolve(summary(loadProbe(p.dir).meta, p.dir)),
    applyProbe: (p) => applyProbe(p, ctx),
    exportProbeDirection: (p) => exportDirection(p, ctx),
    occlusion: (p) => occlusion(p, ctx),
    patchPreview: (p) => patchPreview(p, ctx),
    patch: (p) => patch(p, ctx),
    steer: (p) => steerRequest(p, ctx),
    ablate: (p) => ablation(p, ctx),
    tcav: (p) => tcav(p, ctx),
  };
  return (handlers[method] as (p: EngineParams<M>) => Promise<EngineResult<M>>)(params);
}

// ---- probes ----

export function summary(meta: ProbeMetadata, dir: string): ProbeSummary {
  return {
    dir: path.resolve(dir),
    model: meta.model.name,
    dataset: meta.dataset,
    labels: meta.labels,
    counts: meta.labels.map((l) => meta.counts[l] ?? 0),
    trainDocuments: meta.split.trainDocuments,
    testDocuments: meta.split.testDocuments,
    trainExamples: meta.split.trainExamples,
    testExamples: meta.split.testExamples,
    l2: meta.options.l2,
    seed: meta.options.seed,
    hooks: meta.hooks.map((h) => ({ ...h })),
    seconds: meta.seconds,
  };
}

async function trainProbe(
  p: EngineParams<'trainProbe'>,
  ctx: CausalContext,
): Promise<EngineResult<'trainProbe'>> {
  if (p.hooks.length === 0) throw new LoupeError('choose at least one hook to probe');
  checkOutputFolder(p.outDir, 'probe');
  return withModel(p, ctx.progress, async (model) => {
    p.hooks.forEach((h) => model.hookByName(h));
    ctx.progress('Reading the labelled tokens', null);
    const options = { maxExamples: p.maxExamples, signal: ctx.signal };
    let dataset: ProbeDataset;
    const labels = p.labels;
    if (labels.kind === 'jsonl') {
      dataset = await datasetFromTexts(model, await readLabelledJsonl(labels.file), labels.file, options);
    } else if (labels.kind === 'regex') {
      try {
        new RegExp(labels.pattern, 'u');
      } catch (err) {
        throw new LoupeError(
          `/${labels.pattern}/ is not a valid regular expression: ${(err as Error).message}`,
        );
      }
      dataset = await datasetFromRegex(
        model,
        readCorpus(labels.corpus),
        labels.pattern,
        `/${labels.pattern}/ over ${path.basename(labels.corpus)}`,
        options,
      );
    } else {
      dataset = await datasetFromTexts(model, labels.documents, labels.description, options);
    }
    let last = 0;
    const results = await trainProbes(model, dataset, {
      hooks: p.hooks,
      seed: p.seed ?? undefined,
      threads: p.threads > 0 ? p.threads : undefined,
      signal: ctx.signal,
      onProgress: (pr) => {
        const now = Date.now();
        if (now - last < 200 && pr.done < pr.total) return;
        last = now;
        const share = pr.total > 0 ? pr.done / pr.total : 0;
        ctx.progress(
          pr.stage === 'activations'
            ? `Reading activations: ${Math.round(100 * share)}%`
            : pr.hook
              ? `Training probe ${pr.done + 1}/${pr.total} at ${pr.hook}`
              : `Trained ${pr.total} probes`,
          pr.stage === 'activations' ? 0.5 * share : 0.5 + 0.5 * share,
        );
      },
    });
    const saved = probeFromResults(model, results);
    saveProbe(p.outDir, saved);
    return summary(saved.meta, p.outDir);
  });
}

async function applyProbe(
  p: EngineParams<'applyProbe'>,
  ctx: CausalContext,
): Promise<EngineResult<'applyProbe'>> {
  const { model } = ctx.loaded();
  const probe = loadProbe(p.dir);
  const scores = await scoreText(model, probe, p.text, {
    hook: p.hook ?? undefined,
    label: p.label ?? undefined,
  });
  return {
    hook: scores.hook,
    scored: scores.scored,
    starts: Int32Array.from(scores.tokens, (t) => t.start),
    ends: Int32Array.from(scores.tokens, (t) => t.end),
    scores: Float32Array.from(scores.tokens, (t) => t.score),
  };
}

async function exportDirection(
  p: EngineParams<'exportProbeDirection'>,
  ctx: CausalContext,
): Promise<EngineResult<'exportProbeDirection'>> {
  const { model } = ctx.loaded();
  const probe = loadProbe(p.dir);
  const { hook, label, direction } = probeDirection(model, probe, {
    hook: p.hook ?? undefined,
    label: p.label ?? undefined,
  });
  const out = path.resolve(p.out);
  writeSafetensors(
    out,
    new Map([['direction', { dtype: 'F32', shape: [direction.length], data: direction }]]),
    { hook, label, probe: path.basename(path.resolve(p.dir)), model: probe.meta.model.name },
  );
  return { out, hook, label, width: direction.length };
}

// ---- texts, carets and windows ----

interface Window {
  readonly tokens: Token[];
  /** Index in `tokens` of the token the caret names. */
  readonly position: number;
}

/** The token before a caret offset, in a window of at most the model's context that holds it (BOS kept first). */
async function windowAtCaret(model: HookedModel, text: string, offset: number): Promise<Window> {
  const tokens = await model.tokenize(text);
  const bos = tokens.length > 0 && tokens[0].start === 0 && tokens[0].end === 0 ? 1 : 0;
  let position = -1;
  for (let i = bos; i < tokens.length && tokens[i].start < offset; i++) position = i;
  if (position < 0) {
    throw new LoupeError(
      'there is no text before the caret; put it after the token whose prediction to look at',
    );
  }
  const n = model.spec.nCtx;
  if (tokens.length <= n) return { tokens, position };
  const from = Math.max(bos, Math.min(position + 1, tokens.length) - (n - bos));
  const kept = [...tokens.slice(0, bos), ...tokens.slice(from, from + n - bos)];
  return { tokens: kept, position: position - from + bos };
}

async function tokenRef(model: HookedModel, id: number): Promise<TokenRef> {
  return { id, text: model.tokenizer ? await model.tokenizer.displayText(id) : `#${id}` };
}

/** A text's token ids with BOS, refusing one longer than the model's context. */
async function promptIds(model: HookedModel, text: string, what: string): Promise<Token[]> {
  const tokens = await model.tokenize(text);
  if (tokens.length === 0 || tokens.every((t) => t.end === t.start))
    throw new LoupeError(`the ${what} has no text`);
  if (tokens.length > model.spec.nCtx) {
    throw new LoupeError(
      `the ${what} is ${tokens.length} tokens, more than the model's context of ${model.spec.nCtx}; choose less text`,
    );
  }
  return tokens;
}

/** Windows of up to `length` tokens (BOS first) from texts, at most `max`. */
async function textWindows(
  model: HookedModel,
  texts: AsyncIterable<string> | Iterable<string>,
  max: number,
  length: number,
): Promise<number[][]> {
  const out: number[][] = [];
  for await (const text of texts) {
    const tokens = await model.tokenize(text);
    const bos = tokens.length > 0 && tokens[0].start === 0 && tokens[0].end === 0 ? [tokens[0].id] : [];
    const body = tokens.slice(bos.length).map((t) => t.id);
    const step = Math.max(1, Math.min(length, model.spec.nCtx) - bos.length);
    for (let s = 0; s < body.length; s += step) {
      out.push([...bos, ...body.slice(s, s + step)]);
      if (out.length >= max) return out;
    }
  }
  return out;
}

// ---- occlusion, patching, steering, ablation ----

async function occlusion(
  p: EngineParams<'occlusion'>,
  ctx: CausalContext,
): Promise<EngineResult<'occlusion'>> {
  const { model } = ctx.loaded();
  const { tokens, position } = await windowAtCaret(model, p.text, p.offset);
  const ids = tokens.slice(0, position + 1).map((t) => t.id);
  const result = await occlude(model, ids, {
    position,
    target: p.target === null ? undefined : await resolveToken(model, p.target),
    versus: p.versus === null ? undefined : await resolveToken(model, p.versus),
    signal: ctx.signal,
    onProgress: (done, total) => ctx.progress(`Occluded ${done}/${total} tokens`, done / total),
  });
  return {
    starts: Int32Array.from(tokens.slice(0, position + 1), (t) => t.start),
    ends: Int32Array.from(tokens.slice(0, position + 1), (t) => t.end),
    effects: Float32Array.from(result.effects),
    position,
    target: await tokenRef(model, result.target),
    versus: result.versus === null ? null : await tokenRef(model, result.versus),
    metric: result.metric,
    clean: result.clean,
  };
}

async function patchPreview(
  p: EngineParams<'patchPreview'>,
  ctx: CausalContext,
): Promise<EngineResult<'patchPreview'>> {
  const { model } = ctx.loaded();
  const clean = await promptIds(model, p.clean, 'clean text');
  const corrupted = await promptIds(model, p.corrupted, 'corrupted text');
  const runs = await model.runAt(
    [clean.map((t) => t.id), corrupted.map((t) => t.id)],
    [clean.length - 1, corrupted.length - 1],
  );
  const top = async (b: number): Promise<TokenRef[]> =>
    Promise.all(topTokens(logitRow(runs.logits, b, 0), 5).map((t) => tokenRef(model, t.id)));
  return {
    clean: clean.map((t) => t.text),
    corrupted: corrupted.map((t) => t.text),
    cleanTop: await top(0),
    corruptedTop: await top(1),
  };
}

async function patch(p: EngineParams<'patch'>, ctx: CausalContext): Promise<EngineResult<'patch'>> {
  const { model } = ctx.loaded();
  const clean = await promptIds(model, p.clean, 'clean text');
  const corrupted = await promptIds(model, p.corrupted, 'corrupted text');
  if (clean.length !== corrupted.length) {
    throw new LoupeError(
      `the clean text is ${clean.length} tokens and the corrupted text ${corrupted.length}; activation patching needs the same number of tokens`,
    );
  }
  const target = await resolveToken(model, p.target);
  const versus = await resolveToken(model, p.versus);
  const options = {
    target,
    versus,
    signal: ctx.signal,
  };
  const cleanIds = clean.map((t) => t.id);
  const corruptedIds = corrupted.map((t) => t.id);
  const residual = await patchResidual(model, cleanIds, corruptedIds, {
    ...options,
    site: p.site,
    onProgress: (done, total) => ctx.progress(`Residual stream: ${done}/${total} runs`, (0.7 * done) / total),
  });
  const heads = await patchHeads(model, cleanIds, corruptedIds, {
    ...options,
    onProgress: (done, total) => ctx.progress(`Heads: ${done}/${total} runs`, 0.7 + (0.3 * done) / total),
  });
  const grid = (g: typeof residual): EngineResult<'patch'>['residual'] => ({
    rowLabels: g.rowLabels,
    columnLabels: g.columnLabels,
    values: Float32Array.from(g.values.flat(), finite),
    logitDiffs: Float32Array.from(g.logitDiffs.flat(), finite),
  });
  return {
    cleanTokens: clean.map((t) => t.text),
    corruptedTokens: corrupted.map((t) => t.text),
    target: await tokenRef(model, target),
    versus: await tokenRef(model, versus),
    position: residual.position,
    cleanLogitDiff: residual.cleanLogitDiff,
    corruptedLogitDiff: residual.corruptedLogitDiff,
    site: p.site,
    residual: grid(residual),
    heads: grid(heads),
  };
}

/** A normalised value is NaN where clean and corrupted agree exactly; the grid shows it as 0. */
function finite(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

async function steerRequest(p: EngineParams<'steer'>, ctx: CausalContext): Promise<EngineResult<'steer'>> {
  const { model, sae } = ctx.loaded();
  let hook: string;
  let direction: Float32Array;
  let name: string;
  if (p.direction.kind === 'feature') {
    if (!sae) throw new LoupeError('no SAE is loaded, so there is no feature to steer with');
    direction = featureDirection(sae.sae, p.direction.index);
    hook = p.hook ?? sae.hook.name;
    name = `SAE feature #${p.direction.index}`;
  } else {
    const probe = loadProbe(p.direction.dir);
    const found = probeDirection(model, probe, {
      hook: p.hook ?? undefined,
      label: p.direction.label ?? undefined,
    });
    direction = unitDirection(found.direction);
    hook = found.hook;
    name = `probe ${path.basename(p.direction.dir)} (${found.label})`;
  }
  const prompt = (await promptIds(model, p.prompt, 'prompt')).map((t) => t.id);
  const base = { hook, direction, strength: p.strength, tokens: p.tokens, signal: ctx.signal };
  const total = 2 * p.tokens;
  const greedy = await steer(model, prompt, {
    ...base,
    onToken: (step) => ctx.progress(`Greedy: ${step + 1}/${p.tokens} tokens`, (step + 1) / total),
  });
  if (ctx.signal.aborted) throw new CancelledError();
  const sampled = await steer(model, prompt, {
    ...base,
    sample: true,
    seed: p.seed,
    temperature: p.temperature,
    onToken: (step) => ctx.progress(`Sampled: ${step + 1}/${p.tokens} tokens`, (p.tokens + step + 1) / total),
  });
  const text = (c: { text: string | null; ids: number[] }): string => c.text ?? c.ids.join(' ');
  return {
    hook,
    direction: name,
    strength: p.strength,
    seed: p.seed,
    temperature: p.temperature,
    prompt: p.prompt,
    greedy: { unsteered: text(greedy.unsteered), steered: text(greedy.steered) },
    sampled: { unsteered: text(sampled.unsteered), steered: text(sampled.steered) },
  };
}

async function ablation(p: EngineParams<'ablate'>, ctx: CausalContext): Promise<EngineResult<'ablate'>> {
  const { model, sae } = ctx.loaded();
  const { tokens, position } = await windowAtCaret(model, p.text, p.offset);
  const ids = tokens.map((t) => t.id);
  const meanOver =
    p.mode === 'mean' && p.meanTexts.length > 0
      ? await textWindows(model, p.meanTexts, MAX_REFERENCE_WINDOWS, model.spec.nCtx)
      : undefined;
  const options = {
    mode: p.mode,
    meanOver,
    position,
    signal: ctx.signal,
    onProgress: (done: number, total: number) => ctx.progress(`Ablated ${done}/${total}`, done / total),
  };
  let report: AblationReport;
  if (p.what.kind === 'features') {
    if (!sae) throw new LoupeError('no SAE is loaded, so there are no features to ablate');
    if (p.what.indices.length === 0) throw new LoupeError('name a feature to ablate');
    report = await ablateSaeFeatures(sae, ids, [p.what.indices], options);
  } else {
    report = await ablate(model, ids, parseAblationGroups(p.what.spec, model), options);
  }
  const top = (list: readonly { id: number; prob: number }[]) =>
    Promise.all(list.slice(0, 5).map(async (t) => ({ ...(await tokenRef(model, t.id)), prob: t.prob })));
  const context = tokens
    .slice(Math.max(0, position - 8), position + 1)
    .map((t) => t.text)
    .join('');
  return {
    mode: report.mode,
    tokens: ids.length,
    position,
    context,
    target: await tokenRef(model, report.target),
    clean: {
      loss: report.clean.loss,
      logit: report.clean.logit,
      prob: report.clean.prob,
      top: await top(report.clean.top),
    },
    effects: await Promise.all(
      report.effects.map(async (e) => ({
        name: e.name,
        loss: e.ablated.loss,
        deltaLoss: e.deltaLoss,
        deltaLogit: e.deltaLogit,
        deltaProb: e.deltaProb,
        prob: e.ablated.prob,
        top: await top(e.ablated.top),
      })),
    ),
  };
}

// ---- TCAV ----

async function tcav(p: EngineParams<'tcav'>, ctx: CausalContext): Promise<EngineResult<'tcav'>> {
  return withModel(p, ctx.progress, async (model) => {
    const hooks = p.hooks;
    hooks.forEach((h) => model.hookByName(h));
    const ids = async (texts: readonly string[], what: string): Promise<number[][]> => {
      const out: number[][] = [];
      for (const t of texts) {
        if (t.trim().length === 0) continue;
        out.push((await model.tokenize(t)).map((x) => x.id).slice(0, model.spec.nCtx));
      }
      if (out.length === 0) throw new LoupeError(`no ${what} examples: every line is empty`);
      return out;
    };
    const concept = await ids(p.concept, 'concept');
    const inputs = await ids(p.inputs, 'input');
    const lengths = concept.map((c) => c.length).sort((a, b) => a - b);
    const median = lengths[Math.floor(lengths.length / 2)];
    ctx.progress('Reading random examples', null);
    const random = await textWindows(
      model,
      (async function* () {
        for await (const doc of readCorpus(p.randomCorpus)) yield doc.text;
      })(),
      TCAV_PIECES,
      median,
    );
    const target = await resolveToken(model, p.target);
    const result = await runTcav(
      model,
      { concept, random, inputs },
      {
        hooks,
        target,
        runs: p.runs,
        seed: p.seed ?? undefined,
        threads: p.threads > 0 ? p.threads : undefined,
        signal: ctx.signal,
        onProgress: (done, total) => ctx.progress(`TCAV: ${done}/${total}`, done / total),
      },
    );
    return {
      target: await tokenRef(model, target),
      runs: result.runs,
      alpha: result.alpha,
      concept: result.counts.concept,
      random: result.counts.random,
      inputs: result.counts.inputs,
      hooks: result.hooks.map((h) => ({
        hook: h.hook,
        meanScore: h.meanScore,
        meanRandomScore: h.meanRandomScore,
        scores: h.scores,
        randomScores: h.randomScores,
        t: finite(h.t),
        pValue: finite(h.pValue),
        significant: h.significant,
        cavAccuracy: h.cavAccuracy,
      })),
    };
  });
}
