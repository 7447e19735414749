/**
 * The causal tools on the command line: `loupe patch` (activation patching),
 * `loupe ablate` (zero/mean ablation of heads, layers, neurons, SAE
 * features), `loupe occlude` (occlusion attribution), `loupe steer`
 * (generation along a direction) and `loupe tcav` (concept sensitivity).
 */
import * as path from 'node:path';
import { readCorpus } from '../engine/corpus';
import { LoupeError } from '../engine/errors';
import { HookedModel } from '../engine/model';
import { SafetensorsFile } from '../engine/safetensors';
import { Sae } from '../engine/sae/sae';
import { attachSae } from '../engine/sae/splice';
import { probeDirection } from '../engine/probes/apply';
import { loadProbe } from '../engine/probes/store';
import {
  AblationReport,
  PredictionState,
  ablate,
  ablateSaeFeatures,
  parseAblationGroups,
} from '../engine/causal/ablation';
import { occlude } from '../engine/causal/occlusion';
import { PatchGrid, ResidualSite, patchHeads, patchResidual } from '../engine/causal/patching';
import { checkFiniteDirection, featureDirection, steer, unitDirection } from '../engine/causal/steering';
import { runTcav } from '../engine/causal/tcav';
import {
  CliCommand,
  OptionValues,
  choice,
  finiteNumber,
  nonNegativeInt,
  openModel,
  positionInt,
  positiveInt,
  positiveNumber,
  readContextText,
  readTextFile,
  seedInt,
  stringOption,
  threadsOption,
} from './common';

function modelFlags(values: OptionValues): { model?: string; threads?: string } {
  return { model: stringOption(values, 'model'), threads: stringOption(values, 'threads') };
}

/** A prompt file's text, without the line break editors add at the end (it would be the last token). */
function readPrompt(model: HookedModel, file: string | undefined, flag: string): string {
  return readContextText(model, file, flag, 'refuse').replace(/\r?\n$/, '');
}

async function promptIds(
  model: HookedModel,
  file: string | undefined,
  flag: string,
  values: OptionValues,
): Promise<number[]> {
  const text = readPrompt(model, file, flag);
  const tokens = await model.tokenize(text, { prependBos: values['no-bos'] !== true });
  if (tokens.length === 0) throw new LoupeError(`${file}: the text has no tokens (is the file empty?)`);
  return tokens.map((t) => t.id);
}

/** A token given as text that is exactly one token (`" Paris"`), or by id (`#1234`). */
export async function parseToken(model: HookedModel, spec: string, flag: string): Promise<number> {
  const byId = /^#(\d+)$/.exec(spec);
  if (byId) {
    const id = Number(byId[1]);
    if (id >= model.spec.dVocab)
      throw new LoupeError(`${flag} #${id} is outside the vocabulary (0..${model.spec.dVocab - 1})`);
    return id;
  }
  const tokens = await model.tokenize(spec, { prependBos: false });
  if (tokens.length !== 1) {
    throw new LoupeError(
      `${flag} ${JSON.stringify(spec)} is ${tokens.length} tokens (${tokens.map((t) => JSON.stringify(t.text)).join(' ')}); give exactly one token, or its id as #ID`,
    );
  }
  return tokens[0].id;
}

async function optionalToken(
  model: HookedModel,
  values: OptionValues,
  name: string,
): Promise<number | undefined> {
  const v = stringOption(values, name);
  return v === undefined ? undefined : parseToken(model, v, `--${name}`);
}

function positionOption(values: OptionValues): number | undefined {
  return positionInt(stringOption(values, 'position'), '--position');
}

async function tokenTexts(model: HookedModel, ids: readonly number[]): Promise<string[]> {
  if (!model.tokenizer) return ids.map((id) => `#${id}`);
  return Promise.all(ids.map((id) => model.tokenizer!.displayText(id)));
}

