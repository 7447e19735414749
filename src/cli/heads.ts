/**
 * `loupe heads`: what each attention head does. Direct logit attribution at
 * a position (per head, per MLP, embeddings, biases; a logit or "A and not
 * B"), one head's attention pattern, or every head's text directions
 * (TextSpan) over a corpus.
 */
import { LoupeError } from '../engine/errors';
import { attentionPatterns, attentionRow } from '../engine/lens/attentionPatterns';
import { LogitAttribution, directLogitAttribution } from '../engine/lens/directLogitAttribution';
import {
  TextSpanProgress,
  TextSpanResult,
  corpusWindows,
  headTextDirections,
  heldoutSampleWindows,
} from '../engine/lens/headTextDirections';
import { checkBlock, checkHead, tokenPositions } from '../engine/lens/positions';
import { PoolSpec } from '../engine/lens/textPool';
import { resolveToken } from '../engine/lens/tokens';
import { resolvePosition } from '../engine/causal/predictions';
import {
  CliCommand,
  OptionValues,
  nonNegativeInt,
  openModel,
  positionInt,
  positiveInt,
  readContextText,
  readTextFile,
  stringOption,
  threadsOption,
} from './common';
import { textTokens } from './lens';

export const headsCommand: CliCommand = {
  usage: `heads --text FILE --position P [--target TOKEN] [--versus TOKEN] [--top K] [--json] [--no-bos]
      direct logit attribution at position P: what each head, each MLP, the embeddings and the attention biases
      write into the logit of the model's top prediction there, or of TOKEN (its text, which must be one token, or
      #ID), or into TOKEN's logit minus --versus's ("why A and not B"); the K largest by size (default 20)
  heads --text FILE --layer L --head H [--position P] [--top K] [--json] [--no-bos]
      one head's attention pattern: where the token at P (default: each token) attends, strongest first
  heads --directions [--corpus PATH] [--tokens N] [--context N] [--steps M] [--rank R] [--pool unembed|words:FILE]
                     [--layer L] [--head H] [--no-cache] [--json]
      TextSpan: each head's M text directions (default 10) that explain the most variance of its output over the
      corpus (default: the model folder's heldout-sample.json), chosen greedily from the unembedding's tokens or
      from the words and phrases in FILE (one per line), with the share of variance each explains; cached beside
      the compiled model`,
  options: {
    position: { type: 'string' },
    target: { type: 'string' },
    versus: { type: 'string' },
    top: { type: 'string' },
    layer: { type: 'string' },
    head: { type: 'string' },
    directions: { type: 'boolean' },
    corpus: { type: 'string' },
    tokens: { type: 'string' },
    context: { type: 'string' },
    steps: { type: 'string' },
    rank: { type: 'string' },
    pool: { type: 'string' },
    'no-cache': { type: 'boolean' },
  },
  async run(values, positionals) {
    if (positionals.length > 0)
      throw new LoupeError(`unexpected '${positionals[0]}'; see 'loupe heads --help'`);
    if (values.directions === true) return directions(values);
    if (stringOption(values, 'layer') !== undefined || stringOption(values, 'head') !== undefined) {
      return pattern(values);
    }
    if (stringOption(values, 'position') !== undefined) return attribution(values);
    throw new LoupeError(
      'give --position P (logit attribution), --layer L --head H (attention pattern) or --directions (TextSpan)',
    );
  },
};

/** A layer or head number (0, 1, ...). */
function indexOption(values: OptionValues, name: string): number | undefined {
  return nonNegativeInt(stringOption(values, name), `--${name}`);
}

function positionOption(values: OptionValues): number | undefined {
  return positionInt(stringOption(values, 'position'), '--position');
}

async function attribution(values: OptionValues): Promise<void> {
  const position = positionOption(values)!;
  const top = positiveInt(stringOption(values, 'top') ?? '20', '--top');
  const target = stringOption(values, 'target');
  const versus = stringOption(values, 'versus');
  if (versus !== undefined && target === undefined) throw new LoupeError('--versus needs --target');
  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  try {
    const text = readContextText(model, stringOption(values, 'text'), '--text', 'start');
    const tokens = await textTokens(model, text, values);
    const a = await directLogitAttribution(
      model,
      tokens.map((t) => t.id),
      {
        position: resolvePosition(position, tokens.length),
        target: target === undefined ? undefined : await resolveToken(model, target),
        versus: versus === undefined ? null : await resolveToken(model, versus),
      },
    );
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify({ token: tokens[a.position], ...a })}\n`);
      return;
    }
    process.stdout.write(renderAttribution(a, JSON.stringify(tokens[a.position].text), top));
  } finally {
    await model.dispose();
  }
}

function renderAttribution(a: LogitAttribution, token: string, top: number): string {
  const what =
    a.versus === null
      ? `the logit of ${JSON.stringify(a.target.text)}`
      : `logit ${JSON.stringify(a.target.text)} − logit ${JSON.stringify(a.versus.text)}`;
  const parts: [string, number][] = [['embed', a.embed]];
  if (a.posEmbed !== null) parts.push(['pos_embed', a.posEmbed]);
  a.heads.forEach((row, l) => row.forEach((v, h) => parts.push([`L${l}H${h}`, v])));
  a.mlp.forEach((v, l) => parts.push([`MLP${l}`, v]));
  a.attnBias.forEach((v, l) => {
    if (v !== 0) parts.push([`attn_bias${l}`, v]);
  });
  if (a.constant !== 0) parts.push(['final norm and unembedding biases', a.constant]);
  parts.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
  const lines = [
    `position ${a.position} (${token}): ${what} = ${a.logit.toFixed(4)}; the parts below add up to ${a.total.toFixed(4)}` +
      (a.cappedLogit === null
        ? ''
        : ` (attribution is linear, so of the logit before the model's final soft-cap; after it: ${a.cappedLogit.toFixed(4)})`),
    ...parts.slice(0, top).map(([name, v]) => `${v >= 0 ? ' ' : ''}${v.toFixed(4)}\t${name}`),
  ];
  return `${lines.join('\n')}\n`;
}

