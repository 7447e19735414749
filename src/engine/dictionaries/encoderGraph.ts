/**
 * A sparse coder's pre-activations in onnxruntime: `pre = (x − shift) · W_encᵀ
 * + b_enc` as one Gemm, so that encoding a file with a 16k-wide dictionary
 * runs at matmul speed rather than in a JavaScript loop. The weights are
 * written once into the cache (keyed by their content) and the graph reads
 * them from there; the JavaScript copies can then be dropped, so the encoder
 * is held once, by onnxruntime. The activation (ReLU, JumpReLU, TopK, group
 * max) stays in JavaScript: it is linear in the width.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultCacheDir } from '../compile';
import { ExternalTensor, GraphBuilder } from '../graph/builder';
import { GraphSession } from '../runtime';
import { writeFileAtomic } from '../safeWrite';

/** Bump when the weights file or the graph changes. */
const CACHE_FORMAT = 1;
const INPUT = 'x';
const PRE = 'pre';

export interface EncoderGraphOptions {
  /** Where the weights and graph are cached; default LOUPE_CACHE_DIR or ~/.cache/loupe. */
  readonly cacheDir?: string;
  /** Intra-op threads; default: the machine's cores. */
  readonly threads?: number;
}

export interface EncoderTensors {
  /** [width, d_in] */
  readonly wEnc: Float32Array;
  readonly bEnc: Float32Array;
  /** [d_in], subtracted from the input first; null for none. */
  readonly inputShift: Float32Array | null;
}

/** Opens (compiling on first use) the pre-activation graph of one encoder. */
export async function openEncoderGraph(
  dIn: number,
  width: number,
  w: EncoderTensors,
  options: EncoderGraphOptions,
): Promise<GraphSession> {
  const parts: [string, Float32Array, number[]][] = [
    ['W_enc', w.wEnc, [width, dIn]],
    ['b_enc', w.bEnc, [width]],
  ];
  if (w.inputShift) parts.push(['shift', w.inputShift, [dIn]]);
  const hash = crypto.createHash('sha256');
  hash.update(`loupe-encoder-${CACHE_FORMAT}\n`);
  for (const [name, data, dims] of parts) {
    hash.update(`${name}:${dims.join('x')}\n`);
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  const dir = path.join(options.cacheDir ?? defaultCacheDir(), 'dictionary', hash.digest('hex').slice(0, 32));
  const weights = new Map<string, ExternalTensor>();
  let offset = 0;
  for (const [name, data, dims] of parts) {
    weights.set(name, { offset, length: data.byteLength, dims });
    offset += data.byteLength;
  }
  const weightsFile = path.join(dir, 'weights.bin');
  if (!fs.existsSync(weightsFile) || fs.statSync(weightsFile).size !== offset) {
    writeFileAtomic(
      weightsFile,
      parts.map(([, data]) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
    );
  }
  const graphFile = path.join(dir, 'pre.onnx');
  if (!fs.existsSync(graphFile)) {
    const g = new GraphBuilder('weights.bin');
    let x = g.input(INPUT, 'float', ['n', dIn]);
    if (w.inputShift) x = g.op('Sub', [x, g.weight('shift', weights.get('shift')!)]);
    const pre = g.op(
      'Gemm',
      [x, g.weight('W_enc', weights.get('W_enc')!), g.weight('b_enc', weights.get('b_enc')!)],
      { transB: 1 },
      PRE,
    );
    g.output(pre);
    writeFileAtomic(graphFile, g.encode('dictionary_encoder'));
  }
  return GraphSession.create(graphFile, {
    threads: options.threads ?? Math.max(1, os.availableParallelism()),
  });
}

/** Pre-activations [n, width] of inputs [n, d_in] through an open encoder graph. */
export async function runEncoderGraph(
  session: GraphSession,
  x: Float32Array,
  n: number,
  dIn: number,
): Promise<Float32Array> {
  const res = await session.run({ [INPUT]: { type: 'float32', dims: [n, dIn], data: x } }, [PRE]);
  return res.get(PRE)!.data;
}
