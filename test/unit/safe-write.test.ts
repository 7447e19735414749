/**
 * What an output path may be (safeWrite.ts): absent, an empty folder, or a
 * previous result of the same kind; anything else is refused with one line
 * and left as it was, for the CLI and the extension's jobs alike. Leftovers
 * of a killed writer are cleared, a running writer's are not; a process
 * killed with SIGKILL in the middle of saving leaves the old SAE or the new.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from '../../src/engine/errors';
import { exportActivationsJob, trainSaeJob } from '../../src/engine/host/jobs';
import { SafetensorsFile, safetensorsChunks, writeSafetensors } from '../../src/engine/safetensors';
import { Sae } from '../../src/engine/sae/sae';
import {
  checkOutputFile,
  checkOutputFolder,
  copyResultFolder,
  recoverResult,
  writeResultFolder,
} from '../../src/engine/safeWrite';
import { FIXTURES, tempDir } from './helpers';

const REPO = path.join(__dirname, '..', '..');
const DEFAULT_SAE = path.join(REPO, 'models', 'default-sae');

/** Every file under `dir` with its bytes, to compare a folder before and after. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        out[path.relative(dir, p)] = e.isSymbolicLink()
          ? `-> ${fs.readlinkSync(p)}`
          : fs.readFileSync(p, 'hex');
    }
  };
  walk(dir);
  return out;
}

function refusal(work: () => unknown, pattern: RegExp): void {
  assert.throws(work, (err: unknown) => {
    assert.ok(err instanceof LoupeError, String(err));
    assert.ok(!err.message.includes('\n'));
    assert.match(err.message, pattern);
    return true;
  });
}

describe('output paths', () => {
  it('refuses a folder that is not a previous result of the kind, naming what it holds, and changes nothing', () => {
    const root = tempDir();
    const mine = path.join(root, 'mine');
    fs.mkdirSync(path.join(mine, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(mine, 'a.txt'), 'a');
    fs.writeFileSync(path.join(mine, 'sub', 'b.txt'), 'b');
    fs.writeFileSync(path.join(mine, 'c.txt'), 'c');
    const before = snapshot(root);
    refusal(
      () => checkOutputFolder(mine, 'feature-database'),
      /mine: is a folder that is not a Loupe feature database \(it holds a\.txt, c\.txt and 1 more\); choose another output path or remove it$/,
    );
    refusal(
      () => writeResultFolder(mine, 'probe', (out) => out.file('probe.json', '{}')),
      /is a folder that is not a saved Loupe probe/,
    );
    refusal(() => checkOutputFile(mine, 'safetensors'), /is a folder, not a \.safetensors file/);
    refusal(
      () => checkOutputFile(path.join(mine, 'a.txt'), 'safetensors'),
      /a\.txt: is a file that is not a safetensors file/,
    );
    refusal(
      () => checkOutputFolder(path.join(mine, 'a.txt', 'out'), 'sae'),
      /cannot write under \S+a\.txt, which is a file, not a folder$/,
    );
    refusal(() => checkOutputFolder(path.join(mine, 'a.txt'), 'tuned-lens'), /is a file, not a folder/);
    assert.deepEqual(snapshot(root), before);
  });

  it('accepts an absent path, an empty folder and a previous result of the kind (by its marker files)', () => {
    const root = tempDir();
    checkOutputFolder(path.join(root, 'new', 'deeper'), 'sae');
    fs.mkdirSync(path.join(root, 'empty'));
    checkOutputFolder(path.join(root, 'empty'), 'probe');
    checkOutputFolder(DEFAULT_SAE, 'sae');
    checkOutputFolder(path.join(DEFAULT_SAE, 'features'), 'feature-database');
    refusal(() => checkOutputFolder(DEFAULT_SAE, 'feature-database'), /not a Loupe feature database/);
    const acts = path.join(root, 'acts.safetensors');
    fs.writeFileSync(acts, Buffer.concat(safetensorsChunks(new Map())));
    checkOutputFile(acts, 'safetensors');
  });

  it('writes through a symbolic link to a previous result, keeping the link; refuses a link to nothing', () => {
    const root = tempDir();
    const real = path.join(root, 'real.safetensors');
    const link = path.join(root, 'link.safetensors');
    fs.writeFileSync(real, Buffer.concat(safetensorsChunks(new Map())));
    fs.symlinkSync(real, link);
    const tensors = new Map([['x', { dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) }]]);
    writeSafetensors(link, tensors);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.deepEqual([...SafetensorsFile.open(real).readF32('x')], [1, 2]);
    const dangling = path.join(root, 'dangling');
    fs.symlinkSync(path.join(root, 'nowhere'), dangling);
    refusal(() => writeSafetensors(dangling, tensors), /dangling: is a symbolic link to nothing/);
  });

  it("clears a killed writer's leftovers but not those of a process still running", () => {
    const root = tempDir();
    const target = path.join(root, 'db');
    const dead = 99_999_999; // beyond any pid the system hands out
    fs.mkdirSync(path.join(root, `db.loupe-old-${dead}`));
    fs.writeFileSync(path.join(root, `db.loupe-old-${dead}`, 'index.json'), 'old');
    fs.mkdirSync(path.join(root, `db.loupe-new-${process.ppid}`));
    recoverResult(target);
    assert.equal(fs.readFileSync(path.join(target, 'index.json'), 'utf8'), 'old', 'rolled back');
    assert.deepEqual(fs.readdirSync(root).sort(), ['db', `db.loupe-new-${process.ppid}`]);
  });

  it('copies a result in one step, leaving out what is asked, and refuses to copy over something else', () => {
    const root = tempDir();
    const copy = path.join(root, 'sae');
    copyResultFolder(DEFAULT_SAE, copy, 'sae', ['features']);
    assert.ok(!fs.existsSync(path.join(copy, 'features')));
    const kept = fs.readdirSync(DEFAULT_SAE).filter((e) => e !== 'features');
    assert.deepEqual(fs.readdirSync(copy).sort(), kept.sort());
    for (const e of kept)
      assert.ok(fs.readFileSync(path.join(copy, e)).equals(fs.readFileSync(path.join(DEFAULT_SAE, e))), e);
    Sae.load(copy).dispose();
    const mine = path.join(root, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'x'), 'x');
    refusal(() => copyResultFolder(DEFAULT_SAE, mine, 'sae'), /is a folder that is not a Loupe SAE folder/);
    assert.deepEqual(fs.readdirSync(mine), ['x']);
  });

  describe("the extension's jobs share the checks", function () {
    this.timeout(120_000);
    const cacheDir = tempDir();
    const job = { model: path.join(FIXTURES, 'gpt2'), threads: 1, cacheDir };
    const signal = new AbortController().signal;
    const progress = (): void => undefined;

    it('Export Activations refuses a folder or a file of the user at its output path', async () => {
      const root = tempDir();
      fs.writeFileSync(path.join(root, 'notes.txt'), 'mine');
      for (const [out, pattern] of [
        [root, /is a folder, not a \.safetensors file/],
        [
          path.join(root, 'notes.txt'),
          /is a file that is not a safetensors file; choose another output path or remove it$/,
        ],
      ] as const) {
        await assert.rejects(
          exportActivationsJob(
            { ...job, text: 'def f(): pass', hooks: [], logits: true, out, source: null },
            signal,
            progress,
          ),
          pattern,
        );
      }
      assert.equal(fs.readFileSync(path.join(root, 'notes.txt'), 'utf8'), 'mine');
    });

    it("Train SAE refuses a user's folder before it trains", async () => {
      const root = tempDir();
      fs.writeFileSync(path.join(root, 'notes.txt'), 'mine');
      await assert.rejects(
        trainSaeJob(
          {
            ...job,
            hook: 'blocks.0.hook_resid_post',
            corpus: path.join(REPO, 'samples'),
            outDir: root,
            architecture: 'topk',
            expansion: 2,
            k: 4,
            trainingTokens: 1000,
            batchSize: null,
            contextSize: null,
            checkpointEvery: null,
            seed: null,
            resume: false,
          },
          signal,
          progress,
        ),
        /is a folder that is not a Loupe SAE folder or training run \(it holds notes\.txt\)/,
      );
      assert.deepEqual(fs.readdirSync(root), ['notes.txt']);
    });
  });

  it('an SAE save killed with SIGKILL at any moment leaves the old SAE or the new one', async function () {
    this.timeout(120_000);
    const root = tempDir();
    const target = path.join(root, 'sae');
    // The child saves the bundled SAE's weights under new d_sae-preserving values, over and over.
    const script = path.join(root, 'save-forever.ts');
    fs.writeFileSync(
      script,
      `import { Sae, saveSae } from ${JSON.stringify(path.join(REPO, 'src', 'engine', 'sae', 'sae'))};
const sae = Sae.load(${JSON.stringify(DEFAULT_SAE)});
for (let round = 1; ; round++) {
  const params = new Map(sae.params);
  const bDec = Float32Array.from(sae.params.get('b_dec')!.data).fill(round);
  params.set('b_dec', { dims: sae.params.get('b_dec')!.dims, data: bDec });
  saveSae(process.argv[2], { config: { ...sae.config, normalizeActivations: 'none' }, params, sparsity: sae.sparsity });
  process.stdout.write(round + '\\n');
}
`,
    );
    const rounds = new Set<number>();
    for (const delayMs of [300, 700, 1100, 1500]) {
      const child = spawn(process.execPath, ['--import', 'tsx', script, target], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let saved = 0;
      child.stdout.on('data', (b: Buffer) => {
        const last = b.toString().trim().split('\n').pop();
        if (last) saved = Number(last);
      });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.on('exit', resolve));
      if (!fs.existsSync(target) && saved === 0 && fs.readdirSync(root).length === 1) continue; // killed before its first save began
      const sae = Sae.load(target);
      const b = sae.params.get('b_dec')!.data;
      assert.ok(b.every((v) => v === b[0]) && b[0] >= 1, `b_dec of one save: ${b[0]}`);
      assert.ok(b[0] >= saved, `the save of round ${saved} finished, but round ${b[0]} is there`);
      rounds.add(b[0]);
      sae.dispose();
      assert.deepEqual(
        fs.readdirSync(root).filter((e) => e.includes('.loupe-')),
        [],
        'no leftovers once reopened',
      );
    }
    assert.ok(rounds.size > 0, 'no save was interrupted');
  });
});
