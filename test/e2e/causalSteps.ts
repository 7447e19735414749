/**
 * End-to-end steps for the probe and causal commands, run by run.ts in its
 * code-server on the samples workspace: a probe trained on regex labels shows
 * its accuracy chart; applied to the file, it tints the tokens; occlusion at
 * the caret draws a signed heat map; a selected line and a copy of it with one
 * word swapped are patched into heat maps; a steered continuation shows
 * beside the unsteered one; every head is ablated in turn; the probe is saved,
 * its direction exported and the saved probe opened again; a probe trained
 * on TypeScript's semantic tokens is labelled by token type; TCAV scores
 * selected lines as a concept. The workbench is left as it was found.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Page } from 'playwright-core';
import { SafetensorsFile } from '../../src/engine/safetensors';
import {
  STATUS,
  StepsBase,
  TINTS,
  chooseInDialog,
  clickText,
  normalize,
  notification,
  paletteCommand,
  panelFrame,
  pickRow,
  quickOpen,
  readLog,
  startCommand,
  waitForPrompt,
  waitForLog,
  waitForText,
  waitForTint,
  watchConsole,
} from './ui';

/** What run.ts lends these steps: its step runner, and where things are. */
export interface CausalStepsContext extends StepsBase {
  /** A scratch folder that outlives the steps. */
  readonly tmp: string;
  /** The workspace folder code-server has open. */
  readonly workspace: string;
  /** code-server's user data folder (Loupe's log is under it). */
  readonly userDataDir: string;
  /** The loaded model's folder. */
  readonly modelDir: string;
}

const QUICK_INPUT_BOX = '.quick-input-widget input.input';
const OUTPUT = '.part.panel .monaco-editor .view-lines';

/** tokens.py in the first editor group, whichever group (a results panel's, say) has the focus. */
async function openSample(page: Page): Promise<void> {
  await paletteCommand(page, 'View: Focus First Editor Group', 'Focus First Editor Group');
  await quickOpen(page, 'tokens.py');
}

