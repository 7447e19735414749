/**
 * The engine process: the extension host forks this file (bundled as
 * dist/engineWorker.js) and talks to it only through the messages in
 * protocol.ts. It owns the model and the SAE, so their memory, their
 * onnxruntime threads and any native crash stay out of the extension host.
 *
 * Every message is checked on arrival; a request that fails the check, fails
 * in the engine or is cancelled still gets an `error` reply. A `load` waits
 * for the requests in flight (after cancelling them) and the requests that
 * arrive meanwhile wait for it, so nothing runs against a model being swapped.
 */
import * as path from 'node:path';
import { CancelledError, errorMessage } from '../errors';
import {
  EngineMethod,
  EngineResult,
  EngineToHost,
  HostToEngine,
  engineMethods,
  hostToEngine,
} from './protocol';
import { copyResultFolder } from '../safeWrite';
import { causalRequest } from './causalRequests';
import { describeFolders } from './folders';
import {
  buildDashboardsJob,
  exportActivationsJob,
  trainSaeJob,
  trainTranscodersJob,
  trainTunedLensJob,
} from './jobs';
import { EngineSession, Progress, StaleError } from './session';

const session = new EngineSession();
/** A request in flight; setting `cancelled` also fires `abort`, for engine loops that take an AbortSignal. */
interface Run {
  cancelled: boolean;
  readonly abort: AbortSignal;
  done: Promise<void>;
}
const inflight = new Map<number, Run>();
/** Settles when the latest load has; requests wait for it. */
let loading: Promise<unknown> = Promise.resolve();

function send(message: EngineToHost): void {
  process.send?.(message);
}

function log(level: 'info' | 'warn' | 'error', message: string): void {
  send({ type: 'log', level, message });
}

process.on('message', (raw: unknown) => {
  let message: HostToEngine;
  try {
    message = hostToEngine.parse(raw);
  } catch (err) {
    const id = requestId(raw);
    if (id !== null) {
      send({
        type: 'error',
        id,
        message: `malformed request: ${errorMessage(err)}`,
        cancelled: false,
        stale: false,
      });
    } else {
      log('error', `ignored a malformed message: ${errorMessage(err)}`);
    }
    return;
  }
  switch (message.type) {
    case 'request':
      start(message.id, message.method, message.params);
      break;
    case 'cancel': {
      const run = inflight.get(message.id);
      if (run) run.cancelled = true;
      break;
    }
    case 'forget':
      session.forget(message.document);
      break;
  }
});

function start(id: number, method: EngineMethod, rawParams: unknown): void {
  const controller = new AbortController();
  const signal: Run = {
    get cancelled() {
      return controller.signal.aborted;
    },
    set cancelled(value: boolean) {
      if (value) controller.abort();
    },
    abort: controller.signal,
    done: Promise.resolve(),
  };
  const progress: Progress = (text, fraction) => send({ type: 'progress', id, message: text, fraction });
  const run = async (): Promise<void> => {
    try {
      const result = await dispatch(method, rawParams, signal, progress);
      if (signal.cancelled) throw new CancelledError();
      send({ type: 'response', id, result });
    } catch (err) {
      send({
        type: 'error',
        id,
        message: errorMessage(err),
        cancelled: err instanceof CancelledError,
        stale: err instanceof StaleError,
      });
    } finally {
      inflight.delete(id);
    }
  };
  signal.done = run();
  inflight.set(id, signal);
}

