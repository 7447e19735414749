/**
 * The `loupe` command line: the engine without VS Code. Every command prints
 * its result on stdout; on bad input it exits non-zero with one line on stderr.
 */
import { CancelledError, LoupeError } from '../engine/errors';
import { seededUniform } from '../engine/random';
import { HookSelection, hookShape } from '../engine/hooks';
import { TensorToWrite, writeSafetensors } from '../engine/safetensors';
import { checkOutputFile } from '../engine/safeWrite';
import { Sae } from '../engine/sae/sae';
import { evaluateSae } from '../engine/sae/evaluate';
import { trainSae } from '../engine/sae/trainer';
import { BuildProgress, buildFeatureDatabase } from '../engine/features/build';
import { FeatureDatabase } from '../engine/features/database';
import { FeatureContext, FeatureDashboard } from '../engine/features/types';
import {
  CliCommand,
  COMMON_OPTIONS,
  OptionsTable,
  choice,
  nonNegativeInt,
  openModel,
  parseCommandLine,
  positiveInt,
  positiveNumber,
  readContextText,
  readTextFile,
  seedInt,
  threadsOption,
} from './common';
import { runAndExit } from './exit';
import { featuresCommand } from './features';
import { headsCommand } from './heads';
import { lensCommand } from './lens';
import { reportProgress, withStopSignal } from './trainingProgress';
import { evalTranscoderCommand, trainTranscoderCommand } from './transcoders';
import { probeCommand } from './probe';
import { ablateCommand, occludeCommand, patchCommand, steerCommand, tcavCommand } from './causal';

/** Commands that live in their own modules. */
const COMMANDS: Readonly<Record<string, CliCommand>> = {
  lens: lensCommand,
  heads: headsCommand,
  probe: probeCommand,
  tcav: tcavCommand,
  patch: patchCommand,
  ablate: ablateCommand,
  occlude: occludeCommand,
  steer: steerCommand,
  features: featuresCommand,
  'train-transcoder': trainTranscoderCommand,
  'eval-transcoder': evalTranscoderCommand,
};

const USAGE = `usage: loupe <command> [options]

commands:
  tokenize --model DIR --text FILE [--json] [--no-bos]
      the tokens 'run' feeds the model, with UTF-16 spans into the file's text
  run --model DIR --text FILE --hooks all|resid|none|NAME,NAME --out FILE.safetensors [--no-bos]
      one forward pass; writes 'logits' [1, T, d_vocab] and each hook (f32, TransformerLens shapes)
  hooks --model DIR [--json]
      the model's hook points and their shapes
  train-sae --model DIR --hook NAME --corpus PATH --out DIR [--arch topk|relu] [--expansion E | --d-sae N]
            [--k K] [--l1 C] [--lr LR] [--batch TOKENS] [--tokens TOTAL] [--context N] [--checkpoint-every STEPS]
            [--seed S] [--resume]
      trains an SAE on activations streamed from PATH (a folder, a .jsonl with "text", or a text file);
      saves it in SAELens's format; Ctrl-C stops at a checkpoint that --resume continues
  eval-sae --model DIR --sae DIR --corpus PATH [--tokens N] [--context N] [--json]
      L0, FVU, next-token loss clean / spliced / zero-ablated, loss recovered, dead and dense fractions
  dashboards --model DIR --sae DIR --corpus PATH [--tokens N] [--context N] [--clusters K] [--seed S] [--out DIR]
      one pass over PATH (default 100000 tokens), then every feature's dashboard: top-activating contexts,
      samples from lower activation bands, density, histogram, logit effects, similar features, an automatic
      label; clusters and a 2-D map. Writes a feature database to DIR (default SAE_DIR/features); progress on stderr
  feature --sae DIR (--index I | --search TEXT | --list density|maxAct|index) [--db DIR] [--top N] [--json]
      one feature's dashboard from the database (--index), the features matching a label, token or index
      (--search), or the first N features by a column (--list); --db is the database if not in SAE_DIR/features
  bench forward --model DIR --tokens T --repeat N [--hooks none|resid|all] [--batch B] [--json]
      forward-pass throughput with the model already loaded
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}\n`)
  .join('')}
