/**
 * What every `loupe` command shares: the options all of them take, opening
 * the model, reading a text file, checking numbers. Commands that live in
 * their own module (lens, heads, probes, causal tools) describe themselves as
 * a `CliCommand` and are listed in main.ts.
 */
import * as fs from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { LoupeError, errorMessage } from '../engine/errors';
import { defaultModelDir } from '../engine/defaultModel';
import { HookedModel } from '../engine/model';

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

/** The option's value as a string, or undefined; a repeated option keeps its last value. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof last === 'string' ? last : undefined;
}

export async function openModel(flags: { model?: string; threads?: string }): Promise<HookedModel> {
  const threads = flags.threads === undefined ? undefined : positiveInt(flags.threads, '--threads');
  return HookedModel.open(flags.model ?? defaultModelDir(), { threads });
}

/** A UTF-8 text file as VS Code shows it (no byte-order mark). */
export function readTextFile(file: string | undefined, flag = '--text'): string {
  if (!file) throw new LoupeError(`${flag} FILE is required`);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new LoupeError(
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`,
    );
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(buf);
  // Offsets count in the text VS Code shows, which has no byte-order mark.
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new LoupeError(`${flag} must be a positive integer, not '${value}'`);
  return n;
}
