/**
 * The Lens Grid webview: rows are lens layers (the embeddings at the top,
 * the model's output at the bottom), columns the tokens of the editor's
 * selection; each cell shows the token that layer finds most likely next,
 * shaded by its probability or by the rank of the token that really comes
 * next (a switch), bold where the two are the same. A click, Enter or Space
 * on a cell shows its top 10; the arrow keys move between cells. Everything
 * shown comes from the host (lensProtocol.ts); lit escapes all text. UI
 * state (the lens, the colouring, the cell in focus) is kept with
 * getState/setState.
 *
 * Hundreds of columns stay quick: the table is drawn once per grid (shades
 * are classes, so the CSP needs no inline styles), and moving between cells
 * touches two cells' attributes and the detail pane, not the table.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { TemplateResult, html, nothing, render } from 'lit';
import {
  LensAction,
  LensChoice,
  LensGridData,
  LensGridToHost,
  hostToLensGrid,
  lensChoice,
} from '../lensProtocol';
import { onHostMessage, vsCodeApi } from '../shared/host';
import './lensGrid.css';

type Colouring = 'prob' | 'rank';

/** Saved UI state; bump `schema` when its shape changes (an older one is then ignored). */
interface UiState {
  readonly schema: 1;
  readonly lens: LensChoice;
  readonly colour: Colouring;
  /** The cell in focus, by lens layer and document token, so that it survives a new grid of the same text. */
  readonly cell: { readonly layer: number; readonly token: number } | null;
}

const LEVELS = 8;
const LENSES: readonly { value: LensChoice; label: string }[] = [
  { value: 'logit', label: 'Logit lens' },
  { value: 'tuned', label: 'Tuned lens' },
  { value: 'free-self', label: 'Attention-free (self only)' },
  { value: 'free-skip', label: 'Attention-free (no attention)' },
];
/** Rank bins of the "rank of the next token" colouring, strongest first (level 8 down to 1). */
const RANK_BINS: readonly { max: number; label: string }[] = [
  { max: 1, label: '1' },
  { max: 2, label: '2' },
  { max: 5, label: '≤5' },
  { max: 10, label: '≤10' },
  { max: 50, label: '≤50' },
  { max: 100, label: '≤100' },
  { max: 1000, label: '≤1k' },
  { max: Infinity, label: '>1k' },
];

const vscode = vsCodeApi<LensGridToHost, UiState>();
const root = document.getElementById('root')!;
root.innerHTML = '<div class="top"></div><div class="grid-box"></div><div class="detail"></div>';
const topBox = root.querySelector<HTMLElement>('.top')!;
const gridBox = root.querySelector<HTMLElement>('.grid-box')!;
const detailBox = root.querySelector<HTMLElement>('.detail')!;

let ui: UiState = restoreUi(vscode.getState());
let data: LensGridData | null = null;
let busy: string | null = 'Starting…';
let problem: { message: string; actions: readonly LensAction[] } | null = null;
/** The cell in focus: row (index into data.layers) and column. */
let active: { row: number; col: number } | null = null;

function restoreUi(saved: unknown): UiState {
  const s = saved as Partial<UiState> | undefined;
  const fresh: UiState = { schema: 1, lens: 'logit', colour: 'prob', cell: null };
  if (s?.schema !== 1) return fresh;
  let lens = fresh.lens;
  try {
    lens = lensChoice.parse(s.lens);
  } catch {
    // a lens from another version: the logit lens
  }
  const cell = s.cell;
  return {
    schema: 1,
    lens,
    colour: s.colour === 'rank' ? 'rank' : 'prob',
    cell:
      cell && Number.isSafeInteger(cell.layer) && Number.isSafeInteger(cell.token)
        ? { layer: cell.layer, token: cell.token }
        : null,
  };
}

function saveUi(change: Partial<Omit<UiState, 'schema'>>): void {
  ui = { ...ui, ...change };
  vscode.setState(ui);
}

function post(message: LensGridToHost): void {
  vscode.postMessage(message);
}

onHostMessage(
  'lens grid',
  (raw) => hostToLensGrid.parse(raw),
  (message) => {
    switch (message.type) {
      case 'grid':
        busy = null;
        problem = null;
        data = message.data;
        active = restoreActive(data);
        drawGrid();
        break;
      case 'busy':
        busy = message.message;
        problem = null;
        break;
      case 'problem':
        busy = null;
        problem = { message: message.message, actions: message.actions };
        data = null;
        active = null;
        drawGrid();
        break;
      case 'lens':
        saveUi({ lens: message.lens });
        break;
    }
    drawTop();
    drawDetail();
  },
);

