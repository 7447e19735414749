/**
 * One case of the fuzz corpus: a bad input (or a fault) given to the `loupe`
 * command line, and what must come of it. `test/fuzz/generate.ts` writes every
 * case's inputs into a folder of its own; `test/fuzz/fuzz.test.ts` runs each
 * one through the built CLI and checks the outcome, a time bound and a memory
 * bound. Cases live in `test/fuzz/cases/<area>.ts`, each exporting `cases`.
 */

export type FuzzArea =
  | 'safetensors'
  | 'config'
  | 'tokenizer'
  | 'shards'
  | 'sae'
  | 'features-db'
  | 'corpus'
  | 'text'
  | 'flags'
  | 'output'
  | 'cache';

export type FuzzExpectation =
  /** Exit code 1 with exactly one line on stderr matching `error` (no stack trace, no "internal error"). */
  | { readonly error: RegExp }
  /** Exit code 0; `check` may inspect stdout and the case folder (throw to fail). */
  | { readonly ok: true; readonly check?: (stdout: string, dir: string) => void };

export interface FuzzCase {
  /** Unique, `area/what-is-wrong`. */
  readonly name: string;
  readonly area: FuzzArea;
  /**
   * Writes the case's inputs under `dir` (an empty folder of its own) and
   * returns the CLI's arguments (without `loupe`). Paths in the arguments
   * should be inside `dir` or the repository's fixtures.
   */
  readonly setup: (dir: string) => readonly string[] | Promise<readonly string[]>;
  readonly expect: FuzzExpectation;
  /** Wall-clock bound in ms (default 30 000); the case fails, not hangs, past it. */
  readonly timeoutMs?: number;
  /** Peak resident memory bound of the CLI process in MiB (default 1024). */
  readonly maxRssMiB?: number;
  /** Files or folders under `dir` that must be byte-identical after the run (nothing the user did not give up is lost). */
  readonly untouched?: readonly string[];
}