async function dispatch(
  method: EngineMethod,
  rawParams: unknown,
  signal: { readonly cancelled: boolean; readonly abort: AbortSignal },
  progress: Progress,
): Promise<EngineResult<EngineMethod>> {
  switch (method) {
    case 'load': {
      const params = engineMethods.load.params.parse(rawParams, 'params');
      const others = [...inflight.values()].filter((r) => r !== signal);
      for (const r of others) r.cancelled = true;
      const previous = loading;
      const load = (async () => {
        await Promise.allSettled([previous, ...others.map((r) => r.done)]);
        return session.load(params, progress);
      })();
      loading = load;
      return load;
    }
    case 'hooks': {
      engineMethods.hooks.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.hooks();
    }
    case 'tokenize': {
      const params = engineMethods.tokenize.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.tokenize(params);
    }
    case 'analyze': {
      const params = engineMethods.analyze.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.analyze(params, signal, progress);
    }
    case 'inspect': {
      const params = engineMethods.inspect.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.inspect(params);
    }
    case 'featureMap': {
      const params = engineMethods.featureMap.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.featureMap(params);
    }
    case 'fileFeatures': {
      const params = engineMethods.fileFeatures.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.fileFeatures(params);
    }
    // The loaded SAE's feature database (the Feature Browser and the Cluster Map): quick reads.
    case 'featureDatabase': {
      engineMethods.featureDatabase.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.featureDatabase();
    }
    case 'featureList': {
      const params = engineMethods.featureList.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.featureList(params);
    }
    case 'featureDashboard': {
      const params = engineMethods.featureDashboard.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.featureDashboard(params);
    }
    case 'clusterMap': {
      engineMethods.clusterMap.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.clusterMap();
    }
    // Lenses and heads (lensRequests.ts); TextSpan over a corpus is long and reports progress.
    case 'lensGrid': {
      const params = engineMethods.lensGrid.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.lensGrid(params);
    }
    case 'attention': {
      const params = engineMethods.attention.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.attention(params);
    }
    case 'logitAttribution': {
      const params = engineMethods.logitAttribution.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.logitAttribution(params);
    }
    case 'headDirections': {
      const params = engineMethods.headDirections.params.parse(rawParams, 'params');
      await loading.catch(() => undefined);
      return session.headDirections(params, signal.abort, progress);
    }
    // The Models & SAEs tree (quick, no model needed) and the long jobs, which the extension sends
    // to a second engine process; each job opens its own model, so neither waits for a load.
    case 'describeFolders':
      return describeFolders(engineMethods.describeFolders.params.parse(rawParams, 'params'));
    case 'copyResult': {
      const params = engineMethods.copyResult.params.parse(rawParams, 'params');
      copyResultFolder(params.from, params.to, params.kind, params.leaveOut);
      return { dir: path.resolve(params.to) };
    }
    case 'trainSae':
      return trainSaeJob(engineMethods.trainSae.params.parse(rawParams, 'params'), signal.abort, progress);
    case 'trainTranscoders': {
      const params = engineMethods.trainTranscoders.params.parse(rawParams, 'params');
      return trainTranscodersJob(params, signal.abort, progress);
    }
    case 'buildDashboards': {
      const params = engineMethods.buildDashboards.params.parse(rawParams, 'params');
      return buildDashboardsJob(params, signal.abort, progress);
    }
    case 'exportActivations': {
      const params = engineMethods.exportActivations.params.parse(rawParams, 'params');
      return exportActivationsJob(params, signal.abort, progress);
    }
    case 'trainTunedLens': {
      const params = engineMethods.trainTunedLens.params.parse(rawParams, 'params');
      return trainTunedLensJob(params, signal.abort, progress);
    }
    // Probes and causal tools (causalRequests.ts): training and TCAV open their own model in the jobs engine.
    case 'trainProbe':
    case 'probeInfo':
    case 'applyProbe':
    case 'exportProbeDirection':
    case 'occlusion':
    case 'patchPreview':
    case 'patch':
    case 'steer':
    case 'ablate':
    case 'tcav': {
      const params = engineMethods[method].params.parse(rawParams, 'params');
      if (method !== 'trainProbe' && method !== 'tcav') await loading.catch(() => undefined);
      return causalRequest(method, params as never, {
        loaded: () => session.loadedModel(),
        signal: signal.abort,
        progress,
      });
    }
  }
}

/** The id of something that looks like a request, so that even a malformed one gets its error reply. */
function requestId(raw: unknown): number | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const { type, id } = raw as { type?: unknown; id?: unknown };
  return type === 'request' && Number.isSafeInteger(id) && (id as number) >= 0 ? (id as number) : null;
}

// The extension host went away: nothing is left to answer.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (err) => {
  log('error', `engine process failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
