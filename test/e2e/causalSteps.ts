/**
 * End-to-end steps for the probe and causal commands, run by run.ts in its
 * code-server on the samples workspace: a probe trained on regex labels shows
 * its accuracy chart; applied to the file, it tints the tokens; occlusion at
 * the caret draws a signed heat map; two same-length texts are patched into
 * heat maps; a steered continuation shows beside the unsteered one.
 */
import { Frame, Page } from 'playwright-core';

export interface CausalStepsContext {
  readonly step: (name: string, fn: (page: Page) => Promise<void>) => Promise<void>;
  readonly shot: (page: Page, name: string) => Promise<void>;
  readonly quickOpen: (page: Page, name: string) => Promise<void>;
  readonly waitForText: (page: Page | Frame, selector: string, want: string | RegExp) => Promise<void>;
}

const WAIT_MS = 90_000;
/** The heat colour of light themes (decorations.ts) and the score map's cool side. */
const WARM_LIGHT = 'rgba(242, 106, 0, ';
const COOL_LIGHT = 'rgba(0, 102, 204, ';

export async function causalSteps(e: CausalStepsContext): Promise<void> {
  await e.step('"Train Probe…" with regex labels shows accuracy by hook', async (p) => {
    await e.quickOpen(p, 'tokens.py');
    await palette(p, 'Loupe: Train Probe', 'Train Probe…');
    await pickRow(p, 'Regex over tokens');
    await p.locator('.quick-input-widget input.input').fill('^\\s*(def|return|import|from)$');
    await p.keyboard.press('Enter');
    // The hooks, with the residual stream picked: accept.
    await p.locator('.quick-input-list .monaco-list-row', { hasText: 'hook_resid_post' }).first().waitFor();
    await p.keyboard.press('Enter');
    const panel = await frameWith(p, '#chart canvas');
    await e.waitForText(panel, 'table', /blocks\.1\.hook_resid_post/);
    await e.waitForText(panel, 'header', /labels other \(\d+\), match \(\d+\)/);
    await e.shot(p, 'causal-01-probe-results');
  });

  await e.step('"Apply to the open file" tints the tokens by the probe score', async (p) => {
    const panel = await frameWith(p, '#chart canvas');
    await panel.locator('vscode-button', { hasText: 'Apply to the open file' }).click();
    await waitForTint(p, WARM_LIGHT);
    await e.waitForText(p, '.part.statusbar', /P\(match\) at/);
    await e.shot(p, 'causal-02-probe-heat-map');
  });

  await e.step('"Occlusion Attribution" at the caret draws a signed heat map', async (p) => {
    await e.quickOpen(p, 'tokens.py'); // the editor has the focus
    await p.keyboard.press('Control+End');
    await p.keyboard.press('ArrowUp');
    await p.keyboard.press('End');
    await palette(p, 'Loupe: Occlusion Attribution', 'Occlusion Attribution');
    await e.waitForText(p, '.part.statusbar', /Occlusion: /);
    await waitForTint(p, WARM_LIGHT, 1);
    await waitForTint(p, COOL_LIGHT, 1);
    await e.shot(p, 'causal-03-occlusion');
  });

  await e.step('"Patch Activations…" on two same-length texts shows both heat maps', async (p) => {
    await e.quickOpen(p, 'tokens.py');
    await p.keyboard.press('Control+Home');
    await p.keyboard.press('Shift+End'); // the first line is the clean text
    await palette(p, 'Loupe: Patch Activations', 'Patch Activations…');
    await pickRow(p, 'Type the corrupted text…');
    await prompt(p, 'The corrupted text');
    const input = p.locator('.quick-input-widget input.input');
    const clean = await input.inputValue();
    // One word swapped for another of one token keeps the token count.
    const corrupted = clean.replace(/\b(the|a|of|and)\b/, (w) => (w === 'the' ? 'a' : 'the'));
    await input.fill(corrupted === clean ? clean.replace(/\w/, 'x') : corrupted);
    await p.keyboard.press('Enter');
    await prompt(p, 'Token A');
    await p.keyboard.press('Enter'); // the clean prediction
    await prompt(p, 'Token B');
    await p.keyboard.press('Enter');
    const panel = await frameWith(p, '#heads canvas');
    await panel.locator('#residual canvas').hover({ position: { x: 80, y: 20 } });
    await e.waitForText(panel, '#residual .caption', /L0 at position \d+.*logit difference/);
    await e.shot(p, 'causal-04-patching');
  });

  await e.step('"Steer Generation…" shows unsteered and steered continuations side by side', async (p) => {
    await e.quickOpen(p, 'tokens.py');
    await p.keyboard.press('Control+Home');
    await p.keyboard.press('ArrowDown');
    await p.keyboard.press('End');
    await palette(p, 'Loupe: Steer Generation', 'Steer Generation…');
    await pickRow(p, 'SAE feature…');
    await prompt(p, 'SAE feature index');
    await p.locator('.quick-input-widget input.input').fill('3');
    await p.keyboard.press('Enter');
    await prompt(p, 'Strength');
    await p.keyboard.press('Enter'); // the default
    await prompt(p, 'Tokens to generate');
    await p.locator('.quick-input-widget input.input').fill('8');
    await p.keyboard.press('Enter');
    const panel = await frameWith(p, '.pair');
    await e.waitForText(panel, 'body', /Sampled \(seed 0, temperature 1\)/);
    await e.shot(p, 'causal-05-steering');
    await panel.locator('vscode-button', { hasText: 'Resample' }).click();
    await e.waitForText(panel, 'body', /Sampled \(seed 1, temperature 1\)/);
  });

  // Leave the workbench as the steps after these expect it: no score heat map, no results panels, the file's top.
  await e.step('the score heat map clears, and the results panels close', async (p) => {
    await palette(p, 'Loupe: Clear Probe or Occlusion Heat Map', 'Clear Probe or Occlusion Heat Map');
    await p
      .locator('.part.statusbar .statusbar-item', { hasText: 'Occlusion:' })
      .waitFor({ state: 'hidden' });
    await palette(p, 'View: Close All Editor Groups', 'Close All Editor Groups');
    await e.quickOpen(p, 'tokens.py');
    await p.keyboard.press('Control+Home');
  });
}