async function withModel(
  values: OptionValues,
  body: (model: HookedModel, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const model = await openModel(modelFlags(values));
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  try {
    await body(model, controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    await model.dispose();
  }
}

// ---------------------------------------------------------------------------
// patch

export const patchCommand: CliCommand = {
  usage: `patch --clean FILE --corrupted FILE --target TOKEN --versus TOKEN [--per-head [--per-position]]
            [--site resid_pre|resid_mid|resid_post|attn_out|mlp_out] [--noise] [--position P] [--json]
      activation patching: the corrupted text is run with one activation from the clean one (--noise: the
      reverse), for every layer × position of the residual stream (--site), or every layer × head of
      attn.hook_z (--per-head; with --per-position, every head × position); the metric is the logit
      difference TOKEN − versus at the last position (--position; negative counts from the end: --position=-2),
      normalised to 1 = clean, 0 = corrupted. The texts must have the same number of tokens. TOKEN: text that is
      one token, or #ID; a final line break of each file is dropped`,
  options: {
    clean: { type: 'string' },
    corrupted: { type: 'string' },
    target: { type: 'string' },
    versus: { type: 'string' },
    'per-head': { type: 'boolean' },
    'per-position': { type: 'boolean' },
    site: { type: 'string' },
    noise: { type: 'boolean' },
    position: { type: 'string' },
  },
  async run(values) {
    const targetSpec = stringOption(values, 'target');
    const versusSpec = stringOption(values, 'versus');
    if (targetSpec === undefined || versusSpec === undefined) {
      throw new LoupeError(
        '--target TOKEN and --versus TOKEN are required: the metric is their logit difference',
      );
    }
    const site: ResidualSite = choice(stringOption(values, 'site') ?? 'resid_pre', '--site', [
      'resid_pre',
      'resid_mid',
      'resid_post',
      'attn_out',
      'mlp_out',
    ] as const);
    if (values['per-position'] === true && values['per-head'] !== true) {
      throw new LoupeError('--per-position goes with --per-head (residual patching is always per position)');
    }
    const position = positionOption(values);
    await withModel(values, async (model, signal) => {
      const clean = await promptIds(model, stringOption(values, 'clean'), '--clean', values);
      const corrupted = await promptIds(model, stringOption(values, 'corrupted'), '--corrupted', values);
      const options = {
        target: await parseToken(model, targetSpec, '--target'),
        versus: await parseToken(model, versusSpec, '--versus'),
        position,
        direction: values.noise === true ? ('noise' as const) : ('denoise' as const),
        signal,
      };
      const grid =
        values['per-head'] === true
          ? await patchHeads(model, clean, corrupted, {
              ...options,
              perPosition: values['per-position'] === true,
            })
          : await patchResidual(model, clean, corrupted, { ...options, site });
      const tokens = { clean: await tokenTexts(model, clean), corrupted: await tokenTexts(model, corrupted) };
      if (values.json === true) process.stdout.write(`${JSON.stringify({ ...grid, tokens })}\n`);
      else process.stdout.write(await renderGrid(model, grid, tokens.clean));
    });
  },
};

async function renderGrid(model: HookedModel, grid: PatchGrid, cleanTokens: string[]): Promise<string> {
  const [target, versus] = await tokenTexts(model, [grid.target, grid.versus]);
  const perPosition = grid.kind !== 'heads';
  const columns = perPosition ? cleanTokens.map((t, p) => `${p}:${JSON.stringify(t)}`) : grid.columnLabels;
  const lines = [
    `logit(${JSON.stringify(target)}) − logit(${JSON.stringify(versus)}) at position ${grid.position}: ` +
      `clean ${grid.cleanLogitDiff.toFixed(4)}, corrupted ${grid.corruptedLogitDiff.toFixed(4)}; ` +
      `${grid.direction === 'denoise' ? 'clean activations patched into the corrupted run' : 'corrupted activations patched into the clean run'} (1 = clean, 0 = corrupted)`,
    `${''.padEnd(8)}${columns.map((c) => c.slice(0, 10).padStart(11)).join('')}`,
  ];
  grid.values.forEach((row, r) => {
    lines.push(`${grid.rowLabels[r].padEnd(8)}${row.map((v) => v.toFixed(3).padStart(11)).join('')}`);
  });
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// ablate

export const ablateCommand: CliCommand = {
  usage: `ablate --text FILE (--ablate L0H1,L1.mlp,L1N42 | --ablate heads|attn|mlps | --features I,J --sae DIR [--each])
            [--mean [--mean-corpus PATH]] [--target TOKEN] [--versus TOKEN] [--position P] [--json]
      zero (or --mean) ablation: the listed components together (heads L<l>H<h>, attention or MLP layers
      L<l>.attn / L<l>.mlp, MLP neurons L<l>N<i>), each of them alone (heads, attn, mlps), or SAE features
      (together, or --each alone; spliced in with the SAE's error term); reports the change in next-token loss
      and in the prediction of TOKEN (default the clean top token) at the last position, and in its logit
      difference with --versus. Means are over the text's tokens, or the first 64 windows of --mean-corpus`,
  options: {
    ablate: { type: 'string' },
    features: { type: 'string' },
    sae: { type: 'string' },
    each: { type: 'boolean' },
    mean: { type: 'boolean' },
    'mean-corpus': { type: 'string' },
    target: { type: 'string' },
    versus: { type: 'string' },
    position: { type: 'string' },
  },
  async run(values) {
    const spec = stringOption(values, 'ablate');
    const features = stringOption(values, 'features');
    if ((spec === undefined) === (features === undefined))
      throw new LoupeError('give --ablate SPEC or --features I,J (with --sae DIR)');
    const saeDir = stringOption(values, 'sae');
    if (features !== undefined && !saeDir) throw new LoupeError('--features needs --sae DIR');
    const position = positionOption(values);
    const indices = features?.split(',').map((s) => nonNegativeInt(s.trim(), '--features'));
    const threads = threadsOption(stringOption(values, 'threads'));
    const sae = saeDir ? Sae.load(saeDir, { threads }) : null;
    try {
      await withModel(values, async (model, signal) => {
        const ids = await promptIds(model, stringOption(values, 'text'), '--text', values);
        const meanCorpus = stringOption(values, 'mean-corpus');
        const meanOver = meanCorpus ? await corpusWindows(model, meanCorpus, 64) : undefined;
        const options = {
          mode: values.mean === true ? ('mean' as const) : ('zero' as const),
          meanOver,
          position,
          target: await optionalToken(model, values, 'target'),
          versus: await optionalToken(model, values, 'versus'),
          signal,
        };
        let report: AblationReport;
        if (sae && indices) {
          const groups = values.each === true ? indices.map((i) => [i]) : [indices];
          report = await ablateSaeFeatures(attachSae(model, sae), ids, groups, options);
        } else {
          report = await ablate(model, ids, parseAblationGroups(spec!, model), options);
        }
        if (values.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
        else process.stdout.write(await renderAblation(model, report));
      });
    } finally {
      await sae?.dispose();
    }
  },
};

/** Windows of at most the model's context from the first documents of a corpus. */
async function corpusWindows(
  model: HookedModel,
  corpus: string,
  max: number,
  length?: number,
): Promise<number[][]> {
  const out: number[][] = [];
  const size = Math.min(length ?? model.spec.nCtx, model.spec.nCtx);
  for await (const doc of readCorpus(corpus)) {
    const tokens = await model.tokenize(doc.text);
    const first = tokens[0];
    const bos = first && first.start === 0 && first.end === 0 ? first.id : null;
    const body = (bos === null ? tokens : tokens.slice(1)).map((t) => t.id);
    const step = bos === null ? size : size - 1;
    for (let s = 0; s + step <= body.length || (s === 0 && body.length > 0); s += step) {
      out.push([...(bos === null ? [] : [bos]), ...body.slice(s, s + step)]);
      if (out.length >= max) return out;
    }
  }
  if (out.length === 0) throw new LoupeError(`${corpus}: no text to read`);
  return out;
}

async function renderAblation(model: HookedModel, r: AblationReport): Promise<string> {
  const [target] = await tokenTexts(model, [r.target]);
  const versus = r.versus === null ? null : (await tokenTexts(model, [r.versus]))[0];
  const describe = (s: PredictionState): string =>
    `loss ${s.loss.toFixed(4)}  logit ${s.logit.toFixed(3)}  p ${s.prob.toFixed(4)}` +
    (s.logitDiff === null ? '' : `  logit diff ${s.logitDiff.toFixed(3)}`);
  const lines = [
    `${r.mode} ablation; prediction of ${JSON.stringify(target)}${versus === null ? '' : ` versus ${JSON.stringify(versus)}`} at position ${r.position}`,
    `${'clean'.padEnd(16)} ${describe(r.clean)}`,
  ];
  for (const e of r.effects) {
    const top = (
      await tokenTexts(
        model,
        e.ablated.top.slice(0, 3).map((t) => t.id),
      )
    )
      .map((t) => JSON.stringify(t))
      .join(' ');
    lines.push(
      `${e.name.padEnd(16)} Δloss ${e.deltaLoss >= 0 ? '+' : ''}${e.deltaLoss.toFixed(4)}  Δlogit ${e.deltaLogit >= 0 ? '+' : ''}${e.deltaLogit.toFixed(3)}  ` +
        `Δp ${e.deltaProb >= 0 ? '+' : ''}${e.deltaProb.toFixed(4)}` +
        (e.deltaLogitDiff === null
          ? ''
          : `  Δlogit diff ${e.deltaLogitDiff >= 0 ? '+' : ''}${e.deltaLogitDiff.toFixed(3)}`) +
        `  now: ${top}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// occlude

export const occludeCommand: CliCommand = {
  usage: `occlude --text FILE [--target TOKEN] [--versus TOKEN] [--position P] [--metric logit|logprob] [--replace TOKEN] [--json]
      occlusion attribution: each token's effect on the prediction of TOKEN (default the top token) at the last
      position, as the metric's drop when the token's embedding is zeroed (or it is replaced by --replace); with
      --versus the metric is the logit difference`,
  options: {
    target: { type: 'string' },
    versus: { type: 'string' },
    position: { type: 'string' },
    metric: { type: 'string' },
    replace: { type: 'string' },
  },
  async run(values) {
    const metric = choice(stringOption(values, 'metric') ?? 'logit', '--metric', [
      'logit',
      'logprob',
    ] as const);
    const position = positionOption(values);
    await withModel(values, async (model, signal) => {
      const text = readPrompt(model, stringOption(values, 'text'), '--text');
      const tokens = await model.tokenize(text, { prependBos: values['no-bos'] !== true });
      if (tokens.length === 0) throw new LoupeError('the text has no tokens');
      const result = await occlude(
        model,
        tokens.map((t) => t.id),
        {
          position,
          metric,
          target: await optionalToken(model, values, 'target'),
          versus: await optionalToken(model, values, 'versus'),
          replacement: await optionalToken(model, values, 'replace'),
          signal,
        },
      );
      const rows = tokens.map((t, i) => ({
        id: t.id,
        text: t.text,
        start: t.start,
        end: t.end,
        effect: result.effects[i],
      }));
      if (values.json === true) {
        // The effects travel with their tokens.
        process.stdout.write(`${JSON.stringify({ ...result, effects: undefined, tokens: rows })}\n`);
        return;
      }
      const [target, versus] = await tokenTexts(model, [result.target, result.versus ?? result.target]);
      const title =
        result.metric === 'logit-diff'
          ? `logit(${JSON.stringify(target)}) − logit(${JSON.stringify(versus)})`
          : `${result.metric === 'logit' ? 'logit' : 'log-probability'} of ${JSON.stringify(target)}`;
      const how = result.method === 'replacement' ? 'replacing' : 'zeroing the embedding of';
      process.stdout.write(
        `${title} at position ${result.position}: ${result.clean.toFixed(4)}; its drop on ${how} each token:\n`,
      );
      for (const r of rows)
        process.stdout.write(
          `${r.effect.toFixed(4).padStart(9)}\t${r.start}\t${r.end}\t${JSON.stringify(r.text)}\n`,
        );
    });
  },
};

// ---------------------------------------------------------------------------
// steer

export const steerCommand: CliCommand = {
  usage: `steer --text FILE --direction feature:I|probe:DIR|FILE.safetensors [--sae DIR] [--label L] [--hook NAME]
            --strength S [--tokens N] [--sample [--temperature T] [--top-k K] [--seed S]] [--json]
      generates N tokens (default 20) after the prompt with strength × direction added at the hook at every
      position, side by side with the unsteered continuation (greedy, or sampled with a seed). feature:I is SAE
      feature I's decoder row (with --sae; the hook defaults to the SAE's); probe:DIR a saved probe's direction for
      L, at unit length (the hook defaults to its most accurate); a .safetensors file holds 'direction' (as
      'probe --export' writes; its hook from the file's metadata)`,
  options: {
    direction: { type: 'string' },
    sae: { type: 'string' },
    label: { type: 'string' },
    hook: { type: 'string' },
    strength: { type: 'string' },
    tokens: { type: 'string' },
    sample: { type: 'boolean' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(values) {
    const spec = stringOption(values, 'direction');
    if (!spec) throw new LoupeError('--direction feature:I, probe:DIR or FILE.safetensors is required');
    const strength = finiteNumber(stringOption(values, 'strength'), '--strength');
    if (strength === undefined) throw new LoupeError('--strength S is required');
    const tokens = positiveInt(stringOption(values, 'tokens') ?? '20', '--tokens');
    const temperature = positiveNumber(stringOption(values, 'temperature'), '--temperature');
    const topK = positiveInt(stringOption(values, 'top-k'), '--top-k');
    const seed = seedInt(stringOption(values, 'seed'), '--seed');
    const sample = values.sample === true;
    if (!sample && (temperature !== undefined || topK !== undefined || seed !== undefined)) {
      throw new LoupeError('--temperature, --top-k and --seed apply to sampling; add --sample');
    }
    let sae: Sae | null = null;
    try {
      await withModel(values, async (model, signal) => {
        let hook = stringOption(values, 'hook');
        let direction: Float32Array;
        const feature = /^feature:(\d+)$/.exec(spec);
        if (feature) {
          const saeDir = stringOption(values, 'sae');
          if (!saeDir) throw new LoupeError('--direction feature:I needs --sae DIR');
          sae = Sae.load(saeDir);
          const att = attachSae(model, sae);
          direction = featureDirection(sae, Number(feature[1]));
          hook ??= att.hook.name;
        } else if (spec.startsWith('probe:')) {
          const probe = loadProbe(spec.slice('probe:'.length));
          const found = probeDirection(model, probe, { hook, label: stringOption(values, 'label') });
          direction = unitDirection(found.direction);
          hook = found.hook;
        } else if (spec.endsWith('.safetensors')) {
          const file = SafetensorsFile.open(spec);
          if (!file.tensors.has('direction')) throw new LoupeError(`${spec}: no 'direction' tensor`);
          direction = file.readF32('direction');
          checkFiniteDirection(direction, `${spec}: 'direction'`);
          hook ??= file.metadata.hook;
          if (!hook) throw new LoupeError(`${spec}: no hook in the file's metadata; give --hook NAME`);
        } else {
          throw new LoupeError(
            `--direction must be feature:I, probe:DIR or a .safetensors file, not '${spec}'`,
          );
        }
        const prompt = await promptIds(model, stringOption(values, 'text'), '--text', values);
        const result = await steer(model, prompt, {
          hook,
          direction,
          strength,
          tokens,
          sample,
          temperature,
          topK,
          seed,
          signal,
        });
        if (values.json === true) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return;
        }
        const how = sample
          ? `sampled (seed ${seed ?? 0}, temperature ${temperature ?? 1}${topK ? `, top ${topK}` : ''})`
          : 'greedy';
        process.stdout.write(
          `${how}, ${tokens} tokens; steering ${path.basename(spec)} × ${strength} at ${hook}\n` +
            `unsteered: ${JSON.stringify(result.unsteered.text ?? result.unsteered.ids.join(' '))}\n` +
            `steered:   ${JSON.stringify(result.steered.text ?? result.steered.ids.join(' '))}\n`,
        );
      });
    } finally {
      await (sae as Sae | null)?.dispose();
    }
  },
};

// ---------------------------------------------------------------------------
// tcav

export const tcavCommand: CliCommand = {
  usage: `tcav --concept FILE --random PATH --inputs FILE --target TOKEN [--hooks NAME,NAME] [--runs R]
            [--random-examples N] [--seed S] [--json]
      TCAV (Kim et al. 2018): a CAV per hook from the concept's examples (one per line of FILE, or "text" per line
      of a .jsonl) against random sets drawn from PATH (a folder, .jsonl or text, cut into pieces as long as the
      concept examples; default 200 pieces); the TCAV score is the fraction of inputs whose TOKEN logit at the
      last position rises along the CAV (directional derivative by central differences); significance: its mean
      score against R random sets' (default 10), each tried as a concept, by a two-sided t-test (Kim et al.'s
      pairwise test is shown beside it). --hooks defaults to every block's resid_post`,
  options: {
    concept: { type: 'string' },
    random: { type: 'string' },
    inputs: { type: 'string' },
    target: { type: 'string' },
    hooks: { type: 'string' },
    runs: { type: 'string' },
    'random-examples': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(values) {
    const conceptFile = stringOption(values, 'concept');
    const randomPath = stringOption(values, 'random');
    const inputsFile = stringOption(values, 'inputs');
    const targetSpec = stringOption(values, 'target');
    if (!conceptFile || !randomPath || !inputsFile || targetSpec === undefined) {
      throw new LoupeError('--concept FILE, --random PATH, --inputs FILE and --target TOKEN are required');
    }
    const runs = positiveInt(stringOption(values, 'runs') ?? '10', '--runs');
    const maxRandom = positiveInt(stringOption(values, 'random-examples') ?? '200', '--random-examples');
    const seed = seedInt(stringOption(values, 'seed'), '--seed');
    const threads = threadsOption(stringOption(values, 'threads'));
    await withModel(values, async (model, signal) => {
      const hooksArg = stringOption(values, 'hooks');
      const hooks = hooksArg
        ? hooksArg
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s.length > 0)
        : Array.from({ length: model.spec.nLayers }, (_, l) => `blocks.${l}.hook_resid_post`);
      hooks.forEach((h) => model.hookByName(h));
      const concept = await exampleIds(model, conceptFile, values);
      const inputs = await exampleIds(model, inputsFile, values);
      const lengths = concept.map((c) => c.length).sort((a, b) => a - b);
      const random = await corpusWindows(
        model,
        randomPath,
        maxRandom,
        lengths[Math.floor(lengths.length / 2)],
      );
      const target = await parseToken(model, targetSpec, '--target');
      let last = -1;
      const result = await runTcav(
        model,
        { concept, random, inputs },
        {
          hooks,
          target,
          runs,
          seed,
          threads,
          signal,
          onProgress: (done, total) => {
            const pct = Math.floor((100 * done) / total);
            if (pct !== last && process.stderr.isTTY) process.stderr.write(`\rTCAV: ${pct}%`);
            last = pct;
          },
        },
      );
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (values.json === true) {
        process.stdout.write(
          `${JSON.stringify({ ...result, hooks: result.hooks.map((h) => ({ ...h, cav: [...h.cav] })) })}\n`,
        );
        return;
      }
      const [targetText] = await tokenTexts(model, [target]);
      const lines = [
        `TCAV for ${JSON.stringify(targetText)}: ${result.counts.concept} concept examples, ${result.counts.random} random pieces, ` +
          `${result.counts.inputs} inputs, ${result.runs} runs; significant at p < ${result.alpha}`,
        `${'hook'.padEnd(28)} score  random   p-value  (pairwise)  CAV accuracy`,
      ];
      for (const h of result.hooks) {
        lines.push(
          `${h.hook.padEnd(28)} ${h.meanScore.toFixed(3)}  ${h.meanRandomScore.toFixed(3)}  ${h.pValue.toExponential(2).padStart(8)}  ` +
            `(${h.pairwise.p.toExponential(2)})  ${h.cavAccuracy.toFixed(3)}   ${h.significant ? 'significant' : 'not significant'}`,
        );
      }
      lines.push(
        `p-value: the concept's mean score against each random set's; (pairwise): Kim et al.'s two-sample test, which is too eager`,
      );
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  },
};

/** Examples from a file: "text" per line of a .jsonl, or one per non-empty line of a text file. */
async function exampleIds(model: HookedModel, file: string, values: OptionValues): Promise<number[][]> {
  const texts: string[] = [];
  if (file.endsWith('.jsonl')) for await (const doc of readCorpus(file)) texts.push(doc.text);
  else
    texts.push(
      ...readTextFile(file)
        .split(/\r?\n/)
        .filter((l) => l.trim().length > 0),
    );
  if (texts.length === 0) throw new LoupeError(`${file}: no examples`);
  const out: number[][] = [];
  for (const text of texts) {
    const ids = (await model.tokenize(text, { prependBos: values['no-bos'] !== true })).map((t) => t.id);
    out.push(ids.slice(0, model.spec.nCtx));
  }
  return out;
}
