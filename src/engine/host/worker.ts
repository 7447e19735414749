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
import { CancelledError, errorMessage } from '../errors';
import {
  EngineMethod,
  EngineResult,
  EngineToHost,
  HostToEngine,
  engineMethods,
  hostToEngine,
} from './protocol';
import { EngineSession, Progress, StaleError } from './session';

const session = new EngineSession();
const inflight = new Map<number, { cancelled: boolean; done: Promise<void> }>();
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
  const signal = { cancelled: false, done: Promise.resolve() };
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
  signal: { readonly cancelled: boolean },
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
