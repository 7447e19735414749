/**
 * A feature's activation histogram, drawn with uPlot: the database's
 * log-spaced bins as bars on a log2 axis, the activation bands of the
 * dashboard marked by dashed lines, and the bin under the pointer described
 * in a caption. uPlot draws on a canvas, which cannot read CSS variables, so
 * the theme's colours are read from the computed style at each draw and the
 * chart is drawn again when the theme changes (see main.ts).
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { HistogramMessage } from '../../shared/featureSchemas';

const HEIGHT = 150;

export interface HistogramInput {
  readonly histogram: HistogramMessage;
  /** Band boundaries (activations) to mark; 0 and the maximum are left out. */
  readonly bandEdges: readonly number[];
}

export class HistogramChart {
  private plot: uPlot | null = null;
  private readonly resize = new ResizeObserver(() => this.fit());

  constructor(
    private readonly host: HTMLElement,
    private readonly caption: HTMLElement,
    private readonly input: HistogramInput,
  ) {
    this.resize.observe(host);
    this.draw();
  }

  /** Draws again from scratch: the theme's colours changed. */
  draw(): void {
    this.plot?.destroy();
    const { edges, counts } = this.input.histogram;
    const centres = counts.map((_, i) => Math.sqrt(edges[i] * edges[i + 1]));
    const total = counts.reduce((a, b) => a + b, 0);
    const colour = themeColours();
    const axis: uPlot.Axis = {
      stroke: colour.text,
      grid: { stroke: colour.grid, width: 1 },
      ticks: { stroke: colour.grid, width: 1 },
      font: colour.font,
    };
    const describe = (i: number | null | undefined): string =>
      i === null || i === undefined
        ? `${total.toLocaleString('en-US')} active tokens; point at a bar for its count.`
        : `${formatAct(edges[i])} – ${formatAct(edges[i + 1])}: ${counts[i].toLocaleString('en-US')} tokens (${((100 * counts[i]) / Math.max(1, total)).toFixed(1)}%)`;
    this.caption.textContent = describe(null);
    const bandEdges = this.input.bandEdges;
    this.plot = new uPlot(
      {
        width: Math.max(200, this.host.clientWidth),
        height: HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { show: false }, y: false },
        scales: {
          x: { distr: 3, log: 2, time: false, range: () => [edges[0], edges[edges.length - 1]] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.05] },
        },
        axes: [
          {
            ...axis,
            splits: (_u, _i, min, max) => logTicks(min, max),
            values: (_u, ticks) => ticks.map(formatAct),
          },
          { ...axis, size: 48, values: (_u, ticks) => ticks.map(formatCount) },
        ],
        series: [
          {},
          {
            stroke: colour.bar,
            fill: colour.barFill,
            width: 1,
            paths: uPlot.paths.bars!({ size: [0.92, Infinity], align: 0 }),
            points: { show: false },
          },
        ],
        hooks: {
          setCursor: [(u) => (this.caption.textContent = describe(u.cursor.idx))],
          draw: [
            (u) => {
              // The dashboard's activation bands, so that the samples below can be placed on the histogram.
              const ctx = u.ctx;
              ctx.save();
              ctx.strokeStyle = colour.text;
              ctx.setLineDash([4, 4]);
              ctx.lineWidth = 1;
              for (const edge of bandEdges) {
                if (edge <= edges[0] || edge >= edges[edges.length - 1]) continue;
                const x = Math.round(u.valToPos(edge, 'x', true)) + 0.5;
                ctx.beginPath();
                ctx.moveTo(x, u.bbox.top);
                ctx.lineTo(x, u.bbox.top + u.bbox.height);
                ctx.stroke();
              }
              ctx.restore();
            },
          ],
        },
      },
      [centres, counts],
      this.host,
    );
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private fit(): void {
    const width = Math.max(200, this.host.clientWidth);
    if (this.plot && this.plot.width !== width) this.plot.setSize({ width, height: HEIGHT });
  }
}

interface ThemeColours {
  readonly text: string;
  readonly grid: string;
  readonly bar: string;
  readonly barFill: string;
  readonly font: string;
}

function themeColours(): ThemeColours {
  const style = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  const heat = v('--loupe-heat-rgb', '242 106 0');
  return {
    text: v('--vscode-descriptionForeground', '#888'),
    grid: v('--loupe-grid', 'rgba(128, 128, 128, 0.25)'),
    bar: `rgb(${heat})`,
    barFill: `rgb(${heat} / 0.55)`,
    font: `${v('--vscode-font-size', '12px')} ${v('--vscode-font-family', 'sans-serif')}`,
  };
}

/**
 * Round activations (1, 2, 5 times a power of ten; more steps when the range
 * is narrow) to mark on the log axis: uPlot's own log ticks are powers of the
 * base, which a histogram spanning less than an octave does not reach.
 */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > min)) return [];
  const steps = [
    [1, 2, 5],
    [1, 1.5, 2, 3, 4, 5, 6, 8],
    [1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9],
  ];
  let ticks: number[] = [];
  for (const multiples of steps) {
    ticks = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of multiples) {
        const v = Number((m * 10 ** e).toPrecision(6));
        if (v >= min && v <= max) ticks.push(v);
      }
    }
    if (ticks.length >= 3) break;
  }
  // At most about eight, evenly thinned.
  const every = Math.ceil(ticks.length / 8);
  return ticks.filter((_, i) => i % every === 0);
}

export function formatAct(x: number): string {
  if (x === 0) return '0';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2);
}

function formatCount(n: number): string {
  return n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}
