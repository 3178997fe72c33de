// Live uPlot charts over fixed-size ring buffers (ring.ts), with vertical
// markers (resets, segments) and lines that must stay visible over dense dots.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { Ring } from './ring';

/** A reset (by the method, or by hand) or the start of a scored segment (labeled with its number). */
export interface Marker {
  x: number;
  kind: 'reset' | 'manual' | 'segment';
  label?: string;
}

/** Bounded list of marker positions, shared by every chart. */
export class Markers {
  readonly items: Marker[] = [];
  constructor(private readonly capacity = 200) {}
  add(x: number, kind: Marker['kind'], label?: string): void {
    this.items.push(label === undefined ? { x, kind } : { x, kind, label });
    if (this.items.length > this.capacity) this.items.shift();
  }
  clear(): void {
    this.items.length = 0;
  }
}

export interface SeriesSpec {
  /** What the series is (e.g. 'adapted', 'reference'): the page finds it by this, whatever its label says. */
  key: string;
  label: string;
  stroke: string;
  width?: number;
  dash?: number[];
  /** Draw dots, no line (sparse series such as per-update values). */
  dots?: boolean;
  /** Connect across gaps. */
  spanGaps?: boolean;
  /** Drawn last, on a white casing: a threshold line that dense dots must not hide. */
  onTop?: boolean;
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

const MARKER_COLOURS: Record<Marker['kind'], string> = { reset: '#dc2626', manual: '#dc2626', segment: '#334155' };

export class LivePlot {
  readonly ring: Ring;
  readonly plot: uPlot;
  /** The markers the last redraw painted (inside the plot area), for the page's test hook. */
  drawn: Marker[] = [];
  private dirty = false;

  constructor(readonly spec: LivePlotSpec) {
    this.ring = new Ring(spec.capacity ?? 1200, spec.series.length);
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
          // Dots only, or drawn by drawOnTop after every series.
          ...(s.dots || s.onTop ? { paths: () => null } : {}),
        })),
      ],
      hooks: { draw: [(u) => this.drawMarkers(u), (u) => this.drawOnTop(u)] },
    };
    this.plot = new uPlot(opts, this.ring.aligned(), spec.el);
    // Each legend row is tagged with its series' key once, in uPlot's order, so that renaming or hiding
    // one never depends on its text (two series may carry the same label for a while).
    const rows = [...spec.el.querySelectorAll<HTMLElement>('.u-legend .u-series')];
    const offset = rows.length - spec.series.length;
    spec.series.forEach((s, i) => {
      const row = rows[i + offset];
      if (row) row.dataset.series = s.key;
    });
  }

  private drawMarkers(u: uPlot): void {
    const { ctx, bbox } = u;
    const dpr = devicePixelRatio;
    this.drawn = [];
    ctx.save();
    ctx.lineWidth = Math.max(1, dpr);
    ctx.font = `${Math.round(10 * dpr)}px system-ui`;
    ctx.textBaseline = 'top';
    for (const m of this.spec.markers.items) {
      const px = u.valToPos(m.x, 'x', true);
      if (!(px >= bbox.left && px <= bbox.left + bbox.width)) continue;
      this.drawn.push(m);
      const at = Math.round(px) + 0.5;
      ctx.strokeStyle = ctx.fillStyle = MARKER_COLOURS[m.kind];
      ctx.setLineDash(m.kind === 'manual' ? [4 * dpr, 3 * dpr] : m.kind === 'segment' ? [2 * dpr, 2 * dpr] : []);
      ctx.beginPath();
      ctx.moveTo(at, bbox.top);
      ctx.lineTo(at, bbox.top + bbox.height);
      ctx.stroke();
      if (m.label !== undefined) ctx.fillText(m.label, at + 2 * dpr, bbox.top + dpr);
    }
    ctx.restore();
  }

  private drawOnTop(u: uPlot): void {
    const { ctx, bbox } = u;
    const dpr = devicePixelRatio;
    this.spec.series.forEach((s, i) => {
      if (!s.onTop || !u.series[i + 1]?.show) return;
      const xs = u.data[0];
      const ys = u.data[i + 1]!;
      const path = new Path2D();
      let open = false;
      for (let j = 0; j < xs.length; j++) {
        const v = ys[j];
        if (v === null || v === undefined) {
          open = open && (s.spanGaps ?? false);
          continue;
        }
        const px = u.valToPos(xs[j]!, 'x', true);
        const py = u.valToPos(v, 'y', true);
        if (open) path.lineTo(px, py);
        else path.moveTo(px, py);
        open = true;
      }
      const width = (s.width ?? 1.5) * dpr;
      ctx.save();
      ctx.beginPath();
      ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
      ctx.clip();
      ctx.lineJoin = 'round';
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = width + 3 * dpr;
      ctx.stroke(path);
      ctx.strokeStyle = s.stroke;
      ctx.lineWidth = width;
      ctx.setLineDash((s.dash ?? []).map((d) => d * dpr));
      ctx.stroke(path);
      ctx.restore();
    });
  }

  push(x: number, values: ReadonlyArray<number | null | undefined>): void {
    this.ring.push(x, values);
    this.dirty = true;
  }

  set(x: number, key: string, value: number): void {
    if (this.ring.set(x, this.index(key), value)) this.dirty = true;
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

  /** Non-gap values of a series. */
  count(key: string): number {
    return this.ring.count(this.index(key));
  }

  /** Shows or hides a series, legend entry included (the page decides, not legend clicks). */
  setShown(key: string, show: boolean): void {
    this.plot.setSeries(this.index(key) + 1, { show });
    const row = this.legendRow(key);
    if (row) row.style.display = show ? '' : 'none';
  }

  setLabel(key: string, label: string): void {
    const s = this.plot.series[this.index(key) + 1];
    if (!s || s.label === label) return;
    s.label = label;
    // uPlot writes legend labels once; change the entry's text in place.
    const cell = this.legendRow(key)?.querySelector('.u-label');
    if (cell) cell.textContent = label;
  }

  private index(key: string): number {
    const i = this.spec.series.findIndex((s) => s.key === key);
    if (i < 0) throw new Error(`chart "${this.spec.yLabel}" has no series '${key}'`);
    return i;
  }

  private legendRow(key: string): HTMLElement | null {
    return this.spec.el.querySelector<HTMLElement>(`.u-legend .u-series[data-series="${key}"]`);
  }
}
