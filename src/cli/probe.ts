/**
 * `loupe probe`: train logistic-regression probes per hook (labels from a
 * JSONL dataset or a regex over a corpus's tokens), show saved results, score
 * a text's tokens with a saved probe, or export a probe's direction.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCorpus } from '../engine/corpus';
import { LoupeError } from '../engine/errors';
import { HookedModel } from '../engine/model';
import { ProbeDataset } from '../engine/probes/dataset';
import { probeDirection, scoreText } from '../engine/probes/apply';
import { datasetFromRegex, datasetFromTexts, readLabelledJsonl } from '../engine/probes/labels';
import { ProbeProgress, trainProbes } from '../engine/probes/probing';
import { ProbeMetadata, loadProbe, probeFromResults, saveProbe } from '../engine/probes/store';
import { writeSafetensors } from '../engine/safetensors';
import {
  CliCommand,
  OptionValues,
  choice,
  fraction,
  nonNegativeNumber,
  openModel,
  positiveInt,
  readTextFile,
  seedInt,
  stringOption,
  threadsOption,
} from './common';

export const probeCommand: CliCommand = {
  usage: `probe (--dataset FILE.jsonl | --regex RE --corpus PATH) [--hooks NAME,NAME] [--out DIR] [--l2 L]
            [--test-fraction F] [--seed S] [--tokens N] [--pool last|mean] [--unlabelled LABEL|skip] [--no-control] [--json]
      a logistic-regression probe per hook, trained on a split by document, with held-out accuracy, the
      majority-class baseline, a control task (random labels per token type) and selectivity. Labels: a .jsonl
      with {"text", "label"} per line (read at the text's last token, or --pool mean) or {"text", "spans":
      [{"start", "end", "label"}]} (token labels; tokens outside every span are 'other', or left out with
      --unlabelled skip), or --regex over each token of PATH (match / other). --hooks defaults to
      blocks.0.hook_resid_pre and every block's resid_mid and resid_post; --out DIR saves probe.json +
      probe.safetensors; --tokens caps the examples (default 100000)
  probe --show DIR [--json]
      a saved probe's results: accuracy, baseline, control and selectivity by hook
  probe --apply DIR --text FILE [--hook NAME] [--label L] [--json]
      each token of FILE with the probe's probability of L (default its concept label) at the hook
      (default the most accurate one)
  probe --export DIR --out FILE.safetensors [--hook NAME] [--label L]
      the probe's direction for L in the hook's activation space, as 'direction' [width]`,
  options: {
    dataset: { type: 'string' },
    regex: { type: 'string' },
    corpus: { type: 'string' },
    hooks: { type: 'string' },
    hook: { type: 'string' },
    out: { type: 'string' },
    l2: { type: 'string' },
    'test-fraction': { type: 'string' },
    seed: { type: 'string' },
    tokens: { type: 'string' },
    pool: { type: 'string' },
    unlabelled: { type: 'string' },
    'no-control': { type: 'boolean' },
    show: { type: 'string' },
    apply: { type: 'string' },
    export: { type: 'string' },
    label: { type: 'string' },
  },
  async run(values) {
    const modes = ['show', 'apply', 'export'].filter((m) => stringOption(values, m) !== undefined);
    if (modes.length > 1) throw new LoupeError(`give one of --${modes.join(', --')}`);
    if (modes[0] === 'show') return show(values);
    if (modes[0] === 'apply') return apply(values);
    if (modes[0] === 'export') return exportDirection(values);
    return train(values);
  },
};

function modelFlags(values: OptionValues): { model?: string; threads?: string } {
  return { model: stringOption(values, 'model'), threads: stringOption(values, 'threads') };
}

function threadsOf(values: OptionValues): number | undefined {
  return threadsOption(stringOption(values, 'threads'));
}

/** blocks.0.hook_resid_pre, then each block's resid_mid (where it has one) and resid_post. */
export function defaultProbeHooks(model: HookedModel): string[] {
  const hooks = ['blocks.0.hook_resid_pre'];
  for (let l = 0; l < model.spec.nLayers; l++) {
    if (!model.spec.parallelResidual) hooks.push(`blocks.${l}.hook_resid_mid`);
    hooks.push(`blocks.${l}.hook_resid_post`);
  }
  return hooks;
}

function hookList(value: string | undefined, model: HookedModel): string[] {
  if (value === undefined) return defaultProbeHooks(model);
  const hooks = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (hooks.length === 0) throw new LoupeError('--hooks names no hook');
  hooks.forEach((h) => model.hookByName(h)); // an unknown name stops here, with a suggestion
  return hooks;
}

