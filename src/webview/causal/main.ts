/**
 * The results panels of the probe and causal commands (one bundle, four
 * views): Probe Results (accuracy by hook with uPlot, the majority baseline
 * and the control task, a table with selectivity), Activation Patching (canvas
 * heat maps, heatGrid.ts), Steering (unsteered beside steered, greedy and
 * sampled) and TCAV (scores per hook against the random CAVs). The host sends
 * the view on `ready`; the webview keeps no data of its own.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { TemplateResult, html, nothing, render } from 'lit';
import { ref } from 'lit/directives/ref.js';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ProbeSummary } from '../../shared/causalSchemas';
import { PatchView, ResultAction, ResultView, ResultsToHost, hostToResults } from '../causalProtocol';
import { HeatGrid, divergingColour, themeColour } from './heatGrid';
import { onHostMessage, vsCodeApi } from '../shared/host';
import './causal.css';

const vscode = vsCodeApi<ResultsToHost>();
const root = document.getElementById('root')!;
let view: ResultView | null = null;
let busy: string | null = null;
let plot: uPlot | null = null;
let grids: HeatGrid[] = [];

onHostMessage(
  'results panel',
  (raw) => hostToResults.parse(raw),
  (message) => {
    if (message.type === 'show') view = message.view;
    else busy = message.message;
    draw();
  },
);

// Canvases cannot follow CSS variables: draw again when the theme changes.
new MutationObserver(() => draw()).observe(document.body, {
  attributes: true,
  attributeFilter: ['class', 'data-vscode-theme-kind'],
});

vscode.postMessage({ type: 'ready' });

function act(action: ResultAction): void {
  vscode.postMessage({ type: 'action', action });
}

function button(label: string, action: ResultAction, secondary = false): TemplateResult {
  return html`<vscode-button ?secondary=${secondary} ?disabled=${busy !== null} @click=${() => act(action)}
    >${label}</vscode-button
  >`;
}

/**
 * Styles set through the CSSOM, which the panel's CSP allows: it refuses a
 * style attribute, and lit's styleMap writes one on an element's first render.
 */
function styled(styles: Record<string, string>) {
  return ref((el) => {
    if (el instanceof HTMLElement) for (const [k, v] of Object.entries(styles)) el.style.setProperty(k, v);
  });
}

/** A token in quotes with its white space visible, as the inspector shows tokens (· space, ↵ line break, → tab). */
function quoted(token: string): string {
  const shown = token
    .replace(/ /g, '·')
    .replace(/\t/g, '→')
    .replace(/\r\n|\n|\r/g, '↵');
  return `"${shown}"`;
}

function pct(v: number | null): string {
  return v === null ? '–' : `${(100 * v).toFixed(1)}%`;
}

function draw(): void {
  plot?.destroy();
  plot = null;
  grids.forEach((g) => g.destroy());
  grids = [];
  const progress = busy
    ? html`<div class="busy"><vscode-progress-bar indeterminate></vscode-progress-bar>${busy}</div>`
    : nothing;
  if (!view) {
    render(
      html`${progress}
        <p class="hint">Waiting for results…</p>`,
      root,
    );
    return;
  }
  switch (view.kind) {
    case 'probe':
      render(html`${progress}${probePage(view.probe, view.saved)}`, root);
      probeChart(view.probe);
      return;
    case 'patch':
      render(html`${progress}${patchPage(view.result, view.clean, view.corrupted)}`, root);
      patchGrids(view.result);
      return;
    case 'steer':
      render(html`${progress}${steerPage(view.result)}`, root);
      return;
    case 'tcav':
      render(html`${progress}${tcavPage(view.result, view.concept)}`, root);
      return;
  }
}

// ---- Probe Results ----

