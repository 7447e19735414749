/**
 * Probing speed: probes at 6 hook points of the default model over 100k
 * labelled tokens, everything included (tokenizing, the forward passes that
 * read the activations, and training each probe with its control task).
 * The default model has 2 blocks, so the 6 hook points are every residual
 * point: blocks.0.hook_resid_pre, resid_mid and resid_post of both blocks,
 * and ln_final.hook_normalized. Labels: a regex over tokens (Python and
 * TypeScript keywords) on the default model's held-out corpus. Target: under
 * 60 s on 2 cores.
 *
 *   npx tsx bench/probe.ts [--corpus FILE] [--tokens 100000] [--threads 2] [--rounds 2]
 *
 * Writes bench/results/probe.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readCorpus } from '../src/engine/corpus';
import { HookedModel } from '../src/engine/model';
import { datasetFromRegex } from '../src/engine/probes/labels';
import { trainProbes } from '../src/engine/probes/probing';

const ROOT = path.join(__dirname, '..');
const HOOKS = [
  'blocks.0.hook_resid_pre',
  'blocks.0.hook_resid_mid',
  'blocks.0.hook_resid_post',
  'blocks.1.hook_resid_mid',
  'blocks.1.hook_resid_post',
  'ln_final.hook_normalized',
];
const KEYWORDS = '^\\s*(def|class|return|import|from|if|else|for|while|const|let|function|export)$';

const { values } = parseArgs({
  options: {
    corpus: {
      type: 'string',
      default: path.join(ROOT, '.cache', 'default-model', 'corpus', 'heldout.jsonl'),
    },
    tokens: { type: 'string', default: '100000' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
  },
});
const corpus = values.corpus!;
const tokens = Number(values.tokens);
const threads = Number(values.threads);

function prepareCorpus(): void {
  if (fs.existsSync(corpus)) return;
  console.error('bench: building the default model corpus (tools/default-model/build_corpus.mjs)');
  execFileSync(
    process.execPath,
    ['tools/default-model/build_corpus.mjs', path.join(ROOT, '.cache', 'default-model')],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
}

async function round(): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const model = await HookedModel.open(path.join(ROOT, 'models', 'default'), { threads });
  try {
    const dataset = await datasetFromRegex(model, readCorpus(corpus), KEYWORDS, 'keywords', {
      maxExamples: tokens,
    });
    const tDataset = performance.now();
    let tActivations = 0;
    const trainStart: Record<string, number> = {};
    const results = await trainProbes(model, dataset, {
      hooks: HOOKS,
      threads,
      onProgress: (p) => {
        if (p.stage === 'training' && tActivations === 0) tActivations = performance.now();
        if (p.stage === 'training' && p.hook) trainStart[p.hook] = performance.now();
      },
    });
    const tEnd = performance.now();
    const hookSeconds = HOOKS.map(
      (h, i) => ((i + 1 < HOOKS.length ? trainStart[HOOKS[i + 1]] : tEnd) - trainStart[h]) / 1000,
    );
    return {
      total_seconds: (tEnd - t0) / 1000,
      dataset_seconds: (tDataset - t0) / 1000,
      activation_seconds: (tActivations - tDataset) / 1000,
      training_seconds: (tEnd - tActivations) / 1000,
      examples: dataset.examples.length,
      windows: dataset.sequences.length,
      counts: results.counts,
      hooks: results.hooks.map((h, i) => ({
        hook: h.hook,
        seconds: hookSeconds[i],
        iterations: h.iterations,
        converged: h.converged,
        accuracy: h.accuracy,
        majority: h.majorityBaseline,
        control: h.controlAccuracy,
        selectivity: h.selectivity,
      })),
    };
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  prepareCorpus();
  const rounds: Record<string, unknown>[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const result = await round();
    console.error(`bench: round ${r + 1}: ${(result.total_seconds as number).toFixed(1)} s`);
    rounds.push(result);
  }
  const best = rounds.reduce((a, b) => ((a.total_seconds as number) <= (b.total_seconds as number) ? a : b));
  console.table(
    (best.hooks as Record<string, unknown>[]).map((h) => ({
      hook: h.hook,
      seconds: (h.seconds as number).toFixed(2),
      iterations: h.iterations,
      accuracy: (h.accuracy as number).toFixed(4),
      control: (h.control as number).toFixed(4),
    })),
  );
  console.error(
    `bench: ${best.examples as number} tokens, 6 hook points: ${(best.total_seconds as number).toFixed(1)} s ` +
      `(dataset ${(best.dataset_seconds as number).toFixed(1)} s, activations ${(best.activation_seconds as number).toFixed(1)} s, ` +
      `training ${(best.training_seconds as number).toFixed(1)} s); target < 60 s`,
  );
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results', 'probe.json'),
    `${JSON.stringify({ threads, tokens, hooks: HOOKS, regex: KEYWORDS, target_seconds: 60, load_average: os.loadavg(), best, rounds }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
