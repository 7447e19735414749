/**
 * A gemma-2-2b-shaped checkpoint (26 layers, d_model 2304, 8 heads, 4 key/value
 * heads, head_dim 256, d_mlp 9216, vocabulary 256,000; bf16, 2.6B parameters):
 * Loupe's first open (hash, convert to f32, compile) and cached open, each in a
 * process of its own with its peak resident memory against the model's f32
 * size, and the forward throughput at T tokens; then PyTorch eager on the same
 * weights, run after Loupe's processes have ended (both together need more
 * than the machine's memory).
 *
 *   npx tsx bench/large_model.ts [--model DIR] [--tokens 128] [--repeat 3] [--threads 2]
 *
 * DIR defaults to .cache/bench/gemma-2-2b, written by
 * tools/reference/make_bench_checkpoint.py --shape gemma-2-2b when missing.
 * Writes bench/results/large_model.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../src/engine/checkpoint';

const ROOT = path.join(__dirname, '..');
const PY = '/usr/bin/python3';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(ROOT, '.cache', 'bench', 'gemma-2-2b') },
    tokens: { type: 'string', default: '128' },
    repeat: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
  },
});
const modelDir = path.resolve(values.model!);
const env = { ...process.env, OMP_NUM_THREADS: values.threads!, OPENBLAS_NUM_THREADS: values.threads! };

interface LoupeReport {
  tokens_per_s: number;
  open_seconds: number;
  max_rss_mb: number;
}

function loupeRun(cacheDir: string): LoupeReport & { wall_seconds: number } {
  const t0 = performance.now();
  const out = execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'loupe'),
      ...['bench', 'forward', '--model', modelDir, '--tokens', values.tokens!, '--repeat', values.repeat!],
      ...['--threads', values.threads!, '--json'],
    ],
    {
      cwd: ROOT,
      env: { ...env, LOUPE_CACHE_DIR: cacheDir },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return { ...(JSON.parse(out) as LoupeReport), wall_seconds: (performance.now() - t0) / 1000 };
}

function torchRun(): { tokens_per_s: number; peak_rss_mib?: number } {
  const out = execFileSync(
    PY,
    [
      'bench/torch_forward.py',
      ...['--model', modelDir, '--tokens', values.tokens!, '--repeat', values.repeat!, '--warmup', '1'],
      ...['--threads', values.threads!],
    ],
    { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as { tokens_per_s: number; peak_rss_mib?: number };
}

function main(): void {
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) {
    console.error(`bench: writing the gemma-2-2b-shaped checkpoint to ${modelDir}`);
    execFileSync(
      PY,
      ['tools/reference/make_bench_checkpoint.py', '--out', modelDir, '--shape', 'gemma-2-2b'],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
  }
  const ckpt = openCheckpoint(modelDir);
  let parameters = 0;
  for (const name of ckpt.weights.names)
    parameters += ckpt.weights.info(name)!.info.shape.reduce((a, d) => a * d, 1);
  const f32Mb = (parameters * 4) / 2 ** 20;
  const cache = fs.mkdtempSync(path.join(ROOT, '.cache', 'bench', 'large-open-'));
  try {
    const first = loupeRun(cache);
    console.error(`bench: first open ${JSON.stringify(first)}`);
    const cached = loupeRun(cache);
    console.error(`bench: cached open ${JSON.stringify(cached)}`);
    const torch = torchRun();
    console.error(`bench: torch ${JSON.stringify(torch)}`);
    const result = {
      model: path.relative(ROOT, modelDir),
      parameters,
      f32_mb: f32Mb,
      tokens: Number(values.tokens),
      threads: Number(values.threads),
      first_open: { ...first, peak_over_f32: first.max_rss_mb / f32Mb },
      cached_open: { ...cached, peak_over_f32: cached.max_rss_mb / f32Mb },
      torch,
      loupe_over_torch: cached.tokens_per_s / torch.tokens_per_s,
      // Other work on the machine slows both alike; the 1-minute load average says how much there was.
      load_average: os.loadavg()[0],
    };
    console.table({
      'first open': {
        'open s': first.open_seconds,
        'peak / f32': result.first_open.peak_over_f32,
        'tok/s': first.tokens_per_s,
      },
      'cached open': {
        'open s': cached.open_seconds,
        'peak / f32': result.cached_open.peak_over_f32,
        'tok/s': cached.tokens_per_s,
      },
      torch: {
        'open s': NaN,
        'peak / f32': (torch.peak_rss_mib ?? NaN) / f32Mb,
        'tok/s': torch.tokens_per_s,
      },
    });
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(
      path.join(ROOT, 'bench', 'results', 'large_model.json'),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

main();
