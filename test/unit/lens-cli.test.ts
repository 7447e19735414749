/** `loupe lens` and `loupe heads`: their JSON, the engine's numbers behind them, and one-line errors. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LogitAttribution } from '../../src/engine/lens/directLogitAttribution';
import { TextSpanResult } from '../../src/engine/lens/headTextDirections';
import { LensGrid, ModelLenses } from '../../src/engine/lens/lenses';
import { HookedModel } from '../../src/engine/model';
import { CLI, CliRun, FIXTURES, runCli, tempDir } from './helpers';

const MODEL = path.join(FIXTURES, 'gpt2');

describe('loupe lens and loupe heads', function () {
  let cache: string;
  let work: string;
  let textFile: string;
  const text = 'The heads read the residual stream and write to it.';
  const loupe = (args: string[]): CliRun => runCli(args, cache);
  const fails = (args: string[], pattern: RegExp): void => {
    const r = loupe(args);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  };

  before(function () {
    if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
    cache = tempDir();
    work = tempDir();
    textFile = path.join(work, 'text.txt');
    fs.writeFileSync(textFile, text);
  });

  it('lens --json prints the grid the engine computes', async () => {
    const r = loupe([
      'lens',
      '--model',
      MODEL,
      '--text',
      textFile,
      '--layers',
      '0,2',
      '--range',
      '4:9',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const grid = JSON.parse(r.stdout) as LensGrid;
    assert.deepEqual(grid.layers, [0, 2]);
    assert.equal(grid.cells[0][0].top.length, 5);
    const model = await HookedModel.open(MODEL, { cacheDir: cache, threads: 1 });
    const lenses = new ModelLenses(model, { threads: 1 });
    try {
      const ids = (await model.tokenize(text)).map((t) => t.id);
      const want = await lenses.logit(ids, { layers: [0, 2], positions: grid.positions, topK: 5 });
      assert.deepEqual(grid.cells, want.cells);
      // The tokens overlapping UTF-16 offsets 4..9: inside " heads", never BOS (position 0, no text).
      const tokens = await model.tokenize(text);
      assert.ok(grid.positions.every((p) => tokens[p].start < 9 && tokens[p].end > 4));
      assert.ok(grid.positions.every((p) => p > 0));
    } finally {
      await lenses.dispose();
      await model.dispose();
    }
  });

  it('lens prints a table, and trains a tuned lens that it then reads', () => {
    const table = loupe([
      'lens',
      '--model',
      MODEL,
      '--text',
      textFile,
      '--kind',
      'attention-free',
      '--variant',
      'skip',
    ]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^attention-free \(skip\)/);
    const corpus = path.join(work, 'corpus.txt');
    fs.writeFileSync(corpus, `${text}\n`.repeat(20));
    const lensDir = path.join(work, 'lens');
    const trained = loupe([
      'lens',
      'train',
      '--model',
      MODEL,
      '--corpus',
      corpus,
      '--out',
      lensDir,
      '--steps',
      '3',
      '--batch',
      '32',
    ]);
    assert.equal(trained.code, 0, trained.stderr);
    assert.equal((JSON.parse(trained.stdout) as { steps: number }).steps, 3);
    const tuned = loupe(['lens', '--model', MODEL, '--text', textFile, '--lens', lensDir, '--json']);
    assert.equal(tuned.code, 0, tuned.stderr);
    assert.equal((JSON.parse(tuned.stdout) as LensGrid).kind, 'tuned');
    fails(
      ['lens', '--model', path.join(FIXTURES, 'gpt2-noprefix'), '--text', textFile, '--lens', lensDir],
      /^loupe: .*this tuned lens was trained for another model/,
    );
  });

  it('heads --position --json: shares that add up to the logit; with --target and --versus', () => {
    const r = loupe(['heads', '--model', MODEL, '--text', textFile, '--position', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout) as LogitAttribution;
    assert.equal(a.heads.length, 2);
    assert.equal(a.heads[0].length, 4);
    assert.ok(Math.abs(a.total - a.logit) < 1e-4);
    const diff = loupe([
      'heads',
      '--model',
      MODEL,
      '--text',
      textFile,
      '--position',
      '3',
      '--target',
      '#5',
      '--versus',
      '#7',
    ]);
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /^position 3 .*: logit .* − logit .* = -?\d/);
  });

  it('heads --layer --head prints where a token attends; --directions runs TextSpan', () => {
    const r = loupe([
      'heads',
      '--model',
      MODEL,
      '--text',
      textFile,
      '--layer',
      '1',
      '--head',
      '2',
      '--position',
      '4',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout) as { rows: { position: number; weights: number[] }[] };
    assert.equal(p.rows.length, 1);
    assert.equal(p.rows[0].weights.length, 5);
    const corpus = path.join(work, 'corpus.jsonl');
    fs.writeFileSync(
      corpus,
      [text, 'def forward(self, x): return x'].map((t) => JSON.stringify({ text: t })).join('\n'),
    );
    const d = loupe([
      'heads',
      '--model',
      MODEL,
      '--directions',
      '--corpus',
      corpus,
      '--steps',
      '2',
      '--layer',
      '1',
      '--json',
    ]);
    assert.equal(d.code, 0, d.stderr);
    const spans = JSON.parse(d.stdout) as TextSpanResult;
    assert.deepEqual(
      spans.heads.map((h) => [h.layer, h.head, h.directions.length]),
      [0, 1, 2, 3].map((h) => [1, h, 2]),
    );
  });

  it('errors are one line that names the problem', () => {
    fails(
      ['lens', '--model', MODEL, '--text', textFile, '--variant', 'none', '--kind', 'attention-free'],
      /--variant must be self or skip/,
    );
    fails(
      ['lens', '--model', MODEL, '--text', textFile, '--layers', '7'],
      /layer 7 is out of range: lens layers are 0\.\.2/,
    );
    fails(['lens', '--model', MODEL, '--text', textFile, '--positions', '99'], /position 99 is out of range/);
    fails(
      ['heads', '--model', MODEL, '--text', textFile, '--layer', '1', '--head', '9'],
      /head 9 is out of range/,
    );
    fails(
      ['heads', '--model', MODEL, '--text', textFile, '--position', '2', '--target', 'residual stream'],
      /is not one token of this model's vocabulary/,
    );
    fails(
      ['heads', '--model', MODEL, '--text', textFile, '--position', '2', '--target', '#4000'],
      /token id 4000 is not in the vocabulary/,
    );
    fails(['heads', '--model', MODEL, '--directions'], /--corpus PATH is required/);
    fails(['heads', '--model', MODEL, '--text', textFile], /give --position P/);
  });
});
