/**
 * What every `loupe` command shares: the options all of them take, reading
 * the command line, opening the model, reading a text file, and the one set of
 * checked parsers for option values. Commands that live in their own module
 * (lens, heads, probes, causal tools) describe themselves as a `CliCommand`
 * and are listed in main.ts.
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { LoupeError } from '../engine/errors';
import { defaultModelDir } from '../engine/defaultModel';
import { formatBytes, readInputPrefix, readInputText, regularFileSize } from '../engine/inputFiles';
import { HookedModel } from '../engine/model';
import { maxThreads } from '../shared/threads';

/** An options table for node:util parseArgs. */
export type OptionsTable = NonNullable<ParseArgsConfig['options']>;

/** Parsed option values, as node:util parseArgs returns them. */
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CliCommand {
  /** Its lines in `loupe --help`: the synopsis, then indented lines saying what it does. */
  readonly usage: string;
  /** Its own options; the common ones (`COMMON_OPTIONS`) come on top. */
  readonly options: OptionsTable;
  run(values: OptionValues, positionals: readonly string[]): Promise<void>;
}

export const COMMON_OPTIONS: OptionsTable = {
  model: { type: 'string' },
  threads: { type: 'string' },
  text: { type: 'string' },
  json: { type: 'boolean' },
  'no-bos': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** A value that reads as a negative number (`-1`, `-0.5`, `-2e3`), not as an option. */
const NEGATIVE_NUMBER = /^-(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * The command line read against `options`, with Loupe's one-line messages
 * for what parseArgs refuses. A negative number after an option that takes a
 * value is that option's value (`--position -1` as `--position=-1`).
 */
export function parseCommandLine(
  args: readonly string[],
  options: OptionsTable,
  help: string,
): { values: OptionValues; positionals: string[] } {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = args[i + 1];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    if (
      name !== undefined &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      NEGATIVE_NUMBER.test(next)
    ) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  try {
    const { values, positionals } = parseArgs({ args: joined, allowPositionals: true, options });
    return { values: values as OptionValues, positionals };
  } catch (err) {
    throw parseArgsError(err, joined, help);
  }
}

/** parseArgs's refusal, said the way Loupe says things; anything else passes through. */
function parseArgsError(err: unknown, args: readonly string[], help: string): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return err;
  const message = err instanceof Error ? err.message : String(err);
  const option = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
    return new LoupeError(`unknown option ${option}; see '${help}' for the options`);
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
    return new LoupeError(`unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ''}; see '${help}'`);
  if (/does not take an argument/.test(message))
    return new LoupeError(`${option} takes no value; write ${option} alone`);
  if (/argument missing/.test(message)) return new LoupeError(`${option} needs a value`);
  if (/ambiguous/.test(message)) {
    const value = args[args.indexOf(option) + 1] ?? '';
    return new LoupeError(
      `${option} needs a value, but '${value}' reads as an option; if it is the value, write ${option}=${value}`,
    );
  }
  return new LoupeError(`${message.split('\n')[0]}; see '${help}'`);
}

/** The option's value as a string, or undefined; a repeated option keeps its last value. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof last === 'string' ? last : undefined;
}

// ---------------------------------------------------------------------------
// Option values. Each parser takes the text as given and the flag's name for
// the message; given undefined (the option is absent) it returns undefined.

/** A parser of one kind of option value. */
export interface ValueParser<T, A extends unknown[] = []> {
  (value: string, flag: string, ...rest: A): T;
  (value: string | undefined, flag: string, ...rest: A): T | undefined;
}

function valueParser<T, A extends unknown[]>(
  parse: (value: string, flag: string, ...rest: A) => T,
): ValueParser<T, A> {
  return ((value: string | undefined, flag: string, ...rest: A) =>
    value === undefined ? undefined : parse(value, flag, ...rest)) as ValueParser<T, A>;
}

/** Decimal numbers only: no hex, no blanks, no 'NaN' or 'Infinity' (Number() takes all of them). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function decimal(value: string, flag: string, what: string): number {
  const n = DECIMAL.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new LoupeError(`${flag} must be ${what}, not '${value}'`);
  return n;
}

function integer(value: string, flag: string, what: string): number {
  const n = decimal(value, flag, what);
  if (!Number.isSafeInteger(n)) throw new LoupeError(`${flag} must be ${what}, not '${value}'`);
  return n;
}

/** 1, 2, 3, ... up to `max`. */
export const positiveInt = valueParser(
  (value: string, flag: string, max: number = Number.MAX_SAFE_INTEGER) => {
    const n = integer(value, flag, 'a positive integer');
    if (n <= 0) throw new LoupeError(`${flag} must be a positive integer, not '${value}'`);
    if (n > max) throw new LoupeError(`${flag} must be at most ${max}, not ${value}`);
    return n;
  },
);

/** 0, 1, 2, ... up to `max`. */
export const nonNegativeInt = valueParser(
  (value: string, flag: string, max: number = Number.MAX_SAFE_INTEGER) => {
    const n = integer(value, flag, 'an integer ≥ 0');
    if (n < 0) throw new LoupeError(`${flag} must be an integer ≥ 0, not '${value}'`);
    if (n > max) throw new LoupeError(`${flag} must be at most ${max}, not ${value}`);
    return n;
  },
);

/** A token position: negative ones count from the end. */
export const positionInt = valueParser((value: string, flag: string) =>
  integer(value, flag, 'an integer (negative counts from the end, as in -1)'),
);

/** Any finite number. */
export const finiteNumber = valueParser((value: string, flag: string) => decimal(value, flag, 'a number'));

/** A number > 0. */
export const positiveNumber = valueParser((value: string, flag: string) => {
  const n = decimal(value, flag, 'a positive number');
  if (n <= 0) throw new LoupeError(`${flag} must be a positive number, not '${value}'`);
  return n;
});

/** A number ≥ 0. */
export const nonNegativeNumber = valueParser((value: string, flag: string) => {
  const n = decimal(value, flag, 'a number ≥ 0');
  if (n < 0) throw new LoupeError(`${flag} must be a number ≥ 0, not '${value}'`);
  return n;
});

/** A fraction strictly between 0 and 1. */
export const fraction = valueParser((value: string, flag: string) => {
  const n = decimal(value, flag, 'a fraction between 0 and 1');
  if (n <= 0 || n >= 1) throw new LoupeError(`${flag} must be between 0 and 1 (exclusive), not '${value}'`);
  return n;
});

/** A seed for the random generators: an integer in [0, 2^32). */
export const seedInt = valueParser((value: string, flag: string) => {
  const n = decimal(value, flag, 'an integer from 0 to 4294967295');
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32)
    throw new LoupeError(`${flag} must be an integer from 0 to 4294967295, not '${value}'`);
  return n;
});

