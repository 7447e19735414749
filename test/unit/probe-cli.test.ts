/** `loupe probe` end to end: train and save, show, apply, export; and its one-line errors. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { CLI, CliRun, FIXTURES, runCli, tempDir } from './helpers';

const MODEL = path.join(FIXTURES, 'gpt2');

function loupe(args: string[], cacheDir: string): CliRun {
  return runCli([...args, '--model', MODEL, '--threads', '1'], cacheDir);
}

describe('loupe probe', function () {
  let dir: string;
  let cache: string;
  before(function () {
    if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
    dir = tempDir();
    cache = tempDir();
    const lines = [];
    for (let i = 0; i < 10; i++) {
      const text = `for x${i} in hidden: return x`;
      const at = (w: string): { start: number; end: number } => ({
        start: text.indexOf(w),
        end: text.indexOf(w) + w.length,
      });
      lines.push(
        JSON.stringify({
          text,
          spans: [
            { ...at('for'), label: 'keyword' },
            { ...at(' in'), label: 'keyword' },
          ],
        }),
      );
    }
    fs.writeFileSync(path.join(dir, 'keywords.jsonl'), lines.join('\n'));
    fs.writeFileSync(path.join(dir, 'sample.py'), 'for x in ids: return x\n');
  });

  it('trains, saves, shows, applies and exports', () => {
    const out = path.join(dir, 'probe');
    const hooks = 'blocks.0.hook_resid_post,blocks.1.hook_resid_post';
    const r = loupe(
      ['probe', '--dataset', path.join(dir, 'keywords.jsonl'), '--hooks', hooks, '--out', out, '--json'],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(r.stdout) as {
      labels: string[];
      hooks: { hook: string; accuracy: number; selectivity: number }[];
    };
    assert.deepEqual(meta.labels, ['other', 'keyword']);
    assert.deepEqual(
      meta.hooks.map((h) => h.hook),
      hooks.split(','),
    );
    for (const h of meta.hooks)
      assert.ok(h.accuracy >= 0 && h.accuracy <= 1 && typeof h.selectivity === 'number');
    assert.ok(
      fs.existsSync(path.join(out, 'probe.json')) && fs.existsSync(path.join(out, 'probe.safetensors')),
    );

    const shown = loupe(['probe', '--show', out], cache);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /blocks\.1\.hook_resid_post/);
    assert.match(shown.stdout, /selectivity/);

    const applied = loupe(['probe', '--apply', out, '--text', path.join(dir, 'sample.py'), '--json'], cache);
    assert.equal(applied.code, 0, applied.stderr);
    const scores = JSON.parse(applied.stdout) as {
      scored: string;
      tokens: { text: string; start: number; score: number }[];
    };
    assert.equal(scores.scored, 'keyword');
    assert.equal(scores.tokens[1].text, 'for');
    assert.ok(scores.tokens.every((t) => t.score >= 0 && t.score <= 1));

    const file = path.join(dir, 'direction.safetensors');
    const exported = loupe(
      ['probe', '--export', out, '--hook', 'blocks.1.hook_resid_post', '--out', file],
      cache,
    );
    assert.equal(exported.code, 0, exported.stderr);
    const st = SafetensorsFile.open(file);
    assert.deepEqual(st.info('direction').shape, [32]);
    assert.equal(st.metadata.hook, 'blocks.1.hook_resid_post');
    assert.equal(st.metadata.label, 'keyword');
  });

  it('labels a corpus by regex', () => {
    const corpus = path.join(dir, 'corpus');
    fs.mkdirSync(corpus, { recursive: true });
    for (let i = 0; i < 4; i++)
      fs.writeFileSync(path.join(corpus, `f${i}.py`), `for x in ids${i}:\n    hidden = x\n`);
    const r = loupe(
      ['probe', '--regex', '^(for| in)$', '--corpus', corpus, '--hooks', 'blocks.0.hook_resid_pre', '--json'],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(r.stdout) as {
      labels: string[];
      split: { trainDocuments: number; testDocuments: number };
    };
    assert.deepEqual(meta.labels, ['other', 'match']);
    assert.equal(meta.split.trainDocuments + meta.split.testDocuments, 4);
  });

  it('fails with one line on bad input', () => {
    const oneClass = path.join(dir, 'one-class.jsonl');
    fs.writeFileSync(oneClass, ['{"text": "a b", "label": "x"}', '{"text": "c d", "label": "x"}'].join('\n'));
    const empty = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(empty, '\n');
    const cases: [string[], RegExp][] = [
      [
        ['probe', '--dataset', oneClass],
        /every example has the label 'x'; a probe needs at least two classes/,
      ],
      [['probe', '--dataset', empty], /the dataset is empty/],
      [
        ['probe', '--dataset', path.join(dir, 'keywords.jsonl'), '--hooks', 'blocks.0.hook_resid_prex'],
        /unknown hook/,
      ],
      [['probe', '--regex', 'x'], /--regex needs --corpus/],
      [['probe'], /give --dataset FILE.jsonl, or --regex RE/],
      [['probe', '--show', dir], /not a saved Loupe probe/],
      [
        ['probe', '--dataset', path.join(dir, 'keywords.jsonl'), '--test-fraction', '2'],
        /--test-fraction must be between 0 and 1/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = loupe(args, cache);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
