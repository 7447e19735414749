/**
 * End-to-end test in a real VS Code: packs the extension into a .vsix,
 * installs it into code-server, opens a copy of samples/ in Debian's Chromium
 * through Playwright and clicks through the UI like a user: the token overlay,
 * the inspector, a heat map and its navigation, the hover, the feature quick
 * pick, a dark theme, a 500-line file's timing, and the errors for an SAE of
 * another model and a pickle checkpoint. Screenshots go to test-output/e2e/.
 * Run with `npm run test:e2e` after `scripts/vscode-setup.sh`.
 *
 * A plain script rather than mocha: the steps share one browser and one
 * code-server and run in order, each from where the one before left the UI;
 * a failed step saves failed-N.png and the later steps still run.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, Locator, Page, chromium } from 'playwright-core';
import { FIXTURES, writeRandomSae } from '../unit/helpers';
import { causalSteps } from './causalSteps';
import { CodeServer, freePort, installExtension, packageExtension, ROOT } from './codeServer';
import { lensSteps } from './lensSteps';
import { modelSteps } from './modelSteps';
import {
  EDITOR_LINES,
  INSPECTOR_SHOWS,
  StepsBase,
  TINTS,
  WAIT_MS,
  clickText,
  cursorPosition,
  expandToast,
  inspectorFrame,
  normalize,
  paletteCommand,
  panelFrame,
  quickOpen,
  readLog,
  reloadWindow,
  waitForLog,
  waitForText,
  waitForTint,
  watchConsole,
  writeJson,
} from './ui';

const CHROMIUM = process.env.LOUPE_E2E_CHROMIUM ?? '/usr/bin/chromium';
/** LOUPE_E2E_SHOTS moves the screenshots, so that runs of several people do not overwrite each other's. */
const SHOTS = process.env.LOUPE_E2E_SHOTS ?? path.join(ROOT, 'test-output', 'e2e');
const STEP_TIMEOUT_MS = 90_000; // two shared cores: the first workbench load alone can take 20 s
const FIXTURE_MODEL = path.join(FIXTURES, 'gpt2');
const LONG_FILE = 'long_module.py';
const LONG_LINES = 500;
/** The issue asks for 1 s; this machine is shared, so the test fails only well past it and prints the number. */
const LONG_FILE_BUDGET_MS = 5000;

