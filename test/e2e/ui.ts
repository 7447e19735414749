/**
 * The end-to-end steps' ways of driving the workbench as a user would, and of
 * waiting for what it shows: the command palette, quick open, quick picks and
 * input boxes, file dialogs, webview frames, editor text and decorations,
 * notifications and Loupe's log. Plain functions of a Page or Frame, shared by
 * run.ts and the step modules it calls.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConsoleMessage, Frame, Locator, Page } from 'playwright-core';

/** How long to wait for one thing to appear, within a step. */
export const WAIT_MS = 60_000;
export const EDITOR_LINES = '.editor-group-container .monaco-editor .view-lines';
export const STATUS = '.part.statusbar';
/** The Token Inspector's root (every Loupe webview's root names its view). */
const INSPECTOR_ROOT = '#root[data-view="inspector"]';
/**
 * The Token Inspector once its script has drawn (the HTML shell alone shows
 * an empty root: a webview whose scripts never load looks like that).
 */
export const INSPECTOR_SHOWS = `${INSPECTOR_ROOT} > *`;
const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = '.quick-input-widget input.input';

/** Background colours (rgb part) Loupe draws with in the editor, per theme. */
export const TINTS = {
  /** Token boundaries (decorations.ts). */
  token: '0, 0, 0',
  /** A feature's heat map, and the positive side of a score map (decorations.ts, causalHeatMap.ts). */
  heatLight: '242, 106, 0',
  heatDark: '255, 149, 20',
  /** The negative side of a score map (causalHeatMap.ts). */
  coolLight: '0, 102, 204',
  /** Attention (attention.ts). */
  attentionLight: '0, 110, 220',
} as const;

/** What run.ts lends each module of steps: its step runner and its screenshots. */
export interface StepsBase {
  /** Runs one named step; a failure is recorded and screenshotted, and the next steps still run. */
  readonly step: (name: string, fn: (page: Page) => Promise<void>) => Promise<void>;
  readonly shot: (page: Page, name: string) => Promise<void>;
}

/** Monaco renders spaces as U+00A0. */
export function normalize(s: string): string {
  return s.replace(/\u00a0/g, ' ');
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** Polls `probe` every `everyMs` until it returns a value other than undefined; else throws `timeoutMessage()`. */
async function poll<T>(
  page: Page | Frame,
  probe: () => Promise<T | undefined>,
  timeoutMessage: () => string,
  timeoutMs = WAIT_MS,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(timeoutMessage());
    await page.waitForTimeout(everyMs);
  }
}

// ---- The command palette, quick open, quick picks ----

/**
 * Opens the command palette through the command center (the search box in
 * the title bar), which works wherever the focus is: a key pressed inside a
 * webview panel does not always reach the workbench. Resolves once the
 * focused row, which Enter runs, shows `label`. A quick input left open
 * (by a step that failed halfway, say) hides the command center: it is
 * closed first.
 */
async function openPalette(page: Page, query: string, label: string): Promise<void> {
  const widget = page.locator(QUICK_INPUT);
  if (await widget.isVisible()) {
    await page.keyboard.press('Escape');
    await widget.waitFor({ state: 'hidden', timeout: 5000 }).catch(() => undefined);
  }
  await page.locator('.command-center .command-center-center').click();
  const input = page.locator(QUICK_INPUT_BOX);
  await input.waitFor();
  await input.fill(`>${query}`);
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: label }).waitFor();
}

/** Runs a command from the palette and waits for the palette to close; `beforeRun` sees the palette open. */
export async function paletteCommand(
  page: Page,
  query: string,
  label: string,
  beforeRun?: () => Promise<void>,
): Promise<void> {
  await openPalette(page, query, label);
  if (beforeRun) await beforeRun();
  await page.keyboard.press('Enter');
  await page.locator(QUICK_INPUT).waitFor({ state: 'hidden' });
}

/** Starts a command that goes on to ask in quick picks or dialogs of its own: it does not wait for the palette to close. */
export async function startCommand(page: Page, query: string, label: string): Promise<void> {
  await openPalette(page, query, label);
  await page.keyboard.press('Enter');
}

/**
 * "Developer: Reload Window" (which, unlike a page reload, saves the editors'
 * state, the webviews' included, first), and the workbench of the reloaded
 * page: the old page's workbench and webviews stay until the reload happens,
 * and a step that looked at them then would see frames about to go. Waits
 * until a webview shows each of `webviews` (selectors), reloading the
 * webviews once if one does not.
 */
