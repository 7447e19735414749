/** The `loupe` CLI's exact interfaces (other tools parse them) and its error behaviour. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { CLI, runCli, tempDir, writeByteLevelTokenizer, writeTinyGpt2 } from './helpers';

describe('loupe CLI', function () {
  let dir: string;
  let cache: string;
  let textFile: string;
  const text = 'def f(x):\r\n\treturn "世界 🙂"\n';
  before(function () {
    if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
    dir = tempDir();
    cache = tempDir();
    writeTinyGpt2(dir, 3, { bos_token_id: 261, eos_token_id: 261, n_positions: 64 }, 300);
    writeByteLevelTokenizer(dir);
    textFile = path.join(dir, 'sample.py');
    fs.writeFileSync(textFile, text);
  });

  it('tokenize --json prints id/text/start/end, BOS first with start = end = 0', () => {
    const r = runCli(['tokenize', '--model', dir, '--text', textFile, '--json'], cache);
    assert.equal(r.code, 0, r.stderr);
    const tokens = JSON.parse(r.stdout) as { id: number; text: string; start: number; end: number }[];
    assert.deepEqual(Object.keys(tokens[0]), ['id', 'text', 'start', 'end']);
    assert.deepEqual(tokens[0], { id: 261, text: '<|endoftext|>', start: 0, end: 0 });
    for (const t of tokens.slice(1)) assert.equal(t.text, text.slice(t.start, t.end));
    assert.equal(tokens[tokens.length - 1].end, text.length);
  });

  it('run writes logits and the requested hooks with TransformerLens shapes', () => {
    const out = path.join(dir, 'acts.safetensors');
    const tokens = JSON.parse(
      runCli(['tokenize', '--model', dir, '--text', textFile, '--json'], cache).stdout,
    ) as unknown[];
    const T = tokens.length;
    const r = runCli(
      [
        'run',
        '--model',
        dir,
        '--text',
        textFile,
        '--hooks',
        'blocks.1.attn.hook_pattern,hook_embed',
        '--out',
        out,
      ],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const st = SafetensorsFile.open(out);
    assert.deepEqual([...st.tensors.keys()].sort(), ['blocks.1.attn.hook_pattern', 'hook_embed', 'logits']);
    assert.deepEqual(st.info('logits').shape, [1, T, 300]);
    assert.deepEqual(st.info('blocks.1.attn.hook_pattern').shape, [1, 4, T, T]);
    assert.deepEqual(st.info('hook_embed').shape, [1, T, 16]);
    const pattern = st.readF32('blocks.1.attn.hook_pattern');
    for (let q = 0; q < T; q++) {
      let sum = 0;
      for (let k = 0; k < T; k++) sum += pattern[q * T + k];
      assert.ok(Math.abs(sum - 1) < 1e-5, 'attention rows sum to one');
      assert.equal(pattern[q * T + T - 1] === 0, q < T - 1, 'no attention to later tokens');
    }
    const all = runCli(['run', '--model', dir, '--text', textFile, '--hooks', 'all', '--out', out], cache);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(SafetensorsFile.open(out).tensors.size, 1 + 2 + 2 * 18 + 2);
  });

  it('bench forward --json reports tokens_per_s and the hooks fetched', () => {
    const r = runCli(
      ['bench', 'forward', '--model', dir, '--tokens', '16', '--repeat', '2', '--hooks', 'resid', '--json'],
      cache,
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { tokens_per_s: number; hooks: string };
    assert.ok(report.tokens_per_s > 0);
    assert.equal(report.hooks, 'resid');
  });

  it('fails with one line on stderr and a non-zero exit', () => {
    const cases: [string[], RegExp][] = [
      [['tokenize', '--model', path.join(dir, 'nope'), '--text', textFile], /no such model folder/],
      [['tokenize', '--model', dir, '--text', path.join(dir, 'missing.txt')], /missing\.txt: text not found/],
      [
        [
          'run',
          '--model',
          dir,
          '--text',
          textFile,
          '--hooks',
          'blocks.9.hook_resid_pre',
          '--out',
          '/tmp/x.st',
        ],
        /unknown hook/,
      ],
      [['frobnicate'], /unknown command/],
      [['tokenize', '--bogus'], /unknown option --bogus; see 'loupe --help'/],
      [['bench', 'forward', '--model', dir, '--tokens=-3'], /--tokens must be a positive integer/],
    ];
    for (const [args, pattern] of cases) {
      const r = runCli(args, cache);
      assert.notEqual(r.code, 0, args.join(' '));
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
      assert.match(lines[0], /^loupe: /);
      assert.match(lines[0], pattern);
    }
  });
});
