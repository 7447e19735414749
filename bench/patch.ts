/**
 * Activation patching speed on a 64-token clean/corrupted pair, side by side
 * with the same grids in PyTorch eager (bench/torch_patch.py: the reference
 * model, OpenBLAS, the same batching), on the same weights and cores:
 *   - the default model: layer × position of the residual stream (2 × 64
 *     cells; target under 30 s), layer × head, and head × position;
 *   - a random GPT-2-small-sized checkpoint (12 layers × 64 positions, 12 × 12 heads).
 * The pair: the first 63 tokens of a held-out document after BOS, and the
 * same with four tokens swapped for others; the metric is the logit
 * difference between the clean and the corrupted top predictions at the
 * last position. The grids of both implementations are compared too.
 *
 *   npx tsx bench/patch.ts [--threads 2] [--batch 32] [--skip-small]
 *
 * Writes bench/results/patch.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readCorpus } from '../src/engine/corpus';
import { HookedModel } from '../src/engine/model';
import { PatchGrid, patchHeads, patchResidual } from '../src/engine/causal/patching';
import { argmax, logitRow } from '../src/engine/causal/predictions';
import { seededUniform } from '../src/engine/random';

const ROOT = path.join(__dirname, '..');
const PY = '/usr/bin/python3';
const T = 64;

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '32' },
    corpus: {
      type: 'string',
      default: path.join(ROOT, '.cache', 'default-model', 'corpus', 'heldout.jsonl'),
    },
    work: { type: 'string', default: path.join(ROOT, '.cache', 'bench') },
    'skip-small': { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const batch = Number(values.batch);
const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };

interface Pair {
  clean: number[];
  corrupted: number[];
  target: number;
  versus: number;
}

/** Swaps four tokens of `clean` for others, and picks the two tokens the runs disagree on. */
async function makePair(model: HookedModel, clean: number[]): Promise<Pair> {
  const rand = seededUniform(7);
  const corrupted = [...clean];
  for (const p of [12, 27, 41, 55])
    corrupted[p] = (clean[p] + 1 + Math.floor(rand() * 100)) % model.spec.dVocab;
  const out = await model.runPadded([clean, corrupted]);
  const target = argmax(logitRow(out.logits, 0, T - 1));
  let versus = argmax(logitRow(out.logits, 1, T - 1));
  if (versus === target) {
    const row = Float32Array.from(logitRow(out.logits, 0, T - 1));
    row[target] = -Infinity;
    versus = argmax(row);
  }
  return { clean, corrupted, target, versus };
}

async function timed(run: () => Promise<PatchGrid>): Promise<{ seconds: number; grid: PatchGrid }> {
  await run(); // warm-up: the graph variant is compiled once per model
  const t0 = performance.now();
  const grid = await run();
  return { seconds: (performance.now() - t0) / 1000, grid };
}

function torchGrids(
  modelDir: string,
  pair: Pair,
  grids: string[],
): Record<string, { seconds: number; values: number[][] }> {
  const file = path.join(values.work!, `patch-pair-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...pair, grids }));
  try {
    const out = execFileSync(
      PY,
      [
        'bench/torch_patch.py',
        '--model',
        modelDir,
        '--pair',
        file,
        '--threads',
        String(threads),
        '--batch',
        String(batch),
      ],
      { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 },
    );
    return (JSON.parse(out) as { grids: Record<string, { seconds: number; values: number[][] }> }).grids;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, r) => row.forEach((v, c) => (m = Math.max(m, Math.abs(v - b[r][c])))));
  return m;
}

async function benchModel(
  name: string,
  modelDir: string,
  pair: Pair | null,
  grids: string[],
): Promise<Record<string, unknown>> {
  const model = await HookedModel.open(modelDir, { threads });
  try {
    let p = pair;
    if (!p) {
      const rand = seededUniform(3);
      const clean = Array.from({ length: T }, () => Math.floor(rand() * (model.spec.dVocab - 1)));
      p = await makePair(model, clean);
    }
    const o = { target: p.target, versus: p.versus, maxBatch: batch };
    const runs: Record<string, () => Promise<PatchGrid>> = {
      resid_pre: () => patchResidual(model, p.clean, p.corrupted, o),
      heads: () => patchHeads(model, p.clean, p.corrupted, o),
      'head-positions': () => patchHeads(model, p.clean, p.corrupted, { ...o, perPosition: true }),
    };
    const torch = torchGrids(modelDir, p, grids);
    const out: Record<string, unknown> = {};
    for (const g of grids) {
      const loupe = await timed(runs[g]);
      const cells = loupe.grid.values.reduce((a, row) => a + row.length, 0);
      out[g] = {
        cells,
        loupe_seconds: loupe.seconds,
        torch_seconds: torch[g].seconds,
        speedup: torch[g].seconds / loupe.seconds,
        max_abs_diff_vs_torch: maxDiff(loupe.grid.values, torch[g].values),
      };
      console.error(
        `bench: ${name} ${g}: ${cells} cells, Loupe ${loupe.seconds.toFixed(2)} s, PyTorch ${torch[g].seconds.toFixed(2)} s`,
      );
    }
    return {
      layers: model.spec.nLayers,
      d_model: model.spec.dModel,
      heads: model.spec.nHeads,
      tokens: T,
      grids: out,
    };
  } finally {
    await model.dispose();
  }
}

async function defaultPair(): Promise<Pair> {
  const model = await HookedModel.open(path.join(ROOT, 'models', 'default'), { threads });
  try {
    for await (const doc of readCorpus(values.corpus!)) {
      const ids = (await model.tokenize(doc.text)).map((t) => t.id);
      if (ids.length >= T) return await makePair(model, ids.slice(0, T));
    }
    throw new Error('no held-out document of 64 tokens');
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  fs.mkdirSync(values.work!, { recursive: true });
  if (!fs.existsSync(values.corpus!)) {
    execFileSync(
      process.execPath,
      ['tools/default-model/build_corpus.mjs', path.join(ROOT, '.cache', 'default-model')],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
  }
  const results: Record<string, unknown> = {
    default: await benchModel('default', path.join(ROOT, 'models', 'default'), await defaultPair(), [
      'resid_pre',
      'heads',
      'head-positions',
    ]),
  };
  if (!values['skip-small']) {
    const small = path.join(values.work!, 'gpt2-small-random');
    if (!fs.existsSync(path.join(small, 'model.safetensors'))) {
      execFileSync(PY, ['tools/reference/make_bench_checkpoint.py', '--out', small], {
        cwd: ROOT,
        env,
        stdio: 'inherit',
      });
    }
    results['gpt2-small-random'] = await benchModel('gpt2-small-random', small, null, ['resid_pre', 'heads']);
  }
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results', 'patch.json'),
    `${JSON.stringify({ threads, batch, target_seconds: 30, load_average: os.loadavg(), results }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