/** The saved cell, if the new grid has its layer and token. */
function restoreActive(d: LensGridData): { row: number; col: number } | null {
  if (!ui.cell) return null;
  const row = d.layers.indexOf(ui.cell.layer);
  const col = d.columns.findIndex((c) => c.token === ui.cell!.token);
  return row >= 0 && col >= 0 ? { row, col } : null;
}

// ---- formatting ----

/** Whitespace made visible, as a token shown on its own needs it. */
function visible(text: string): string {
  if (text === '') return '∅';
  return text
    .replace(/\r\n|\n|\r/g, '↵')
    .replace(/\t/g, '→')
    .replace(/ /g, '·');
}

function percent(p: number): string {
  if (p >= 0.995) return '100%';
  if (p >= 0.1) return `${(p * 100).toFixed(0)}%`;
  if (p >= 0.001) return `${(p * 100).toFixed(1)}%`;
  return `${(p * 100).toPrecision(1)}%`;
}

function layerLabel(d: LensGridData, layer: number): string {
  if (layer === 0) return 'embed';
  return layer === d.nLayers ? `L${layer - 1} · output` : `after L${layer - 1}`;
}

function layerTitle(d: LensGridData, layer: number): string {
  if (layer === d.nLayers) {
    return `The stream after the last block (blocks.${layer - 1}.hook_resid_post): the model's own prediction`;
  }
  return layer === 0
    ? 'The embeddings (blocks.0.hook_resid_pre)'
    : `The stream entering block ${layer} (blocks.${layer}.hook_resid_pre)`;
}

function level(d: LensGridData, row: number, col: number): number {
  const at = row * d.columns.length + col;
  if (ui.colour === 'prob') {
    const p = d.topProbs[at * d.top];
    return p > 0 ? Math.min(LEVELS, Math.ceil(p * LEVELS)) : 0;
  }
  const rank = d.nextRanks[at];
  if (rank === 0) return 0;
  return LEVELS - RANK_BINS.findIndex((b) => rank <= b.max);
}

// ---- the toolbar, legend and status ----

function onLensChange(event: Event): void {
  try {
    const lens = lensChoice.parse((event.target as HTMLSelectElement).value);
    if (lens === ui.lens) return;
    saveUi({ lens });
    post({ type: 'setLens', lens });
  } catch {
    // not one of ours
  }
}

function onColourChange(event: Event): void {
  const colour = (event.target as HTMLSelectElement).value === 'rank' ? 'rank' : 'prob';
  if (colour === ui.colour) return;
  saveUi({ colour });
  drawGrid();
  drawTop();
}

function legend(): TemplateResult {
  const swatches =
    ui.colour === 'prob'
      ? Array.from({ length: LEVELS }, (_, i) => ({
          level: i + 1,
          label: i === 0 ? `≤${100 / LEVELS}%` : i === LEVELS - 1 ? '100%' : '',
        }))
      : RANK_BINS.map((b, i) => ({ level: LEVELS - i, label: b.label }));
  const what = ui.colour === 'prob' ? 'Top token’s probability' : 'Rank of the token that comes next';
  return html`<div class="legend" aria-label=${`Colour scale: ${what}`}>
    <span class="legend-title">${what}</span>
    <span class="scale ${ui.colour}">
      ${swatches.map(
        (s) =>
          html`<span class="swatch" data-level=${s.level}
            ><span class="swatch-label">${s.label}</span></span
          >`,
      )}
    </span>
    <span class="hit-key"><b>bold</b>: the top token is the one that comes next</span>
  </div>`;
}

function status(): TemplateResult | typeof nothing {
  if (!data) return nothing;
  const n = data.columns.length;
  const cut =
    data.truncated > 0 ? html` · <span class="warning">${data.truncated} more left out</span>` : nothing;
  const lens = data.lens === 'tuned' && data.tunedLens ? ` · ${data.tunedLens}` : '';
  return html`<span class="status" title=${`The engine took ${data.engineMillis.toFixed(0)} ms`}
    >${data.file} · ${data.where} · ${n} token${n === 1 ? '' : 's'}${lens}${cut} · ${data.millis.toFixed(0)}
    ms</span
  >`;
}

