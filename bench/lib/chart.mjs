// The chart: warm latency per runtime and mode against the baselines, as an SVG written here
// (horizontal bars at p50 on a log scale, a whisker to p95, the value and the ratio to the floor).
import { fmtMs } from "./util.mjs";

const SERIES = [
  { key: "dockerRun", label: "docker run --rm", color: "#9e9e9e" },
  { key: "floor", label: "floor: bare Docker API exec", color: "#455a64" },
  { key: "fast", label: "isol8 fast pool", color: "#1e88e5" },
  { key: "fastExec", label: "isol8 fast pool, exec launcher", color: "#fb8c00" },
  { key: "secure", label: "isol8 secure pool", color: "#8e24aa" },
];

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function latencyChart(results) {
  const groups = [];
  for (const r of Array.isArray(results.latency) ? results.latency : []) {
    if (r.error) continue;
    const bars = [];
    for (const s of SERIES) {
      const v = r[s.key];
      const label = s.key === "fast" || s.key === "secure" ? `${s.label} (${r.launcher})` : s.label;
      if (v?.p50 != null) bars.push({ ...s, label, p50: v.p50, p95: v.p95, n: v.n });
    }
    if (bars.length) groups.push({ runtime: r.runtime, floor: r.floor?.p50, bars });
  }
  const barH = 16;
  const gap = 4;
  const groupGap = 22;
  const left = 250;
  const right = 150;
  const width = 980;
  const top = 78;
  const plotW = width - left - right;
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.p50, b.p95])).filter((x) => x > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1, Math.min(...values, 10)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 100))));
  const x = (v) => left + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  let y = top;
  const parts = [];
  for (const g of groups) {
    parts.push(`<text x="12" y="${y + 12}" font-weight="bold" font-size="13">${esc(g.runtime)}</text>`);
    for (const b of g.bars) {
      const w = Math.max(1, x(b.p50) - left);
      parts.push(`<text x="${left - 8}" y="${y + barH - 4}" font-size="11" text-anchor="end">${esc(b.label)}</text>`);
      parts.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${b.color}"><title>${esc(`${g.runtime} ${b.label}: p50 ${b.p50} ms, p95 ${b.p95} ms, n=${b.n}`)}</title></rect>`,
      );
      if (b.p95 > b.p50) {
        const x95 = x(b.p95);
        parts.push(`<line x1="${(left + w).toFixed(1)}" x2="${x95.toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#333" stroke-width="1"/>`);
        parts.push(`<line x1="${x95.toFixed(1)}" x2="${x95.toFixed(1)}" y1="${y + 3}" y2="${y + barH - 3}" stroke="#333" stroke-width="1"/>`);
      }
      const vs = g.floor && b.key !== "floor" ? ` (${(b.p50 / g.floor).toFixed(2)}× floor)` : "";
      parts.push(
        `<text x="${(Math.max(left + w, b.p95 ? x(b.p95) : 0) + 6).toFixed(1)}" y="${y + barH - 4}" font-size="11">${fmtMs(b.p50)} ms${esc(vs)}</text>`,
      );
      y += barH + gap;
    }
    y += groupGap;
  }
  const bottom = y;
  const axis = [];
  for (let d = lo; d <= hi; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi) break;
      const xv = x(v);
      axis.push(`<line x1="${xv.toFixed(1)}" x2="${xv.toFixed(1)}" y1="${top - 6}" y2="${bottom - groupGap + 4}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`);
      if (m === 1 || m === 5 || (hi / lo <= 100 && m === 2))
        axis.push(
          `<text x="${xv.toFixed(1)}" y="${bottom - groupGap + 18}" font-size="10" text-anchor="middle" fill="#555">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`,
        );
    }
  }
  const m = results.meta ?? {};
  const title = "isol8 warm latency per runtime and mode vs. the baselines (p50 bar, p95 whisker; log scale)";
  const sub = `${m.date ?? ""} · ${m.machine ?? ""} · ${m.command ?? ""}`;
  const height = bottom + 30;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="24" font-size="15" font-weight="bold">${esc(title)}</text>
<text x="12" y="44" font-size="11" fill="#555">${esc(sub)}</text>
<text x="12" y="60" font-size="11" fill="#555">${esc(`Trivial program per runtime (print(1) and equivalents); one run, so compare as ratios. Load average ${m.loadStart?.[0] ?? "?"} → ${m.loadEnd?.[0] ?? "?"} on ${m.cpus ?? "?"} CPUs.`)}</text>
${axis.join("\n")}
${parts.join("\n")}
</svg>
`;
}