/** Settings for a quiet, repeatable workbench: no welcome page, tips, update checks or telemetry. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'security.workspace.trust.enabled': false,
  'chat.commandCenter.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
};

interface Result {
  readonly name: string;
  readonly error?: Error;
  readonly ms: number;
}

async function main(): Promise<number> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-e2e-'));
  fs.rmSync(SHOTS, { recursive: true, force: true });
  fs.mkdirSync(SHOTS, { recursive: true });
  const results: Result[] = [];
  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;

  const step = async (name: string, fn: (page: Page) => Promise<void>): Promise<void> => {
    const t0 = Date.now();
    if (!page) throw new Error('no browser page');
    try {
      await withTimeout(fn(page), STEP_TIMEOUT_MS, name);
      results.push({ name, ms: Date.now() - t0 });
      console.log(`  ✓ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      results.push({ name, error, ms: Date.now() - t0 });
      console.log(`  ✗ ${name}\n      ${error.message.split('\n').join('\n      ')}`);
      await shot(page, `failed-${results.length}`).catch(() => undefined);
    }
  };

  const onSignal = () => {
    server?.killNow();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // The bundled model and SAE when they are built (tools/), else the fixture model; a random SAE
  // that fits the model stands in for a missing bundled one.
  const bundledModel = fs.existsSync(path.join(ROOT, 'models', 'default', 'config.json'));
  const bundledSae = bundledModel && fs.existsSync(path.join(ROOT, 'models', 'default-sae', 'cfg.json'));
  const modelDir = bundledModel ? path.join(ROOT, 'models', 'default') : FIXTURE_MODEL;
  const dModel = (
    JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { n_embd: number }
  ).n_embd;
  const sae = path.join(tmp, 'random-sae');
  const badSae = path.join(tmp, 'sae-for-another-model');
  const pickled = path.join(tmp, 'pickled-model');
  const workspace = path.join(tmp, 'samples');
  const settingsFile = path.join(workspace, '.vscode', 'settings.json');
  const userDataDir = path.join(tmp, 'user-data');
  const logFile = path.join(SHOTS, 'code-server.log');
  const loupeSettings: Record<string, string> = {
    ...(bundledModel ? {} : { 'loupe.modelPath': FIXTURE_MODEL }),
    ...(bundledSae ? {} : { 'loupe.saePath': sae }),
  };

  try {
    console.log('e2e: packaging the extension');
    const vsix = packageExtension();
    console.log(`e2e: ${path.relative(ROOT, vsix)} (${(fs.statSync(vsix).size / 2 ** 20).toFixed(1)} MiB)`);
    console.log(
      `e2e: ${bundledModel ? 'the bundled model' : 'the fixture model'} and ${bundledSae ? 'the bundled SAE' : 'a random SAE'}`,
    );

    writeRandomSae(sae, {
      dIn: dModel,
      dSae: 8 * dModel,
      k: 24,
      hook: 'blocks.0.hook_resid_post',
      contextSize: 128,
    });
    // An SAE that reads the right hook with the wrong width: it belongs to another model.
    writeRandomSae(badSae, {
      dIn: dModel + 16,
      dSae: 96,
      hook: 'blocks.0.hook_resid_post',
      contextSize: null,
    });
    // A checkpoint Loupe must refuse: only a pickle.
    fs.mkdirSync(pickled);
    fs.copyFileSync(path.join(FIXTURE_MODEL, 'config.json'), path.join(pickled, 'config.json'));
    fs.writeFileSync(path.join(pickled, 'pytorch_model.bin'), 'not really a pickle');

    fs.cpSync(path.join(ROOT, 'samples'), workspace, { recursive: true });
    fs.writeFileSync(path.join(workspace, LONG_FILE), longFile());
    // The bundled SAE again, with a feature database built from this workspace (while the steps before run),
    // so that a dashboard's contexts are files the editor can open.
    const workspaceSae = bundledSae
      ? buildWorkspaceDatabase(path.join(tmp, 'sae-workspace-db'), workspace)
      : null;
    writeJson(settingsFile, loupeSettings);
    const extensionsDir = path.join(tmp, 'extensions');
    writeJson(path.join(userDataDir, 'User', 'settings.json'), USER_SETTINGS);

    console.log('e2e: installing the .vsix into code-server');
    installExtension(vsix, userDataDir, extensionsDir);
    const port = await freePort();
    server = await CodeServer.start({
      folder: workspace,
      userDataDir,
      extensionsDir,
      port,
      logFile,
      env: { LOUPE_CACHE_DIR: path.join(tmp, 'loupe-cache') },
    });
    console.log(`e2e: code-server on port ${port}; starting Chromium`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(WAIT_MS);
    const url = server.url;
    console.log('e2e: steps');

    await step('the workbench loads on the samples folder', async (p) => {
      await p.goto(url);
      await p.locator('.monaco-workbench').waitFor();
      // The Explorer lists the workspace once the file service is up.
      await p.locator('.explorer-folders-view .monaco-list-row', { hasText: 'tokens.py' }).waitFor();
      await shot(p, '01-workbench');
    });

    await step(
      'a sample file opens with its token overlay, and the inspector follows the caret',
      async (p) => {
        await p.locator('.explorer-folders-view .monaco-list-row', { hasText: 'tokens.py' }).click();
        await waitForText(p, EDITOR_LINES, 'def word_counts');
        await p.locator('.activitybar .action-item a[aria-label^="Loupe"]').click();
        const inspector = await inspectorFrame(p);
        await waitForTint(p, TINTS.token);
        await inspector.locator('header.token').waitFor(); // the features are in: the caret's token shows
        await shot(p, '02-overlay-and-inspector');
      },
    );

    await step(
      'clicking a token lists the features active on it and the next-token predictions',
      async (p) => {
        await clickText(p, 'word_counts(text: str)', 2);
        const inspector = await inspectorFrame(p);
        await waitForText(inspector, 'header.token .where', /tokens\.py:2\d:/);
        const shown = normalize(await inspector.locator('header.token .token-text').innerText());
        if (!'def word_counts'.includes(shown.replace(/·/g, ' ').trim())) {
          throw new Error(`the inspector describes another token: ${shown}`);
        }
        const features = inspector.locator('.row.feature');
        await features.first().waitFor();
        const predictions = await inspector.locator('.row.prediction').count();
        if (predictions !== 5) throw new Error(`${predictions} predictions listed, not 5`);
        await shot(p, '03-token-inspected');
      },
    );

    await step('choosing a feature lights the file up as its heat map', async (p) => {
      const inspector = await inspectorFrame(p);
      await inspector.locator('.row.feature').first().click();
      await inspector.locator('.legend .scale').waitFor();
      await waitForTint(p, TINTS.heatLight);
      await shot(p, '04-heat-map');
    });

    await step('Alt+F8 moves to the next occurrence of the feature', async (p) => {
      const before = await cursorPosition(p);
      await p.locator(EDITOR_LINES).click({ position: { x: 5, y: 5 } }); // focus the editor, caret at the top
      await p.keyboard.press('Control+Home');
      await p.keyboard.press('Alt+F8');
      await p.waitForTimeout(500);
      const after = await cursorPosition(p);
      if (after === 'Ln 1, Col 1') throw new Error(`the cursor did not move (was ${before})`);
      await shot(p, '05-next-occurrence');
    });

    await step('hovering a token shows its top features and the next-token guess', async (p) => {
      const box = await p
        .locator(`${EDITOR_LINES} .view-line`, { hasText: 'return Counter(WORD' })
        .boundingBox();
      if (!box) throw new Error('line 24 is not on screen');
      await p.mouse.move(box.x + 120, box.y + box.height / 2);
      const hover = p.locator('.monaco-hover', { hasText: 'Next token' });
      await hover.first().waitFor();
      const text = normalize(await hover.first().innerText());
      if (!/Loupe/.test(text) || !/#\d+/.test(text)) throw new Error(`the hover lacks features: ${text}`);
      await shot(p, '06-hover');
      await p.mouse.move(5, 450);
    });

    await step('"Loupe: Show Feature Heat Map" offers the features active in the file', async (p) => {
      await paletteCommand(p, 'Loupe: Show Feature Heat Map', 'Show Feature Heat Map');
      const rows = p.locator('.quick-input-list .monaco-list-row');
      await rows.first().waitFor();
      await waitForText(p, '.quick-input-list', /max \d/);
      await shot(p, '07-feature-quick-pick');
      await p.keyboard.press('ArrowDown');
      await p.keyboard.press('Enter');
      await p.locator('.quick-input-widget').waitFor({ state: 'hidden' });
      await waitForTint(p, TINTS.heatLight);
    });

    await step('the heat map and inspector read well in a dark theme', async (p) => {
      writeJson(settingsFile, { ...loupeSettings, 'workbench.colorTheme': 'Default Dark Modern' });
      await p.locator('.monaco-workbench.vs-dark').waitFor();
      await waitForTint(p, TINTS.heatDark);
      await clickText(p, 'return Counter(WORD', 9);
      const inspector = await inspectorFrame(p);
      await waitForText(inspector, 'header.token .where', 'tokens.py:25:');
      await p.waitForTimeout(500);
      await shot(p, '08-dark-theme');
      writeJson(settingsFile, loupeSettings);
      await p.locator('.monaco-workbench.vs-dark').waitFor({ state: 'detached' });
    });

    await step(`a ${LONG_LINES}-line file is analysed and drawn quickly`, async (p) => {
      await paletteCommand(p, 'Loupe: Clear Heat Map', 'Clear Heat Map');
      await quickOpen(p, LONG_FILE);
      const line = await waitForLog(
        userDataDir,
        new RegExp(`${LONG_FILE.replace('.', '\\.')} v\\d+: .*features ready (\\d+) ms`),
      );
      await waitForTint(p, TINTS.token);
      await clickText(p, 'import torch.nn as nn', 14);
      await waitForText(await inspectorFrame(p), 'header.token .where', `${LONG_FILE}:24:`);
      await shot(p, '09-long-file');
      console.log(`      ${line.replace(/^.*\] /, '')}`);
      const overlay = Number(/overlay drawn (\d+) ms/.exec(line)![1]);
      const ready = Number(/features ready (\d+) ms/.exec(line)![1]);
      if (overlay > LONG_FILE_BUDGET_MS || ready > LONG_FILE_BUDGET_MS) {
        throw new Error(
          `the overlay took ${overlay} ms and the features ${ready} ms (budget ${LONG_FILE_BUDGET_MS} ms)`,
        );
      }
    });

    await step('"Loupe: Show Hook Points of the Model" lists them in the Output panel', async (p) => {
      await paletteCommand(p, 'Loupe: Show Hook Points', 'Show Hook Points of the Model', () =>
        shot(p, '10-command-palette'),
      );
      const output = '.part.panel .monaco-editor .view-lines';
      await waitForText(p, output, /blocks\.1\.\S*hook_\w+ \[/, true);
      await shot(p, '11-hooks-output');
    });

    if (workspaceSae) await featurePanelSteps(step, settingsFile, loupeSettings, workspaceSae);
    else console.log('  - the feature panels need the bundled SAE and its feature database; skipped');

    await modelSteps({ step, shot, tmp, workspace });
    await lensSteps({ step, shot, settingsFile, loupeSettings, userDataDir, tmp });
    await causalSteps({ step, shot, tmp, workspace, userDataDir, modelDir });

    await step('an SAE trained for another model is refused with a clear error', async (p) => {
      await quickOpen(p, 'tokens.py');
      writeJson(settingsFile, { ...loupeSettings, 'loupe.saePath': badSae });
      const toast = p.locator('.notification-toast .notification-list-item-message', {
        hasText: 'could not use the SAE',
      });
      await toast.first().waitFor();
      const text = normalize(await toast.first().innerText());
      if (!text.includes(`d_in is ${dModel + 16}`))
        throw new Error(`the notification does not say why: ${text}`);
      const inspector = await inspectorFrame(p);
      await inspector.locator('.problem', { hasText: 'd_in' }).waitFor();
      await expandToast(p, 'could not use the SAE');
      await shot(p, '12-bad-sae');
      await p.keyboard.press('Escape');
    });

    await step('a pickle checkpoint is refused with an error notification', async (p) => {
      writeJson(settingsFile, { 'loupe.modelPath': pickled });
      const toast = p.locator('.notification-toast .notification-list-item-message', {
        hasText: 'PyTorch pickle weights are refused on purpose',
      });
      await toast.first().waitFor();
      const text = normalize(await toast.first().innerText());
      if (!text.includes('pytorch_model.bin'))
        throw new Error(`the notification does not name the file: ${text}`);
      await expandToast(p, 'refused on purpose');
      await shot(p, '13-pickle-error');
    });

    // What the extension's event-loop probe logged: blocks of the host (any extension's) and Loupe's own steps.
    const log = readLog(userDataDir);
    const numbers = (re: RegExp): number[] => [...log.matchAll(re)].map((m) => Number(m[1]));
    const block = Math.max(
      0,
      ...numbers(/longest block (?:meanwhile )?(\d+) ms/g),
      ...numbers(/blocked for about (\d+) ms/g),
    );
    const own = Math.max(
      0,
      ...numbers(/Loupe's longest step ([\d.]+) ms/g),
      ...numbers(/held the extension host for (\d+) ms/g),
    );
    console.log(`e2e: event loop: longest block ${block} ms (any extension); Loupe's longest step ${own} ms`);
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    results.push({ name: 'setting up code-server and the browser', error, ms: 0 });
    console.log(`  ✗ setup: ${error.message}`);
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    if (process.env.LOUPE_E2E_KEEP) console.log(`e2e: kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }

  const failed = results.filter((r) => r.error);
  const passed = results.length - failed.length;
  if (failed.length > 0) console.log(`e2e: code-server's log: ${path.relative(ROOT, logFile)}`);
  console.log(`e2e: screenshots in ${path.relative(ROOT, SHOTS)}/`);
  console.log(`${passed} passed, ${failed.length} failed`);
  return failed.length === 0 && passed > 0 ? 0 : 1;
}

/**
 * The Feature Browser and the Cluster Map, on the bundled SAE's feature
 * database: from the inspector to a dashboard, from the dashboard to the
 * heat map, a search, a context's source, the map's hover and click, the
 * panels after a window reload, and both panels in a high-contrast theme.
 */
