/**
 * Lenses and heads on the bundled default model, against PyTorch on the same weights and cores
 * (bench/torch_lens.py):
 *   - the lens grid (every layer × every position, top 10, next-token rank) for a 256-token text: logit,
 *     tuned (an identity lens, so the same work as a trained one), attention-free (self and skip); the first
 *     call (graphs built, sessions created) and the median of later ones; target: under 1 s;
 *   - TextSpan (10 directions) for all 16 heads over the model's held-out sample, uncached; target: under
 *     2 minutes; and how often Loupe's chosen directions equal the PyTorch reference's.
 *
 *   npx tsx bench/lens.ts [--repeat 5] [--threads 2]
 *
 * Writes bench/results/lens.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelDir } from '../src/engine/defaultModel';
import { headTextDirections, heldoutSampleWindows } from '../src/engine/lens/headTextDirections';
import { LensGrid, ModelLenses } from '../src/engine/lens/lenses';
import { TunedLens } from '../src/engine/lens/tunedLens';
import { HookedModel } from '../src/engine/model';

const ROOT = path.join(__dirname, '..');
const PY = '/usr/bin/python3';
const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
  },
});
const repeat = Number(values.repeat);
const threads = Number(values.threads);
const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const out = await f();
  return [out, Number(process.hrtime.bigint() - t0) / 1e6];
}

function sgemmGflops(): number {
  const out = execFileSync(
    PY,
    [
      '-c',
      `import torch,time
torch.set_num_threads(${threads})
a=torch.randn(2048,2048);b=torch.randn(2048,2048);a@b
t=time.perf_counter()
for _ in range(5): a@b
print(2*2048**3*5/(time.perf_counter()-t)/1e9)`,
    ],
    { env, encoding: 'utf8' },
  );
  return Number(out.trim());
}

async function main(): Promise<void> {
  const dir = defaultModelDir();
  const windows = heldoutSampleWindows(dir)!;
  const text = windows.find((w) => w.length === 256)!;
  // A fresh cache: the first call pays for compiling every graph it needs.
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-bench-lens-'));
  const model = await HookedModel.open(dir, { cacheDir, threads });
  const lenses = new ModelLenses(model, { threads });
  const identity = TunedLens.identity(model);
  const kinds: [string, () => Promise<LensGrid>][] = [
    ['logit', () => lenses.logit(text, { topK: 10 })],
    ['tuned', () => lenses.tuned(text, identity, { topK: 10 })],
    ['attention-free self', () => lenses.attentionFree(text, 'self', { topK: 10 })],
    ['attention-free skip', () => lenses.attentionFree(text, 'skip', { topK: 10 })],
  ];
  const grids: Record<string, { first_ms: number; median_ms: number; cells: number }> = {};
  for (const [name, run] of kinds) {
    const [grid, first] = await timed(run);
    const times: number[] = [];
    for (let i = 0; i < repeat; i++) times.push((await timed(run))[1]);
    grids[name] = {
      first_ms: first,
      median_ms: median(times),
      cells: grid.layers.length * grid.positions.length,
    };
    console.error(`lens grid ${name}: first ${first.toFixed(0)} ms, then ${median(times).toFixed(0)} ms`);
  }

  const [spans, textspanMs] = await timed(() =>
    headTextDirections(model, { windows, steps: 10, rank: 80, cache: false, threads }),
  );
  console.error(`TextSpan, 16 heads, ${spans.tokens} positions: ${(textspanMs / 1000).toFixed(1)} s`);
  const [, cachedMs] = await timed(() =>
    headTextDirections(model, { windows, steps: 10, rank: 80, threads }),
  );
  const [again, hitMs] = await timed(() =>
    headTextDirections(model, { windows, steps: 10, rank: 80, threads }),
  );
  await lenses.dispose();
  await model.dispose();

  const idsFile = path.join(cacheDir, 'ids.json');
  fs.writeFileSync(idsFile, JSON.stringify({ text, windows }));
  const torch = JSON.parse(
    execFileSync(
      PY,
      [
        'bench/torch_lens.py',
        '--model',
        dir,
        '--ids',
        idsFile,
        '--repeat',
        String(repeat),
        '--threads',
        String(threads),
      ],
      { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  ) as {
    lens_grid_first_ms: number;
    lens_grid_median_ms: number;
    textspan_seconds: number;
    textspan: { layer: number; head: number; ids: number[]; fractions: number[] }[];
  };
  let sameHeads = 0;
  let sameFirst = 0;
  let maxFractionDiff = 0;
  for (const ref of torch.textspan) {
    const mine = spans.heads.find((h) => h.layer === ref.layer && h.head === ref.head)!;
    const ids = mine.directions.map((d) => d.id);
    if (JSON.stringify(ids) === JSON.stringify(ref.ids)) sameHeads++;
    if (ids[0] === ref.ids[0]) sameFirst++;
    mine.directions.forEach((d, i) => {
      if (d.id === ref.ids[i])
        maxFractionDiff = Math.max(maxFractionDiff, Math.abs(d.fraction - ref.fractions[i]));
    });
  }
  const gflops = sgemmGflops();
  const result = {
    threads,
    repeat,
    load_average: os.loadavg()[0],
    sgemm_gflops: gflops,
    text_tokens: text.length,
    lens_grid: grids,
    torch_logit_lens_grid: { first_ms: torch.lens_grid_first_ms, median_ms: torch.lens_grid_median_ms },
    logit_lens_ratio_vs_torch: torch.lens_grid_median_ms / grids.logit.median_ms,
    textspan: {
      heads: spans.heads.length,
      positions: spans.tokens,
      steps: 10,
      seconds: textspanMs / 1000,
      cache_write_then_hit_ms: [cachedMs, hitMs],
      from_cache: again.cached,
      torch_seconds: torch.textspan_seconds,
      ratio_vs_torch: torch.textspan_seconds / (textspanMs / 1000),
      heads_with_identical_directions_as_torch: sameHeads,
      heads_with_the_same_first_direction: sameFirst,
      max_fraction_difference_where_equal: maxFractionDiff,
    },
  };
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'lens.json'), `${JSON.stringify(result, null, 2)}\n`);
  fs.rmSync(cacheDir, { recursive: true, force: true });
  console.log(JSON.stringify(result, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
