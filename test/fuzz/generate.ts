/**
 * Writes the fuzz corpus: every case of `test/fuzz/cases/*.ts` gets a fresh
 * folder of its own under `.cache/fuzz/<case name>` with the inputs its setup
 * writes. The case files are found by reading the folder, so an area adds its
 * cases by adding a file. Run it alone to look at a case's inputs by hand:
 *
 *   npx tsx test/fuzz/generate.ts [part-of-a-name]
 *
 * prints each case's folder and the `loupe` arguments it runs with.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from './case';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const CASES_DIR = path.join(__dirname, 'cases');
export const FUZZ_DIR = path.join(REPO_ROOT, '.cache', 'fuzz');

/**
 * The compiled-model cache a case runs with (LOUPE_CACHE_DIR), inside the
 * case's folder, so that no case sees another's cache and a cache case can
 * write a damaged one in its setup.
 */
export const CASE_CACHE_FOLDER = '.loupe-cache';

/** Case names become folders: `area/what-is-wrong`, letters, digits, `.`, `_` and `-`. */
const CASE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

export interface LoadedCase {
  readonly fuzzCase: FuzzCase;
  /** The file under `cases/` it came from. */
  readonly file: string;
}

/** Every case of every `cases/*.ts` file, in file then declaration order; names checked unique. */
export function loadCases(casesDir = CASES_DIR): LoadedCase[] {
  const files = fs.existsSync(casesDir)
    ? fs
        .readdirSync(casesDir)
        .filter((f) => f.endsWith('.ts'))
        .sort()
    : [];
  const seen = new Map<string, string>();
  const out: LoadedCase[] = [];
  for (const file of files) {
    // Loaded synchronously: mocha declares the tests before it runs any.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(casesDir, file)) as { cases?: unknown };
    if (!Array.isArray(mod.cases)) throw new Error(`${file}: must export 'cases: FuzzCase[]'`);
    for (const c of mod.cases as FuzzCase[]) {
      if (typeof c.name !== 'string' || !CASE_NAME.test(c.name))
        throw new Error(`${file}: case name '${String(c.name)}' must look like area/what-is-wrong`);
      const other = seen.get(c.name);
      if (other !== undefined) throw new Error(`${file}: case '${c.name}' is also in ${other}`);
      seen.set(c.name, file);
      out.push({ fuzzCase: c, file });
    }
  }
  return out;
}

export function caseDir(name: string): string {
  return path.join(FUZZ_DIR, ...name.split('/'));
}

export interface PreparedCase {
  readonly dir: string;
  readonly args: readonly string[];
}

/** Empties the case's folder, runs its setup there and returns the folder and the CLI's arguments. */
export async function prepareCase(c: FuzzCase): Promise<PreparedCase> {
  const dir = caseDir(c.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const args = await c.setup(dir);
  return { dir, args: [...args] };
}

async function main(filter: string | undefined): Promise<void> {
  for (const { fuzzCase } of loadCases()) {
    if (filter !== undefined && !fuzzCase.name.includes(filter)) continue;
    const { dir, args } = await prepareCase(fuzzCase);
    process.stdout.write(`${fuzzCase.name}\t${dir}\tloupe ${args.map(shellWord).join(' ')}\n`);
  }
}

function shellWord(s: string): string {
  return /^[\w./:=,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

if (require.main === module) {
  main(process.argv[2]).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
