/**
 * Transcoder training throughput (activations per second): Loupe's step graph
 * (the SAE step with the MLP's output as its target and a skip term) against
 * the PyTorch reference of the same transcoder and optimiser
 * (bench/torch_transcoder_train.py), on the same cores and shapes, alternating
 * rounds:
 *
 *   npx tsx bench/transcoder_train.ts [--arch topk,relu] [--sizes 256x2048,768x24576] [--skip true] [--batch 4096] [--steps 3] [--rounds 2]
 *
 * TopK's products dense or sparse as the trainer chooses them (topkProducts). The step alone, as in bench/sae_train.ts (a trained layer also pays its share of the model's
 * forward pass). Writes bench/results/transcoder_train.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { seededUniform } from '../src/engine/random';
import { Feed, GraphSession } from '../src/engine/runtime';
import {
  METRICS,
  buildTrainGraph,
  io,
  paramDims,
  stepParams,
  topkProducts,
} from '../src/engine/sae/trainGraph';

const ROOT = path.join(__dirname, '..');
const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'topk,relu' },
    sizes: { type: 'string', default: '256x2048,768x24576' },
    skip: { type: 'string', default: 'true' },
    batch: { type: 'string', default: '4096' },
    steps: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
  },
});
const threads = Number(values.threads);
const B = Number(values.batch);
const steps = Number(values.steps);
const skip = values.skip === 'true';
const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
type Arch = 'topk' | 'relu';

async function loupeRate(arch: Arch, dModel: number, dTc: number): Promise<number> {
  const spec = {
    architecture: arch,
    dIn: dModel,
    dSae: dTc,
    k: 32,
    kAux: Math.floor(dModel / 2),
    auxRows: 256,
    auxCoefficient: 1 / 32,
    beta1: 0.9,
    beta2: 0.999,
    adamEps: 1e-8,
    clipNorm: 1,
    transcoder: true,
    skip,
    topkWithoutRelu: true,
    topkProducts: topkProducts(dTc, 32),
  };
  const file = path.join(os.tmpdir(), `loupe-bench-transcoder-step-${process.pid}.onnx`);
  fs.writeFileSync(file, buildTrainGraph(spec));
  const session = await GraphSession.create(file, { threads });
  fs.rmSync(file);
  const uniform = seededUniform(1);
  const rnd = (n: number, scale: number): Float32Array =>
    Float32Array.from({ length: n }, () => (uniform() - 0.5) * scale);
  const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
  const feeds: Record<string, Feed> = {
    x: { type: 'float32', dims: [B, dModel], data: rnd(B * dModel, 2) },
    y: { type: 'float32', dims: [B, dModel], data: rnd(B * dModel, 2) },
    lr: scalar(1e-4),
    l1: scalar(5),
    bc1: scalar(10),
    bc2: scalar(1000),
    dead: { type: 'float32', dims: [dTc], data: new Float32Array(dTc) },
  };
  const params = stepParams(spec);
  for (const p of params) {
    const dims = paramDims(spec, p);
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[p] = { type: 'float32', dims, data: rnd(n, 0.01) };
    feeds[io.m(p)] = { type: 'float32', dims, data: new Float32Array(n) };
    feeds[io.v(p)] = { type: 'float32', dims, data: new Float32Array(n) };
  }
  const outs = [...params.flatMap((p) => [io.out(p), io.out(io.m(p)), io.out(io.v(p))]), ...METRICS];
  await session.run(feeds, outs);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await session.run(feeds, outs);
  const seconds = (performance.now() - t0) / 1000;
  await session.release();
  return (B * steps) / seconds;
}

function torchRate(arch: Arch, dModel: number, dTc: number): number {
  const args = [
    'bench/torch_transcoder_train.py',
    '--arch',
    arch,
    '--d-model',
    String(dModel),
    '--d-tc',
    String(dTc),
  ];
  args.push('--batch', String(B), '--steps', String(steps), '--threads', String(threads));
  if (skip) args.push('--skip');
  const out = execFileSync('/usr/bin/python3', args, { cwd: ROOT, env, encoding: 'utf8' });
  return (JSON.parse(out) as { activations_per_s: number }).activations_per_s;
}

async function main(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  for (const size of values.sizes!.split(',')) {
    const [dModel, dTc] = size.split('x').map(Number);
    for (const arch of values.arch!.split(',') as Arch[]) {
      const loupe: number[] = [];
      const torch: number[] = [];
      for (let r = 0; r < Number(values.rounds); r++) {
        loupe.push(await loupeRate(arch, dModel, dTc));
        torch.push(torchRate(arch, dModel, dTc));
      }
      const best = (xs: number[]): number => Math.max(...xs);
      rows.push({
        arch,
        skip,
        d_model: dModel,
        d_tc: dTc,
        batch: B,
        loupe_act_per_s: Math.round(best(loupe)),
        torch_act_per_s: Math.round(best(torch)),
        ratio: Number((best(loupe) / best(torch)).toFixed(2)),
      });
      console.error(JSON.stringify(rows[rows.length - 1]));
    }
  }
  console.table(rows);
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results', 'transcoder_train.json'),
    JSON.stringify({ threads, steps, load_average: os.loadavg()[0], rows }, null, 2),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
