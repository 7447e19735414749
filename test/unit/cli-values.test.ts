/** The CLI's checked option values, its command-line reading and its one-line failures. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, LoupeError } from '../../src/engine/errors';
import {
  MAX_THREADS,
  choice,
  fraction,
  nonNegativeInt,
  parseCommandLine,
  positionInt,
  positiveInt,
  positiveNumber,
  readContextText,
  seedInt,
  threadsOption,
} from '../../src/cli/common';
import type { HookedModel } from '../../src/engine/model';
import { failureLine } from '../../src/cli/exit';
import { tempDir } from './helpers';

function refuses(f: () => unknown, message: RegExp): void {
  assert.throws(f, (err: unknown) => err instanceof LoupeError && message.test(err.message));
}

describe('CLI option values', () => {
  it('takes integers as integers and refuses the rest by flag and value', () => {
    assert.equal(positiveInt('12', '--top'), 12);
    assert.equal(positiveInt('2e3', '--tokens'), 2000);
    assert.equal(positiveInt(undefined, '--top'), undefined);
    for (const bad of ['2.5', '0', '-1', 'abc', '', ' 3', '0x10', 'NaN', 'Infinity', '1e400'])
      refuses(() => positiveInt(bad, '--top'), /^--top must be a positive integer, not '/);
    refuses(() => positiveInt('9', '--k', 8), /^--k must be at most 8, not 9$/);
    assert.equal(nonNegativeInt('0', '--index'), 0);
    refuses(() => nonNegativeInt('-1', '--index'), /--index must be an integer ≥ 0/);
    assert.equal(positionInt('-1', '--position'), -1);
    refuses(() => positionInt('1.5', '--position'), /negative counts from the end/);
  });

  it('checks numbers, fractions, seeds and choices', () => {
    assert.equal(positiveNumber('3e-3', '--lr'), 0.003);
    refuses(() => positiveNumber('0', '--lr'), /--lr must be a positive number/);
    assert.equal(fraction('0.2', '--test-fraction'), 0.2);
    for (const bad of ['0', '1', '1.5', 'nan'])
      refuses(() => fraction(bad, '--test-fraction'), /between 0 and 1/);
    assert.equal(seedInt('4294967295', '--seed'), 2 ** 32 - 1);
    for (const bad of ['abc', '-1', '4294967296', '1.5'])
      refuses(() => seedInt(bad, '--seed'), /--seed must be an integer from 0 to 4294967295/);
    assert.equal(choice('relu', '--arch', ['topk', 'relu'] as const), 'relu');
    refuses(
      () => choice('gelu', '--arch', ['topk', 'relu'] as const),
      /^--arch must be topk or relu, not 'gelu'$/,
    );
  });

  it('bounds --threads, and reads 0 as one per core', () => {
    assert.equal(threadsOption('2'), 2);
    assert.ok((threadsOption('0') ?? 0) >= 1);
    assert.ok(MAX_THREADS <= 256);
    refuses(() => threadsOption('100000'), /--threads must be at most \d+/);
    refuses(() => threadsOption('-2'), /--threads must be an integer ≥ 0/);
  });
});

describe('CLI command line', () => {
  const options = {
    position: { type: 'string' },
    top: { type: 'string' },
    json: { type: 'boolean' },
  } as const;

  it('reads a negative number after an option as its value, as --position=-1 is', () => {
    for (const args of [['--position', '-1'], ['--position=-1']]) {
      assert.equal(parseCommandLine(args, options, 'loupe heads --help').values.position, '-1');
    }
    assert.equal(parseCommandLine(['--top', '-2.5e1'], options, 'x').values.top, '-2.5e1');
  });

  it("says parseArgs's refusals in one line of its own", () => {
    refuses(
      () => parseCommandLine(['--bogus'], options, 'loupe heads --help'),
      /^unknown option --bogus; see 'loupe heads --help' for the options$/,
    );
    refuses(() => parseCommandLine(['--top'], options, 'x'), /^--top needs a value$/);
    refuses(
      () => parseCommandLine(['--top', '--json'], options, 'x'),
      /^--top needs a value, but '--json' reads as an option; if it is the value, write --top=--json$/,
    );
    refuses(() => parseCommandLine(['--json=1'], options, 'x'), /^--json takes no value/);
  });
});

describe('CLI failures', () => {
  it('are one line: Loupe errors as they are, file errors by path, Ctrl-C as 130', () => {
    assert.deepEqual(failureLine(new LoupeError('x.txt: bad')), { line: 'x.txt: bad', code: 1 });
    assert.deepEqual(failureLine(new CancelledError()), { line: 'cancelled', code: 130 });
    const dir = tempDir();
    const missing = path.join(dir, 'missing');
    let err: unknown;
    try {
      fs.readFileSync(missing);
    } catch (e) {
      err = e;
    }
    assert.deepEqual(failureLine(err), { line: `${missing}: not found`, code: 1 });
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      syscall: 'write',
      path: '/out/x',
    });
    assert.match(failureLine(full).line, /^\/out\/x: no space left on the device/);
  });

  it('say what happened when it was not foreseen, without a stack or "internal error"', () => {
    const bug = failureLine(
      new TypeError("Cannot read properties of undefined (reading 'x')\n    at f (/a/b.js:1:2)"),
    );
    assert.equal(bug.code, 1);
    assert.doesNotMatch(bug.line, /internal error|\n|at f \(/);
    assert.match(bug.line, /^Loupe failed unexpectedly \(TypeError: Cannot read properties of undefined/);
    assert.match(
      failureLine(new RangeError('Array buffer allocation failed')).line,
      /^not enough memory for this work/,
    );
  });
});

describe('CLI texts for one pass of the model', () => {
  // A context of 2 tokens whose longest token stands for 2 characters: at most 2 × 2 × 2 bytes
  // (twice over for normalizers) and a byte-order mark, 11 bytes, can fit.
  const model = {
    spec: { nCtx: 2 },
    tokenizer: { vocabSize: 3, idToToken: (id: number) => ['a', 'bc', null][id] },
  } as unknown as HookedModel;

  it('refuses a text certainly longer than the context before reading it, with the tokens it needs', () => {
    const file = path.join(tempDir(), 'long.txt');
    fs.writeFileSync(file, 'é'.repeat(20)); // 40 bytes: at least ⌈37 / 4⌉ = 10 tokens
    refuses(
      () => readContextText(model, file, '--text', 'refuse'),
      /long\.txt: the text is 40 bytes, at least 10 tokens, longer than the model's context of 2; select a part of it$/,
    );
    assert.equal(readContextText(model, file, '--text', 'start'), 'é'.repeat(5)); // 11 bytes: a cut é left out
  });

  it('reads a text that may fit whole, without its byte-order mark', () => {
    const file = path.join(tempDir(), 'short.txt');
    fs.writeFileSync(file, '\uFEFFabcd');
    assert.equal(readContextText(model, file, '--text', 'refuse'), 'abcd');
  });
});