export async function causalSteps(e: CausalStepsContext): Promise<void> {
  const { step, shot } = e;
  const savedProbe = path.join(e.workspace, 'keyword-probe');
  const model = JSON.parse(fs.readFileSync(path.join(e.modelDir, 'config.json'), 'utf8')) as {
    n_layer: number;
    n_head: number;
  };

  // What the panels' frames report in the console: CSP refusals and messages a side refused.
  let panelConsole: ReturnType<typeof watchConsole> | null = null;

  await step('"Train Probe…" with regex labels shows accuracy by hook', async (p) => {
    panelConsole = watchConsole(p, /Content Security Policy|Loupe results panel/);
    await quickOpen(p, 'tokens.py');
    await startCommand(p, 'Loupe: Train Probe', 'Train Probe…');
    await pickRow(p, 'Regex over tokens');
    await waitForPrompt(p, 'A regular expression');
    await p.locator(QUICK_INPUT_BOX).fill('^\\s*(def|return|import|from)$');
    await p.keyboard.press('Enter');
    // The hooks, with the residual stream picked: accept.
    await p.locator('.quick-input-list .monaco-list-row', { hasText: 'hook_resid_post' }).first().waitFor();
    await p.keyboard.press('Enter');
    const panel = await panelFrame(p, '#chart canvas');
    await waitForText(panel, 'table', /blocks\.1\.hook_resid_post/);
    await waitForText(panel, 'header', /labels other \(\d+\), match \(\d+\)/);
    await shot(p, 'causal-01-probe-results');
  });

  await step('"Apply to the open file" tints the tokens by the probe score', async (p) => {
    const panel = await panelFrame(p, '#chart canvas');
    await panel.locator('vscode-button', { hasText: 'Apply to the open file' }).click();
    await waitForTint(p, TINTS.heatLight);
    await waitForText(p, STATUS, /P\(match\) at/);
    await shot(p, 'causal-02-probe-heat-map');
  });

  await step('"Occlusion Attribution" at the caret draws a signed heat map', async (p) => {
    await quickOpen(p, 'tokens.py'); // the editor has the focus
    await p.keyboard.press('Control+End');
    await p.keyboard.press('ArrowUp');
    await p.keyboard.press('End');
    await paletteCommand(p, 'Loupe: Occlusion Attribution', 'Occlusion Attribution');
    await waitForText(p, STATUS, /Occlusion: /);
    await waitForTint(p, TINTS.heatLight, 1);
    await waitForTint(p, TINTS.coolLight, 1);
    await shot(p, 'causal-03-occlusion');
  });

  await step('"Patch Activations…" on two same-length texts shows both heat maps', async (p) => {
    await openSample(p);
    await p.keyboard.press('Control+Home');
    await p.keyboard.press('Shift+End'); // the first line is the clean text
    // The palette is opened without a key (Escape would drop the selection, and the whole file be the clean text).
    await waitForText(p, '#status\\.editor\\.selection', /\(\d+ selected\)/);
    await startCommand(p, 'Loupe: Patch Activations', 'Patch Activations…');
    await waitForPrompt(p, 'Corrupted text for the clean');
    // The clean text's length, said up front.
    const placeholder = (await p.locator(QUICK_INPUT_BOX).getAttribute('placeholder')) ?? '';
    if (!/\(\d+ tokens\)$/.test(placeholder)) throw new Error(`the quick pick asks: ${placeholder}`);
    await pickRow(p, 'Type the corrupted text…');
    await waitForPrompt(p, 'The corrupted text');
    const input = p.locator(QUICK_INPUT_BOX);
    const clean = await input.inputValue();
    // One word swapped for another of one token keeps the token count.
    const corrupted = clean.replace(/\b(the|a|of|and)\b/, (w) => (w === 'the' ? 'a' : 'the'));
    if (corrupted === clean) throw new Error(`the clean text is not the first line: ${clean}`);
    await input.fill(corrupted);
    await p.keyboard.press('Enter');
    await waitForPrompt(p, 'Token A');
    await p.keyboard.press('Enter'); // the clean prediction
    await waitForPrompt(p, 'Token B');
    await p.keyboard.press('Enter');
    // An error (texts of different lengths, say) fails the step at once.
    await waitForText(p, '.editor-group-container .tab', 'Activation Patching', true);
    const panel = await panelFrame(p, '#heads canvas');
    await waitForText(panel, 'header', `corrupted ${corrupted}`);
    await panel.locator('#residual canvas').hover({ position: { x: 80, y: 20 } });
    await waitForText(panel, '#residual .caption', /L0 at position \d+.*logit difference/);
    await shot(p, 'causal-04-patching');
  });

  await step('"Steer Generation…" shows unsteered and steered continuations side by side', async (p) => {
    await openSample(p);
    await p.keyboard.press('Control+Home');
    await p.keyboard.press('ArrowDown');
    await p.keyboard.press('End');
    await startCommand(p, 'Loupe: Steer Generation', 'Steer Generation…');
    await pickRow(p, 'SAE feature…');
    await waitForPrompt(p, 'SAE feature index');
    await p.locator(QUICK_INPUT_BOX).fill('3');
    await p.keyboard.press('Enter');
    await waitForPrompt(p, 'Strength');
    await p.keyboard.press('Enter'); // the default
    await waitForPrompt(p, 'Tokens to generate');
    await p.locator(QUICK_INPUT_BOX).fill('8');
    await p.keyboard.press('Enter');
    const panel = await panelFrame(p, '.pair');
    await waitForText(panel, 'body', /Sampled \(seed 0, temperature 1\)/);
    await shot(p, 'causal-05-steering');
    await panel.locator('vscode-button', { hasText: 'Resample' }).click();
    await waitForText(panel, 'body', /Sampled \(seed 1, temperature 1\)/);
  });

  await step('"Ablate…" of every head in turn reports each one’s effect on the loss', async (p) => {
    await openSample(p);
    await clickText(p, 'return Counter(WORD.findall(normalize(text)))', 38);
    await startCommand(p, 'Loupe: Ablate', 'Ablate…');
    await pickRow(p, 'Every head, one at a time');
    await waitForPrompt(p, 'Ablation');
    await pickRow(p, 'Zero');
    const done = notification(
      p,
      /\d+ ablations; largest L\dH\d+: Δloss [+-]\d+\.\d+, P\(.+\) [\d.]+% → [\d.]+%/,
    );
    await done.waitFor();
    await shot(p, 'causal-06-ablate');
    await done.locator('.monaco-button', { hasText: 'Show All' }).click();
    await waitForText(p, OUTPUT, /L\dH\d+ +Δloss [+-]\d/);
    await shot(p, 'causal-07-ablate-output');
    // A line per head in Loupe's log, after the one that says what was ablated (the panel shows only its end).
    await waitForLog(e.userDataDir, /zero ablation on tokens\.py \(\d+ tokens\)/);
    const log = readLog(e.userDataDir);
    const lines = log.slice(log.lastIndexOf('zero ablation on tokens.py')).split('\n');
    const heads = new Set(lines.map((l) => /\] +(L\d+H\d+) +Δloss [+-]\d/.exec(l)?.[1]).filter(Boolean));
    const want = model.n_layer * model.n_head;
    if (heads.size !== want) throw new Error(`${heads.size} heads ablated, not ${want}`);
    await paletteCommand(p, 'View: Hide Panel', 'Hide Panel');
  });

  await step('the probe is saved, its direction exported, and the saved probe opens again', async (p) => {
    await p.locator('.editor-group-container .tab', { hasText: 'Probe Results' }).first().click();
    let panel = await panelFrame(p, '#chart canvas');
    await panel.locator('vscode-button', { hasText: 'Save probe…' }).click();
    await chooseInDialog(p, savedProbe);
    await notification(p, `saved the probe in ${savedProbe}`).waitFor();
    await waitForText(panel, 'header', `Saved in ${savedProbe}`);
    for (const f of ['probe.json', 'probe.safetensors']) {
      if (!fs.existsSync(path.join(savedProbe, f))) throw new Error(`the saved probe has no ${f}`);
    }

    const out = path.join(e.tmp, 'probe-direction.safetensors');
    await panel.locator('vscode-button', { hasText: 'Export direction…' }).click();
    await chooseInDialog(p, out);
    const wrote = notification(p, /wrote the direction of 'match' at blocks\.\d\.hook_\w+ \((\d+) values\)/);
    await wrote.waitFor();
    const width = Number(/\((\d+) values\)/.exec(await wrote.innerText())![1]);
    const direction = SafetensorsFile.open(out).tensors.get('direction');
    if (direction?.shape.join(',') !== String(width)) {
      throw new Error(
        `the exported direction is [${direction?.shape.join(', ') ?? 'missing'}], not [${width}]`,
      );
    }
    await shot(p, 'causal-08-probe-saved-and-exported');

    // Closed, then opened from the saved folder.
    await paletteCommand(p, 'View: Close All Editor Groups', 'Close All Editor Groups');
    await quickOpen(p, 'tokens.py');
    await startCommand(p, 'Loupe: Open Probe Results', 'Open Probe Results…');
    // With the trailing separator: a folder typed without one is opened in the dialog, not chosen.
    await chooseInDialog(p, `${savedProbe}${path.sep}`);
    panel = await panelFrame(p, '#chart canvas');
    await waitForText(panel, 'header', `Saved in ${savedProbe}`);
    await waitForText(panel, 'table', /blocks\.1\.hook_resid_post/);
    await shot(p, 'causal-09-saved-probe-opened');
  });

  await step('"Train Probe…" with semantic-token labels shows accuracy by semantic type', async (p) => {
    await paletteCommand(p, 'View: Focus First Editor Group', 'Focus First Editor Group');
    await quickOpen(p, 'greeting.ts');
    // Loupe waits a while for TypeScript's server itself; should it still say there are no tokens
    // (the server starting slowly on two shared cores), ask again, within the step's budget.
    const typesPrompt = p.locator(`${QUICK_INPUT_BOX}[placeholder*="Semantic token types"]`);
    const notYet = notification(p, /no extension provided semantic tokens|gave no semantic tokens/);
    const deadline = Date.now() + 55_000;
    for (;;) {
      await startCommand(p, 'Loupe: Train Probe', 'Train Probe…');
      await pickRow(p, 'Semantic tokens');
      while (!(await typesPrompt.isVisible()) && !(await notYet.isVisible())) {
        if (Date.now() > deadline) throw new Error('TypeScript gave no semantic tokens in time');
        await p.waitForTimeout(500);
      }
      if (await typesPrompt.isVisible()) break;
      if (Date.now() > deadline) throw new Error(`Loupe said: ${await notYet.innerText()}`);
      await paletteCommand(p, 'Notifications: Clear All Notifications', 'Clear All Notifications');
      await p.waitForTimeout(2000);
    }
    // The types offered are those the file has, with their counts: greeting.ts has functions and variables.
    const rows = p.locator('.quick-input-list .monaco-list-row');
    const offered = normalize((await rows.allInnerTexts()).join('\n'));
    for (const type of ['function', 'variable']) {
      if (!new RegExp(`^${type}\\s*\\d+ tokens? in 1 file$`, 'm').test(offered)) {
        throw new Error(`the token types offered lack ${type}:\n${offered}`);
      }
    }
    // Exactly those two checked (one type, the most frequent, comes checked).
    const n = await rows.count();
    for (let i = 0; i < n; i++) {
      const row = rows.nth(i);
      const type = /^[^\d\s]+/.exec(normalize(await row.innerText()).trim())?.[0]; // the type, then its counts
      const checked = await row.evaluate(
        (el) =>
          el.getAttribute('aria-checked') === 'true' || el.querySelector('[aria-checked="true"]') !== null,
      );
      if (checked !== (type === 'function' || type === 'variable')) await row.click();
    }
    await p.keyboard.press('Enter');
    // The hooks, with the residual stream picked: accept.
    await p.locator('.quick-input-list .monaco-list-row', { hasText: 'hook_resid_post' }).first().waitFor();
    await p.keyboard.press('Enter');
    // The Probe Results panel (the saved probe's, before) shows the new probe, labelled by type.
    const panel = await panelFrame(p, '#chart canvas');
    await waitForText(panel, 'h1', 'Probe: semantic tokens function, variable in 1 file of typescript');
    await waitForText(panel, 'table', /blocks\.1\.hook_resid_post/);
    const header = normalize(await panel.locator('header').innerText());
    const counts = /labels other \((\d+)\), function \((\d+)\), variable \((\d+)\)/.exec(header);
    if (!counts) throw new Error(`the probe's labels are not other, function, variable:\n${header}`);
    const [other, fn, variable] = counts.slice(1).map(Number);
    // greeting.ts: 2 functions declared (called too), a dozen variables, and most tokens neither.
    if (fn < 2 || variable < 8 || other < fn + variable) {
      throw new Error(`implausible counts: other ${other}, function ${fn}, variable ${variable}`);
    }
    // The lone file was cut into parts, some held out.
    if (!/split by document: \d+ train \(\d+ tokens\), [1-9]\d* held out/.test(header)) {
      throw new Error(`no held-out part: ${header}`);
    }
    await shot(p, 'causal-01b-probe-semantic');
  });

  await step('"TCAV…" on selected lines scores the concept at each layer', async (p) => {
    await openSample(p);
    // The import lines are the concept's examples, one a line.
    await clickText(p, 'from collections import Counter', 0);
    for (let i = 0; i < 3; i++) await p.keyboard.press('Shift+ArrowDown');
    await startCommand(p, 'Loupe: TCAV', 'TCAV…');
    await pickRow(p, 'The selection');
    await waitForPrompt(p, 'The target token');
    await p.locator(QUICK_INPUT_BOX).fill(' the');
    await p.keyboard.press('Enter');
    await waitForText(p, '.editor-group-container .tab', 'TCAV', true);
    const panel = await panelFrame(p, 'table .strip');
    await waitForText(panel, 'h1', 'TCAV: the selection → "·the"');
    await waitForText(panel, 'header', /\d+ concept examples against \d+ random pieces/);
    const rows = panel.locator('tbody tr');
    const n = await rows.count();
    if (n < 2) throw new Error(`TCAV scored ${n} hooks, not one per layer`);
    await waitForText(panel, 'tbody', /blocks\.1\.hook_resid_post\s+[01]\.\d{3}\s+[01]\.\d{3}/);
    await shot(p, 'causal-10-tcav');
  });

  await step('the results panels ran without a CSP refusal or a refused message', async () => {
    const complaints = panelConsole?.stop() ?? [];
    if (complaints.length > 0) throw new Error(complaints.join('\n'));
  });

  // Leave the workbench as the steps after these expect it: no score heat map, no results panels, the file's top.
  await step('the score heat map clears, and the results panels close', async (p) => {
    try {
      await p.locator(`${STATUS} .statusbar-item`, { hasText: 'Occlusion:' }).waitFor();
      await paletteCommand(
        p,
        'Loupe: Clear Probe or Occlusion Heat Map',
        'Clear Probe or Occlusion Heat Map',
      );
      await p.locator(`${STATUS} .statusbar-item`, { hasText: 'Occlusion:' }).waitFor({ state: 'hidden' });
    } finally {
      await paletteCommand(p, 'View: Close All Editor Groups', 'Close All Editor Groups');
      await quickOpen(p, 'tokens.py');
      await p.keyboard.press('Control+Home');
    }
  });
}