function probePage(p: ProbeSummary, saved: string | null): TemplateResult {
  const best = [...p.hooks].sort((a, b) => b.accuracy - a.accuracy)[0];
  return html`<header>
      <h1>Probe: ${p.dataset}</h1>
      <p class="hint">
        ${p.model} · labels ${p.labels.map((l, i) => `${l} (${p.counts[i]})`).join(', ')} · split by document:
        ${p.trainDocuments} train (${p.trainExamples} tokens), ${p.testDocuments} held out (${p.testExamples}
        tokens) · L2 ${p.l2} · seed ${p.seed} · ${p.seconds.toFixed(1)} s
      </p>
      <p class="hint">${saved ? `Saved in ${saved}` : 'Not saved yet.'}</p>
      <div class="buttons">
        ${button('Save probe…', 'saveProbe')} ${button('Export direction…', 'exportDirection', true)}
        ${button('Apply to the open file', 'applyProbe', true)}
        ${button('Steer with this probe…', 'steerWithProbe', true)}
        ${button('Open Probe Results…', 'openProbe', true)}
      </div>
    </header>
    <section>
      <h2>Held-out accuracy by hook</h2>
      <div class="chart" id="chart"></div>
      <div class="legend">
        <span class="key accuracy"></span>probe <span class="key majority"></span>majority baseline
        <span class="key control"></span>control task (random labels per token type)
      </div>
    </section>
    <section>
      <div class="table-scroll">
        <table>
          <thead>
            <tr>
              <th>hook</th>
              <th>accuracy</th>
              <th>majority</th>
              <th>control</th>
              <th title="accuracy − control accuracy (Hewitt &amp; Liang)">selectivity</th>
              <th>train</th>
            </tr>
          </thead>
          <tbody>
            ${p.hooks.map(
              (h) =>
                html`<tr class=${h === best ? 'best' : ''}>
                  <td class="mono">${h.hook}</td>
                  <td>${pct(h.accuracy)}</td>
                  <td>${pct(h.majorityBaseline)}</td>
                  <td>${pct(h.controlAccuracy)}</td>
                  <td>
                    ${h.selectivity === null ? '–' : `${h.selectivity >= 0 ? '+' : '−'}${Math.abs(100 * h.selectivity).toFixed(1)} pt`}
                  </td>
                  <td>${pct(h.trainAccuracy)}${h.converged ? '' : ' (not converged)'}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <p class="hint">The best hook (highlighted) is the one Apply and Steer use.</p>
    </section>`;
}

/** Short hook names for the chart's axis: blocks.3.hook_resid_post → 3 post. */
function shortHook(hook: string): string {
  const m = /^blocks\.(\d+)\.(.*)$/.exec(hook);
  if (!m) return hook.replace(/^hook_/, '');
  return `${m[1]} ${m[2].replace(/^(hook_)?resid_/, '').replace(/hook_/g, '')}`;
}

function probeChart(p: ProbeSummary): void {
  const host = document.getElementById('chart');
  if (!host) return;
  const fg = themeColour('--vscode-foreground', '#ccc');
  const grid = themeColour('--vscode-panel-border', 'rgba(128,128,128,0.3)');
  const font = `12px ${themeColour('--vscode-font-family', 'sans-serif')}`;
  const colours = {
    accuracy: themeColour('--vscode-charts-blue', '#3794ff'),
    majority: themeColour('--vscode-charts-orange', '#d18616'),
    control: themeColour('--vscode-charts-purple', '#b180d7'),
  };
  const xs = p.hooks.map((_, i) => i);
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font };
  plot = new uPlot(
    {
      width: Math.max(300, host.clientWidth),
      height: 260,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: [-0.3, p.hooks.length - 0.7] }, y: { range: [0, 1] } },
      axes: [
        {
          ...axis,
          splits: () => xs,
          values: (_u, ticks) => ticks.map((t) => (p.hooks[t] ? shortHook(p.hooks[t].hook) : '')),
        },
        { ...axis, size: 50, values: (_u, ticks) => ticks.map((t) => `${Math.round(100 * t)}%`) },
      ],
      series: [
        {},
        { stroke: colours.accuracy, width: 2, points: { show: true, size: 7, fill: colours.accuracy } },
        { stroke: colours.majority, width: 1.5, dash: [6, 4], points: { show: false } },
        { stroke: colours.control, width: 1.5, dash: [2, 3], points: { show: true, size: 5 } },
      ],
    },
    [
      xs,
      p.hooks.map((h) => h.accuracy),
      p.hooks.map((h) => h.majorityBaseline),
      p.hooks.map((h) => h.controlAccuracy),
    ],
    host,
  );
  document.documentElement.style.setProperty('--loupe-accuracy', colours.accuracy);
  document.documentElement.style.setProperty('--loupe-majority', colours.majority);
  document.documentElement.style.setProperty('--loupe-control', colours.control);
}

// ---- Activation Patching ----

function patchPage(r: PatchView, clean: string, corrupted: string): TemplateResult {
  const scale = Math.max(1, ...r.residual.values.map(Math.abs), ...r.heads.values.map(Math.abs));
  const stops = [-scale, -scale / 2, 0, scale / 2, scale];
  return html`<header>
      <h1>Activation patching: ${quoted(r.target.text)} versus ${quoted(r.versus.text)}</h1>
      <p class="hint">
        Clean <span class="mono">${clean}</span> · corrupted <span class="mono">${corrupted}</span> ·
        ${r.cleanTokens.length} tokens. Each cell runs the corrupted text with one activation from the clean
        one; the metric is the logit difference at the last token, normalised: 1 = clean
        (${r.cleanLogitDiff.toFixed(3)}), 0 = corrupted (${r.corruptedLogitDiff.toFixed(3)}).
      </p>
      <div class="scale" aria-label="colour scale">
        ${stops.map(
          (s) =>
            html`<span class="stop" ${styled({ background: divergingColour(s, scale) })}></span
              ><span class="stop-label">${s.toFixed(1)}</span>`,
        )}
      </div>
    </header>
    <section>
      <h2>Residual stream (${r.site}): layer × position</h2>
      <div class="grid" id="residual"></div>
    </section>
    <section>
      <h2>Heads (attn.hook_z, every position): layer × head</h2>
      <div class="grid" id="heads"></div>
    </section>`;
}

function patchGrids(r: PatchView): void {
  const residual = document.getElementById('residual');
  const heads = document.getElementById('heads');
  const labelled = { ...r.residual, columnLabels: r.cleanTokens.map((t, i) => `${i} ${quoted(t)}`) };
  if (residual) {
    grids.push(
      new HeatGrid(
        residual,
        labelled,
        (row, column) =>
          `${r.residual.rowLabels[row]} at position ${column} (${quoted(r.cleanTokens[column])} / ${quoted(r.corruptedTokens[column])})`,
        'Residual stream patching heat map',
      ),
    );
  }
  if (heads) {
    grids.push(
      new HeatGrid(
        heads,
        r.heads,
        (row, column) => `${r.heads.rowLabels[row]} head ${r.heads.columnLabels[column]}`,
        'Per-head patching heat map',
      ),
    );
  }
  grids.forEach((g) => g.draw());
}

// ---- Steering ----

function steerPage(r: Extract<ResultView, { kind: 'steer' }>['result']): TemplateResult {
  const pair = (title: string, p: { unsteered: string; steered: string }) =>
    html`<section>
      <h2>${title}</h2>
      <div class="pair">
        <div class="side">
          <h3>Unsteered</h3>
          <pre><span class="prompt">${r.prompt}</span><span class="generated">${p.unsteered}</span></pre>
        </div>
        <div class="side steered">
          <h3>Steered</h3>
          <pre><span class="prompt">${r.prompt}</span><span class="generated">${p.steered}</span></pre>
        </div>
      </div>
    </section>`;
  return html`<header>
      <h1>Steering with ${r.direction}</h1>
      <p class="hint">
        ${r.strength >= 0 ? '+' : ''}${r.strength} × the direction added at ${r.hook}, at every position.
      </p>
      <div class="buttons">${button('Resample', 'resample')} ${button('Steer again…', 'rerun', true)}</div>
    </header>
    ${pair('Greedy', r.greedy)} ${pair(`Sampled (seed ${r.seed}, temperature ${r.temperature})`, r.sampled)}`;
}

// ---- TCAV ----

function tcavPage(r: Extract<ResultView, { kind: 'tcav' }>['result'], concept: string): TemplateResult {
  return html`<header>
      <h1>TCAV: ${concept} → ${quoted(r.target.text)}</h1>
      <p class="hint">
        ${r.concept} concept examples against ${r.random} random pieces, ${r.inputs} inputs, ${r.runs} runs; a
        two-sided t-test against the random CAVs' scores, significant at p &lt; ${r.alpha}.
      </p>
      <div class="buttons">${button('Run again…', 'rerun')}</div>
    </header>
    <div class="table-scroll">
      <table>
        <thead>
          <tr>
            <th>hook</th>
            <th>TCAV score</th>
            <th
              title="mean ± standard deviation of the random sets' mean scores; the mean is 0.5 by construction (swapping two random sets flips their CAV)"
            >
              random CAVs
            </th>
            <th>scores (concept ● random ○)</th>
            <th>p-value</th>
            <th></th>
            <th>CAV accuracy</th>
          </tr>
        </thead>
        <tbody>
          ${r.hooks.map(
            (h) =>
              html`<tr>
                <td class="mono">${h.hook}</td>
                <td>${h.meanScore.toFixed(3)}</td>
                <td>${h.meanRandomScore.toFixed(3)} ± ${spread(h.randomScores).toFixed(3)}</td>
                <td>${strip(h.scores, h.randomScores)}</td>
                <td>${h.pValue < 1e-3 ? h.pValue.toExponential(1) : h.pValue.toFixed(3)}</td>
                <td class=${h.significant ? 'significant' : 'hint'}>
                  ${h.significant ? 'significant' : 'not significant'}
                </td>
                <td>${pct(h.cavAccuracy)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
}

/** Sample standard deviation: how far a random set's score strays from 0.5, which the concept's is judged by. */
function spread(v: readonly number[]): number {
  if (v.length < 2) return 0;
  const m = v.reduce((a, x) => a + x, 0) / v.length;
  return Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - 1));
}

/** Each run's score on a 0..1 strip: the concept's filled, the random CAVs' hollow. */
function strip(scores: readonly number[], random: readonly number[]): TemplateResult {
  const dot = (v: number, cls: string) =>
    html`<span class=${cls} ${styled({ left: `${(100 * v).toFixed(1)}%` })}></span>`;
  return html`<span class="strip" title="0 … 1"
    >${random.map((v) => dot(v, 'dot random'))}${scores.map((v) => dot(v, 'dot concept'))}</span
  >`;
}