async function train(values: OptionValues): Promise<void> {
  const datasetFile = stringOption(values, 'dataset');
  const regex = stringOption(values, 'regex');
  const corpus = stringOption(values, 'corpus');
  if ((datasetFile === undefined) === (regex === undefined)) {
    throw new LoupeError(
      'give --dataset FILE.jsonl, or --regex RE with --corpus PATH (or --show, --apply, --export)',
    );
  }
  if (regex !== undefined && corpus === undefined)
    throw new LoupeError('--regex needs --corpus PATH to read tokens from');
  const pool = choice(stringOption(values, 'pool') ?? 'last', '--pool', ['last', 'mean'] as const);
  const unlabelledArg = stringOption(values, 'unlabelled');
  const l2 = nonNegativeNumber(stringOption(values, 'l2'), '--l2');
  const testFraction = fraction(stringOption(values, 'test-fraction'), '--test-fraction');
  const seed = seedInt(stringOption(values, 'seed'), '--seed');
  threadsOf(values); // checked before the model opens
  const maxExamples = positiveInt(stringOption(values, 'tokens') ?? '100000', '--tokens');
  const out = stringOption(values, 'out');
  const json = values.json === true;
  const prependBos = values['no-bos'] !== true;
  const texts = datasetFile !== undefined ? await readLabelledJsonl(datasetFile) : null;
  const model = await openModel(modelFlags(values));
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  try {
    const hooks = hookList(stringOption(values, 'hooks'), model);
    let dataset: ProbeDataset;
    if (texts) {
      dataset = await datasetFromTexts(model, texts, datasetFile!, {
        pool,
        unlabelled: unlabelledArg === 'skip' ? null : unlabelledArg,
        maxExamples,
        prependBos,
        signal: controller.signal,
      });
    } else {
      dataset = await datasetFromRegex(model, readCorpus(corpus!), regex!, `/${regex}/ over ${corpus}`, {
        maxExamples,
        prependBos,
        signal: controller.signal,
      });
    }
    const results = await trainProbes(model, dataset, {
      hooks,
      l2,
      testFraction,
      seed,
      control: values['no-control'] !== true,
      threads: threadsOf(values),
      signal: controller.signal,
      onProgress: progressPrinter(),
    });
    const saved = probeFromResults(model, results);
    if (out !== undefined) {
      saveProbe(out, saved);
      process.stderr.write(`saved the probe to ${out}\n`);
    }
    if (json) process.stdout.write(`${JSON.stringify(saved.meta)}\n`);
    else process.stdout.write(renderResults(saved.meta));
  } finally {
    process.off('SIGINT', onSignal);
    await model.dispose();
  }
}

function progressPrinter(): (p: ProbeProgress) => void {
  let last = '';
  return (p) => {
    const line =
      p.stage === 'activations'
        ? `reading activations: ${Math.floor((100 * p.done) / Math.max(1, p.total))}%`
        : p.hook
          ? `training probe ${p.done + 1}/${p.total} at ${p.hook}`
          : `trained ${p.total} probes`;
    if (line === last) return;
    last = line;
    if (process.stderr.isTTY)
      process.stderr.write(`\r${line}\x1b[K${p.stage === 'training' && !p.hook ? '\n' : ''}`);
    else if (p.stage === 'training' || p.done === p.total) process.stderr.write(`${line}\n`);
  };
}

/** The results as a table with a bar of held-out accuracy per hook. */
export function renderResults(meta: ProbeMetadata): string {
  const pct = (v: number | null): string => (v === null ? '     -' : `${(100 * v).toFixed(1).padStart(5)}%`);
  const lines = [
    `${meta.dataset}: labels ${meta.labels.map((l) => `${l} (${meta.counts[l] ?? 0})`).join(', ')}`,
    `split by document: ${meta.split.trainDocuments} train (${meta.split.trainExamples} examples), ` +
      `${meta.split.testDocuments} held out (${meta.split.testExamples} examples); L2 ${meta.options.l2}, seed ${meta.options.seed}`,
    `${'hook'.padEnd(34)} accuracy  majority  control  selectivity`,
  ];
  for (const h of meta.hooks) {
    const sel =
      h.selectivity === null
        ? '       -'
        : `${h.selectivity >= 0 ? '+' : '-'}${Math.abs(100 * h.selectivity).toFixed(1)} pt`.padStart(8);
    const bar = '#'.repeat(Math.round(20 * h.accuracy));
    lines.push(
      `${h.hook.padEnd(34)} ${pct(h.accuracy)}    ${pct(h.majorityBaseline)}   ${pct(h.controlAccuracy)}    ${sel}   ${bar}${h.converged ? '' : '  (not converged)'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function show(values: OptionValues): Promise<void> {
  const probe = loadProbe(stringOption(values, 'show')!);
  if (values.json === true) process.stdout.write(`${JSON.stringify(probe.meta)}\n`);
  else process.stdout.write(renderResults(probe.meta));
}

async function apply(values: OptionValues): Promise<void> {
  const probe = loadProbe(stringOption(values, 'apply')!);
  const model = await openModel(modelFlags(values));
  try {
    const text = readTextFile(stringOption(values, 'text')); // long texts are scored in windows
    const scores = await scoreText(model, probe, text, {
      hook: stringOption(values, 'hook'),
      label: stringOption(values, 'label'),
      prependBos: values['no-bos'] !== true,
    });
    if (values.json === true) process.stdout.write(`${JSON.stringify(scores)}\n`);
    else {
      process.stdout.write(`P(${scores.scored}) at ${scores.hook}\n`);
      for (const t of scores.tokens) {
        process.stdout.write(
          `${t.score.toFixed(4)}\t${t.label}\t${t.start}\t${t.end}\t${JSON.stringify(t.text)}\n`,
        );
      }
    }
  } finally {
    await model.dispose();
  }
}

async function exportDirection(values: OptionValues): Promise<void> {
  const dir = stringOption(values, 'export')!;
  const out = stringOption(values, 'out');
  if (!out) throw new LoupeError('--export needs --out FILE.safetensors');
  const probe = loadProbe(dir);
  const model = await openModel(modelFlags(values));
  try {
    const { hook, label, direction } = probeDirection(model, probe, {
      hook: stringOption(values, 'hook'),
      label: stringOption(values, 'label'),
    });
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    writeSafetensors(
      out,
      new Map([['direction', { dtype: 'F32', shape: [direction.length], data: direction }]]),
      {
        hook,
        label,
        probe: path.basename(path.resolve(dir)),
        model: probe.meta.model.name,
      },
    );
    process.stderr.write(
      `wrote the direction of '${label}' at ${hook} (${direction.length} values) to ${out}\n`,
    );
  } finally {
    await model.dispose();
  }
}
