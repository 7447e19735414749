/**
 * The Heads panel webview: a layer × head grid, each head coloured by its
 * direct logit attribution to the prediction at the editor's cursor (blue
 * for, red against, and the value printed with its sign), with an MLP column
 * and the remaining parts below; an optional "A and not B" pair; and beside
 * it the heads' text directions (TextSpan), computed on request. A click or
 * Enter on a head shows its attention in the editor; a click on a layer's
 * name shows all of its heads. Arrow keys move between heads. Data comes
 * from the host (lensProtocol.ts); UI state (the pair, the head in focus,
 * whether directions were shown) is kept with getState/setState.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { TemplateResult, html, nothing, render } from 'lit';
import { AttributionData, DirectionsState, HeadsToHost, hostToHeads } from '../lensProtocol';
import { onHostMessage, vsCodeApi } from '../shared/host';
import './heads.css';

interface UiState {
  readonly schema: 1;
  readonly target: string;
  readonly versus: string;
  readonly focus: { readonly layer: number; readonly head: number } | null;
  /** Text directions were shown: a reload asks for them again (the engine's cache answers). */
  readonly directions: boolean;
}

const LEVELS = 8;

const vscode = vsCodeApi<HeadsToHost, UiState>();
const root = document.getElementById('root')!;

let ui: UiState = restoreUi(vscode.getState());
let model: { name: string | null; nLayers: number; nHeads: number } | null = null;
let attribution: AttributionData | null = null;
let attributionNote: string | null = null;
let attributionBusy = false;
let directions: DirectionsState = { kind: 'none' };
let shown: { layer: number | null; head: number | null } = { layer: null, head: null };
/** The pair as typed, before Apply. */
let draft = { target: ui.target, versus: ui.versus };

function restoreUi(saved: unknown): UiState {
  const s = saved as Partial<UiState> | undefined;
  const fresh: UiState = { schema: 1, target: '', versus: '', focus: null, directions: false };
  if (s?.schema !== 1) return fresh;
  const f = s.focus;
  return {
    schema: 1,
    target: typeof s.target === 'string' ? s.target : '',
    versus: typeof s.versus === 'string' ? s.versus : '',
    focus:
      f && Number.isSafeInteger(f.layer) && Number.isSafeInteger(f.head)
        ? { layer: f.layer, head: f.head }
        : null,
    directions: s.directions === true,
  };
}

function saveUi(change: Partial<Omit<UiState, 'schema'>>): void {
  ui = { ...ui, ...change };
  vscode.setState(ui);
}

function post(message: HeadsToHost): void {
  vscode.postMessage(message);
}

onHostMessage(
  'heads panel',
  (raw) => hostToHeads.parse(raw),
  (message) => {
    switch (message.type) {
      case 'model':
        model =
          message.name === null
            ? null
            : { name: message.name, nLayers: message.nLayers, nHeads: message.nHeads };
        if (model && ui.focus && (ui.focus.layer >= model.nLayers || ui.focus.head >= model.nHeads)) {
          saveUi({ focus: null });
        }
        break;
      case 'attribution':
        attribution = message.data;
        attributionNote = null;
        attributionBusy = false;
        break;
      case 'attributionProblem':
        attributionNote = message.message;
        attributionBusy = false;
        break;
      case 'attributionBusy':
        attributionBusy = true;
        break;
      case 'directions':
        directions = message.state;
        if (directions.kind === 'ready' && !ui.directions) saveUi({ directions: true });
        break;
      case 'attention':
        shown = { layer: message.layer, head: message.head };
        break;
    }
    draw();
  },
);

// ---- formatting ----

function visible(text: string): string {
  if (text === '') return '∅';
  return text
    .replace(/\r\n|\n|\r/g, '↵')
    .replace(/\t/g, '→')
    .replace(/ /g, '·');
}

/** A signed value: the sign always shows (a minus sign, not a hyphen). */
function signed(v: number, digits = 2): string {
  const s = Math.abs(v).toFixed(digits);
  return Number(s) === 0 ? ` ${s}` : v > 0 ? `+${s}` : `−${s}`;
}

