/**
 * End-to-end steps for the Models & SAEs tree and the long jobs, run by
 * run.ts in its code-server after the analysis steps: the tree lists the
 * bundled model and SAE with their configuration; a model folder is added
 * through the open dialog and loaded from the tree; the open file's
 * activations are exported; "Train SAE…" shows its progress, is cancelled at
 * a checkpoint, resumed to the end and loaded; and the bundled model is loaded
 * back from the tree, leaving the workbench as it found it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Locator, Page } from 'playwright-core';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { FIXTURES } from '../unit/helpers';
import { ROOT } from './codeServer';
import {
  STATUS,
  StepsBase,
  WAIT_MS,
  chooseInDialog,
  notification,
  paletteCommand,
  quickOpen,
  startCommand,
  waitForText,
} from './ui';

/** What run.ts lends these steps: its step runner, and where things are. */
export interface ModelStepsContext extends StepsBase {
  /** A scratch folder that outlives the steps. */
  readonly tmp: string;
  /** The workspace folder code-server has open. */
  readonly workspace: string;
}

/** Tokens for the training run: long enough to see and cancel, short enough to resume to the end within a step. */
const TRAIN_TOKENS = '400k';

export async function modelSteps(e: ModelStepsContext): Promise<void> {
  // The bundled model and SAE, as their configs describe them.
  const read = (file: string) =>
    JSON.parse(fs.readFileSync(path.join(ROOT, 'models', file), 'utf8')) as Record<string, unknown>;
  const model = read('default/config.json') as {
    n_layer: number;
    n_embd: number;
    n_inner: number | null;
    n_positions: number;
  };
  const sae = read('default-sae/cfg.json') as { k: number; d_sae: number; metadata: { hook_name: string } };
  const tinyModel = path.join(e.tmp, 'tiny-gpt2');
  fs.cpSync(path.join(FIXTURES, 'gpt2'), tinyModel, { recursive: true });
  const trainedSae = path.join(e.tmp, 'trained-sae');

  await e.step(
    'the Models & SAEs tree lists the bundled model and SAE with their configuration',
    async (p) => {
      // The Loupe sidebar, unless it shows already (its activity bar icon would hide it).
      const inspectorHeader = p.locator('.pane-header', { hasText: 'Token Inspector' }).first();
      if (!(await inspectorHeader.isVisible())) {
        await p.locator('.activitybar .action-item a[aria-label^="Loupe"]').click();
      }
      // Fold the Token Inspector while these steps run, so that the tree has the sidebar's height.
      await setPaneExpanded(p, 'Token Inspector', false);
      const pane = await modelsPane(p);
      const bundled = treeRow(pane, 'default');
      await waitForRow(bundled, `gpt2 · ${model.n_layer} layers · d_model ${model.n_embd} · bundled`, true);
      const features = sae.d_sae.toLocaleString('en-US');
      await waitForRow(
        treeRow(pane, 'default-sae'),
        `${sae.metadata.hook_name} · topk k=${sae.k} · ${features} features · dashboards · bundled`,
        true,
      );
      await bundled.click(); // expands it: its configuration, a row each
      await treeRow(pane, 'vocabulary').waitFor();
      await waitForRow(
        treeRow(pane, 'd_model'),
        `${model.n_embd} · d_mlp ${model.n_inner ?? 4 * model.n_embd}`,
      );
      await waitForRow(treeRow(pane, 'context'), `${model.n_positions} tokens`);
      await treeRow(pane, 'default-sae').click();
      await waitForRow(treeRow(pane, 'd_in → d_sae'), `${model.n_embd} → ${features}`);
      await e.shot(p, 'models-1-tree');
      await bundled.click(); // folds them again
      await treeRow(pane, 'default-sae').click();
    },
  );

  await e.step(
    'a model folder added to the tree loads from it, without an SAE that does not fit',
    async (p) => {
      await startCommand(p, 'Loupe: Add Model Folder', 'Add Model Folder…');
      await chooseInDialog(p, tinyModel);
      const pane = await modelsPane(p);
      const row = treeRow(pane, 'tiny-gpt2');
      await waitForRow(row, 'gpt2 · 2 layers · d_model 32', false);
      await row.hover();
      await row.locator('.action-label[aria-label="Load"]').click();
      await waitForRow(row, 'gpt2 · 2 layers · d_model 32', true);
      await waitForText(p, STATUS, 'tiny-gpt2 · no SAE');
      await notification(p, 'loaded tiny-gpt2 without an SAE').waitFor();
      await e.shot(p, 'models-2-loaded-from-tree');
    },
  );

  await e.step(
    '"Export Activations…" writes the open file\'s activations to a .safetensors file',
    async (p) => {
      await quickOpen(p, 'tokens.py');
      await startCommand(p, 'Loupe: Export Activations', 'Export Activations…');
      const input = p.locator('.quick-input-widget input.input');
      await waitForText(p, '.quick-input-widget .quick-input-title', 'Export Activations of tokens.py');
      await p.locator('.quick-input-list .monaco-list-row').first().waitFor();
      await input.fill('hook_pattern');
      // Clicking a row of a multi-select quick pick ticks it.
      await p
        .locator('.quick-input-list .monaco-list-row', { hasText: 'blocks.0.attn.hook_pattern' })
        .click();
      await waitForText(p, '.quick-input-widget', '3 Selected');
      await input.fill('');
      await e.shot(p, 'models-3-export-hooks');
      await p.keyboard.press('Enter');
      const out = path.join(e.workspace, 'tokens.activations.safetensors');
      await chooseInDialog(p, out);
      await notification(p, 'exported 3 activation tensors for').waitFor();
      await notification(p, 'Exporting activations').waitFor({ state: 'detached' });
      await e.shot(p, 'models-4-exported');
      const file = SafetensorsFile.open(out);
      const shape = (name: string) => file.tensors.get(name)?.shape.join(',') ?? 'missing';
      const [B, T] = file.tensors.get('tokens')?.shape ?? [0, 0];
      if (!(B >= 1 && T === 64)) throw new Error(`tokens is [${B}, ${T}]`);
      const want = {
        'blocks.0.hook_resid_post': `${B},${T},32`,
        'blocks.1.hook_resid_post': `${B},${T},32`,
        'blocks.0.attn.hook_pattern': `${B},4,${T},${T}`,
        attention_mask: `${B},${T}`,
      };
      for (const [name, s] of Object.entries(want)) {
        if (shape(name) !== s) throw new Error(`${name} is [${shape(name)}], not [${s}]`);
      }
    },
  );

  await e.step('"Train SAE…" shows its progress and stops at a checkpoint when cancelled', async (p) => {
    await startCommand(p, 'Loupe: Train SAE', 'Train SAE…');
    const title = p.locator('.quick-input-widget .quick-input-title');
    await waitForText(p, '.quick-input-widget .quick-input-title', '(1/7)');
    await p
      .locator('.quick-input-list .monaco-list-row.focused', { hasText: 'blocks.1.hook_resid_post' })
      .waitFor();
    await e.shot(p, 'models-5-train-hook');
    await p.keyboard.press('Enter'); // the suggested hook: the middle layer's residual stream
    for (const n of [2, 3, 4]) {
      await waitForText(p, '.quick-input-widget .quick-input-title', `(${n}/7)`);
      await p.keyboard.press('Enter'); // the workspace folder, TopK, 8× latents
    }
    const input = p.locator('.quick-input-widget input.input');
    await waitForText(p, '.quick-input-widget .quick-input-title', '(5/7)');
    await input.fill('16');
    await p.keyboard.press('Enter');
    await waitForText(p, '.quick-input-widget .quick-input-title', '(6/7)');
    await input.fill(TRAIN_TOKENS);
    await p.keyboard.press('Enter');
    await waitForText(p, '.quick-input-widget .quick-input-title', '(7/7)');
    await input.fill(trainedSae);
    await p.keyboard.press('Enter');
    await title.waitFor({ state: 'hidden' });

    const progress = notification(p, 'Training SAE trained-sae');
    await progress
      .filter({ hasText: /step \d+\/\d+ · loss [\d.]+ · FVU [\d.]+ · L0 [\d.]+ · dead/ })
      .waitFor();
    await e.shot(p, 'models-6-training-progress');
    await progress.locator('.monaco-button', { hasText: 'Cancel' }).click();
    const stopped = notification(p, /training of trained-sae stopped at step \d+ of \d+/);
    await stopped.locator('.monaco-button', { hasText: 'Resume' }).waitFor();
    if (!fs.existsSync(path.join(trainedSae, 'checkpoint', 'state.json'))) {
      throw new Error('no checkpoint was left to resume from');
    }
    const row = treeRow(await modelsPane(p), 'trained-sae');
    await waitForRow(row, /^training stopped at step \d+ of \d+$/);
    await e.shot(p, 'models-7-training-stopped');
  });

  await e.step('the stopped training resumes to the end, and the SAE it made loads', async (p) => {
    await notification(p, /training of trained-sae stopped/)
      .locator('.monaco-button', { hasText: 'Resume' })
      .click();
    const done = notification(p, /trained trained-sae \(FVU [\d.]+, L0 [\d.]+, dead [\d.]+%/);
    await done.waitFor();
    await e.shot(p, 'models-8-trained');
    await done.locator('.monaco-button', { hasText: /^Load SAE$/ }).click();
    await waitForText(p, STATUS, 'tiny-gpt2 · trained-sae');
    for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors']) {
      if (!fs.existsSync(path.join(trainedSae, f))) throw new Error(`the trained SAE has no ${f}`);
    }
    const row = treeRow(await modelsPane(p), 'trained-sae');
    await waitForRow(row, 'blocks.1.hook_resid_post · topk k=16 · 256 features', true);
    await e.shot(p, 'models-9-trained-sae-loaded');
  });

  await e.step(
    'loading the bundled model from the tree brings its SAE back; added folders can be removed',
    async (p) => {
      try {
        const pane = await modelsPane(p);
        const bundled = treeRow(pane, 'default');
        await bundled.hover();
        await bundled.locator('.action-label[aria-label="Load"]').click();
        await waitForText(p, STATUS, 'default · default-sae');
        await waitForRow(treeRow(pane, 'default-sae'), /· bundled$/, true);
        for (const name of ['tiny-gpt2', 'trained-sae']) await removeFromList(p, treeRow(pane, name));
        await e.shot(p, 'models-10-back-to-bundled');
        await paletteCommand(p, 'Notifications: Clear All Notifications', 'Clear All Notifications');
      } finally {
        // The steps after these read the inspector.
        await setPaneExpanded(p, 'Token Inspector', true);
      }
    },
  );
}

