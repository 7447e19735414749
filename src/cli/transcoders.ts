/**
 * `loupe train-transcoder`: per-layer transcoders (an MLP's input to its
 * output through sparse features) trained on a corpus and written as a
 * circuit-tracer transcoder set; `loupe eval-transcoder`: how well a set
 * stands in for the MLPs.
 */
import { LoupeError } from '../engine/errors';
import { evaluateTranscoders } from '../engine/transcoders/evaluate';
import { parseTranscoderLayers } from '../engine/transcoders/hooks';
import { TranscoderArchitecture, trainTranscoders } from '../engine/transcoders/trainer';
import {
  CliCommand,
  OptionValues,
  choice,
  openModel,
  positiveInt,
  positiveNumber,
  seedInt,
  stringOption,
  threadsOption,
} from './common';
import { reportProgress, withStopSignal } from './trainingProgress';

const ARCHITECTURES: readonly TranscoderArchitecture[] = ['topk', 'relu', 'jumprelu'];

export const trainTranscoderCommand: CliCommand = {
  usage: `train-transcoder --model DIR --layer L|L,L|all --corpus PATH --out SET_DIR [--skip] [--arch topk|relu|jumprelu]
            [--expansion E | --d-tc N] [--k K] [--l1 C] [--lr LR] [--batch N] [--tokens N] [--context N]
            [--checkpoint-every N] [--seed S] [--dtype f32|f16] [--resume]
      transcoders for the MLPs of the given layers (blocks.L.ln2.hook_normalized in, blocks.L.hook_mlp_out out),
      all layers from one forward pass per batch, with a skip term x·W_skipᵀ with --skip; written as a
      circuit-tracer transcoder set (config.yaml + layer_{i}.safetensors; layers trained later into the same
      folder join it); progress on stderr; Ctrl-C stops at a checkpoint, --resume continues. --l1 is the L1
      coefficient for relu, the L0 coefficient for jumprelu`,
  options: {
    layer: { type: 'string' },
    corpus: { type: 'string' },
    out: { type: 'string' },
    skip: { type: 'boolean' },
    arch: { type: 'string' },
    expansion: { type: 'string' },
    'd-tc': { type: 'string' },
    k: { type: 'string' },
    l1: { type: 'string' },
    lr: { type: 'string' },
    batch: { type: 'string' },
    tokens: { type: 'string' },
    context: { type: 'string' },
    'checkpoint-every': { type: 'string' },
    seed: { type: 'string' },
    dtype: { type: 'string' },
    resume: { type: 'boolean' },
  },
  run: (values) => train(values),
};

export const evalTranscoderCommand: CliCommand = {
  usage: `eval-transcoder --model DIR --transcoders SET_DIR --corpus PATH [--tokens N] [--context N] [--json]
      per layer: fraction of the MLP output's variance unexplained, L0, dead features; next-token loss with every
      MLP of the set replaced by its transcoder (error term off) against clean and MLPs zero-ablated, and the
      loss recovered`,
  options: {
    transcoders: { type: 'string' },
    corpus: { type: 'string' },
    tokens: { type: 'string' },
    context: { type: 'string' },
  },
  run: (values) => evaluate(values),
};