function percent(p: number): string {
  return `${(100 * p).toFixed(p >= 0.1 ? 0 : 1)}%`;
}

/** Diverging level: −8..8 by value / scale. */
function level(v: number, scale: number): number {
  if (!(scale > 0) || v === 0) return 0;
  const l = Math.max(1, Math.min(LEVELS, Math.ceil((Math.abs(v) / scale) * LEVELS)));
  return v > 0 ? l : -l;
}

// ---- the pair ----

function applyPair(): void {
  const target = draft.target;
  const versus = draft.versus;
  saveUi({ target, versus });
  post({ type: 'setPair', target, versus });
  draw();
}

function clearPair(): void {
  draft = { target: '', versus: '' };
  applyPair();
}

function onPairKey(event: KeyboardEvent): void {
  if (event.key === 'Enter') {
    event.preventDefault();
    applyPair();
  }
}

function pairForm(): TemplateResult {
  const applied = ui.target !== '' || ui.versus !== '';
  const changed = draft.target !== ui.target || draft.versus !== ui.versus;
  return html`<div class="pair" role="group" aria-label="Attribute to a token, and not another">
    <label for="target">Token A</label>
    <vscode-textfield
      id="target"
      placeholder="top prediction"
      aria-label="Token A: the token whose logit is attributed (empty: the model's prediction); text or #id"
      .value=${draft.target}
      @input=${(e: Event) => (draft = { ...draft, target: (e.target as HTMLInputElement).value })}
      @keydown=${onPairKey}
    ></vscode-textfield>
    <label for="versus">and not B</label>
    <vscode-textfield
      id="versus"
      placeholder="none"
      aria-label="Token B: subtract its logit (empty: none); text or #id"
      .value=${draft.versus}
      @input=${(e: Event) => (draft = { ...draft, versus: (e.target as HTMLInputElement).value })}
      @keydown=${onPairKey}
    ></vscode-textfield>
    <vscode-button ?secondary=${!changed} @click=${applyPair}>Apply</vscode-button>
    ${applied ? html`<vscode-button secondary @click=${clearPair}>Clear</vscode-button>` : nothing}
  </div>`;
}

// ---- the grid ----

function header(): TemplateResult {
  const a = attribution;
  if (!a) return html`<p class="what">${attributionNote ?? 'Put the cursor on a token in the editor.'}</p>`;
  const what =
    a.versus === null
      ? html`the logit of <code class="tok">${visible(a.target)}</code>`
      : html`logit <code class="tok">${visible(a.target)}</code> − logit
          <code class="tok">${visible(a.versus)}</code>`;
  return html`<p class="what">
      After <code class="tok">${visible(a.token)}</code>
      <span class="where">${a.file}:${a.line}:${a.column}</span>: what each head writes directly into ${what}
      = <b>${a.logit.toFixed(2)}</b>
      ${
        a.cappedLogit === null
          ? nothing
          : html`<span class="where"
              >(before the model's final soft-cap, as attribution is linear; after it:
              ${a.cappedLogit.toFixed(2)})</span
            >`
      }
    </p>
    ${attributionNote ? html`<p class="error" role="alert">${attributionNote}</p>` : nothing}`;
}