/** One of a fixed set of words. */
export function choice<T extends string>(value: string, flag: string, allowed: readonly T[]): T;
export function choice<T extends string>(
  value: string | undefined,
  flag: string,
  allowed: readonly T[],
): T | undefined;
export function choice<T extends string>(
  value: string | undefined,
  flag: string,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    const list = `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`;
    throw new LoupeError(`${flag} must be ${allowed.length > 1 ? list : allowed[0]}, not '${value}'`);
  }
  return value as T;
}

export const MAX_THREADS = maxThreads(os.availableParallelism());

/** --threads: 1..MAX_THREADS, or 0 for one per core (undefined when absent). */
export function threadsOption(value: string | undefined): number | undefined {
  const n = nonNegativeInt(value, '--threads');
  if (n === undefined) return undefined;
  if (n > MAX_THREADS)
    throw new LoupeError(
      `--threads must be at most ${MAX_THREADS} (4 per core), or 0 for one per core; not ${n}`,
    );
  return n === 0 ? Math.max(1, os.availableParallelism()) : n;
}

export async function openModel(flags: { model?: string; threads?: string }): Promise<HookedModel> {
  return HookedModel.open(flags.model ?? defaultModelDir(), { threads: threadsOption(flags.threads) });
}

// ---------------------------------------------------------------------------
// Texts

/**
 * The largest text read whole (`tokenize`, example lists, `probe --apply`):
 * its tokens, as objects with spans, take some 300 times its size in memory
 * (a 4 MB text, 1.2 GB).
 */
export const MAX_TEXT_BYTES = 4 * 1024 * 1024;

/** A UTF-8 text file as VS Code shows it (no byte-order mark), of at most MAX_TEXT_BYTES. */
export function readTextFile(file: string | undefined, flag = '--text'): string {
  if (!file) throw new LoupeError(`${flag} FILE is required`);
  return readInputText(file, 'text', { maxBytes: MAX_TEXT_BYTES, hint: 'select a part of it' });
}

/**
 * The most bytes one token can stand for: the vocabulary's longest token,
 * counted in the characters that stand for its bytes (which never
 * undercounts), twice over for normalizers that shorten text.
 */
function maxBytesPerToken(model: HookedModel): number {
  const tokenizer = model.tokenizer;
  let longest = 1;
  for (let id = 0; tokenizer && id < tokenizer.vocabSize; id++) {
    const t = tokenizer.idToToken(id);
    if (t !== null) longest = Math.max(longest, Buffer.byteLength(t));
  }
  return 2 * longest;
}

/**
 * A text the model runs in one pass. One certainly longer than the context
 * (more bytes than a context of the longest tokens) is refused before it is
 * read (`refuse`), or only its start, which holds more than a context of
 * tokens, is read (`start`, for commands that look at the first context and
 * say so).
 */
export function readContextText(
  model: HookedModel,
  file: string | undefined,
  flag: string,
  longer: 'refuse' | 'start',
): string {
  if (!file) throw new LoupeError(`${flag} FILE is required`);
  const perToken = maxBytesPerToken(model);
  const fits = model.spec.nCtx * perToken + 3; // and a byte-order mark
  const size = regularFileSize(file, 'text');
  if (size <= fits) return readTextFile(file, flag);
  if (longer === 'refuse') {
    throw new LoupeError(
      `${file}: the text is ${formatBytes(size)}, at least ${Math.ceil((size - 3) / perToken)} tokens, longer than the model's context of ${model.spec.nCtx}; select a part of it`,
    );
  }
  const start = readInputPrefix(file, 'text', Math.min(fits, MAX_TEXT_BYTES));
  // stream: a character cut at the end is left out, not turned into U+FFFD.
  const text = new TextDecoder('utf-8', { fatal: false }).decode(start, { stream: true });
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}
