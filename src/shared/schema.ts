/**
 * Runtime checks for messages that cross a process or frame boundary (engine
 * worker ↔ extension host ↔ webview). A schema is a value that both checks an
 * unknown input and, through `Infer`, gives its TypeScript type, so each
 * message shape is written once and both sides use it.
 *
 * Objects are closed (an unknown key is an error, so the two sides cannot
 * drift apart silently) and every key is required: optional data is `nullable`.
 * Imports nothing, so the engine, the extension host and the webview can all use it.
 */

export class SchemaError extends Error {
  constructor(
    readonly at: string,
    readonly expected: string,
    /** The value found there (undefined where a key is missing), for messages that say what was wrong. */
    readonly got?: unknown,
    readonly missing = false,
  ) {
    super(`${at || 'message'}: expected ${expected}`);
    this.name = 'SchemaError';
  }
}

export interface Schema<T> {
  /** Returns the value typed, or throws a SchemaError naming the path that failed. */
  readonly parse: (value: unknown, at?: string) => T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

/** A value passing `test`, named `expected` in errors: for checks the other schemas do not cover. */
export function schemaMatching<T>(expected: string, test: (v: unknown) => boolean): Schema<T> {
  return schema<T>(expected, test);
}

function schema<T>(expected: string, test: (v: unknown) => boolean): Schema<T> {
  return {
    parse: (v, at = '') => {
      if (!test(v)) throw new SchemaError(at, expected, v);
      return v as T;
    },
  };
}

export const str = schema<string>('a string', (v) => typeof v === 'string');
export const bool = schema<boolean>('a boolean', (v) => typeof v === 'boolean');
/** A finite number (NaN and infinities do not cross a boundary). */
export const num = schema<number>('a finite number', (v) => typeof v === 'number' && Number.isFinite(v));
export const int = schema<number>('an integer', (v) => Number.isSafeInteger(v));
export const nonNegInt = schema<number>(
  'an integer ≥ 0',
  (v) => Number.isSafeInteger(v) && (v as number) >= 0,
);
/** An integer in [min, max]; for sizes read from files, where an absurd value would be allocated. */
export function intBetween(min: number, max: number): Schema<number> {
  return schema<number>(
    `an integer from ${min} to ${max}`,
    (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max,
  );
}
/** Anything; for envelopes whose payload is checked in a second step. */
export const unknownValue = schema<unknown>('anything', () => true);
export const float32Array = schema<Float32Array>('a Float32Array', (v) => v instanceof Float32Array);
export const int32Array = schema<Int32Array>('an Int32Array', (v) => v instanceof Int32Array);

export function literal<const L extends string>(...values: L[]): Schema<L> {
  return schema<L>(values.map((v) => `'${v}'`).join(' or '), (v) => values.includes(v as L));
}

export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return { parse: (v, at = '') => (v === null ? null : inner.parse(v, at)) };
}

export function arrayOf<T>(item: Schema<T>, maxLength = 1_000_000): Schema<T[]> {
  return {
    parse: (v, at = '') => {
      if (!Array.isArray(v)) throw new SchemaError(at, 'an array', v);
      if (v.length > maxLength) throw new SchemaError(at, `at most ${maxLength} items`, v);
      return v.map((x, i) => item.parse(x, `${at}[${i}]`));
    },
  };
}

/** Exactly two items: a [start, end) span. */
export function pairOf<T>(item: Schema<T>): Schema<[T, T]> {
  return {
    parse: (v, at = '') => {
      if (!Array.isArray(v) || v.length !== 2) throw new SchemaError(at, 'a pair [a, b]', v);
      return [item.parse(v[0], `${at}[0]`), item.parse(v[1], `${at}[1]`)];
    },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function parseFields<S extends Shape>(
  shape: S,
  v: Record<string, unknown>,
  at: string,
  skip?: string,
  open = false,
): ObjectOf<S> {
  if (!open) {
    for (const key of Object.keys(v)) {
      if (key !== skip && !(key in shape)) throw new SchemaError(`${at}.${key}`, 'no such key', v[key]);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(shape)) {
    if (!Object.prototype.hasOwnProperty.call(v, key)) {
      if (OPTIONAL in field) continue;
      throw new SchemaError(`${at}.${key}`, 'a value (the key is missing)', undefined, true);
    }
    out[key] = field.parse(v[key], `${at}.${key}`);
  }
  return out as ObjectOf<S>;
}

/** A closed object; `shape` is kept so that other objects can extend it. */
export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>> & { readonly shape: S } {
  return {
    shape,
    parse: (v, at = '') => {
      if (!isRecord(v)) throw new SchemaError(at, 'an object', v);
      return parseFields(shape, v, at);
    },
  };
}

const OPTIONAL = Symbol('optional');

/**
 * For files other tools write (Hugging Face configs, SAELens cfgs): a field
 * that may be absent. Messages between Loupe's own parts use `nullable`.
 */
export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return { [OPTIONAL]: true, parse: (v, at = '') => inner.parse(v, at) } as Schema<T | undefined>;
}

/** An object whose other keys are let through unchecked: files other tools write carry fields Loupe does not read. */
export function openObject<S extends Shape>(shape: S): Schema<ObjectOf<S> & Record<string, unknown>> {
  return {
    parse: (v, at = '') => {
      if (!isRecord(v)) throw new SchemaError(at, 'an object', v);
      return { ...v, ...parseFields(shape, v, at, undefined, true) };
    },
  };
}

/** An object used as a map from any key to values of one schema (a shard index's weight_map). */
export function recordOf<T>(item: Schema<T>): Schema<Record<string, T>> {
  return {
    parse: (v, at = '') => {
      if (!isRecord(v)) throw new SchemaError(at, 'an object', v);
      // fromEntries defines own properties: a key named __proto__ stays a key, never the prototype.
      return Object.fromEntries(
        Object.entries(v).map(([key, x]) => [key, item.parse(x, `${at}[${JSON.stringify(key)}]`)]),
      );
    },
  };
}

type Variants<K extends string, M extends Record<string, Shape>> = {
  [T in keyof M & string]: { readonly [P in K]: T } & ObjectOf<M[T]>;
}[keyof M & string];

/** A discriminated union: `{ [tag]: name, ...fields of shapes[name] }` for each name. */
export function variants<const K extends string, M extends Record<string, Shape>>(
  tag: K,
  shapes: M,
): Schema<Variants<K, M>> {
  const names = Object.keys(shapes);
  return {
    parse: (v, at = '') => {
      if (!isRecord(v)) throw new SchemaError(at, 'an object', v);
      const name = v[tag];
      if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(shapes, name)) {
        throw new SchemaError(`${at}.${tag}`, `one of ${names.map((n) => `'${n}'`).join(', ')}`, name);
      }
      return { [tag]: name, ...parseFields(shapes[name], v, at, tag) } as Variants<K, M>;
    },
  };
}