function drawTop(): void {
  render(
    html`<header class="toolbar">
        <label class="field"
          ><span>Lens</span>
          <vscode-single-select aria-label="Lens" @change=${onLensChange}>
            ${LENSES.map(
              (l) =>
                html`<vscode-option value=${l.value} ?selected=${l.value === ui.lens}
                  >${l.label}</vscode-option
                >`,
            )}
          </vscode-single-select></label
        >
        <label class="field"
          ><span>Colour by</span>
          <vscode-single-select aria-label="Colour cells by" @change=${onColourChange}>
            <vscode-option value="prob" ?selected=${ui.colour === 'prob'}
              >Top token’s probability</vscode-option
            >
            <vscode-option value="rank" ?selected=${ui.colour === 'rank'}
              >Rank of the next token</vscode-option
            >
          </vscode-single-select></label
        >
        ${status()}
      </header>
      ${data ? legend() : nothing}
      ${busy ? html`<vscode-progress-bar class="busy" aria-label=${busy}></vscode-progress-bar>` : nothing}
      ${busy && !data && !problem ? html`<p class="hint">${busy}…</p>` : nothing}
      ${
        problem
          ? html`<div class="empty-state" role="status">
              <p>${problem.message}</p>
              <div class="actions">
                ${problem.actions.map(
                  (a, i) =>
                    html`<vscode-button
                      ?secondary=${i > 0}
                      @click=${() => post({ type: 'run', command: a.command })}
                      >${a.label}</vscode-button
                    >`,
                )}
              </div>
            </div>`
          : nothing
      }`,
    topBox,
  );
}

// ---- the grid ----

function drawGrid(): void {
  const d = data;
  if (!d) {
    render(nothing, gridBox);
    return;
  }
  const cols = d.columns.length;
  const word = (i: number) => (i >= 0 ? visible(d.words[i]) : '');
  const tabbable = active ?? { row: 0, col: 0 };
  render(
    html`<table
      class="grid"
      role="grid"
      aria-label=${`What each layer predicts after each token of ${d.file}, ${d.where}`}
      aria-rowcount=${d.layers.length + 2}
      aria-colcount=${cols + 1}
      @keydown=${onGridKey}
      @click=${onGridClick}
    >
      <thead>
        <tr>
          <th class="corner" scope="col">layer \\ token</th>
          ${d.columns.map(
            (c, j) =>
              html`<th
                scope="col"
                class="token"
                data-col=${j}
                title=${`Token ${c.token}: ${JSON.stringify(c.text)}`}
              >
                ${visible(c.text)}
              </th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${d.layers.map(
          (layer, i) =>
            html`<tr>
              <th scope="row" class="layer" title=${layerTitle(d, layer)}>${layerLabel(d, layer)}</th>
              ${d.columns.map((_, j) => {
                const at = i * cols + j;
                const top = d.topWords[at * d.top];
                const next = d.nextWords[j];
                const hit = next >= 0 && top === next;
                const rank = d.nextRanks[at];
                const title =
                  `${JSON.stringify(d.words[top] ?? '')} ${percent(d.topProbs[at * d.top])}` +
                  (next >= 0
                    ? ` · next ${JSON.stringify(d.words[next])}: rank ${rank}, ${percent(d.nextProbs[at])}`
                    : '');
                return html`<td
                  role="gridcell"
                  id=${`cell-${i}-${j}`}
                  class="cell ${hit ? 'hit' : ''} ${next < 0 && ui.colour === 'rank' ? 'none' : ''}"
                  data-level=${level(d, i, j)}
                  data-row=${i}
                  data-col=${j}
                  tabindex="-1"
                  aria-selected="false"
                  title=${title}
                >
                  ${word(top)}
                </td>`;
              })}
            </tr>`,
        )}
        <tr class="next-row">
          <th scope="row" class="layer" title="The token that comes next in the file">next</th>
          ${d.columns.map((_, j) => html`<td class="next">${d.nextWords[j] >= 0 ? word(d.nextWords[j]) : '—'}</td>`)}
        </tr>
      </tbody>
    </table>`,
    gridBox,
  );
  // The focus marks are set by hand (activate), so lit keeps no stale copy of them: clear the old, mark the new.
  for (const el of gridBox.querySelectorAll<HTMLElement>(
    'td.cell[tabindex="0"], td.cell[aria-selected="true"]',
  )) {
    el.setAttribute('tabindex', '-1');
    el.setAttribute('aria-selected', 'false');
  }
  cellAt(tabbable)?.setAttribute('tabindex', '0');
  if (active) {
    cellAt(active)?.setAttribute('aria-selected', 'true');
    scrollToCell(active, false);
  }
}

function cellAt(pos: { row: number; col: number }): HTMLElement | null {
  return gridBox.querySelector<HTMLElement>(`#cell-${pos.row}-${pos.col}`);
}

function scrollToCell(pos: { row: number; col: number }, focus: boolean): void {
  const cell = cellAt(pos);
  if (!cell) return;
  if (focus) cell.focus({ preventScroll: true });
  // Clear of the sticky header row and layer column.
  const box = gridBox.getBoundingClientRect();
  const r = cell.getBoundingClientRect();
  const stickyLeft = gridBox.querySelector('th.layer')?.getBoundingClientRect().width ?? 0;
  const stickyTop = gridBox.querySelector('thead')?.getBoundingClientRect().height ?? 0;
  if (r.left < box.left + stickyLeft) gridBox.scrollLeft -= box.left + stickyLeft - r.left + 8;
  else if (r.right > box.right) gridBox.scrollLeft += r.right - box.right + 8;
  if (r.top < box.top + stickyTop) gridBox.scrollTop -= box.top + stickyTop - r.top;
  else if (r.bottom > box.bottom) gridBox.scrollTop += r.bottom - box.bottom;
}

/** Moves the focus (and the detail) to a cell: two cells' attributes change, the table is not drawn again. */
function activate(pos: { row: number; col: number }, focus = true): void {
  const d = data;
  if (!d) return;
  for (const el of gridBox.querySelectorAll<HTMLElement>(
    'td.cell[tabindex="0"], td.cell[aria-selected="true"]',
  )) {
    el.setAttribute('tabindex', '-1');
    el.setAttribute('aria-selected', 'false');
  }
  active = pos;
  const cell = cellAt(pos);
  cell?.setAttribute('tabindex', '0');
  cell?.setAttribute('aria-selected', 'true');
  saveUi({ cell: { layer: d.layers[pos.row], token: d.columns[pos.col].token } });
  scrollToCell(pos, focus);
  drawDetail();
}

function onGridClick(event: MouseEvent): void {
  const cell = (event.target as HTMLElement).closest<HTMLElement>('td.cell');
  if (!cell) return;
  activate({ row: Number(cell.dataset.row), col: Number(cell.dataset.col) });
}

function onGridKey(event: KeyboardEvent): void {
  const d = data;
  if (!d) return;
  const rows = d.layers.length;
  const cols = d.columns.length;
  const at = active ?? { row: 0, col: 0 };
  const moves: Record<string, () => { row: number; col: number }> = {
    ArrowUp: () => ({ row: Math.max(0, at.row - 1), col: at.col }),
    ArrowDown: () => ({ row: Math.min(rows - 1, at.row + 1), col: at.col }),
    ArrowLeft: () => ({ row: at.row, col: Math.max(0, at.col - 1) }),
    ArrowRight: () => ({ row: at.row, col: Math.min(cols - 1, at.col + 1) }),
    Home: () => ({ row: event.ctrlKey ? 0 : at.row, col: 0 }),
    End: () => ({ row: event.ctrlKey ? rows - 1 : at.row, col: cols - 1 }),
    PageUp: () => ({ row: 0, col: at.col }),
    PageDown: () => ({ row: rows - 1, col: at.col }),
  };
  const move = moves[event.key];
  if (move) {
    event.preventDefault();
    activate(move());
  } else if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    activate(at);
  }
}

