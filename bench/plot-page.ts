// Draws one line chart with uPlot for the benchmark runner to screenshot as a PNG.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  x: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
  width?: number;
  height?: number;
  logY?: boolean;
  yRange?: [number, number];
}

const PALETTE = ['#6b7280', '#d97706', '#7c3aed', '#dc2626', '#0891b2', '#16a34a', '#db2777', '#2563eb'];

function draw(spec: ChartSpec): void {
  const root = document.getElementById('chart')!;
  root.replaceChildren();
  const title = document.createElement('h2');
  title.textContent = spec.title;
  root.append(title);
  const opts: uPlot.Options = {
    width: spec.width ?? 900,
    height: spec.height ?? 360,
    scales: { x: { time: false }, y: spec.logY ? { distr: 3 } : spec.yRange ? { range: spec.yRange } : {} },
    axes: [{ label: spec.xLabel }, { label: spec.yLabel }],
    series: [{ label: spec.xLabel }, ...spec.series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.6, spanGaps: true }))],
    legend: { show: true, live: false },
    cursor: { show: false },
  };
  new uPlot(opts, [spec.x, ...spec.series.map((s) => s.values)] as uPlot.AlignedData, root);
}

(window as unknown as { drawChart: (s: ChartSpec) => void }).drawChart = draw;
