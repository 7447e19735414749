/**
 * The softmax-regression objective and the Gram matrix as ONNX graphs, so the
 * products that dominate probe training (X·W, Xᵀ·(P − Y) and XᵀX) run on
 * onnxruntime's GEMM rather than in JavaScript loops: at 100k rows × d_model
 * 256 that is the difference between seconds and minutes per probe.
 *
 * Objective, for G independent tasks of K classes that share the rows x:
 *   inputs   x [n, d] (rows already centred), w [d, G·K], b [G·K], y [n, G·K] one-hot per task,
 *            groups [3] = (0, G, K), inv_n []
 *   outputs  loss [n, G] = −y·log softmax_K(x w + b), per row and task
 *            grad_w = (softmax − y)ᵀ x · inv_n [G·K, d], grad_b = Σ_rows (softmax − y) · inv_n [G·K]
 * Gram: x [n, d] → gram = xᵀx [d, d].
 *
 * The L2 penalty and the standardisation are applied outside, in float64.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultCacheDir } from '../compile';
import { GraphBuilder } from '../graph/builder';
import { GraphSession } from '../runtime';
import { writeFileAtomic } from '../safeWrite';

export const LOGISTIC_IO = {
  x: 'x',
  w: 'w',
  b: 'b',
  y: 'y',
  groups: 'groups',
  invN: 'inv_n',
  loss: 'loss',
  gradW: 'grad_w',
  gradB: 'grad_b',
  gram: 'gram',
} as const;

type GraphKind = 'objective' | 'gram';

function buildObjectiveGraph(): Uint8Array {
  const g = new GraphBuilder('unused.bin');
  const io = LOGISTIC_IO;
  g.input(io.x, 'float', ['n', 'd']);
  g.input(io.w, 'float', ['d', 'gk']);
  g.input(io.b, 'float', ['gk']);
  g.input(io.y, 'float', ['n', 'gk']);
  g.input(io.groups, 'int64', [3]);
  g.input(io.invN, 'float', []);
  const logitsG = g.op('Reshape', [g.op('Gemm', [io.x, io.w, io.b]), io.groups]); // [n, G, K]
  const logpG = g.op('LogSoftmax', [logitsG], { axis: 2 });
  const yG = g.op('Reshape', [io.y, io.groups]);
  // Per row and task; summed in float64 outside, where n float32 additions would lose the decrease.
  g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [yG, logpG]), g.constI64([2])], { keepdims: 0 })], {}, io.loss);
  const logp = g.op('Reshape', [logpG, g.constI64([0, -1])]);
  const residual = g.op('Mul', [g.op('Sub', [g.op('Exp', [logp]), io.y]), io.invN]);
  // (P − Y)ᵀ·x rather than xᵀ·(P − Y): onnxruntime transposes the small operand, not the n × d one.
  g.op('Gemm', [residual, io.x], { transA: 1 }, io.gradW);
  g.op('ReduceSum', [residual, g.constI64([0])], { keepdims: 0 }, io.gradB);
  for (const name of [io.loss, io.gradW, io.gradB]) g.output(name);
  return g.encode('loupe_logistic_objective');
}

function buildGramGraph(): Uint8Array {
  const g = new GraphBuilder('unused.bin');
  g.input(LOGISTIC_IO.x, 'float', ['n', 'd']);
  g.op('Gemm', [LOGISTIC_IO.x, LOGISTIC_IO.x], { transA: 1 }, LOGISTIC_IO.gram);
  g.output(LOGISTIC_IO.gram);
  return g.encode('loupe_gram');
}

const sessions = new Map<string, Promise<GraphSession>>();

/** One session per graph and thread count, built on first use; graph files are cached by content. */
export function probeGraphSession(kind: GraphKind, threads: number): Promise<GraphSession> {
  const key = `${kind}-${threads}`;
  const cached = sessions.get(key);
  if (cached) return cached;
  const made = (async () => {
    const bytes = kind === 'objective' ? buildObjectiveGraph() : buildGramGraph();
    const hash = crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const dir = path.join(defaultCacheDir(), 'probes');
    const file = path.join(dir, `${kind}-${hash}.onnx`);
    if (!fs.existsSync(file)) {
      writeFileAtomic(file, bytes);
    }
    return GraphSession.create(file, { threads });
  })();
  made.catch(() => sessions.delete(key));
  sessions.set(key, made);
  return made;
}

/** Releases the sessions (they are rebuilt on next use). */
export async function releaseProbeGraphs(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map((p) => p.then((s) => s.release()).catch(() => undefined)));
}