/** F1, the command, Enter. */
async function palette(page: Page, query: string, label: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor();
  await input.fill(`>${query}`);
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: label }).waitFor();
  await page.keyboard.press('Enter');
}

/** Waits until the quick input asks for `text` (in its prompt or placeholder). */
async function prompt(page: Page, text: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const shown = await page.evaluate((t) => {
      const widget = document.querySelector<HTMLElement>('.quick-input-widget');
      const input = widget?.querySelector<HTMLInputElement>('input.input');
      if (!widget || widget.style.display === 'none') return false;
      return (widget.innerText + ' ' + (input?.placeholder ?? '')).includes(t);
    }, text);
    if (shown) return;
    if (Date.now() > deadline) throw new Error(`the quick input never asked for ${text}`);
    await page.waitForTimeout(100);
  }
}

/** Clicks the quick pick's row that shows `label`. */
async function pickRow(page: Page, label: string): Promise<void> {
  await page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first().click();
}

async function frameWith(page: Page, selector: string): Promise<Frame> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    for (const frame of page.frames()) {
      if (
        await frame
          .locator(selector)
          .count()
          .catch(() => 0)
      )
        return frame;
    }
    if (Date.now() > deadline) throw new Error(`no webview shows ${selector}`);
    await page.waitForTimeout(250);
  }
}

/** Waits until at least `min` editor decorations are painted in a colour starting with `prefix`. */
async function waitForTint(page: Page, prefix: string, min = 3): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const n = await page.evaluate((pre) => {
      const editor = document.querySelector('.editor-group-container .monaco-editor .lines-content');
      if (!editor) return 0;
      let count = 0;
      for (const el of editor.querySelectorAll('[class*="ced-"]')) {
        if (getComputedStyle(el).backgroundColor.startsWith(pre)) count++;
      }
      return count;
    }, prefix);
    if (n >= min) return;
    if (Date.now() > deadline) throw new Error(`no decorations in ${prefix}…) appeared in the editor`);
    await page.waitForTimeout(250);
  }
}