async function train(values: OptionValues): Promise<void> {
  const layerArg = stringOption(values, 'layer');
  const corpus = stringOption(values, 'corpus');
  const outDir = stringOption(values, 'out');
  if (!layerArg) throw new LoupeError("--layer L is required (a layer, a list such as 0,2, or 'all')");
  if (!corpus) throw new LoupeError('--corpus PATH is required (a folder, a .jsonl file or a text file)');
  if (!outDir) throw new LoupeError('--out SET_DIR is required');
  const architecture = choice(stringOption(values, 'arch') ?? 'topk', '--arch', ARCHITECTURES);
  // Every value checked before the model opens or anything is allocated.
  const settings = {
    expansion: positiveNumber(stringOption(values, 'expansion'), '--expansion'),
    dTranscoder: positiveInt(stringOption(values, 'd-tc'), '--d-tc'),
    k: positiveInt(stringOption(values, 'k'), '--k'),
    l1Coefficient: positiveNumber(stringOption(values, 'l1'), '--l1'),
    lr: positiveNumber(stringOption(values, 'lr'), '--lr'),
    batchSize: positiveInt(stringOption(values, 'batch'), '--batch'),
    trainingTokens: positiveInt(stringOption(values, 'tokens'), '--tokens'),
    contextSize: positiveInt(stringOption(values, 'context'), '--context'),
    checkpointEvery: positiveInt(stringOption(values, 'checkpoint-every'), '--checkpoint-every'),
    seed: seedInt(stringOption(values, 'seed'), '--seed'),
    threads: threadsOption(stringOption(values, 'threads')),
  };
  const dtype = choice(stringOption(values, 'dtype') ?? 'f32', '--dtype', ['f32', 'f16'] as const);
  if (settings.k !== undefined && architecture !== 'topk') throw new LoupeError('--k goes with --arch topk');
  if (settings.l1Coefficient !== undefined && architecture === 'topk')
    throw new LoupeError('--l1 goes with --arch relu or jumprelu');
  if (settings.expansion !== undefined && settings.dTranscoder !== undefined)
    throw new LoupeError('give --expansion or --d-tc, not both');
  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  try {
    const layers = parseTranscoderLayers(layerArg, model);
    const result = await withStopSignal((signal) =>
      trainTranscoders(model, {
        layers,
        corpus,
        outDir,
        architecture,
        skip: values.skip === true,
        ...settings,
        dtype: dtype === 'f16' ? 'F16' : 'F32',
        resume: values.resume === true,
        signal,
        onProgress: reportProgress,
      }),
    );
    process.stderr.write('\n');
    if (result.cancelled) {
      process.stderr.write(`stopped at step ${result.steps}; continue with the same command and --resume\n`);
      return;
    }
    const l = result.last;
    process.stdout.write(
      `${JSON.stringify({
        out: result.outDir,
        steps: result.steps,
        tokens: result.tokens,
        layers: l?.layers.map((p) => ({
          layer: p.layer,
          fvu: p.fvu,
          l0: p.l0,
          dead_fraction: p.deadFraction,
        })),
      })}\n`,
    );
  } finally {
    await model.dispose();
  }
}

async function evaluate(values: OptionValues): Promise<void> {
  const dir = stringOption(values, 'transcoders');
  const corpus = stringOption(values, 'corpus');
  if (!dir) throw new LoupeError('--transcoders SET_DIR is required (config.yaml + layer_{i}.safetensors)');
  if (!corpus)
    throw new LoupeError('--corpus PATH is required (held-out text: a folder, a .jsonl or a text file)');
  const maxTokens = positiveInt(stringOption(values, 'tokens'), '--tokens');
  const contextSize = positiveInt(stringOption(values, 'context'), '--context');
  const threads = threadsOption(stringOption(values, 'threads'));
  const model = await openModel({
    model: stringOption(values, 'model'),
    threads: stringOption(values, 'threads'),
  });
  try {
    const r = await evaluateTranscoders(model, dir, { corpus, maxTokens, contextSize, threads });
    if (values.json === true) {
      process.stdout.write(
        `${JSON.stringify({
          tokens: r.tokens,
          layers: r.layers.map((l) => ({
            layer: l.layer,
            fvu: l.fvu,
            mse: l.mse,
            l0: l.l0,
            dead_fraction: l.deadFraction,
          })),
          ce_clean: r.ceClean,
          ce_replaced: r.ceReplaced,
          ce_zero_ablated: r.ceZeroAblated,
          loss_recovered: r.lossRecovered,
        })}\n`,
      );
      return;
    }
    const lines = ['layer  FVU     L0      dead'];
    for (const l of r.layers) {
      lines.push(
        `${String(l.layer).padEnd(6)} ${l.fvu.toFixed(3).padEnd(7)} ${l.l0.toFixed(1).padEnd(7)} ${(100 * l.deadFraction).toFixed(1)}%`,
      );
    }
    const recovered =
      r.lossRecovered === null
        ? 'n/a (zero-ablating the MLPs leaves the loss as it is)'
        : `${(100 * r.lossRecovered).toFixed(1)}%`;
    lines.push(
      '',
      `next-token loss over ${r.tokens} tokens: clean ${r.ceClean.toFixed(3)}, MLPs replaced ${r.ceReplaced.toFixed(3)}, ` +
        `MLPs zero-ablated ${r.ceZeroAblated.toFixed(3)}; loss recovered ${recovered}`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await model.dispose();
  }
}