// ---- the detail: one cell's top 10 ----

function drawDetail(): void {
  const d = data;
  if (!d || !active) {
    render(
      d
        ? html`<p class="hint">Click a cell (or focus the grid and press Enter) to see its top ${d.top}.</p>`
        : nothing,
      detailBox,
    );
    return;
  }
  const { row, col } = active;
  const cols = d.columns.length;
  const at = row * cols + col;
  const layer = d.layers[row];
  const next = d.nextWords[col];
  const column = d.columns[col];
  const tops = Array.from({ length: d.top }, (_, r) => ({
    word: d.topWords[at * d.top + r],
    prob: d.topProbs[at * d.top + r],
  })).filter((t) => t.word >= 0);
  const best = tops[0]?.prob ?? 1;
  render(
    html`<section aria-live="polite" aria-label="The chosen cell's most likely tokens">
      <h2>
        <code class="tok">${visible(column.text)}</code>
        <span class="layer-name" title=${layerTitle(d, layer)}>${layerLabel(d, layer)}</span>
        <span class="where">token ${column.token} · ${layerTitle(d, layer)}</span>
      </h2>
      <p class="facts">
        ${
          next >= 0
            ? html`Next in the file: <code class="tok">${visible(d.words[next])}</code>, rank
                ${d.nextRanks[at]}, ${percent(d.nextProbs[at])} · `
            : html`The window ends here: no next token · `
        }
        entropy ${d.entropy[at].toFixed(2)} nats
      </p>
      <ol class="top">
        ${tops.map(
          (t) =>
            html`<li class=${t.word === next ? 'is-next' : ''}>
              <code class="tok">${visible(d.words[t.word])}</code>
              <span class="bar" aria-hidden="true"
                ><span data-fraction=${(t.prob / best).toFixed(4)}></span
              ></span>
              <span class="prob">${percent(t.prob)}</span>
            </li>`,
        )}
      </ol>
    </section>`,
    detailBox,
  );
  // Bar widths through the CSSOM (the CSP allows no inline styles).
  for (const el of detailBox.querySelectorAll<HTMLElement>('[data-fraction]')) {
    el.style.width = `${Number(el.dataset.fraction) * 100}%`;
  }
}

drawTop();
drawGrid();
drawDetail();
post({ type: 'ready', lens: ui.lens });
