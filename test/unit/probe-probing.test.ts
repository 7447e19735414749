/**
 * Probing end to end: a concept planted at a known layer of a hand-built
 * model is found there, with high selectivity over the control task; labels
 * from JSONL (whole texts and spans) and from a regex; saving, reloading,
 * scoring a text and exporting a direction; and the errors a user meets.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { ProbeDataset, labelOrder } from '../../src/engine/probes/dataset';
import {
  datasetFromRegex,
  datasetFromTexts,
  readLabelledJsonl,
  tokenLabels,
} from '../../src/engine/probes/labels';
import { trainProbes } from '../../src/engine/probes/probing';
import { loadProbe, probeFromResults, saveProbe } from '../../src/engine/probes/store';
import { probeDirection, scoreText } from '../../src/engine/probes/apply';
import { classifierLogits } from '../../src/engine/probes/logistic';
import { FIXTURES, seededRandom, tempDir } from './helpers';

const ONE_HEAD = path.join(FIXTURES, 'causal', 'one-head');
const GPT2 = path.join(FIXTURES, 'gpt2');

/** Sequences [BOS, A or B, six fillers]; every position after 1 is labelled with the token at 1. */
function plantedDataset(count: number, seed: number): ProbeDataset {
  const rand = seededRandom(seed);
  const sequences = [];
  const examples = [];
  for (let s = 0; s < count; s++) {
    const answer = rand() < 0 ? 1 : 2;
    const ids = [63, answer, ...Array.from({ length: 6 }, () => 3 + Math.floor((rand() + 0.5) * 60))];
    sequences.push({ document: `seq${s}`, ids });
    for (let p = 2; p < ids.length; p++) {
      examples.push({ sequence: s, positions: [p], label: answer === 1 ? 'A' : 'B', tokenType: ids[p] });
    }
  }
  return { description: 'planted', sequences, examples };
}