export async function reloadWindow(page: Page, webviews: readonly string[]): Promise<void> {
  const reloaded = page.waitForEvent('domcontentloaded');
  await paletteCommand(page, 'Developer: Reload Window', 'Reload Window');
  await reloaded;
  await page.locator('.monaco-workbench').waitFor();
  // This code-server's VS Code can leave one of the webviews that start together waiting for ever
  // for its service worker ("Found unexpected service worker controller"; fixed in later VS Code).
  // Reloading the webviews starts them again, from the same saved state.
  for (const selector of webviews) {
    if (await panelFrame(page, selector, 20_000).catch(() => null)) continue;
    // The frames that did show are replaced: wait for them to go, lest a step look at one going.
    const shows = (frame: Frame, s: string) =>
      frame
        .locator(s)
        .count()
        .catch(() => 0);
    const old: Frame[] = [];
    for (const frame of page.frames()) {
      for (const s of webviews) if ((await shows(frame, s)) > 0 && !old.includes(frame)) old.push(frame);
    }
    console.log('      (a webview hung on its service worker after the reload; reloading the webviews)');
    await paletteCommand(page, 'Developer: Reload Webviews', 'Reload Webviews');
    await poll(
      page,
      async () => (old.every((f) => f.isDetached()) ? true : undefined),
      () => 'the webviews were not reloaded',
      10_000,
    ).catch(() => undefined);
    return;
  }
}

/** Ctrl+P, the file's name, Enter. */
export async function quickOpen(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  await page.locator(QUICK_INPUT_BOX).fill(name);
  // Enter opens the focused row, once the list has caught up with what was typed.
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: name }).waitFor();
  await page.keyboard.press('Enter');
  await page.locator(QUICK_INPUT).waitFor({ state: 'hidden' });
  await waitForText(page, '.editor-group-container .tab.active', name);
}

/** Clicks the quick pick's (first) row that shows `label`. */
export async function pickRow(page: Page, label: string | RegExp): Promise<void> {
  await page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first().click();
}

/** Waits until the open quick input asks for `text` (in its title, prompt or placeholder). */
export async function waitForPrompt(page: Page, text: string): Promise<void> {
  await poll(
    page,
    async () =>
      (await page.evaluate((t) => {
        const widget = document.querySelector<HTMLElement>('.quick-input-widget');
        const input = widget?.querySelector<HTMLInputElement>('input.input');
        if (!widget || widget.style.display === 'none') return false;
        return (widget.innerText + ' ' + (input?.placeholder ?? '')).includes(t);
      }, text)) || undefined,
    () => `the quick input never asked for ${text}`,
    WAIT_MS,
    100,
  );
}

/** Answers VS Code's own (simple) open or save dialog, as code-server shows it, with a path. */
export async function chooseInDialog(page: Page, target: string): Promise<void> {
  const input = page.locator(QUICK_INPUT_BOX);
  // The dialog shows once the input holds its starting folder (the palette's input is reused).
  await poll(
    page,
    async () => ((await input.inputValue().catch(() => '')).startsWith(path.sep) ? true : undefined),
    () => 'the file dialog did not open',
    30_000,
    100,
  );
  // The dialog may still be filling in its starting folder when the path is typed (it then
  // rewrites the input), so type again until the path stays.
  for (let attempt = 1; ; attempt++) {
    await input.fill(target);
    await page.waitForTimeout(300); // the dialog lists the typed folder's entries before it accepts
    if ((await input.inputValue()) === target) break;
    if (attempt === 5) throw new Error(`the dialog shows ${await input.inputValue()}`);
  }
  await page.keyboard.press('Enter');
  await page.locator(QUICK_INPUT).waitFor({ state: 'hidden' });
}

// ---- Webviews ----

/** The frame of a webview panel or view that shows `selector` (webviews are nested iframes). */
export async function panelFrame(page: Page, selector: string, timeoutMs = WAIT_MS): Promise<Frame> {
  return poll(
    page,
    async () => {
      for (const frame of page.frames()) {
        if (
          await frame
            .locator(selector)
            .count()
            .catch(() => 0)
        )
          return frame;
      }
      return undefined;
    },
    () => `no webview shows ${selector}`,
    timeoutMs,
  );
}

/** The Token Inspector's frame. */
export async function inspectorFrame(page: Page): Promise<Frame> {
  return panelFrame(page, INSPECTOR_ROOT).catch(() => {
    throw new Error('the Token Inspector did not appear');
  });
}

/**
 * Collects what webview frames log that matches `pattern` (CSP refusals,
 * messages a side refused) from now until `stop()`, which returns it.
 */