function grid(): TemplateResult {
  const m = model;
  if (!m) return html`<p class="hint">No model is loaded.</p>`;
  const a = attribution;
  const scale = a ? Math.max(1e-9, ...a.heads.flat().map(Math.abs)) : 1;
  const focus = ui.focus ?? { layer: 0, head: 0 };
  const heads = Array.from({ length: m.nHeads }, (_, h) => h);
  return html`<table
      class="heads"
      role="grid"
      aria-label="Each head's direct effect on the prediction, by layer and head"
      @keydown=${onGridKey}
    >
      <thead>
        <tr>
          <th class="corner" scope="col">layer</th>
          ${heads.map((h) => html`<th scope="col">H${h}</th>`)}
          <th scope="col" class="mlp-head" title="Each layer's MLP (hook_mlp_out), on the heads' scale">
            MLP
          </th>
        </tr>
      </thead>
      <tbody>
        ${Array.from(
          { length: m.nLayers },
          (_, l) =>
            html`<tr>
              <th scope="row">
                <button
                  class="layer-button ${shown.layer === l && shown.head === null ? 'shown' : ''}"
                  title=${`Show all heads of layer ${l} in the editor`}
                  @click=${() => post({ type: 'showAttention', layer: l, head: null })}
                >
                  L${l}
                </button>
              </th>
              ${heads.map((h) => {
                const v = a?.heads[l]?.[h];
                const isFocus = focus.layer === l && focus.head === h;
                const isShown = shown.layer === l && shown.head === h;
                return html`<td
                  role="gridcell"
                  id=${`head-${l}-${h}`}
                  class="head ${isShown ? 'shown' : ''}"
                  tabindex=${isFocus ? 0 : -1}
                  aria-selected=${ui.focus !== null && isFocus ? 'true' : 'false'}
                  data-level=${v === undefined ? 0 : level(v, scale)}
                  title=${v === undefined ? `L${l}H${h}` : `L${l}H${h}: ${signed(v, 4)}${isShown ? ' · shown in the editor' : ''}`}
                  @click=${() => chooseHead(l, h, true)}
                  @focus=${() => focusHead(l, h)}
                >
                  ${v === undefined ? '·' : signed(v)}
                </td>`;
              })}
              <td
                class="mlp"
                data-level=${a ? level(a.mlp[l], scale) : 0}
                title=${a ? `MLP ${l}: ${signed(a.mlp[l], 4)}` : ''}
              >
                ${a ? signed(a.mlp[l]) : '·'}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${a ? rest(a, scale) : nothing}`;
}

function rest(a: AttributionData, scale: number): TemplateResult {
  const bias = a.attnBias.reduce((x, y) => x + y, 0);
  const parts: [string, number, string][] = [
    ['embed', a.embed, 'hook_embed'],
    ...(a.posEmbed !== null
      ? ([['positions', a.posEmbed, 'hook_pos_embed']] as [string, number, string][])
      : []),
    ['attention biases', bias, "every layer's b_O"],
    ['norm and unembedding biases', a.constant, 'the part no component writes'],
  ];
  return html`<div class="legend">
      <span class="scale" aria-hidden="true">
        ${[-8, -6, -4, -2, 0, 2, 4, 6, 8].map((l) => html`<span class="swatch" data-level=${l}></span>`)}
      </span>
      <span>${signed(-scale)} against … ${signed(scale)} for the token (the strongest head)</span>
    </div>
    <p class="parts">
      ${parts.map(([name, v, title]) => html`<span title=${title}>${name} <b>${signed(v)}</b></span>`)}
      <span title="Every part added up; the model's own logit is above">sum <b>${signed(a.total)}</b></span>
    </p>`;
}

function focusHead(layer: number, head: number): void {
  if (ui.focus?.layer === layer && ui.focus?.head === head) return;
  saveUi({ focus: { layer, head } });
  draw();
}

/** Focus a head and show its attention in the editor. */
function chooseHead(layer: number, head: number, attention: boolean): void {
  saveUi({ focus: { layer, head } });
  if (attention) post({ type: 'showAttention', layer, head });
  draw();
  root.querySelector<HTMLElement>(`#head-${layer}-${head}`)?.focus();
}

function onGridKey(event: KeyboardEvent): void {
  const m = model;
  if (!m) return;
  const f = ui.focus ?? { layer: 0, head: 0 };
  const moves: Record<string, [number, number]> = {
    ArrowUp: [-1, 0],
    ArrowDown: [1, 0],
    ArrowLeft: [0, -1],
    ArrowRight: [0, 1],
  };
  if (event.key in moves) {
    event.preventDefault();
    const [dl, dh] = moves[event.key];
    const layer = Math.max(0, Math.min(m.nLayers - 1, f.layer + dl));
    const head = Math.max(0, Math.min(m.nHeads - 1, f.head + dh));
    chooseHead(layer, head, false);
  } else if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    chooseHead(f.layer, f.head, true);
  }
}

// ---- text directions ----

/** The largest share among a head's directions (a later pick can explain more than an earlier one). */
function widest(directions: readonly { fraction: number }[]): number {
  return Math.max(1e-9, ...directions.map((d) => d.fraction));
}

