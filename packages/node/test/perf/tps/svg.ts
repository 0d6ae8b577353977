/**
 * The TPS report as a picture: one panel per run, committed tx/s (bars, left axis) and latency
 * p50/p99 (lines, right axis) over time. Plain SVG, no dependencies; pure (string in, string out).
 */
import type { SecondPoint } from "./stats.ts";

export interface ChartRun {
  title: string;
  points: SecondPoint[];
  /** Seconds at which the load stopped (a dashed line). */
  loadEndS: number;
  /** Seconds at which steady state starts (the shaded warm-up ends). */
  steadyFromS: number;
}

const WIDTH = 960;
const PANEL_HEIGHT = 230;
const MARGIN = { left: 70, right: 70, top: 36, bottom: 40 };

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A round axis maximum (1, 2 or 5 times a power of ten) at or above `value`. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}

function panel(run: ChartRun, top: number): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const x0 = MARGIN.left;
  const y0 = top + MARGIN.top;
  const seconds = Math.max(1, run.points.length);
  const txMax = niceMax(Math.max(...run.points.map((p) => p.committedTxs), 1));
  const latMax = niceMax(Math.max(...run.points.map((p) => p.p99Ms ?? 0), 1));
  const x = (t: number) => x0 + (t / seconds) * plotW;
  const yTx = (v: number) => y0 + plotH - (v / txMax) * plotH;
  const yLat = (v: number) => y0 + plotH - (v / latMax) * plotH;
  const parts: string[] = [];
  parts.push(
    `<text x="${x0}" y="${top + 22}" font-size="15" font-weight="bold">${escapeXml(run.title)}</text>`,
  );
  // Warm-up shading and the end of the load.
  parts.push(
    `<rect x="${x0}" y="${y0}" width="${(x(run.steadyFromS) - x0).toFixed(1)}" height="${plotH}" fill="#f0f0f0"/>`,
  );
  parts.push(
    `<line x1="${x(run.loadEndS).toFixed(1)}" y1="${y0}" x2="${x(run.loadEndS).toFixed(1)}" y2="${y0 + plotH}" stroke="#888" stroke-dasharray="4 3"/>`,
  );
  // Grid and axes.
  for (let i = 0; i <= 4; i++) {
    const y = y0 + plotH - (i / 4) * plotH;
    parts.push(`<line x1="${x0}" y1="${y}" x2="${x0 + plotW}" y2="${y}" stroke="#e4e4e4"/>`);
    parts.push(
      `<text x="${x0 - 6}" y="${y + 4}" font-size="11" text-anchor="end" fill="#1f5fa8">${Math.round((txMax * i) / 4)}</text>`,
    );
    parts.push(
      `<text x="${x0 + plotW + 6}" y="${y + 4}" font-size="11" fill="#c0392b">${Math.round((latMax * i) / 4)}</text>`,
    );
  }
  const step = Math.max(1, Math.ceil(seconds / 12));
  for (let t = 0; t <= seconds; t += step)
    parts.push(
      `<text x="${x(t).toFixed(1)}" y="${y0 + plotH + 16}" font-size="11" text-anchor="middle">${t}</text>`,
    );
  parts.push(
    `<text x="${x0 + plotW / 2}" y="${y0 + plotH + 32}" font-size="11" text-anchor="middle">seconds</text>`,
  );
  parts.push(
    `<text x="16" y="${y0 + plotH / 2}" font-size="11" fill="#1f5fa8" transform="rotate(-90 16 ${y0 + plotH / 2})" text-anchor="middle">committed tx/s</text>`,
  );
  parts.push(
    `<text x="${WIDTH - 14}" y="${y0 + plotH / 2}" font-size="11" fill="#c0392b" transform="rotate(90 ${WIDTH - 14} ${y0 + plotH / 2})" text-anchor="middle">latency ms (p50, p99)</text>`,
  );
  // Bars: committed per second.
  const barW = Math.max(1, plotW / seconds - 1);
  for (const p of run.points)
    parts.push(
      `<rect x="${(x(p.t - 1) + 0.5).toFixed(1)}" y="${yTx(p.committedTxs).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y0 + plotH - yTx(p.committedTxs)).toFixed(1)}" fill="#7fb1e6"/>`,
    );
  // Latency lines (gaps where nothing committed).
  for (const [key, color, dash] of [
    ["p50Ms", "#e67e22", ""],
    ["p99Ms", "#c0392b", ' stroke-dasharray="5 2"'],
  ] as const) {
    let d = "";
    let pen = false;
    for (const p of run.points) {
      const v = p[key];
      if (v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(p.t - 0.5).toFixed(1)} ${yLat(v).toFixed(1)} `;
      pen = true;
    }
    if (d !== "") parts.push(`<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    // Dots too: a second with commits between two without shows as a point, not as nothing.
    for (const p of run.points)
      if (p[key] !== null)
        parts.push(
          `<circle cx="${x(p.t - 0.5).toFixed(1)}" cy="${yLat(p[key]!).toFixed(1)}" r="2.5" fill="${color}"/>`,
        );
  }
  parts.push(
    `<rect x="${x0}" y="${y0}" width="${plotW}" height="${plotH}" fill="none" stroke="#444" stroke-width="1"/>`,
  );
  return parts.join("\n");
}

export function renderChart(title: string, subtitle: string, runs: readonly ChartRun[]): string {
  const height = 70 + runs.length * PANEL_HEIGHT + 30;
  const legendY = height - 14;
  const body = runs.map((r, i) => panel(r, 60 + i * PANEL_HEIGHT)).join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="${MARGIN.left}" y="26" font-size="16" font-weight="bold">${escapeXml(title)}</text>
<text x="${MARGIN.left}" y="46" font-size="12" fill="#555">${escapeXml(subtitle)}</text>
${body}
<rect x="${MARGIN.left}" y="${legendY - 10}" width="14" height="10" fill="#7fb1e6"/>
<text x="${MARGIN.left + 20}" y="${legendY}" font-size="11">committed tx/s</text>
<line x1="${MARGIN.left + 130}" y1="${legendY - 4}" x2="${MARGIN.left + 150}" y2="${legendY - 4}" stroke="#e67e22" stroke-width="2"/>
<text x="${MARGIN.left + 156}" y="${legendY}" font-size="11">latency p50</text>
<line x1="${MARGIN.left + 240}" y1="${legendY - 4}" x2="${MARGIN.left + 260}" y2="${legendY - 4}" stroke="#c0392b" stroke-width="2" stroke-dasharray="5 2"/>
<text x="${MARGIN.left + 266}" y="${legendY}" font-size="11">latency p99</text>
<rect x="${MARGIN.left + 350}" y="${legendY - 10}" width="14" height="10" fill="#f0f0f0" stroke="#ccc"/>
<text x="${MARGIN.left + 370}" y="${legendY}" font-size="11">warm-up (not counted)</text>
<line x1="${MARGIN.left + 510}" y1="${legendY - 10}" x2="${MARGIN.left + 510}" y2="${legendY}" stroke="#888" stroke-dasharray="4 3"/>
<text x="${MARGIN.left + 516}" y="${legendY}" font-size="11">load stops (drain after)</text>
</svg>
`;
}