async function featurePanelSteps(
  step: StepsBase['step'],
  settingsFile: string,
  loupeSettings: Record<string, string>,
  workspaceSae: Promise<string>,
): Promise<void> {
  let shownFeature = -1;
  // What the panels' frames report in the console: CSP refusals and messages a side refused.
  let panelConsole: ReturnType<typeof watchConsole> | null = null;

  await step("the inspector's dashboard button opens the feature in the Feature Browser", async (p) => {
    panelConsole = watchConsole(p, /Content Security Policy|Loupe (feature browser|cluster map)/);
    await paletteCommand(p, 'View: Hide Panel', 'Hide Panel');
    await quickOpen(p, 'tokens.py');
    await clickText(p, 'return Counter(WORD', 9);
    const inspector = await inspectorFrame(p);
    await waitForText(inspector, 'header.token .where', 'tokens.py:25:');
    const first = inspector.locator('.feature-item').first();
    shownFeature = Number(await first.locator('.row.feature').getAttribute('data-feature'));
    await first.hover();
    await shot(p, '11a-inspector-dashboard-buttons');
    await first.locator('.open-dashboard').click();
    const browser = await panelFrame(p, '.browser');
    await waitForText(browser, '.feature-header h1', `#${shownFeature}`);
    // Every part of the dashboard is there, the histogram drawn by uPlot.
    for (const part of [
      'Label',
      'Statistics',
      'Activations',
      'Top activations',
      'Activation bands',
      'Logit effects',
      'Similar features',
    ]) {
      await browser.locator('section h2', { hasText: part }).first().waitFor();
    }
    await browser.locator('.histogram canvas').waitFor();
    const contexts = await browser.locator('.part-top .context').count();
    if (contexts === 0) throw new Error('the dashboard shows no top contexts');
    await waitForText(p, '.editor-group-container .tab.active', `#${shownFeature}`);
    await shot(p, '11b-dashboard-from-inspector');
  });

  await step('"Show heat map in the editor" on the dashboard tints the file by the feature', async (p) => {
    const browser = await panelFrame(p, '.browser');
    await browser.locator('vscode-button', { hasText: 'Show heat map in the editor' }).click();
    await waitForTint(p, TINTS.heatLight);
    await waitForText(await inspectorFrame(p), '.legend-title', `#${shownFeature}`);
    await shot(p, '11c-heat-map-from-dashboard');
  });

  await step(
    'the Feature Browser searches by label or token, and the keyboard walks the results',
    async (p) => {
      await paletteCommand(p, 'Loupe: Open Feature Browser', 'Open Feature Browser');
      const browser = await panelFrame(p, '.browser');
      await browser.locator('vscode-textfield input').fill('import');
      await waitForText(browser, '.count', /\d+ match/);
      const results = browser.locator('.result');
      if ((await results.count()) < 2) throw new Error('a search for "import" finds fewer than two features');
      const second = Number(/#(\d+)/.exec(await results.nth(1).locator('.index').innerText())![1]);
      await results.nth(1).click();
      await waitForText(browser, '.feature-header h1', `#${second}`);
      // Down from the second result: the third one's dashboard.
      const third = Number(/#(\d+)/.exec(await results.nth(2).locator('.index').innerText())![1]);
      await browser.locator('.results').press('ArrowDown');
      await waitForText(browser, '.feature-header h1', `#${third}`);
      await shot(p, '11d-feature-search');
    },
  );

  await step('clicking a context opens its source, or says where it came from', async (p) => {
    const browser = await panelFrame(p, '.browser');
    await browser.locator('.part-top .context').first().click();
    // The bundled database was built from a JSONL corpus: its contexts are records, not files.
    await waitForText(browser, '.notice', /line \d+ of \S+\.jsonl/);
    await shot(p, '11e-context-source');
  });

  let mapFeature = -1;
  await step('the Cluster Map names a point on hover and opens its dashboard on click', async (p) => {
    await paletteCommand(p, 'Loupe: Open Cluster Map', 'Open Cluster Map');
    const map = await panelFrame(p, '.layout canvas');
    const clusters = map.locator('button.cluster');
    await clusters.first().waitFor();
    await waitForText(map, '.clusters h2', /Clusters\s+\d+/);
    await clusters.nth(1).click();
    await map.locator('.members button.member').first().waitFor();
    await p.waitForTimeout(300);
    const canvas = map.locator('.layout canvas');
    const spot = await brightestPoint(canvas);
    await canvas.hover({ position: spot });
    const tip = map.locator('.tooltip:not([hidden])');
    await tip.waitFor();
    mapFeature = Number(/#(\d+)/.exec(await tip.innerText())![1]);
    await shot(p, '11f-cluster-map-hover');
    await canvas.click({ position: spot });
    const browser = await panelFrame(p, '.browser');
    await waitForText(browser, '.feature-header h1', `#${mapFeature}`);
    await shot(p, '11g-dashboard-from-map');
  });

  await step('the map comes back as it was when its tab is hidden and shown', async (p) => {
    // A hidden webview is unloaded; shown again, it loads from its saved state.
    await p.locator('.editor-group-container .tab', { hasText: 'tokens.py' }).first().click();
    await p.locator('.editor-group-container .tab', { hasText: 'Cluster Map' }).first().click();
    const map = await panelFrame(p, '.layout canvas');
    await map.locator('.cluster-item.chosen').waitFor();
  });

  await step('both panels come back as they were after a window reload', async (p) => {
    await reloadWindow(p, ['.browser', '.layout canvas', INSPECTOR_SHOWS]);
    const browser = await panelFrame(p, '.browser');
    await waitForText(browser, '.feature-header h1', `#${mapFeature}`);
    const map = await panelFrame(p, '.layout canvas');
    await map.locator('.cluster-item.chosen').waitFor();
    await shot(p, '11h-after-reload');
  });

  await step('the dashboard and the cluster map in a dark and a high-contrast theme', async (p) => {
    writeJson(settingsFile, { ...loupeSettings, 'workbench.colorTheme': 'Default Dark Modern' });
    await p.locator('.monaco-workbench.vs-dark').waitFor();
    await p.waitForTimeout(1000);
    await shot(p, '11i-dark');
    writeJson(settingsFile, { ...loupeSettings, 'workbench.colorTheme': 'Default High Contrast' });
    await p.locator('.monaco-workbench.hc-black').waitFor();
    await p.waitForTimeout(1000);
    const browser = await panelFrame(p, '.browser');
    await browser.locator('.histogram canvas').waitFor();
    await shot(p, '11j-high-contrast');
    // Each panel alone, wide: the map keeps its view in proportion, the dashboard has room.
    for (const [group, name] of [
      ['Left', '11k-high-contrast-map-wide'],
      ['Right', '11l-high-contrast-dashboard-wide'],
    ]) {
      await paletteCommand(p, `View: Focus ${group} Editor Group`, `Focus ${group} Editor Group`);
      await paletteCommand(p, 'View: Toggle Maximize Editor Group', 'Toggle Maximize Editor Group');
      await p.waitForTimeout(1000);
      await shot(p, name);
      await paletteCommand(p, 'View: Toggle Maximize Editor Group', 'Toggle Maximize Editor Group');
    }
    writeJson(settingsFile, loupeSettings);
    await p.locator('.monaco-workbench.hc-black').waitFor({ state: 'detached' });
    await paletteCommand(p, 'View: Close All Editors', 'Close All Editors');
  });

  await step('with a database built from the workspace, a context opens its file at the token', async (p) => {
    writeJson(settingsFile, { ...loupeSettings, 'loupe.saePath': await workspaceSae });
    await paletteCommand(p, 'Loupe: Open Feature Browser', 'Open Feature Browser');
    const browser = await panelFrame(p, '.browser');
    // The panel follows the new SAE's database: its footer names the workspace as the corpus.
    await waitForText(browser, 'footer', /tokens of \S*samples/);
    await browser.locator('vscode-textfield input').fill('');
    await waitForText(browser, '.count', /features/);
    const first = browser.locator('.result').first();
    const index = /#(\d+)/.exec(await first.locator('.index').innerText())![1];
    await first.click();
    await waitForText(browser, '.feature-header h1', `#${index}`);
    const context = browser.locator('.part-top .context').first();
    const source = (await context.getAttribute('title'))!.split(' · ')[0];
    await context.click();
    await waitForText(p, '.editor-group-container .tab.active', path.basename(source));
    // The caret selects the context's token.
    await waitForText(p, '#status\\.editor\\.selection', /selected/);
    await shot(p, '11m-context-opens-file');
    writeJson(settingsFile, loupeSettings);
    // The steps after this one expect the bundled SAE loaded again.
    await waitForText(await inspectorFrame(p), 'footer', /· default-sae$/);
    await paletteCommand(p, 'View: Close All Editors', 'Close All Editors');
  });

  await step('the panels ran without a CSP refusal or a refused message', async () => {
    const complaints = panelConsole?.stop() ?? [];
    if (complaints.length > 0) throw new Error(complaints.join('\n'));
  });
}

/** Copies the bundled SAE to `dir` and builds its feature database from `corpus` with the CLI; resolves to `dir`. */
function buildWorkspaceDatabase(dir: string, corpus: string): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['cfg.json', 'sae_weights.safetensors']) {
    fs.copyFileSync(path.join(ROOT, 'models', 'default-sae', f), path.join(dir, f));
  }
  const args = [
    path.join(ROOT, 'dist', 'cli.js'),
    'dashboards',
    '--model',
    path.join(ROOT, 'models', 'default'),
  ];
  const child = spawn(process.execPath, [...args, '--sae', dir, '--corpus', corpus], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const built = new Promise<string>((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(dir) : reject(new Error(`loupe dashboards failed: ${stderr}`)),
    ),
  );
  built.catch(() => undefined); // awaited by its step; a failure is reported there
  return built;
}

/** Where the canvas differs most from its background (its top-left pixel): a point of the highlighted cluster. */
async function brightestPoint(canvas: Locator): Promise<{ x: number; y: number }> {
  const spot = await canvas.evaluate((el: HTMLCanvasElement) => {
    const ctx = el.getContext('2d')!;
    const { data, width, height } = ctx.getImageData(0, 0, el.width, el.height);
    const bg = [data[0], data[1], data[2]];
    let best = { d: -1, x: 0, y: 0 };
    // Away from the edges, where the zoom buttons sit.
    for (let y = Math.floor(height * 0.15); y < height * 0.95; y += 2) {
      for (let x = Math.floor(width * 0.05); x < width * 0.95; x += 2) {
        const k = (y * width + x) * 4;
        const d = Math.abs(data[k] - bg[0]) + Math.abs(data[k + 1] - bg[1]) + Math.abs(data[k + 2] - bg[2]);
        if (d > best.d) best = { d, x, y };
      }
    }
    const scale = el.width / el.clientWidth;
    return { x: best.x / scale, y: best.y / scale, d: best.d };
  });
  if (spot.d <= 0) throw new Error('the cluster map draws no points');
  return { x: spot.x, y: spot.y };
}

/** A 500-line Python file: the start of Loupe's PyTorch reference models, repeated if it ever gets shorter. */
function longFile(): string {
  const source = fs.readFileSync(path.join(ROOT, 'tools', 'reference', 'models.py'), 'utf8').split('\n');
  const lines: string[] = [];
  while (lines.length < LONG_LINES) lines.push(...source);
  return lines.slice(0, LONG_LINES).join('\n') + '\n';
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
