/**
 * SAE training throughput (activations per second), Loupe's step graph against
 * the PyTorch reference of the same SAE and optimiser (bench/torch_sae_train.py),
 * on the same cores, alternating rounds:
 *
 *   npx tsx bench/sae_train.ts [--arch relu,topk] [--sizes 256x4096,768x24576] [--batch 4096] [--steps 3] [--rounds 2]
 *
 * Also reports the fraction of the machine's measured sgemm rate (PyTorch, 2048²) the step reaches,
 * counting the dense products a dense implementation needs (5 per step). Writes bench/results/sae_train.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { seededUniform } from '../src/engine/random';
import { Feed, GraphSession } from '../src/engine/runtime';
import { METRICS, PARAMS, TrainArchitecture, buildTrainGraph, io } from '../src/engine/sae/trainGraph';

const ROOT = path.join(__dirname, '..');
const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'relu,topk' },
    sizes: { type: 'string', default: '256x4096,768x24576' },
    batch: { type: 'string', default: '4096' },
    steps: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
  },
});
const threads = Number(values.threads);
const B = Number(values.batch);
const steps = Number(values.steps);
const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };

async function loupeRate(arch: TrainArchitecture, dIn: number, dSae: number): Promise<number> {
  const file = path.join(os.tmpdir(), `loupe-bench-step-${process.pid}.onnx`);
  const kAux = Math.floor(dIn / 2);
  fs.writeFileSync(
    file,
    buildTrainGraph({
      architecture: arch,
      dIn,
      dSae,
      k: 32,
      kAux,
      auxRows: 256,
      auxCoefficient: 1 / 32,
      beta1: 0.9,
      beta2: 0.999,
      adamEps: 1e-8,
      clipNorm: 1,
    }),
  );
  const session = await GraphSession.create(file, { threads });
  fs.rmSync(file);
  const uniform = seededUniform(1);
  const rnd = (n: number, scale: number): Float32Array =>
    Float32Array.from({ length: n }, () => (uniform() - 0.5) * scale);
  const shapes: Record<string, number[]> = {
    W_enc: [dIn, dSae],
    b_enc: [dSae],
    W_dec: [dSae, dIn],
    b_dec: [dIn],
  };
  const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
  const feeds: Record<string, Feed> = {
    x: { type: 'float32', dims: [B, dIn], data: rnd(B * dIn, 2) },
    lr: scalar(1e-4),
    l1: scalar(5),
    bc1: scalar(10),
    bc2: scalar(1000),
    dead: { type: 'float32', dims: [dSae], data: new Float32Array(dSae) },
  };
  for (const p of PARAMS) {
    const n = shapes[p].reduce((a, b) => a * b, 1);
    feeds[p] = { type: 'float32', dims: shapes[p], data: rnd(n, 0.01) };
    feeds[io.m(p)] = { type: 'float32', dims: shapes[p], data: new Float32Array(n) };
    feeds[io.v(p)] = { type: 'float32', dims: shapes[p], data: new Float32Array(n) };
  }
  const outs = [...PARAMS.flatMap((p) => [io.out(p), io.out(io.m(p)), io.out(io.v(p))]), ...METRICS];
  await session.run(feeds, outs);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await session.run(feeds, outs);
  const seconds = (performance.now() - t0) / 1000;
  await session.release();
  return (B * steps) / seconds;
}

function torchRate(arch: TrainArchitecture, dIn: number, dSae: number): number {
  const out = execFileSync(
    '/usr/bin/python3',
    [
      'bench/torch_sae_train.py',
      '--arch',
      arch,
      '--d-in',
      String(dIn),
      '--d-sae',
      String(dSae),
      '--batch',
      String(B),
      '--steps',
      String(steps),
      '--threads',
      String(threads),
    ],
    { cwd: ROOT, env, encoding: 'utf8' },
  );
  return (JSON.parse(out) as { activations_per_s: number }).activations_per_s;
}

function sgemmGflops(): number {
  const out = execFileSync(
    '/usr/bin/python3',
    [
      '-c',
      `import torch,time\ntorch.set_num_threads(${threads})\na=torch.randn(2048,2048);b=torch.randn(2048,2048);a@b\nt=time.perf_counter()\nfor _ in range(5): a@b\nprint(2*2048**3*5/(time.perf_counter()-t)/1e9)`,
    ],
    { env, encoding: 'utf8' },
  );
  return Number(out.trim());
}

async function main(): Promise<void> {
  const gflops = sgemmGflops();
  const rows: Record<string, unknown>[] = [];
  for (const size of values.sizes!.split(',')) {
    const [dIn, dSae] = size.split('x').map(Number);
    for (const arch of values.arch!.split(',') as TrainArchitecture[]) {
      const loupe: number[] = [];
      const torch: number[] = [];
      for (let r = 0; r < Number(values.rounds); r++) {
        loupe.push(await loupeRate(arch, dIn, dSae));
        torch.push(torchRate(arch, dIn, dSae));
      }
      const best = (xs: number[]): number => Math.max(...xs);
      const denseFlopsPerActivation = 5 * 2 * dIn * dSae;
      rows.push({
        arch,
        d_in: dIn,
        d_sae: dSae,
        batch: B,
        loupe_act_per_s: Math.round(best(loupe)),
        torch_act_per_s: Math.round(best(torch)),
        ratio: Number((best(loupe) / best(torch)).toFixed(2)),
        loupe_dense_equivalent_gflops: Number(((best(loupe) * denseFlopsPerActivation) / 1e9).toFixed(1)),
        fraction_of_sgemm: Number(((best(loupe) * denseFlopsPerActivation) / 1e9 / gflops).toFixed(2)),
      });
      console.error(JSON.stringify(rows[rows.length - 1]));
    }
  }
  console.table(rows);
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results', 'sae_train.json'),
    JSON.stringify({ threads, steps, sgemm_gflops: gflops, rows }, null, 2),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
