// The scores, by segment: a change of corruption, severity, regime or method
// starts a new segment, numbered and named ("segment 3 · fog s3 · SAR"), so
// that a score never mixes two shifts or two methods. Its first frame gets a
// numbered marker on every chart; the finished segments' scores stay listed.
import type { FrameResult } from '../src/runtime/engine-types';
import { DEFAULT_REGIME } from '../src/data/corruptions/regime';
import { Markers } from './charts';
import { $ } from './dom';
import { methodLabel } from './methods';
import { RollingRate } from './ring';
import { config, freshScore, live, showReference } from './state';

/** Rolling window of the accuracy and reliable-fraction plots, in frames. */
export const WINDOW = 50;

/** Finished segments listed beside the scores. */
const LISTED = 3;

export const markers = new Markers();
const accRate = new RollingRate(WINDOW);
const refAccRate = new RollingRate(WINDOW);
const agreeRate = new RollingRate(WINDOW);
const reliableRate = new RollingRate(WINDOW);

export const pct = (num: number, den: number) => (den > 0 ? `${((100 * num) / den).toFixed(1)}% (${num}/${den})` : '–');

/** The segment's name: its number, the shift chosen, and the method running. */
function describe(n: number): string {
  const c = config.corruption;
  const name = c === 'cycle' ? 'cycling corruptions' : c === 'mixed' ? 'mixed corruptions' : c.replace(/_/g, ' ');
  const shift = c === 'none' ? 'clean' : `${name} s${config.severity}${config.regime === DEFAULT_REGIME ? '' : ` (${config.regime})`}`;
  return `segment ${n} · ${shift} · ${methodLabel(live.method)}`;
}

/** The finished segment's line: its accuracy (or agreement, unlabeled), and no adaptation's beside it. */
function summary(): string {
  const s = live.score;
  const own = s.labeled > 0 ? pct(s.correct, s.labeled) : `agreement ${pct(s.agree, s.agreeTotal)}`;
  const ref = s.refLabeled > 0 ? `; no adaptation: ${pct(s.refCorrect, s.refLabeled)}` : '';
  return `${live.segment.label}: ${own}${ref}`;
}

/**
 * Starts a segment: the session's first (`fresh`: numbering, markers and the
 * list start over), or the next one after a change. A segment that has no
 * scored frame yet (a severity slider dragged across values) is renamed
 * rather than followed by another.
 */
export function startSegment(fresh: boolean): void {
  const seg = live.segment;
  if (fresh) {
    seg.n = 1;
    markers.clear();
    $('segments').replaceChildren();
  } else if (seg.firstX !== null) {
    if (live.score.labeled + live.score.agreeTotal > 0) {
      const list = $('segments');
      list.prepend(Object.assign(document.createElement('li'), { textContent: summary() }));
      while (list.children.length > LISTED) list.lastElementChild!.remove();
    }
    seg.n++;
  }
  seg.id++;
  seg.firstX = null;
  seg.label = describe(seg.n);
  live.score = freshScore();
  for (const r of [accRate, refAccRate, agreeRate, reliableRate]) r.clear();
}

/** What the charts plot for a frame (null: nothing). */
export interface Scored {
  acc: number | null;
  refAcc: number | null;
  agree: number | null;
  reliable: number | null;
}

/**
 * Scores a frame sent during segment `segmentId` at chart position `x`. A
 * frame sent before the segment changed (two are in flight) is plotted, not
 * scored: its own segment is over.
 */
export function scoreResult(r: FrameResult, x: number, segmentId: number): Scored {
  const out: Scored = { acc: null, refAcc: null, agree: null, reliable: null };
  const seg = live.segment;
  if (segmentId !== seg.id) return out;
  if (seg.firstX === null) {
    seg.firstX = x;
    if (seg.n > 1) markers.add(x, 'segment', String(seg.n));
  }
  const s = live.score;
  if (r.label !== null) {
    s.labeled++;
    const ok = r.predicted === r.label;
    if (ok) s.correct++;
    out.acc = 100 * accRate.push(ok);
    if (r.reference) {
      s.refLabeled++;
      const refOk = r.reference.input.predicted === r.label;
      if (refOk) s.refCorrect++;
      out.refAcc = 100 * refAccRate.push(refOk);
    }
  } else if (r.reference) {
    s.agreeTotal++;
    const same = r.predicted === r.reference.clean.predicted;
    if (same) s.agree++;
    out.agree = 100 * agreeRate.push(same);
  }
  out.reliable = 100 * reliableRate.push(r.reliable);
  return out;
}

/** Counts an update of the frame at `x` in the segment's figures, when that frame is the segment's. */
export function scoreUpdate(u: FrameResult['updates'][number], x: number): void {
  if (live.segment.firstX === null || x < live.segment.firstX) return;
  if (u.updated) live.score.updates++;
  if (u.reset) live.score.autoResets++;
}

function figure(id: string, num: number, den: number): void {
  const el = $(id);
  el.textContent = pct(num, den);
  el.dataset.correct = String(num);
  el.dataset.total = String(den);
}

export function renderScores(): void {
  const s = live.score;
  $('segment').textContent = live.segment.label;
  figure('acc-method', s.correct, s.labeled);
  figure('acc-reference', s.refCorrect, s.refLabeled);
  $('acc-reference-row').hidden = !showReference();
  $('agree-row').hidden = s.agreeTotal === 0;
  const agreeEl = $('agree');
  agreeEl.textContent = pct(s.agree, s.agreeTotal);
  agreeEl.dataset.agree = String(s.agree);
  agreeEl.dataset.total = String(s.agreeTotal);
  $('updates').textContent = `${s.updates} · ${s.autoResets}${s.manualResets ? ` + ${s.manualResets} by hand` : ''}`;
}