--model defaults to the bundled default model. --threads N sets onnxruntime's threads (up to 4 per core; 0: one
per core). Negative numbers go as --position -1 or --position=-1.`;

interface Flags {
  model?: string;
  text?: string;
  json?: boolean;
  'no-bos'?: boolean;
  hooks?: string;
  out?: string;
  tokens?: string;
  repeat?: string;
  batch?: string;
  threads?: string;
  sae?: string;
  top?: string;
  hook?: string;
  corpus?: string;
  arch?: string;
  expansion?: string;
  'd-sae'?: string;
  k?: string;
  l1?: string;
  lr?: string;
  context?: string;
  'checkpoint-every'?: string;
  seed?: string;
  resume?: boolean;
  clusters?: string;
  index?: string;
  search?: string;
  list?: string;
  db?: string;
  help?: boolean;
}

/** The options of the commands main.ts runs itself. */
const MAIN_OPTIONS: OptionsTable = {
  ...COMMON_OPTIONS,
  hooks: { type: 'string' },
  out: { type: 'string' },
  tokens: { type: 'string' },
  repeat: { type: 'string' },
  batch: { type: 'string' },
  sae: { type: 'string' },
  top: { type: 'string' },
  hook: { type: 'string' },
  corpus: { type: 'string' },
  arch: { type: 'string' },
  expansion: { type: 'string' },
  'd-sae': { type: 'string' },
  k: { type: 'string' },
  l1: { type: 'string' },
  lr: { type: 'string' },
  context: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  seed: { type: 'string' },
  resume: { type: 'boolean' },
  clusters: { type: 'string' },
  index: { type: 'string' },
  search: { type: 'string' },
  list: { type: 'string' },
  db: { type: 'string' },
};

async function main(argv: string[]): Promise<void> {
  const own = argv[0] === undefined ? undefined : COMMANDS[argv[0]];
  if (own) {
    const { values, positionals } = parseCommandLine(
      argv.slice(1),
      { ...COMMON_OPTIONS, ...own.options },
      `loupe ${argv[0]} --help`,
    );
    if (values.help === true) {
      process.stdout.write(`usage: loupe ${own.usage}\n`);
      return;
    }
    return own.run(values, positionals);
  }
  const { values, positionals } = parseCommandLine(argv, MAIN_OPTIONS, 'loupe --help');
  const flags = values as Flags;
  const [command, sub] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  switch (command) {
    case 'tokenize':
      return tokenize(flags);
    case 'run':
      return run(flags);
    case 'hooks':
      return listHooks(flags);
    case 'eval-sae':
      return evalSaeCommand(flags);
    case 'train-sae':
      return trainSaeCommand(flags);
    case 'dashboards':
      return dashboardsCommand(flags);
    case 'feature':
      return featureCommand(flags);
    case 'bench':
      if (sub !== 'forward') throw new LoupeError(`unknown bench '${sub ?? ''}'; try 'loupe bench forward'`);
      return benchForward(flags);
    default:
      throw new LoupeError(`unknown command '${command}'; run 'loupe --help'`);
  }
}

async function tokenize(flags: Flags): Promise<void> {
  const text = readTextFile(flags.text);
  const model = await openModel(flags);
  try {
    const tokens = await model.tokenize(text, { prependBos: !flags['no-bos'] });
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify(tokens.map((t) => ({ id: t.id, text: t.text, start: t.start, end: t.end })))}\n`,
      );
    } else {
      for (const t of tokens)
        process.stdout.write(`${t.id}\t${t.start}\t${t.end}\t${JSON.stringify(t.text)}\n`);
    }
  } finally {
    await model.dispose();
  }
}

