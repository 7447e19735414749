/**
 * `loupe features`: each token's strongest features under one dictionary
 * (`--sae`, any single-dictionary format) or under every layer of a
 * transcoder set or CLT (`--transcoders`), each read at its input hook.
 */
import { LoupeError } from '../engine/errors';
import { Dictionary } from '../engine/dictionaries/dictionary';
import { dictionaryFeatures, fitDictionary } from '../engine/dictionaries/fit';
import { isSaelensCoder, openDictionary, openTranscoders } from '../engine/dictionaries/open';
import { Token } from '../engine/tokenizer';
import { FeatureActivation, topFeatures } from '../engine/sae/splice';
import {
  CliCommand,
  nonNegativeInt,
  openModel,
  positiveInt,
  readContextText,
  stringOption,
  threadsOption,
} from './common';

export const featuresCommand: CliCommand = {
  usage: `features --model DIR --sae PATH [--hook NAME] [--layer L] --text FILE [--top K] [--json] [--no-bos]
      each token (as 'tokenize' prints it) with the K largest positive feature activations (default 10) of one
      dictionary: a SAELens folder (SAEs and transcoders), a Gemma Scope params.npz folder (--hook NAME where the
      path does not say it), a sparsify hook-point folder (or its checkpoint with --layer L), or one layer of a
      transcoder set or CLT (--layer L)
  features --model DIR --transcoders SET_DIR --text FILE [--top K] [--json] [--no-bos]
      the same for every layer of a circuit-tracer transcoder set or cross-layer transcoder (config.yaml +
      layer_{i}.safetensors, or W_enc_{i}/W_dec_{i}), each layer read at its input hook`,
  options: {
    sae: { type: 'string' },
    transcoders: { type: 'string' },
    hook: { type: 'string' },
    layer: { type: 'string' },
    top: { type: 'string' },
  },
  async run(values) {
    const sae = stringOption(values, 'sae');
    const transcoders = stringOption(values, 'transcoders');
    const hook = stringOption(values, 'hook') ?? null;
    const layer = nonNegativeInt(stringOption(values, 'layer'), '--layer') ?? null;
    if (sae && transcoders) throw new LoupeError('give --sae PATH or --transcoders SET_DIR, not both');
    if (!sae && !transcoders) {
      throw new LoupeError(
        '--sae DIR is required (an SAE or transcoder folder, or a params.npz), or --transcoders SET_DIR for every layer of a transcoder set or CLT',
      );
    }
    if (transcoders && (hook !== null || layer !== null)) {
      throw new LoupeError(
        '--hook and --layer go with --sae; --transcoders reads every layer at its own input hook',
      );
    }
    const top = positiveInt(stringOption(values, 'top') ?? '10', '--top');
    const threads = threadsOption(stringOption(values, 'threads'));
    const noBos = values['no-bos'] === true;
    const dict = sae
      ? openDictionary(sae, { hook, layer, threads })
      : openTranscoders(transcoders!, { threads });
    try {
      const model = await openModel({
        model: stringOption(values, 'model'),
        threads: stringOption(values, 'threads'),
      });
      try {
        const file = stringOption(values, 'text');
        const text = readContextText(model, file, '--text', 'refuse');
        const fitted = fitDictionary(model, dict);
        const tokens = await model.tokenize(text, { prependBos: !noBos });
        if (tokens.length === 0) throw new LoupeError(`${file}: the text has no tokens (is the file empty?)`);
        const runs = await dictionaryFeatures(
          fitted,
          tokens.map((t) => t.id),
        );
        const best = runs.map((r) => topFeatures(r.acts, top));
        if (sae) printSingle(tokens, best[0], values.json === true);
        else {
          const layers = dict.coders.map((c, i) => c.layer ?? i);
          printLayers(tokens, layers, best, values.json === true);
        }
        // Last, so that a refusal (a mismatch, a corrupt tensor read when first used) is the only line.
        warnAboutDictionary(dict, noBos);
      } finally {
        await model.dispose();
      }
    } finally {
      await dict.dispose();
    }
  },
};

function warnAboutDictionary(dict: Dictionary, noBos: boolean): void {
  for (const note of dict.notes) {
    process.stderr.write(`loupe: ${dict.format === 'saelens' ? 'warning: ' : ''}${note}\n`);
  }
  const coder = dict.coders[0];
  if (dict.coders.length === 1 && isSaelensCoder(coder)) {
    const bos = coder.sae.config.prependBos;
    if (bos !== null && bos === noBos) {
      const advice = bos ? 'drop --no-bos' : 'pass --no-bos';
      process.stderr.write(
        `loupe: warning: the SAE was trained with prepend_bos ${bos}; ${advice} to match\n`,
      );
    }
  }
}

const tokenFields = (t: Token): { id: number; text: string; start: number; end: number } => ({
  id: t.id,
  text: t.text,
  start: t.start,
  end: t.end,
});

const featureList = (fs: readonly FeatureActivation[]): { index: number; act: number }[] =>
  fs.map((f) => ({ index: f.index, act: f.act }));

const featureWords = (fs: readonly FeatureActivation[]): string =>
  fs.map((f) => `${f.index}:${f.act.toPrecision(4)}`).join(' ');

function printSingle(tokens: readonly Token[], best: FeatureActivation[][], json: boolean): void {
  const rows = tokens.map((t, i) => ({ ...tokenFields(t), features: featureList(best[i]) }));
  if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else {
    for (const [i, r] of rows.entries()) {
      process.stdout.write(
        `${r.id}\t${r.start}\t${r.end}\t${JSON.stringify(r.text)}\t${featureWords(best[i])}\n`,
      );
    }
  }
}

function printLayers(
  tokens: readonly Token[],
  layers: readonly number[],
  best: FeatureActivation[][][],
  json: boolean,
): void {
  const rows = tokens.map((t, i) => ({
    ...tokenFields(t),
    layers: layers.map((layer, c) => ({ layer, features: featureList(best[c][i]) })),
  }));
  if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else {
    for (const [i, r] of rows.entries()) {
      const perLayer = layers.map((layer, c) => `L${layer} ${featureWords(best[c][i])}`).join('\t');
      process.stdout.write(`${r.id}\t${r.start}\t${r.end}\t${JSON.stringify(r.text)}\t${perLayer}\n`);
    }
  }
}