/**
 * Right-click, Remove from List. The menu sometimes lets a click made the
 * moment it opens pass unanswered; then it is closed and opened again.
 */
async function removeFromList(page: Page, row: Locator): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await row.click({ button: 'right' });
    const item = page.locator('.context-view .action-label', { hasText: 'Remove from List' });
    await item.hover();
    await page.waitForTimeout(300);
    await item.click();
    try {
      await row.waitFor({ state: 'detached', timeout: 5000 });
      return;
    } catch (err) {
      if (attempt === 3) throw err;
      await page.keyboard.press('Escape');
    }
  }
}

/** The Models & SAEs view, expanded. */
async function modelsPane(page: Page): Promise<Locator> {
  const header = page.locator('.pane-header', { hasText: 'Models & SAEs' });
  await header.waitFor();
  if ((await header.getAttribute('aria-expanded')) === 'false') await header.click();
  return page.locator('.pane', { has: header });
}

/** The tree row whose label is exactly `label`. */
function treeRow(pane: Locator, label: string): Locator {
  return pane
    .locator('.monaco-list-row', {
      has: pane
        .page()
        .locator('.label-name', { hasText: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }),
    })
    .first();
}

/**
 * Waits until a tree row's description is `description` (or matches it) and,
 * when `loaded` is given, until its icon says whether it is the loaded one.
 */
async function waitForRow(row: Locator, description: string | RegExp, loaded?: boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const text = (
      await row
        .locator('.label-description')
        .allInnerTexts()
        .catch(() => [])
    ).join(' ');
    const icon = (await row.locator('.codicon-pass-filled').count()) > 0;
    const ok = typeof description === 'string' ? text === description : description.test(text);
    if (ok && (loaded === undefined || icon === loaded)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the tree row shows "${text}"${icon ? ' (loaded)' : ''}, not ${String(description)}${loaded ? ' (loaded)' : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function setPaneExpanded(page: Page, title: string, expanded: boolean): Promise<void> {
  const header = page.locator('.pane-header', { hasText: title }).first();
  await header.waitFor();
  if ((await header.getAttribute('aria-expanded')) !== String(expanded)) await header.click();
}
