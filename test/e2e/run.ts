/**
 * End-to-end test in a real VS Code: packs the extension into a .vsix,
 * installs it into code-server, opens a copy of samples/ in Debian's Chromium
 * through Playwright and clicks through the UI like a user. Screenshots go to
 * test-output/e2e/. Run with `npm run test:e2e` after `scripts/vscode-setup.sh`.
 *
 * A plain script rather than mocha: the steps share one browser and one
 * code-server and run in order, each from where the one before left the UI;
 * a failed step saves failed-N.png and the later steps still run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { writeByteLevelTokenizer, writeTinyGpt2 } from '../unit/helpers';
import { CodeServer, freePort, installExtension, packageExtension, ROOT } from './codeServer';

const CHROMIUM = process.env.LOUPE_E2E_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'test-output', 'e2e');
const STEP_TIMEOUT_MS = 90_000; // two shared cores: the first workbench load alone can take 20 s
const WAIT_MS = 60_000; // for one thing to appear, within a step

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

  const model = path.join(tmp, 'tiny-gpt2');
  const broken = path.join(tmp, 'pickled-model');
  const workspace = path.join(tmp, 'samples');
  const settingsFile = path.join(workspace, '.vscode', 'settings.json');
  const logFile = path.join(SHOTS, 'code-server.log');

  try {
    console.log('e2e: packaging the extension');
    const vsix = packageExtension();
    console.log(`e2e: ${path.relative(ROOT, vsix)} (${(fs.statSync(vsix).size / 2 ** 20).toFixed(1)} MiB)`);

    // A tiny checkpoint the extension can read, and one it must refuse.
    writeTinyGpt2(model, 1, {}, 262);
    writeByteLevelTokenizer(model);
    fs.mkdirSync(broken);
    fs.copyFileSync(path.join(model, 'config.json'), path.join(broken, 'config.json'));
    fs.writeFileSync(path.join(broken, 'pytorch_model.bin'), 'not really a pickle');

    fs.cpSync(path.join(ROOT, 'samples'), workspace, { recursive: true });
    writeJson(settingsFile, { 'loupe.modelPath': model });
    const userDataDir = path.join(tmp, 'user-data');
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

    await step('a sample file opens from the Explorer', async (p) => {
      await p.locator('.explorer-folders-view .monaco-list-row', { hasText: 'tokens.py' }).click();
      await waitForText(p, '.editor-group-container .monaco-editor .view-lines', 'def word_counts');
      await shot(p, '02-sample-file');
    });

    await step('"Loupe: Show Hook Points of the Model" is in the command palette', async (p) => {
      await runCommand(p, 'Loupe: Show Hook Points', 'Show Hook Points of the Model', '03-command-palette');
    });

    await step('the Output panel lists the hook points', async (p) => {
      const output = '.part.panel .monaco-editor .view-lines';
      await waitForText(p, output, /blocks\.1\.\S*hook_\w+/, true);
      await shot(p, '04-hooks-output');
      // The panel shows the end of the log; go to the top, where the first block starts.
      await runCommand(p, 'View: Toggle Maximized Panel', 'Toggle Maximized Panel');
      await p.locator(`${output} .view-line`).first().click();
      await p.keyboard.press('Control+Home');
      await waitForText(p, output, 'blocks.0.hook_resid_pre');
      await waitForText(p, output, /\d+ hook points/);
      await shot(p, '05-hooks-output-top');
      await p.keyboard.press('Control+End'); // back to the end, so the Output panel follows new lines again
      await runCommand(p, 'View: Toggle Maximized Panel', 'Toggle Maximized Panel');
    });

    await step('a pickle checkpoint is refused with an error notification', async (p) => {
      writeJson(settingsFile, { 'loupe.modelPath': broken });
      // VS Code picks up the edited settings.json through its file watcher.
      await p.waitForTimeout(2500);
      await runCommand(p, 'Loupe: Show Hook Points', 'Show Hook Points of the Model');
      const toast = p.locator('.notification-toast .notification-list-item-message', {
        hasText: 'PyTorch pickle weights are refused on purpose',
      });
      await toast.first().waitFor();
      const text = normalize(await toast.first().innerText());
      if (!text.includes('pytorch_model.bin'))
        throw new Error(`the notification does not name the file: ${text}`);
      await waitForText(p, '.part.panel .monaco-editor .view-lines', 'refused on purpose');
      // Let the progress toast leave and the error toast settle, then expand it to show the whole message.
      await p.locator('.notification-toast', { hasText: 'reading the model' }).waitFor({ state: 'detached' });
      const errorToast = p.locator('.notification-toast', { hasText: 'refused on purpose' }).first();
      await errorToast.hover(); // the expand button shows on hover
      const expand = errorToast.locator('.codicon-notifications-expand');
      if ((await expand.count()) > 0) await expand.click();
      await p.waitForTimeout(500);
      await shot(p, '06-pickle-error');
    });
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

/** F1, type, pick the entry, Enter: the way a user runs a command. */
async function runCommand(page: Page, query: string, label: string, screenshot?: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor();
  await input.fill(`>${query}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label });
  await row.first().waitFor();
  if (screenshot) await shot(page, screenshot);
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
}

/**
 * Waits until the text of `selector` (Monaco renders spaces as U+00A0) contains `want`;
 * with `failOnError`, an error notification that shows up meanwhile fails the wait at once.
 */
async function waitForText(
  page: Page,
  selector: string,
  want: string | RegExp,
  failOnError = false,
): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const texts = await page.locator(selector).allInnerTexts();
    const last = normalize(texts.join('\n'));
    if (typeof want === 'string' ? last.includes(want) : want.test(last)) return;
    if (failOnError) {
      const errors = await page
        .locator(
          '.notification-toast .notification-list-item:has(.codicon-error) .notification-list-item-message',
        )
        .allInnerTexts();
      if (errors.length > 0) throw new Error(`error notification: ${normalize(errors.join('\n'))}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${String(want)} in ${selector}; it showed:\n${last.slice(-600)}`,
      );
    }
    await page.waitForTimeout(250);
  }
}

function normalize(s: string): string {
  return s.replace(/\u00a0/g, ' ');
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
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
