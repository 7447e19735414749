/**
 * The message schemas both sides check on arrival: closed objects, every key
 * required, typed arrays kept as typed arrays, discriminated unions; and the
 * engine and webview protocols built from them.
 */
import { strict as assert } from 'node:assert';
import { engineMethods, engineToHost, hostToEngine } from '../../src/engine/host/protocol';
import {
  SchemaError,
  arrayOf,
  float32Array,
  intBetween,
  literal,
  nonNegInt,
  nullable,
  num,
  object,
  openObject,
  optional,
  pairOf,
  recordOf,
  str,
  variants,
} from '../../src/shared/schema';
import { hostToInspector, inspectorToHost } from '../../src/webview/protocol';

function rejects(fn: () => unknown, at: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SchemaError, `not a SchemaError: ${String(err)}`);
    assert.equal(err.at, at);
    return true;
  });
}

describe('message schemas', () => {
  const point = object({ x: num, label: nullable(str), tags: arrayOf(str, 2) });

  it('accepts a well-formed object and returns it typed', () => {
    assert.deepEqual(point.parse({ x: 1.5, label: null, tags: ['a'] }), { x: 1.5, label: null, tags: ['a'] });
  });

  it('names the path of what is wrong: missing, unknown, mistyped, too long', () => {
    rejects(() => point.parse({ x: 1, tags: [] }), '.label');
    rejects(() => point.parse({ x: 1, label: null, tags: [], extra: 1 }), '.extra');
    rejects(() => point.parse({ x: '1', label: null, tags: [] }), '.x');
    rejects(() => point.parse({ x: NaN, label: null, tags: [] }), '.x');
    rejects(() => point.parse({ x: 1, label: null, tags: ['a', 'b', 'c'] }), '.tags');
    rejects(() => point.parse({ x: 1, label: null, tags: [3] }), '.tags[0]');
    rejects(() => point.parse([1]), '');
    rejects(() => nonNegInt.parse(-1), '');
    rejects(() => nonNegInt.parse(1.5), '');
    rejects(() => literal('a', 'b').parse('c'), '');
  });

  it('keeps typed arrays and refuses plain arrays in their place', () => {
    const data = Float32Array.of(1, 2);
    assert.equal(float32Array.parse(data), data);
    rejects(() => float32Array.parse([1, 2]), '');
    rejects(() => object({ a: num }).parse(data), '');
  });

  it('checks a discriminated union by its tag', () => {
    const message = variants('type', { ping: { n: num }, pong: {} });
    assert.deepEqual(message.parse({ type: 'ping', n: 2 }), { type: 'ping', n: 2 });
    assert.deepEqual(message.parse({ type: 'pong' }), { type: 'pong' });
    rejects(() => message.parse({ type: 'pang' }), '.type');
    rejects(() => message.parse({ type: 'pong', n: 2 }), '.n');
    rejects(() => message.parse({ n: 2 }), '.type');
  });
});

describe('the engine protocol', () => {
  it('accepts each kind of envelope and refuses an unknown method', () => {
    hostToEngine.parse({ type: 'request', id: 1, method: 'inspect', params: {} });
    hostToEngine.parse({ type: 'cancel', id: 1 });
    hostToEngine.parse({ type: 'forget', document: 'file:///a.py' });
    rejects(() => hostToEngine.parse({ type: 'request', id: 1, method: 'eval', params: {} }), '.method');
    engineToHost.parse({ type: 'error', id: 3, message: 'no', cancelled: false, stale: true });
    engineToHost.parse({ type: 'progress', id: 3, message: 'Analysing', fraction: 0.5 });
    rejects(() => engineToHost.parse({ type: 'error', id: 3, message: 'no' }), '.cancelled');
  });

  it("checks each method's params and result", () => {
    const params = { document: 'file:///a.py', version: 2, token: 5, features: 3, predictions: 1 };
    assert.deepEqual(engineMethods.inspect.params.parse(params), params);
    rejects(() => engineMethods.inspect.params.parse({ ...params, token: -1 }), '.token');
    const tokens = {
      document: 'file:///a.py',
      version: 2,
      ids: Int32Array.of(0, 7),
      starts: Int32Array.of(0, 0),
      ends: Int32Array.of(0, 3),
      windows: 1,
      millis: 3,
    };
    engineMethods.tokenize.result.parse(tokens);
    rejects(() => engineMethods.tokenize.result.parse({ ...tokens, ids: [0, 7] }), '.ids');
  });
});

describe('the inspector protocol', () => {
  it('accepts what the host sends and refuses malformed tokens', () => {
    const token = {
      file: 'a.py',
      line: 1,
      column: 1,
      text: 'def',
      id: 4,
      index: 1,
      activeFeatures: 1,
      features: [{ index: 9, act: 1.5, label: null, layer: null, layerIndex: null }],
      predictions: [{ text: ' f', prob: 0.5 }],
    };
    hostToInspector.parse({ type: 'token', token });
    hostToInspector.parse({ type: 'heatMap', legend: null });
    rejects(
      () => hostToInspector.parse({ type: 'token', token: { ...token, features: [{ index: 9 }] } }),
      '.token.features[0].act',
    );
  });

  it('accepts what the webview sends and only the commands it may run', () => {
    inspectorToHost.parse({ type: 'showHeatMap', feature: 3 });
    inspectorToHost.parse({ type: 'navigate', direction: 'next' });
    rejects(() => inspectorToHost.parse({ type: 'navigate', direction: 'up' }), '.direction');
    rejects(
      () => inspectorToHost.parse({ type: 'run', command: 'workbench.action.terminal.sendSequence' }),
      '.command',
    );
  });
});

describe('schemas for files other tools write', () => {
  const cfg = openObject({
    d_in: nonNegInt,
    hook: optional(str),
    map: optional(recordOf(str)),
    span: optional(pairOf(num)),
  });

  it('lets unknown keys through, skips an absent optional field, still checks a present one', () => {
    assert.deepEqual(cfg.parse({ d_in: 3, extra: [1] }), { d_in: 3, extra: [1] });
    rejects(() => cfg.parse({ d_in: 3, hook: 7 }), '.hook');
    rejects(() => cfg.parse({ hook: 'h' }), '.d_in');
  });

  it('says what was found and whether a key was missing', () => {
    assert.throws(
      () => cfg.parse({ d_in: null }),
      (err: unknown) => err instanceof SchemaError && err.got === null && !err.missing,
    );
    assert.throws(
      () => cfg.parse({}),
      (err: unknown) => err instanceof SchemaError && err.at === '.d_in' && err.missing,
    );
  });

  it('checks every value of a map by its quoted key, and keeps __proto__ a plain key', () => {
    rejects(() => cfg.parse({ d_in: 1, map: { 'h.0.w': 'a', 'h.1.w': 2 } }), '.map["h.1.w"]');
    const parsed = cfg.parse(JSON.parse('{"d_in": 1, "map": {"__proto__": "x"}}'));
    assert.deepEqual(Object.keys(parsed.map ?? {}), ['__proto__']);
    assert.equal(Object.getPrototypeOf(parsed.map), Object.prototype);
  });

  it('takes exactly two items for a pair and bounds an integer from a file', () => {
    rejects(() => cfg.parse({ d_in: 1, span: [1] }), '.span');
    rejects(() => cfg.parse({ d_in: 1, span: [1, 2, 3] }), '.span');
    assert.equal(intBetween(1, 4096).parse(16), 16);
    rejects(() => intBetween(1, 4096).parse(0), '');
    rejects(() => intBetween(1, 4096).parse(1e12), '');
  });
});