export function watchConsole(page: Page, pattern: RegExp): { stop: () => string[] } {
  const complaints: string[] = [];
  const listen = (message: ConsoleMessage) => {
    const text = message.text();
    if (pattern.test(text)) complaints.push(text);
  };
  page.on('console', listen);
  return {
    stop: () => {
      page.off('console', listen);
      return complaints;
    },
  };
}

// ---- Text, the editor and its decorations ----

/**
 * Waits until the text of `selector` contains `want`; with `failOnError`, an
 * error notification that shows up meanwhile fails the wait at once.
 */
export async function waitForText(
  page: Page | Frame,
  selector: string,
  want: string | RegExp,
  failOnError = false,
): Promise<void> {
  let last = '';
  await poll(
    page,
    async () => {
      last = normalize((await page.locator(selector).allInnerTexts()).join('\n'));
      if (typeof want === 'string' ? last.includes(want) : want.test(last)) return true;
      if (failOnError) {
        const errors = await page
          .locator(
            '.notification-toast .notification-list-item:has(.codicon-error) .notification-list-item-message',
          )
          .allInnerTexts();
        if (errors.length > 0) throw new Error(`error notification: ${normalize(errors.join('\n'))}`);
      }
      return undefined;
    },
    () => `timed out waiting for ${String(want)} in ${selector}; it showed:\n${last.slice(-600)}`,
  );
}

/** Waits until the editor shows at least `min` of the decorations extensions add (`ced-` classes) painted in `rgb`. */
export async function waitForTint(page: Page, rgb: string, min = 3): Promise<void> {
  await poll(
    page,
    async () => {
      const n = await page.evaluate((prefix) => {
        const editor = document.querySelector('.editor-group-container .monaco-editor .lines-content');
        if (!editor) return 0;
        let count = 0;
        for (const el of editor.querySelectorAll('[class*="ced-"]')) {
          if (getComputedStyle(el).backgroundColor.startsWith(prefix)) count++;
        }
        return count;
      }, `rgba(${rgb}, `);
      return n >= min ? true : undefined;
    },
    () => `no decorations in rgba(${rgb}, …) appeared in the editor`,
  );
}

/** Clicks on character `at` of `needle` in the first editor line showing it. */
export async function clickText(page: Page, needle: string, at: number): Promise<void> {
  const point = await charPoint(page, needle, at);
  await page.mouse.click(point.x, point.y);
}

/** The centre of character `at` of `needle` in the first editor line showing it. */
async function charPoint(page: Page, needle: string, at: number): Promise<{ x: number; y: number }> {
  const line = page
    .locator(`${EDITOR_LINES} .view-line`, { hasText: needle.replace(/ /g, '\u00a0') })
    .first();
  const point = await line.evaluate(
    (el, [n, i]) => {
      const text = (el.textContent ?? '').replace(/\u00a0/g, ' ');
      let offset = text.indexOf(n) + i;
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const len = node.textContent?.length ?? 0;
        if (offset < len) {
          const range = document.createRange();
          range.setStart(node, offset);
          range.setEnd(node, offset + 1);
          const r = range.getBoundingClientRect();
          return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
        }
        offset -= len;
      }
      return null;
    },
    [needle, at] as const,
  );
  if (!point) throw new Error(`"${needle}" is not on screen`);
  return point;
}

/** The status bar's "Ln 3, Col 7" (with "(n selected)" when there is a selection). */
export async function cursorPosition(page: Page): Promise<string> {
  return normalize(await page.locator('#status\\.editor\\.selection').innerText()).trim();
}

// ---- Notifications and Loupe's log ----

/** The (first) notification toast that shows `text`. */
export function notification(page: Page, text: string | RegExp): Locator {
  return page.locator('.notification-toast', { hasText: text }).first();
}

/** Expands an error notification so that its whole message shows. */
export async function expandToast(page: Page, text: string): Promise<void> {
  const toast = notification(page, text);
  await toast.hover(); // the expand button shows on hover
  const expand = toast.locator('.codicon-notifications-expand');
  if ((await expand.count()) > 0) await expand.click();
  await page.waitForTimeout(500);
}

/** Loupe's Output channel as VS Code writes it to disk, under code-server's user data folder. */
export function readLog(userDataDir: string): string {
  const logs = path.join(userDataDir, 'logs');
  const files = fs
    .readdirSync(logs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('Loupe.log'));
  return files.map((f) => fs.readFileSync(path.join(logs, f), 'utf8')).join('\n');
}

/** The first line of Loupe's log that matches `pattern`, once there is one. */
export async function waitForLog(userDataDir: string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const line = readLog(userDataDir)
      .split('\n')
      .find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`Loupe's log has no line like ${String(pattern)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