function directionsPane(): TemplateResult {
  const d = directions;
  const intro = html`<p class="hint">
    Each head's output over a corpus, read through the unembedding: the words whose directions explain the
    most of its variance, chosen greedily (TextSpan, Gandelsman et al. 2023).
  </p>`;
  if (d.kind === 'none') {
    return html`${intro}
      <div class="actions">
        <vscode-button @click=${() => post({ type: 'computeDirections', corpus: 'default' })}
          >Compute Text Directions</vscode-button
        >
        <vscode-button secondary @click=${() => post({ type: 'computeDirections', corpus: 'choose' })}
          >Choose a Corpus…</vscode-button
        >
      </div>`;
  }
  if (d.kind === 'running') {
    return html`<vscode-progress-bar aria-label="Computing text directions"></vscode-progress-bar>
      <p class="hint" aria-live="polite">
        ${d.message}${d.fraction !== null ? ` (${Math.round(100 * d.fraction)}%)` : ''}
      </p>
      <vscode-button secondary @click=${() => post({ type: 'cancelDirections' })}>Cancel</vscode-button>`;
  }
  if (d.kind === 'failed') {
    return html`<p class="error" role="alert">${d.message}</p>
      <div class="actions">
        <vscode-button @click=${() => post({ type: 'computeDirections', corpus: 'choose' })}
          >Choose a Corpus…</vscode-button
        >
      </div>`;
  }
  const data = d.data;
  const focus = ui.focus;
  const focused = focus
    ? data.heads.find((h) => h.layer === focus.layer && h.head === focus.head)
    : undefined;
  return html`<p class="source">
      ${data.tokens.toLocaleString('en-US')} tokens of ${data.source}${data.cached ? ' · from the cache' : ''}
    </p>
    ${
      focused
        ? html`<div class="focused" aria-live="polite">
            <h3>
              L${focused.layer}H${focused.head}
              <span class="explained">${percent(focused.explained)} explained</span>
            </h3>
            <ol class="words">
              ${focused.directions.map(
                (w) =>
                  html`<li>
                    <code class="tok">${visible(w.text)}</code>
                    <span class="bar" aria-hidden="true"
                      ><span data-fraction=${(w.fraction / widest(focused.directions)).toFixed(4)}></span
                    ></span>
                    <span class="share">${percent(w.fraction)}</span>
                  </li>`,
              )}
            </ol>
          </div>`
        : html`<p class="hint">Choose a head to see its words.</p>`
    }
    <ul class="all-heads" aria-label="Every head's words">
      ${data.heads.map(
        (h) =>
          html`<li
            class=${focus?.layer === h.layer && focus?.head === h.head ? 'chosen' : ''}
            @click=${() => chooseHead(h.layer, h.head, false)}
          >
            <span class="name">L${h.layer}H${h.head}</span>
            <span class="explained">${percent(h.explained)}</span>
            <span class="list"
              >${h.directions.slice(0, 5).map((w) => html`<code class="tok">${visible(w.text)}</code> `)}</span
            >
          </li>`,
      )}
    </ul>`;
}

// ---- the whole panel ----

function draw(): void {
  render(
    html`${attributionBusy ? html`<vscode-progress-bar class="busy" aria-label="Updating"></vscode-progress-bar>` : nothing}
      <div class="layout">
        <main class="attribution">
          <header>
            <h1>
              Direct logit
              attribution${model?.name ? html` <span class="model">${model.name}</span>` : nothing}
            </h1>
            ${header()} ${pairForm()}
          </header>
          ${grid()}
          <p class="hint keys">
            Click a head (or Enter) to light up its attention in the editor; a layer's name shows all its
            heads.
          </p>
        </main>
        <aside class="directions" aria-label="Text directions">
          <h2>Text directions</h2>
          ${directionsPane()}
        </aside>
      </div>`,
    root,
  );
  for (const el of root.querySelectorAll<HTMLElement>('[data-fraction]')) {
    el.style.width = `${Number(el.dataset.fraction) * 100}%`;
  }
}

draw();
post({ type: 'ready', target: ui.target, versus: ui.versus, directions: ui.directions });
