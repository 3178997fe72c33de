// Live uPlot charts over fixed-size ring buffers (ring.ts): a redraw costs
// the same at minute one and at minute sixty.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { Ring } from './ring';

/** Bounded list of x positions where a reset happened. */
export class Markers {
  readonly items: Array<{ x: number; manual: boolean }> = [];
  constructor(private readonly capacity = 200) {}
  add(x: number, manual: boolean): void {
    this.items.push({ x, manual });
    if (this.items.length > this.capacity) this.items.shift();
  }
  clear(): void {
    this.items.length = 0;
  }
}

export interface SeriesSpec {
  label: string;
  stroke: string;
  width?: number;
  dash?: number[];
  /** Draw dots, no line (sparse series such as per-update values). */
  dots?: boolean;
  /** Connect across gaps. */
  spanGaps?: boolean;
}

export interface LivePlotSpec {
  el: HTMLElement;
  xLabel: string;
  yLabel: string;
  series: SeriesSpec[];
  /** Fixed y range, or a function of the data's range. */
  yRange?: [number, number] | ((min: number, max: number) => [number, number]);
  height?: number;
  capacity?: number;
  markers: Markers;
}

export class LivePlot {
  readonly ring: Ring;
  readonly plot: uPlot;
  private dirty = false;

  constructor(readonly spec: LivePlotSpec) {
    this.ring = new Ring(spec.capacity ?? 1200, spec.series.length);
    const markers = spec.markers;
    const yRange = spec.yRange;
    const opts: uPlot.Options = {
      width: Math.max(200, spec.el.clientWidth),
      height: spec.height ?? 108,
      // Not live, and clicks do nothing: which series show is the page's choice (side by side, camera).
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: {
        x: { time: false },
        y: yRange === undefined ? {} : { range: typeof yRange === 'function' ? (_u, min, max) => yRange(min, max) : yRange },
      },
      axes: [
        { label: spec.xLabel, labelSize: 16, labelGap: 0, size: 36, font: '11px system-ui', labelFont: '11px system-ui' },
        { label: spec.yLabel, labelSize: 16, labelGap: 0, size: 44, font: '11px system-ui', labelFont: '11px system-ui' },
      ],
      series: [
        { label: spec.xLabel },
        ...spec.series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: s.stroke,
          width: s.dots ? 1 : (s.width ?? 1.5),
          ...(s.dash ? { dash: s.dash } : {}),
          spanGaps: s.spanGaps ?? false,
          points: s.dots ? { show: true, size: 5, width: 0, fill: s.stroke, stroke: s.stroke } : { show: false },
          ...(s.dots ? { paths: () => null } : {}),
        })),
      ],
      hooks: {
        draw: [
          (u) => {
            if (markers.items.length === 0) return;
            const { ctx, bbox } = u;
            ctx.save();
            ctx.lineWidth = Math.max(1, devicePixelRatio);
            for (const m of markers.items) {
              const px = u.valToPos(m.x, 'x', true);
              if (px < bbox.left || px > bbox.left + bbox.width) continue;
              ctx.strokeStyle = '#dc2626';
              ctx.setLineDash(m.manual ? [4 * devicePixelRatio, 3 * devicePixelRatio] : []);
              ctx.beginPath();
              ctx.moveTo(Math.round(px) + 0.5, bbox.top);
              ctx.lineTo(Math.round(px) + 0.5, bbox.top + bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
    this.plot = new uPlot(opts, this.ring.aligned(), spec.el);
  }

  push(x: number, values: ReadonlyArray<number | null | undefined>): void {
    this.ring.push(x, values);
    this.dirty = true;
  }

  set(x: number, c: number, value: number): void {
    if (this.ring.set(x, c, value)) this.dirty = true;
  }

  touch(): void {
    this.dirty = true;
  }

  clear(): void {
    this.ring.clear();
    this.dirty = true;
  }

  /** Redraws when something changed since the last call; returns whether it did. */
  render(): boolean {
    if (!this.dirty) return false;
    this.dirty = false;
    this.plot.setData(this.ring.aligned());
    return true;
  }

  resize(): void {
    const w = Math.max(200, this.spec.el.clientWidth);
    if (w !== this.plot.width) this.plot.setSize({ width: w, height: this.plot.height });
  }

  /** Shows or hides a series, legend entry included (the page decides, not legend clicks). */
  setShown(series: number, show: boolean): void {
    this.plot.setSeries(series + 1, { show });
    const row = this.legendRow(series);
    if (row) row.style.display = show ? '' : 'none';
  }

  private legendRow(series: number): HTMLElement | undefined {
    const label = String(this.plot.series[series + 1]?.label ?? '');
    for (const cell of this.spec.el.querySelectorAll<HTMLElement>('.u-legend .u-series .u-label')) {
      if (cell.textContent === label) return cell.closest<HTMLElement>('.u-series') ?? undefined;
    }
    return undefined;
  }

  setLabel(series: number, label: string): void {
    const s = this.plot.series[series + 1];
    if (!s || s.label === label) return;
    const before = String(s.label);
    s.label = label;
    // uPlot writes legend labels once; change the text of the matching entry in place.
    for (const cell of this.spec.el.querySelectorAll('.u-legend .u-series .u-label')) {
      if (cell.textContent === before) {
        cell.textContent = label;
        break;
      }
    }
  }
}
