/**
 * `loupe lens`: what each layer predicts at each token (logit lens, tuned
 * lens, attention-free projection), and `loupe lens train` for a tuned lens.
 */
import { LoupeError } from '../engine/errors';
import { AttentionFreeVariant, LensGrid, ModelLenses } from '../engine/lens/lenses';
import { parseIndexList, positionsInRange } from '../engine/lens/positions';
import { TunedLens } from '../engine/lens/tunedLens';
import { TunedLensProgress, trainTunedLens } from '../engine/lens/tunedLensTrainer';
import { HookedModel } from '../engine/model';
import { Token } from '../engine/tokenizer';
import {
  CliCommand,
  OptionValues,
  choice,
  openModel,
  positiveInt,
  positiveNumber,
  readContextText,
  stringOption,
  threadsOption,
} from './common';

const KINDS = ['logit', 'tuned', 'attention-free'] as const;
type Kind = (typeof KINDS)[number];

export const lensCommand: CliCommand = {
  usage: `lens --text FILE [--kind logit|tuned|attention-free] [--lens DIR] [--variant self|skip] [--layers 0,2-4]
            [--positions 3,5-9 | --range START:END] [--top K] [--json] [--no-bos]
      what each layer predicts at each token: the residual stream entering each block (and after the last) read
      through the final norm and the unembedding (logit), through a tuned lens's translators (tuned, --lens DIR),
      or run alone through the remaining blocks and then read (attention-free; --variant self, the paper's: each
      token attends only to itself; skip: no attention); the K most likely tokens (default 5) and the next token's
      rank and probability. --range takes UTF-16 offsets into the text
  lens train --corpus PATH --out DIR [--steps N] [--batch TOKENS] [--lr LR] [--context N]
      trains a tuned lens (Adam on KL to the model's own prediction, from the logit lens) on PATH (a folder, a
      .jsonl with "text", or a text file); progress on stderr; Ctrl-C stops without writing`,
  options: {
    kind: { type: 'string' },
    lens: { type: 'string' },
    variant: { type: 'string' },
    layers: { type: 'string' },
    positions: { type: 'string' },
    range: { type: 'string' },
    top: { type: 'string' },
    corpus: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    context: { type: 'string' },
  },
  async run(values, positionals) {
    const sub = positionals[0];
    if (sub === 'train') return train(values);
    if (sub !== undefined) throw new LoupeError(`unknown 'lens ${sub}'; try 'loupe lens --help'`);
    return show(values);
  },
};

async function show(values: OptionValues): Promise<void> {
  const kind: Kind = choice(
    stringOption(values, 'kind') ?? (stringOption(values, 'lens') ? 'tuned' : 'logit'),
    '--kind',
    KINDS,
  );
  const variant: AttentionFreeVariant = choice(stringOption(values, 'variant') ?? 'self', '--variant', [
    'self',
    'skip',
  ] as const);
  const lensDir = stringOption(values, 'lens');
  if (kind === 'tuned' && !lensDir)
    throw new LoupeError('--kind tuned needs --lens DIR (train one with loupe lens train)');
  const top = positiveInt(stringOption(values, 'top') ?? '5', '--top');
  const layersArg = stringOption(values, 'layers');
  const positionsArg = stringOption(values, 'positions');
  const rangeArg = stringOption(values, 'range');
  if (positionsArg !== undefined && rangeArg !== undefined)
    throw new LoupeError('give --positions or --range, not both');
  const tuned = kind === 'tuned' ? TunedLens.load(lensDir!) : null;

  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  const lenses = new ModelLenses(model, { threads: threadsOption(stringOption(values, 'threads')) });
  try {
    const text = readContextText(model, stringOption(values, 'text'), '--text', 'start');
    const tokens = await textTokens(model, text, values);
    const ids = tokens.map((t) => t.id);
    let positions = positionsArg === undefined ? undefined : parseIndexList(positionsArg, '--positions');
    if (rangeArg !== undefined) {
      const m = /^(\d+):(\d+)$/.exec(rangeArg);
      if (!m) throw new LoupeError(`--range takes START:END (UTF-16 offsets), not '${rangeArg}'`);
      positions = positionsInRange(tokens, Number(m[1]), Number(m[2]));
    }
    const options = {
      layers: layersArg === undefined ? undefined : parseIndexList(layersArg, '--layers'),
      positions,
      topK: top,
    };
    const grid =
      kind === 'logit'
        ? await lenses.logit(ids, options)
        : kind === 'tuned'
          ? await lenses.tuned(ids, tuned!, options)
          : await lenses.attentionFree(ids, variant, options);
    if (values.json === true) process.stdout.write(`${JSON.stringify(grid)}\n`);
    else process.stdout.write(renderGrid(grid));
  } finally {
    await lenses.dispose();
    await model.dispose();
  }
}