function parseHooks(value: string | undefined): HookSelection {
  if (value === undefined || value === 'none') return 'none';
  if (value === 'all' || value === 'resid') return value;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

async function run(flags: Flags): Promise<void> {
  if (!flags.out) throw new LoupeError('--out FILE.safetensors is required');
  checkOutputFile(flags.out, 'safetensors');
  const model = await openModel(flags);
  try {
    const text = readContextText(model, flags.text, '--text', 'refuse');
    const tokens = await model.tokenize(text, { prependBos: !flags['no-bos'] });
    if (tokens.length === 0)
      throw new LoupeError(`${flags.text}: the text has no tokens (is the file empty?)`);
    const [result] = await model.run([tokens.map((t) => t.id)], { hooks: parseHooks(flags.hooks) });
    const out = new Map<string, TensorToWrite>();
    out.set('logits', { dtype: 'F32', shape: result.logits.dims, data: result.logits.data });
    for (const [name, t] of result.hooks) out.set(name, { dtype: 'F32', shape: t.dims, data: t.data });
    writeSafetensors(flags.out, out, {
      model: model.checkpoint.dir,
      tokens: JSON.stringify(tokens.map((t) => t.id)),
    });
    process.stderr.write(`wrote ${out.size} tensors for ${tokens.length} tokens to ${flags.out}\n`);
  } finally {
    await model.dispose();
  }
}

async function listHooks(flags: Flags): Promise<void> {
  const model = await openModel(flags);
  try {
    const rows = model.hookTable.map((h) => ({
      name: h.name,
      shape: hookShape(model.spec, h, 1, 1).map((d, i) =>
        h.dims[i] === 'batch' ? 'batch' : h.dims[i] === 'pos' ? 'pos' : d,
      ),
    }));
    if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else for (const r of rows) process.stdout.write(`${r.name}\t[${r.shape.join(', ')}]\n`);
  } finally {
    await model.dispose();
  }
}

/** Most tokens in one benchmarked pass (batch × tokens), so the inputs and activations stay in memory. */
const MAX_BENCH_TOKENS = 65536;

async function benchForward(flags: Flags): Promise<void> {
  const T = positiveInt(flags.tokens ?? '128', '--tokens');
  const repeat = positiveInt(flags.repeat ?? '10', '--repeat');
  const batch = positiveInt(flags.batch ?? '1', '--batch');
  const hooks = choice(flags.hooks ?? 'none', '--hooks', ['none', 'resid', 'all'] as const);
  const openStart = process.hrtime.bigint();
  const model = await openModel(flags);
  const openSeconds = Number(process.hrtime.bigint() - openStart) / 1e9;
  try {
    if (T > model.spec.nCtx)
      throw new LoupeError(`--tokens ${T} exceeds the model's context of ${model.spec.nCtx}`);
    if (T * batch > MAX_BENCH_TOKENS)
      throw new LoupeError(
        `--batch ${batch} × --tokens ${T} is ${T * batch} tokens per pass; at most ${MAX_BENCH_TOKENS} are benchmarked`,
      );
    const rand = seededUniform(12345);
    const ids = Array.from({ length: batch }, () =>
      Array.from({ length: T }, () => Math.floor(rand() * model.spec.dVocab)),
    );
    const selection: HookSelection = hooks;
    for (let i = 0; i < 2; i++) await model.runPadded(ids, { hooks: selection }); // warm-up: session, arenas
    const times: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t0 = process.hrtime.bigint();
      await model.runPadded(ids, { hooks: selection });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const total = times.reduce((a, b) => a + b, 0);
    const sorted = [...times].sort((a, b) => a - b);
    const report = {
      tokens_per_s: (T * batch * repeat) / (total / 1000),
      hooks,
      tokens: T,
      batch,
      repeat,
      threads: threadsOption(flags.threads) ?? null,
      ms_per_forward_mean: total / repeat,
      ms_per_forward_median: sorted[Math.floor(sorted.length / 2)],
      model: model.checkpoint.dir,
      open_seconds: openSeconds,
      max_rss_mb: process.resourceUsage().maxRSS / 1024,
    };
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else
      process.stdout.write(
        `${report.tokens_per_s.toFixed(1)} tokens/s (hooks ${hooks}, T=${T}, batch ${batch})\n`,
      );
  } finally {
    await model.dispose();
  }
}

async function trainSaeCommand(flags: Flags): Promise<void> {
  if (!flags.hook) throw new LoupeError('--hook NAME is required (for example blocks.0.hook_resid_post)');
  if (!flags.corpus)
    throw new LoupeError('--corpus PATH is required (a folder, a .jsonl file or a text file)');
  if (!flags.out) throw new LoupeError('--out DIR is required');
  const arch = choice(flags.arch ?? 'topk', '--arch', ['topk', 'relu'] as const);
  // Every value checked before the model opens or anything is allocated.
  const settings = {
    expansion: positiveNumber(flags.expansion, '--expansion'),
    dSae: positiveInt(flags['d-sae'], '--d-sae'),
    k: positiveInt(flags.k, '--k'),
    l1Coefficient: positiveNumber(flags.l1, '--l1'),
    lr: positiveNumber(flags.lr, '--lr'),
    batchSize: positiveInt(flags.batch, '--batch'),
    trainingTokens: positiveInt(flags.tokens, '--tokens'),
    contextSize: positiveInt(flags.context, '--context'),
    checkpointEvery: positiveInt(flags['checkpoint-every'], '--checkpoint-every'),
    seed: seedInt(flags.seed, '--seed'),
    threads: threadsOption(flags.threads),
  };
  if (settings.k !== undefined && arch !== 'topk') throw new LoupeError('--k goes with --arch topk');
  if (settings.l1Coefficient !== undefined && arch !== 'relu')
    throw new LoupeError('--l1 goes with --arch relu');
  if (settings.expansion !== undefined && settings.dSae !== undefined)
    throw new LoupeError('give --expansion or --d-sae, not both');
  const paths = { hook: flags.hook, corpus: flags.corpus, outDir: flags.out };
  const model = await openModel(flags);
  try {
    const result = await withStopSignal((signal) =>
      trainSae(model, {
        ...paths,
        architecture: arch,
        ...settings,
        resume: flags.resume,
        signal,
        onProgress: reportProgress,
      }),
    );
    process.stderr.write('\n');
    if (result.cancelled) {
      throw new CancelledError(
        `stopped at a checkpoint (step ${result.steps}); the same command with --resume continues`,
      );
    }
    const l = result.last;
    process.stdout.write(
      `${JSON.stringify({ out: result.outDir, steps: result.steps, tokens: result.tokens, loss: l?.loss, mse: l?.mse, fvu: l?.fvu, l0: l?.l0, dead_fraction: l?.deadFraction })}\n`,
    );
  } finally {
    await model.dispose();
  }
}

async function evalSaeCommand(flags: Flags): Promise<void> {
  if (!flags.sae) throw new LoupeError('--sae DIR is required');
  if (!flags.corpus)
    throw new LoupeError('--corpus PATH is required (held-out text: a folder, a .jsonl or a text file)');
  const maxTokens = positiveInt(flags.tokens, '--tokens');
  const contextSize = positiveInt(flags.context, '--context');
  const model = await openModel(flags);
  const sae = Sae.load(flags.sae, { threads: threadsOption(flags.threads) });
  try {
    const result = await evaluateSae(model, sae, { corpus: flags.corpus, maxTokens, contextSize });
    if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k}\t${v}\n`);
  } finally {
    sae.dispose();
    await model.dispose();
  }
}

async function dashboardsCommand(flags: Flags): Promise<void> {
  if (!flags.sae)
    throw new LoupeError('--sae DIR is required (a SAELens folder: cfg.json + sae_weights.safetensors)');
  if (!flags.corpus)
    throw new LoupeError('--corpus PATH is required (a folder, a .jsonl file or a text file)');
  const threads = threadsOption(flags.threads);
  const maxTokens = positiveInt(flags.tokens, '--tokens');
  const contextSize = positiveInt(flags.context, '--context');
  const clusters = positiveInt(flags.clusters, '--clusters');
  const seed = seedInt(flags.seed, '--seed');
  const sae = Sae.load(flags.sae, { threads });
  for (const w of sae.warnings) process.stderr.write(`loupe: warning: ${w}\n`);
  if (clusters !== undefined && clusters > sae.config.dSae)
    throw new LoupeError(`--clusters must be at most the SAE's ${sae.config.dSae} features, not ${clusters}`);
  const model = await openModel(flags);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = Date.now();
  let lastStage = '';
  let lastTenth = -1;
  try {
    const result = await buildFeatureDatabase(model, sae, flags.corpus, {
      maxTokens,
      contextSize,
      clusters,
      seed,
      out: flags.out,
      threads,
      signal: controller.signal,
      onProgress: (p: BuildProgress) => {
        const tenth = Math.floor((10 * p.done) / Math.max(1, p.total));
        if (process.stderr.isTTY) {
          // One live line per stage; a finished stage's line stays.
          if (p.stage !== lastStage && lastStage !== '') process.stderr.write('\n');
          process.stderr.write(`\r${buildLine(p, started)}`);
        } else if (p.stage !== lastStage || tenth !== lastTenth) {
          process.stderr.write(`${buildLine(p, started)}\n`);
        }
        lastStage = p.stage;
        lastTenth = tenth;
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    const m = result.meta;
    process.stdout.write(
      `${JSON.stringify({ out: result.dir, features: m.dSae, live: m.liveFeatures, dead: m.dSae - m.liveFeatures, tokens: m.tokens, documents: m.documents, clusters: m.options.clusters, seconds: m.seconds })}\n`,
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await model.dispose();
    await sae.dispose();
  }
}

function buildLine(p: BuildProgress, started: number): string {
  const names: Record<BuildProgress['stage'], string> = {
    pass: 'reading the corpus (tokens)',
    logits: 'logit effects (features)',
    similar: 'similar features (features)',
    labels: 'labels (features)',
    clusters: 'clustering',
    map: 'map (UMAP epochs)',
    write: 'writing dashboards (features)',
  };
  const pct = p.total > 0 ? Math.min(100, (100 * p.done) / p.total) : 100;
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  return `${names[p.stage]}: ${p.done}/${p.total} (${pct.toFixed(0)}%) ${secs}s   `;
}

async function featureCommand(flags: Flags): Promise<void> {
  const where = flags.db ?? flags.sae;
  if (!where) throw new LoupeError('--sae DIR (or --db DIR) is required');
  const limit = positiveInt(flags.top ?? '20', '--top');
  const index = nonNegativeInt(flags.index, '--index');
  const sort = choice(flags.list, '--list', ['index', 'density', 'maxAct', 'meanActive'] as const);
  const db = FeatureDatabase.open(where);
  if (index !== undefined) {
    const d = db.dashboard(index);
    if (flags.json) process.stdout.write(`${JSON.stringify(d)}\n`);
    else process.stdout.write(renderDashboard(d));
    return;
  }
  let rows;
  if (flags.search !== undefined) rows = db.search(flags.search, limit);
  else if (sort !== undefined) rows = db.list({ sort, limit });
  else throw new LoupeError('give --index I, --search TEXT or --list density|maxAct|meanActive|index');
  if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else
    for (const r of rows)
      process.stdout.write(
        `${r.index}\t${r.dead ? 'dead' : r.density.toPrecision(3)}\t${r.maxAct.toPrecision(3)}\t${r.label}\n`,
      );
}

function renderDashboard(d: FeatureDashboard): string {
  const lines: string[] = [];
  const s = d.stats;
  lines.push(`feature ${d.index}${d.dead ? ' (dead)' : ''}: ${d.label.text || '(no label)'}`);
  lines.push(
    `density ${s.density.toPrecision(3)} (${s.activeTokens}/${s.tokens} tokens), max ${s.maxAct}, mean when active ${s.meanActive}, cluster ${d.cluster ?? '-'}`,
  );
  const ctx = (c: FeatureContext): string =>
    c.tokens
      .map((t, i) => (i === c.focus ? `[[${t}]]` : t))
      .join('')
      .replace(/\n/g, '⏎');
  if (d.logits) {
    lines.push(
      `promotes:   ${d.logits.promoted.map((t) => `${JSON.stringify(t.token)} ${t.value}`).join(', ')}`,
    );
    lines.push(
      `suppresses: ${d.logits.suppressed.map((t) => `${JSON.stringify(t.token)} ${t.value}`).join(', ')}`,
    );
  }
  lines.push(`similar: ${d.similar.map((x) => `${x.index} (${x.cosine})`).join(', ')}`);
  lines.push('top activations:');
  for (const c of d.top) lines.push(`  ${c.act.toPrecision(3).padStart(8)}  ${ctx(c)}   ${c.source}`);
  for (const b of d.bands) {
    lines.push(`band ${b.lo}–${b.hi} (${(100 * b.fraction).toFixed(1)}% of activations):`);
    for (const c of b.samples) lines.push(`  ${c.act.toPrecision(3).padStart(8)}  ${ctx(c)}   ${c.source}`);
  }
  return `${lines.join('\n')}\n`;
}

runAndExit(() => main(process.argv.slice(2)));