describe('probes', function () {
  const cacheDir = tempDir('loupe-probe-cache-');
  let oneHead: HookedModel;
  let gpt2: HookedModel;
  before(async () => {
    oneHead = await HookedModel.open(ONE_HEAD, { cacheDir, threads: 1 });
    gpt2 = await HookedModel.open(GPT2, { cacheDir, threads: 1 });
  });
  after(async () => {
    await oneHead.dispose();
    await gpt2.dispose();
  });

  it('finds a planted concept at the layer that computes it, with high selectivity', async () => {
    const hooks = [
      'blocks.0.hook_resid_pre',
      'blocks.0.hook_resid_post',
      'blocks.1.hook_resid_mid',
      'blocks.1.hook_resid_post',
    ];
    const results = await trainProbes(oneHead, plantedDataset(400, 1), { hooks, seed: 1 });
    const at = (h: string) => results.hooks.find((r) => r.hook === h)!;
    // Before L1H2 moves the answer to later positions, nothing there says A or B.
    for (const h of ['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post']) {
      assert.ok(at(h).accuracy < 0.65, `${h}: accuracy ${at(h).accuracy}`);
    }
    for (const h of ['blocks.1.hook_resid_mid', 'blocks.1.hook_resid_post']) {
      assert.ok(at(h).accuracy > 0.99, `${h}: accuracy ${at(h).accuracy}`);
      assert.ok(at(h).selectivity! > 0.25, `${h}: selectivity ${at(h).selectivity}`);
    }
    assert.ok(at('blocks.1.hook_resid_mid').selectivity! > at('blocks.0.hook_resid_post').selectivity! + 0.3);
    // The baseline is the training majority's share of the held-out examples.
    for (const h of results.hooks) assert.ok(Math.abs(h.majorityBaseline - 0.5) < 0.1);
    assert.equal(results.split.trainDocuments + results.split.testDocuments, 400);
    assert.equal(results.labels.join(), 'A,B');
  });

  it('labels tokens by the span they overlap most, and the rest as unlabelled', () => {
    const tok = (start: number, end: number) => ({ id: 0, text: '', start, end });
    const tokens = [tok(0, 0), tok(0, 3), tok(3, 7), tok(7, 8), tok(8, 12)];
    const spans = [
      { start: 0, end: 3, label: 'keyword' },
      { start: 4, end: 9, label: 'string' },
      { start: 9, end: 12, label: 'comment' },
    ];
    assert.deepEqual(tokenLabels(tokens, spans, 'other'), [
      'other',
      'keyword',
      'string',
      'string',
      'comment',
    ]);
    assert.deepEqual(tokenLabels(tokens, [], null), [null, null, null, null, null]);
  });

  it('orders labels with the absence of the concept first', () => {
    assert.deepEqual(labelOrder(['match', 'other', 'match']), ['other', 'match']);
    assert.deepEqual(labelOrder(['true', 'false']), ['false', 'true']);
    assert.deepEqual(labelOrder(['type', 'keyword', 'string']), ['keyword', 'string', 'type']);
  });

  it('reads JSONL with whole-text labels and with spans', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'data.jsonl');
    fs.writeFileSync(
      file,
      [
        JSON.stringify({ text: 'def forward(self, x): return x', label: 'code' }),
        '',
        JSON.stringify({ text: 'The heads read the stream.', label: false }),
        JSON.stringify({ text: 'return x', spans: [{ start: 0, end: 6, label: 'keyword' }] }),
      ].join('\n'),
    );
    const texts = await readLabelledJsonl(file);
    assert.deepEqual(
      texts.map((t) => t.label ?? t.spans!.map((s) => s.label).join()),
      ['code', 'false', 'keyword'],
    );
    assert.equal(texts[1].source, `${file}:3`);
    const last = await datasetFromTexts(gpt2, texts.slice(0, 2), 'data', { pool: 'last' });
    assert.equal(last.examples.length, 2);
    const seq = last.sequences[0];
    assert.equal(seq.ids[0], 296); // BOS
    assert.deepEqual(last.examples[0].positions, [seq.ids.length - 1]);
    const mean = await datasetFromTexts(gpt2, texts.slice(0, 1), 'data', { pool: 'mean' });
    assert.deepEqual(
      mean.examples[0].positions,
      Array.from({ length: seq.ids.length - 1 }, (_, i) => i + 1),
    );
    const spans = await datasetFromTexts(gpt2, texts.slice(2), 'data');
    const tokens = await gpt2.tokenize('return x', { prependBos: false });
    assert.deepEqual(
      spans.examples.map((e) => e.label),
      tokens.map((t) => (t.start < 6 ? 'keyword' : 'other')),
    );
    const skipped = await datasetFromTexts(gpt2, texts.slice(2), 'data', { unlabelled: null });
    assert.ok(skipped.examples.every((e) => e.label === 'keyword'));
  });

  it('labels tokens by a regex and cuts long documents into windows that start with BOS', async () => {
    async function* docs() {
      yield {
        source: 'a',
        text: 'the heads read the residual stream and the layers write to the stream. '.repeat(8),
      };
      yield { source: 'b', text: 'the model' };
    }
    const ds = await datasetFromRegex(gpt2, docs(), '^\\s*the$', 'regex', {});
    assert.ok(ds.sequences.length > 2, 'the long document spans several windows');
    for (const s of ds.sequences) {
      assert.equal(s.ids[0], 296);
      assert.ok(s.ids.length <= gpt2.spec.nCtx);
    }
    const the = ds.examples.filter((e) => e.label === 'match');
    assert.ok(the.length >= 8);
    for (const e of the) assert.equal(e.tokenType, 260); // ' the'
    assert.ok(
      ds.examples.every((e) => e.positions[0] > 0),
      'BOS is never an example',
    );
    const capped = await datasetFromRegex(gpt2, docs(), 'the', 'regex', { maxExamples: 10 });
    assert.equal(capped.examples.length, 10);
  });

  it('saves, reloads, scores a text and exports a direction', async () => {
    const dir = tempDir();
    const texts = [];
    for (let i = 0; i < 12; i++) {
      texts.push({ source: `d${i}`, text: `return x${i}`, spans: [{ start: 0, end: 6, label: 'keyword' }] });
    }
    const ds = await datasetFromTexts(gpt2, texts, 'keywords');
    const hooks = ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post'];
    const results = await trainProbes(gpt2, ds, { hooks, seed: 2 });
    saveProbe(dir, probeFromResults(gpt2, results));
    const probe = loadProbe(dir);
    assert.deepEqual(probe.meta.labels, ['other', 'keyword']);
    assert.deepEqual(
      probe.meta.hooks.map((h) => h.hook),
      hooks,
    );
    for (const h of results.hooks) {
      assert.deepEqual(probe.classifiers.get(h.hook)!.weight, h.classifier.weight);
      assert.deepEqual(probe.classifiers.get(h.hook)!.bias, h.classifier.bias);
    }
    const text = 'return x3';
    const scores = await scoreText(gpt2, probe, text, { hook: hooks[1] });
    const tokens = await gpt2.tokenize(text);
    assert.equal(scores.tokens.length, tokens.length);
    // The score is sigmoid(w·x + b) of the activations at the hook.
    const [run] = await gpt2.run([tokens.map((t) => t.id)], { hooks: [hooks[1]] });
    const logits = classifierLogits(
      probe.classifiers.get(hooks[1])!,
      run.hooks.get(hooks[1])!.data,
      tokens.length,
    );
    scores.tokens.forEach((t, i) => {
      const p = 1 / (1 + Math.exp(-(logits[2 * i + 1] - logits[2 * i])));
      assert.ok(Math.abs(t.score - p) < 1e-5);
      assert.deepEqual([t.start, t.end], [tokens[i].start, tokens[i].end]);
    });
    assert.ok(scores.tokens[1].score > 0.5 && scores.tokens[1].label === 'keyword');
    const dirn = probeDirection(gpt2, probe, { hook: hooks[0] });
    assert.deepEqual(dirn.direction, probe.classifiers.get(hooks[0])!.weight);
    const negative = probeDirection(gpt2, probe, { hook: hooks[0], label: 'other' });
    assert.equal(negative.direction[0], -dirn.direction[0]);
    await assert.rejects(scoreText(oneHead, probe, text), /trained on another model/);
  });

  it('scores a text longer than the context in overlapping windows', async () => {
    const dir = tempDir();
    const texts = Array.from({ length: 6 }, (_, i) => ({
      source: `d${i}`,
      text: `x${i} the`,
      label: i % 2 ? 'a' : 'b',
    }));
    const results = await trainProbes(gpt2, await datasetFromTexts(gpt2, texts, 't'), {
      hooks: ['blocks.0.hook_resid_post'],
      control: false,
    });
    saveProbe(dir, probeFromResults(gpt2, results));
    const long = 'the heads read the residual stream. '.repeat(30);
    const scores = await scoreText(gpt2, loadProbe(dir), long);
    const tokens = await gpt2.tokenize(long);
    assert.ok(tokens.length > gpt2.spec.nCtx);
    assert.equal(scores.tokens.length, tokens.length);
    assert.deepEqual(
      scores.tokens.map((t) => t.start),
      tokens.map((t) => t.start),
    );
    assert.equal(results.hooks[0].controlAccuracy, null);
  });

  it('refuses what cannot be probed, in one line', async () => {
    const planted = plantedDataset(20, 4);
    await assert.rejects(
      trainProbes(oneHead, planted, { hooks: ['blocks.7.hook_resid_post'] }),
      /unknown hook 'blocks.7.hook_resid_post'/,
    );
    await assert.rejects(
      trainProbes(oneHead, planted, { hooks: ['blocks.0.attn.hook_pattern'] }),
      /not per token/,
    );
    const oneClass = { ...planted, examples: planted.examples.map((e) => ({ ...e, label: 'A' })) };
    await assert.rejects(
      trainProbes(oneHead, oneClass, { hooks: ['blocks.0.hook_resid_post'] }),
      /at least two classes/,
    );
    const oneDoc = { ...planted, sequences: planted.sequences.map((s) => ({ ...s, document: 'same' })) };
    await assert.rejects(trainProbes(oneHead, oneDoc, { hooks: ['blocks.0.hook_resid_post'] }), /at least 2/);
    async function* nothing() {
      yield { source: 'e', text: '' };
    }
    await assert.rejects(datasetFromRegex(gpt2, nothing(), 'x', 'empty'), /no labelled tokens/);
    await assert.rejects(datasetFromRegex(gpt2, nothing(), '(', 'bad'), /regex/);
    const dir = tempDir();
    const bad = (lines: string[]): string => {
      const f = path.join(dir, `${lines.length}-${Math.random()}.jsonl`);
      fs.writeFileSync(f, lines.join('\n'));
      return f;
    };
    await assert.rejects(readLabelledJsonl(bad([''])), /the dataset is empty/);
    await assert.rejects(readLabelledJsonl(bad(['{"text": "a"}'])), /:1: needs a "label"/);
    await assert.rejects(readLabelledJsonl(bad(['{"label": 1}'])), /no string "text"/);
    await assert.rejects(
      readLabelledJsonl(bad(['{"text": "ab", "spans": [{"start": 1, "end": 5, "label": "x"}]}'])),
      /span 0/,
    );
    await assert.rejects(readLabelledJsonl(bad(['not json'])), /not valid JSON/);
    assert.throws(() => loadProbe(dir), /not a saved Loupe probe/);
  });
});