/** The text's tokens as the model runs them, cut to its context (with a warning) so a long file still reads. */
export async function textTokens(model: HookedModel, text: string, values: OptionValues): Promise<Token[]> {
  const tokens = await model.tokenize(text, { prependBos: values['no-bos'] !== true });
  if (tokens.length === 0) throw new LoupeError('the text has no tokens (is the file empty?)');
  if (tokens.length > model.spec.nCtx) {
    process.stderr.write(
      `loupe: warning: the text has more than ${model.spec.nCtx} tokens; reading the first ${model.spec.nCtx} (the model's context)\n`,
    );
    return tokens.slice(0, model.spec.nCtx);
  }
  return tokens;
}

function renderGrid(grid: LensGrid): string {
  const what = grid.kind === 'attention-free' ? `attention-free (${grid.variant})` : `${grid.kind} lens`;
  const lines = [
    `${what}: the most likely token and its probability per layer; [r N] is the next token's rank there`,
    ['pos', 'token', 'next', ...grid.layers.map((l) => `L${l}`)].join('\t'),
  ];
  grid.positions.forEach((p, j) => {
    const next = p + 1 < grid.tokens.length ? JSON.stringify(grid.tokens[p + 1].text) : '-';
    const cells = grid.cells.map((row) => {
      const c = row[j];
      const best = c.top[0];
      const rank = c.target ? ` [r ${c.target.rank}]` : '';
      return `${JSON.stringify(best.text)} ${best.prob.toFixed(2)}${rank}`;
    });
    lines.push([String(p), JSON.stringify(grid.tokens[p].text), next, ...cells].join('\t'));
  });
  return `${lines.join('\n')}\n`;
}

async function train(values: OptionValues): Promise<void> {
  const corpus = stringOption(values, 'corpus');
  const out = stringOption(values, 'out');
  if (!corpus) throw new LoupeError('--corpus PATH is required (a folder, a .jsonl file or a text file)');
  if (!out) throw new LoupeError('--out DIR is required');
  const intOpt = (name: string): number | undefined => positiveInt(stringOption(values, name), `--${name}`);
  const steps = intOpt('steps');
  const batchTokens = intOpt('batch');
  const contextSize = intOpt('context');
  const lr = positiveNumber(stringOption(values, 'lr'), '--lr');
  const threads = threadsOption(stringOption(values, 'threads'));
  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  const controller = new AbortController();
  const onSignal = (): void => {
    process.stderr.write('\nstopping after this step; nothing will be written\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await trainTunedLens(model, {
      corpus,
      outDir: out,
      steps,
      batchTokens,
      lr,
      contextSize,
      threads,
      signal: controller.signal,
      onProgress: (p) => {
        if (process.stderr.isTTY) process.stderr.write(`\r${progressLine(p)}`);
        else if (p.step === 1 || p.step === p.steps || p.step % Math.max(1, Math.round(p.steps / 10)) === 0) {
          process.stderr.write(`${progressLine(p)}\n`);
        }
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (result.cancelled) {
      process.stderr.write(`stopped at step ${result.steps}; no lens written\n`);
      return;
    }
    process.stdout.write(
      `${JSON.stringify({ out: result.outDir, steps: result.steps, tokens: result.tokens, logit_lens_kl: result.initialKl, tuned_lens_kl: result.finalKl })}\n`,
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await model.dispose();
  }
}

function progressLine(p: TunedLensProgress): string {
  const eta = p.etaSeconds < 90 ? `${Math.round(p.etaSeconds)}s` : `${Math.round(p.etaSeconds / 60)}m`;
  const kl = p.kl.map((x) => x.toFixed(3)).join(' ');
  return `step ${p.step}/${p.steps} | ${Math.round(p.tokensPerSecond)} tok/s | KL per layer ${kl} | ETA ${eta}  `;
}
