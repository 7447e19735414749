/**
 * The Lens Grid's time as the editor sees it: the `lensGrid` request through the engine process (the
 * bundled dist/engineWorker.js the extension forks), from sending the request to holding the checked
 * reply, for a selection of the whole of a file longer than the default model's context (so its
 * 256-token window: BOS and 255 columns, 3 lens layers, top 10), for every lens kind; the first call
 * (readout graphs built) and the median of the later ones, each on a selection one token further on
 * (as when the selection moves). Also the engine's own time, so that the cost of the process boundary
 * shows. The target: under 1 s. Also what follows the caret in the heads panel and the
 * editor: direct logit attribution and attention at a token, first call and median. Run `npm run build` first.
 *
 *   npx tsx bench/lens_request.ts [--repeat 9] [--threads 2]
 *
 * Writes bench/results/lens_request.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelDir } from '../src/engine/defaultModel';
import { EngineParams } from '../src/engine/host/protocol';
import { TunedLens } from '../src/engine/lens/tunedLens';
import { HookedModel } from '../src/engine/model';
import { EngineClient } from '../src/extension/engineClient';

const ROOT = path.join(__dirname, '..');
const WORKER = path.join(ROOT, 'dist', 'engineWorker.js');
const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '9' },
    threads: { type: 'string', default: '2' },
  },
});
const repeat = Number(values.repeat);
const threads = Number(values.threads);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  if (!fs.existsSync(WORKER)) throw new Error(`${WORKER} is missing: run npm run build first`);
  const dir = defaultModelDir();
  // A fresh cache: the first call pays for compiling what it needs, as on a first start.
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-bench-lens-request-'));
  const lensDir = path.join(cacheDir, 'identity-lens');
  const model = await HookedModel.open(dir, { cacheDir, threads });
  // An identity tuned lens: the same work as a trained one.
  TunedLens.identity(model).save(lensDir);
  await model.dispose();

  const client = new EngineClient({
    workerFile: WORKER,
    log: { info: () => undefined, warn: (m) => console.error(m), error: (m) => console.error(m) },
  });
  try {
    const loaded = await client.request('load', { model: dir, sae: null, threads, cacheDir });
    const text = fs.readFileSync(path.join(ROOT, 'tools', 'reference', 'models.py'), 'utf8');
    const document = 'file:///bench/models.py';
    const tokens = await client.request('tokenize', { document, version: 1, text });
    const count = tokens.ids.length;
    const kinds: [string, Pick<EngineParams<'lensGrid'>, 'kind' | 'variant' | 'tunedLens'>][] = [
      ['logit', { kind: 'logit', variant: 'self', tunedLens: null }],
      ['tuned', { kind: 'tuned', variant: 'self', tunedLens: lensDir }],
      ['attention-free self', { kind: 'attention-free', variant: 'self', tunedLens: null }],
      ['attention-free skip', { kind: 'attention-free', variant: 'skip', tunedLens: null }],
    ];
    const grids: Record<
      string,
      { columns: number; layers: number; first_ms: number; median_ms: number; engine_median_ms: number }
    > = {};
    for (const [name, kind] of kinds) {
      const times: number[] = [];
      const engine: number[] = [];
      let columns = 0;
      let layers = 0;
      for (let i = 0; i <= repeat; i++) {
        // From token 1 (after BOS) to the end: cut to the context; each repeat starts one token later.
        const params = { document, version: 1, from: 1 + i, to: count, top: 10, ...kind };
        const t0 = performance.now();
        const r = await client.request('lensGrid', params);
        times.push(performance.now() - t0);
        engine.push(r.millis);
        columns = r.positions.length;
        layers = r.layers.length;
      }
      grids[name] = {
        columns,
        layers,
        first_ms: times[0],
        median_ms: median(times.slice(1)),
        engine_median_ms: median(engine.slice(1)),
      };
      console.error(
        `lens grid ${name}, ${layers} × ${columns}: first ${times[0].toFixed(0)} ms, then ${grids[name].median_ms.toFixed(0)} ms (engine ${grids[name].engine_median_ms.toFixed(0)} ms)`,
      );
    }
    // What follows the caret in the heads panel and the editor: direct logit attribution at a token,
    // and where it attends (all heads of a layer); each repeat one token further on.
    const caret = async (
      name: string,
      call: (token: number) => Promise<unknown>,
    ): Promise<{ first_ms: number; median_ms: number }> => {
      const times: number[] = [];
      for (let i = 0; i <= repeat; i++) {
        const t0 = performance.now();
        await call(Math.min(count - 1, 200 + i));
        times.push(performance.now() - t0);
      }
      const r = { first_ms: times[0], median_ms: median(times.slice(1)) };
      console.error(`${name}: first ${r.first_ms.toFixed(0)} ms, then ${r.median_ms.toFixed(0)} ms`);
      return r;
    };
    const atCaret = {
      logit_attribution: await caret('logit attribution', (token) =>
        client.request('logitAttribution', { document, version: 1, token, target: null, versus: null }),
      ),
      attention_all_heads: await caret('attention, all heads of layer 1', (token) =>
        client.request('attention', { document, version: 1, token, layer: 1, head: null }),
      ),
    };
    const result = {
      model: loaded.model.name,
      threads,
      repeat,
      load_average: os.loadavg()[0],
      document_tokens: count,
      target_ms: 1000,
      lens_grid_request: grids,
      at_caret: atCaret,
    };
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(
      path.join(ROOT, 'bench', 'results', 'lens_request.json'),
      `${JSON.stringify(result, null, 2)}\n`,
    );
    console.log(JSON.stringify(result, null, 2));
  } finally {
    client.dispose();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
