/**
 * Forward-pass throughput, side by side on the same weights and cores:
 *   - PyTorch eager (the reference model in tools/reference, OpenBLAS),
 *   - the same model exported plainly with torch.onnx.export, run in onnxruntime-node,
 *   - Loupe with no hooks, with every residual-stream hook, and with every hook.
 * Rounds alternate between the contenders so background load hits them alike.
 *
 *   npx tsx bench/forward.ts [--tokens 128,512] [--rounds 3] [--repeat 5] [--threads 2]
 *
 * Writes bench/results/forward.json and prints a table of tokens/s and ratios.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { GraphSession } from '../src/engine/runtime';

const ROOT = path.join(__dirname, '..');
const PY = '/usr/bin/python3';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '128,512' },
    rounds: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    work: { type: 'string', default: path.join(ROOT, '.cache', 'bench') },
  },
});
const tokenCounts = values.tokens!.split(',').map(Number);
const rounds = Number(values.rounds);
const repeat = Number(values.repeat);
const threads = Number(values.threads);
const work = values.work!;
const modelDir = path.join(work, 'gpt2-small-random');
const onnxFile = path.join(work, 'gpt2-small-plain.onnx');
const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function prepare(): void {
  fs.mkdirSync(work, { recursive: true });
  if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) {
    console.error('bench: writing a random GPT-2-small-sized checkpoint');
    sh(PY, ['tools/reference/make_bench_checkpoint.py', '--out', modelDir]);
  }
  if (!fs.existsSync(onnxFile)) {
    console.error('bench: exporting it with torch.onnx.export');
    sh(PY, ['bench/torch_forward.py', '--model', modelDir, '--export-onnx', onnxFile]);
  }
}

function sgemmRate(): number {
  const out = sh(PY, [
    '-c',
    `import torch,time
torch.set_num_threads(${threads})
a=torch.randn(2048,2048);b=torch.randn(2048,2048);a@b
t=time.perf_counter()
for _ in range(5): a@b
print(2*2048**3*5/(time.perf_counter()-t)/1e9)`,
  ]);
  return Number(out.trim());
}

function torchTokensPerS(T: number): number {
  const out = sh(PY, [
    'bench/torch_forward.py',
    '--model',
    modelDir,
    '--tokens',
    String(T),
    '--repeat',
    String(repeat),
    '--threads',
    String(threads),
  ]);
  return (JSON.parse(out.trim().split('\n').pop()!) as { tokens_per_s: number }).tokens_per_s;
}

async function plainOnnxTokensPerS(T: number): Promise<number> {
  const session = await GraphSession.create(onnxFile, { threads });
  try {
    const ids = new BigInt64Array(T).map((_, i) => BigInt((i * 7919) % 50257));
    const feeds = { input_ids: { type: 'int64' as const, dims: [1, T], data: ids } };
    for (let i = 0; i < 2; i++) await session.run(feeds, ['logits']);
    const t0 = performance.now();
    for (let i = 0; i < repeat; i++) await session.run(feeds, ['logits']);
    return (T * repeat) / ((performance.now() - t0) / 1000);
  } finally {
    await session.release();
  }
}

/** `loupe bench forward --json` on the benchmark checkpoint, in its own process. */
function loupeBench(T: number, repeats: number, hooks: string, cacheDir?: string): LoupeBenchReport {
  const args = ['bench', 'forward', '--model', modelDir, '--tokens', String(T), '--repeat', String(repeats)];
  const out = execFileSync(
    process.execPath,
    [path.join(ROOT, 'bin', 'loupe'), ...args, '--hooks', hooks, '--threads', String(threads), '--json'],
    { cwd: ROOT, env: cacheDir ? { ...env, LOUPE_CACHE_DIR: cacheDir } : env, encoding: 'utf8' },
  );
  return JSON.parse(out) as LoupeBenchReport;
}

interface LoupeBenchReport {
  tokens_per_s: number;
  open_seconds: number;
  max_rss_mb: number;
}

/** First open (hash, convert, compile) and second open (cached) of the checkpoint, with peak memory. */
function openCost(): Record<string, number> {
  const cache = fs.mkdtempSync(path.join(work, 'open-cache-'));
  const once = (): LoupeBenchReport => loupeBench(16, 1, 'none', cache);
  const first = once();
  const second = once();
  fs.rmSync(cache, { recursive: true, force: true });
  const checkpointMb = fs.statSync(path.join(modelDir, 'model.safetensors')).size / 2 ** 20;
  return {
    checkpoint_mb: checkpointMb,
    first_open_seconds: first.open_seconds,
    first_open_peak_rss_mb: first.max_rss_mb,
    first_open_peak_ratio: first.max_rss_mb / checkpointMb,
    second_open_seconds: second.open_seconds,
    second_open_peak_rss_mb: second.max_rss_mb,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  prepare();
  const gflops = sgemmRate();
  console.error(`bench: PyTorch sgemm 2048² on ${threads} threads: ${gflops.toFixed(0)} GFLOP/s`);
  const open = openCost();
  console.error(`bench: open ${JSON.stringify(open)}`);
  const results: Record<string, Record<string, number>> = {};
  for (const T of tokenCounts) {
    const runs: Record<string, number[]> = {
      torch: [],
      plain_onnx: [],
      loupe_none: [],
      loupe_resid: [],
      loupe_all: [],
    };
    for (let r = 0; r < rounds; r++) {
      runs.torch.push(torchTokensPerS(T));
      runs.plain_onnx.push(await plainOnnxTokensPerS(T));
      runs.loupe_none.push(loupeBench(T, repeat, 'none').tokens_per_s);
      runs.loupe_resid.push(loupeBench(T, repeat, 'resid').tokens_per_s);
      runs.loupe_all.push(loupeBench(T, repeat, 'all').tokens_per_s);
      console.error(`bench: T=${T} round ${r + 1}/${rounds} done`);
    }
    results[`T=${T}`] = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  }
  const table = Object.entries(results).map(([k, r]) => ({
    case: k,
    'torch tok/s': r.torch.toFixed(0),
    'plain onnx tok/s': r.plain_onnx.toFixed(0),
    'loupe tok/s': r.loupe_none.toFixed(0),
    'loupe/plain': (r.loupe_none / r.plain_onnx).toFixed(2),
    'loupe/torch': (r.loupe_none / r.torch).toFixed(2),
    'resid cost': (r.loupe_none / r.loupe_resid).toFixed(2),
    'all-hooks cost': (r.loupe_none / r.loupe_all).toFixed(2),
  }));
  console.table(table);
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results', 'forward.json'),
    JSON.stringify({ threads, repeat, rounds, sgemm_gflops: gflops, open, results }, null, 2),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