async function pattern(values: OptionValues): Promise<void> {
  const layer = indexOption(values, 'layer');
  const head = indexOption(values, 'head');
  if (layer === undefined || head === undefined)
    throw new LoupeError('an attention pattern needs --layer L and --head H');
  const position = positionOption(values);
  const top = positiveInt(stringOption(values, 'top') ?? '5', '--top');
  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  try {
    checkBlock(model.spec, layer);
    checkHead(model.spec.nHeads, head);
    const text = readContextText(model, stringOption(values, 'text'), '--text', 'start');
    const tokens = await textTokens(model, text, values);
    const queries = tokenPositions(
      tokens.length,
      position === undefined ? undefined : [resolvePosition(position, tokens.length)],
    );
    const [patterns] = await attentionPatterns(
      model,
      tokens.map((t) => t.id),
      [layer],
    );
    const rows = queries.map((q) => ({
      position: q,
      text: tokens[q].text,
      weights: attentionRow(patterns, head, q).map((w) => w.weight),
    }));
    if (values.json === true) {
      process.stdout.write(
        `${JSON.stringify({ layer, head, tokens: tokens.map((t) => ({ id: t.id, text: t.text, start: t.start, end: t.end })), rows })}\n`,
      );
      return;
    }
    const lines = [`layer ${layer} head ${head}: where each token attends, strongest first`];
    for (const r of rows) {
      const best = r.weights
        .map((w, k) => ({ w, k }))
        .sort((x, y) => y.w - x.w)
        .slice(0, top)
        .map(({ w, k }) => `${k} ${JSON.stringify(tokens[k].text)} ${w.toFixed(3)}`);
      lines.push(`${r.position}\t${JSON.stringify(r.text)}\t${best.join(', ')}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await model.dispose();
  }
}

async function directions(values: OptionValues): Promise<void> {
  const poolArg = stringOption(values, 'pool') ?? 'unembed';
  let pool: PoolSpec;
  if (poolArg === 'unembed') pool = { kind: 'unembed' };
  else if (poolArg.startsWith('words:')) {
    const file = poolArg.slice('words:'.length);
    // One word or phrase per line, as written (a leading space is kept: it changes the token).
    const phrases = readTextFile(file, '--pool words:')
      .split(/\r?\n/)
      .filter((line) => line.trim().length > 0);
    pool = { kind: 'words', phrases };
  } else throw new LoupeError(`--pool must be unembed or words:FILE, not '${poolArg}'`);
  const layer = indexOption(values, 'layer');
  const head = indexOption(values, 'head');
  const corpus = stringOption(values, 'corpus');
  const maxTokens = positiveInt(stringOption(values, 'tokens'), '--tokens');
  const contextSize = positiveInt(stringOption(values, 'context'), '--context');
  const steps = positiveInt(stringOption(values, 'steps'), '--steps');
  const rank = positiveInt(stringOption(values, 'rank'), '--rank');
  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (layer !== undefined) checkBlock(model.spec, layer);
    if (head !== undefined) checkHead(model.spec.nHeads, head);
    let windows: number[][] | null;
    if (corpus !== undefined) {
      windows = await corpusWindows(model, corpus, {
        maxTokens,
        contextSize,
        signal: controller.signal,
      });
    } else {
      windows = heldoutSampleWindows(model.checkpoint.dir);
      if (windows === null) {
        throw new LoupeError(
          `--corpus PATH is required: ${model.checkpoint.dir} has no heldout-sample.json to read`,
        );
      }
    }
    let lastStage = '';
    const result = await headTextDirections(model, {
      windows,
      pool,
      steps,
      rank,
      cache: values['no-cache'] !== true,
      threads: threadsOption(stringOption(values, 'threads')),
      signal: controller.signal,
      onProgress: (p: TextSpanProgress) => {
        const line = `${p.stage === 'collect' ? 'reading the corpus (windows)' : 'choosing directions (heads)'}: ${p.done}/${p.total}`;
        if (process.stderr.isTTY) {
          if (p.stage !== lastStage && lastStage !== '') process.stderr.write('\n');
          process.stderr.write(`\r${line}  `);
        } else if (p.done === p.total) process.stderr.write(`${line}\n`);
        lastStage = p.stage;
      },
    });
    if (process.stderr.isTTY && lastStage !== '') process.stderr.write('\n');
    const heads = result.heads.filter(
      (h) => (layer === undefined || h.layer === layer) && (head === undefined || h.head === head),
    );
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify({ ...result, heads })}\n`);
      return;
    }
    process.stdout.write(renderDirections({ ...result, heads }));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await model.dispose();
  }
}

function renderDirections(r: TextSpanResult): string {
  const source = `${r.tokens} positions in ${r.windows} windows${r.cached ? ', from the cache' : ''}`;
  const lines = [
    `TextSpan (${r.pool} pool, ${source}): each head's directions and the share of variance each explains`,
  ];
  for (const h of r.heads) {
    const dirs = h.directions
      .map((d) => `${JSON.stringify(d.text)} ${(100 * d.fraction).toFixed(1)}%`)
      .join(', ');
    lines.push(`L${h.layer}H${h.head}\t${(100 * h.explained).toFixed(1)}% in all\t${dirs}`);
  }
  return `${lines.join('\n')}\n`;
}
