// The portfolio: health and risk by tier as a heat map, the accounts at risk with their
// signals and owner, the North Star by tier, and renewal / NRR / LTV:CAC over time.
import { get } from "../api.js";
import { field, h, s, select, table } from "../dom.js";
import { date, number, percent } from "../format.js";
import { t } from "../i18n.js";
import { badge, empty, northStarChip, pager, section } from "./common.js";

const RISKS = ["high", "medium", "low", null];
const QUARTERS = 4;
const FIGURES = [["renewal_rate", percent], ["net_revenue_retention", percent], ["ltv_to_cac", (v) => number(v, 2)]];

export async function renderPortfolio(context) {
  const { scoring, messaging } = context.api;
  const periods = quarters(new Date(), QUARTERS);
  const risk = ["high", "medium", "low"].includes(context.query.risk) ? context.query.risk : "high";
  const [portfolio, cells, atRisk, ...figures] = await Promise.all([
    get(`${scoring}/portfolio`),
    get(`${scoring}/portfolio/cells`),
    get(`${scoring}/accounts`, { risk_level: risk, cursor: context.query.cursor, limit: 25 }),
    ...periods.map(([start, end]) => get(`${scoring}/portfolio/figures`, { start: start.toISOString(), end: end.toISOString() })),
  ]);
  const owners = atRisk.items.length
    ? await get(`${messaging}/owners`, { account: atRisk.items.map((item) => item.account_id) })
    : [];
  return [
    h("h1", {}, t("nav.portfolio")),
    northStarChip(portfolio.north_star),
    h("p", { class: "muted" }, t("portfolio.accounts", { n: number(portfolio.accounts) })),
    section(t("portfolio.heatmap"), heatmap(cells.cells)),
    section(t("portfolio.at_risk"), field(t("risk"), select(["high", "medium", "low"].map((r) => [r, t(`risk.${r}`)]), risk, {
      id: "at-risk-level", onchange: (event) => { location.hash = context.href("portfolio", { risk: event.target.value }); },
    })), atRiskTable(context, atRisk, owners), pager(context, "portfolio", atRisk.next_cursor)),
    section(t("portfolio.north_star_by_tier"), bars(portfolio.by_tier)),
    section(t("portfolio.figures"), h("div", { class: "charts" }, FIGURES.map(([name, format]) =>
      lineChart(t(`figure.${name}`), periods.map(([start], i) => {
        const found = figures[i].figures.find((f) => f.name === name) || {};
        return { label: date(start), value: found.value ?? null, reason: found.reason };
      }), format)))),
  ];
}

/** The last `count` calendar quarters up to now, oldest first, as [start, end). */
function quarters(now, count) {
  const found = [];
  let end = new Date(Date.UTC(now.getUTCFullYear(), Math.floor(now.getUTCMonth() / 3) * 3 + 3, 1));
  for (let i = 0; i < count; i += 1) {
    const start = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 3, 1));
    found.unshift([start, end]);
    end = start;
  }
  return found;
}

function healthColour(value) {
  if (value === null || value === undefined) return "var(--none)";
  const hue = Math.round(Math.max(0, Math.min(100, value)) * 1.2); // 0 red .. 120 green
  return `hsl(${hue} 65% 78%)`;
}

function heatmap(cells) {
  const tiers = [...new Set(cells.map((c) => c.tier))].sort((a, b) => (a === null) - (b === null) || String(a).localeCompare(String(b)));
  if (!tiers.length) return empty(t("portfolio.none"));
  const grid = new Map();
  for (const c of cells) {
    const key = `${c.tier}|${c.risk_level}`;
    const cell = grid.get(key) || { accounts: 0, weighted: 0, weight: 0 };
    cell.accounts += c.accounts;
    if (c.mean_health !== null) { cell.weighted += c.mean_health * c.accounts; cell.weight += c.accounts; }
    grid.set(key, cell);
  }
  const cellW = 130;
  const cellH = 48;
  const left = 120;
  const top = 30;
  const label = (tier) => tier ?? t("portfolio.no_tier");
  const riskLabel = (risk) => (risk ? t(`risk.${risk}`) : t("portfolio.no_risk"));
  const svg = s("svg", {
    class: "heatmap", width: left + RISKS.length * cellW, height: top + tiers.length * cellH + 8,
    role: "img", "aria-labelledby": "heatmap-title",
  },
  s("title", { id: "heatmap-title" }, t("portfolio.heatmap_label")),
  RISKS.map((risk, col) => s("text", { x: left + col * cellW + cellW / 2, y: 20, "text-anchor": "middle", class: "axis" }, riskLabel(risk))),
  tiers.map((tier, row) => [
    s("text", { x: left - 10, y: top + row * cellH + cellH / 2 + 5, "text-anchor": "end", class: "axis" }, label(tier)),
    RISKS.map((risk, col) => {
      const cell = grid.get(`${tier}|${risk}`);
      const mean = cell && cell.weight ? cell.weighted / cell.weight : null;
      return s("g", {},
        s("rect", { x: left + col * cellW + 2, y: top + row * cellH + 2, width: cellW - 4, height: cellH - 4, rx: 6,
          fill: cell ? healthColour(mean) : "var(--empty)" }),
        s("text", { x: left + col * cellW + cellW / 2, y: top + row * cellH + cellH / 2 + 5, "text-anchor": "middle", class: "cell" },
          cell ? `${number(cell.accounts)} · ${number(mean, 0)}` : ""));
    }),
  ]));
  const rows = tiers.map((tier) => [label(tier), ...RISKS.map((risk) => {
    const cell = grid.get(`${tier}|${risk}`);
    return cell ? `${number(cell.accounts)} (${t("health")} ${number(cell.weight ? cell.weighted / cell.weight : null, 0)})` : "0";
  })]);
  return [h("p", { class: "muted" }, t("portfolio.heatmap_help")), svg,
    h("details", {}, h("summary", {}, t("portfolio.as_table")),
      table(t("portfolio.heatmap_label"), [t("path.tier"), ...RISKS.map(riskLabel)], rows, { id: "heatmap-table" }))];
}

function atRiskTable(context, page, owners) {
  if (!page.items.length) return empty(t("portfolio.none_at_risk"));
  const ownerOf = new Map(owners.map((o) => [o.account_id, o.name || o.contact_id]));
  return table(t("portfolio.at_risk"), [t("account"), t("health"), t("path.tier"), t("signals"), t("owner")],
    page.items.map((item) => [
      h("a", { href: context.href(`account/${encodeURIComponent(item.account_id)}`) }, item.account_id),
      number(item.health, 1), item.tier || "—",
      item.signals.length ? item.signals.map((signal) => badge("signal", signal)) : "—",
      ownerOf.get(item.account_id) || t("portfolio.no_owner"),
    ]), { id: "at-risk" });
}

function bars(groups) {
  const found = groups.filter((g) => g.north_star !== null);
  if (!found.length) return empty(t("portfolio.no_north_star"));
  const most = Math.max(...found.map((g) => g.north_star), 1);
  const width = 420;
  return s("svg", { class: "bars", width: width + 160, height: found.length * 30 + 10, role: "img", "aria-label": t("portfolio.north_star_by_tier") },
    found.map((g, i) => s("g", {},
      s("text", { x: 110, y: i * 30 + 22, "text-anchor": "end", class: "axis" }, g.key ?? t("portfolio.no_tier")),
      s("rect", { x: 120, y: i * 30 + 6, height: 20, width: Math.max(2, (g.north_star / most) * width), class: "bar", rx: 3 }),
      s("text", { x: 126 + Math.max(2, (g.north_star / most) * width), y: i * 30 + 22, class: "axis" }, number(g.north_star, 1)))));
}

function lineChart(title, points, format) {
  const width = 300;
  const height = 160;
  const pad = 34;
  const values = points.map((p) => p.value).filter((v) => v !== null);
  const high = values.length ? Math.max(...values) * 1.1 || 1 : 1;
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => height - pad - (v / high) * (height - 2 * pad);
  const line = points.map((p, i) => (p.value === null ? null : `${x(i)},${y(p.value)}`)).filter(Boolean).join(" ");
  const description = points.map((p) => `${p.label}: ${p.value === null ? "—" : format(p.value)}`).join("; ");
  return h("figure", { class: "chart" }, s("svg", { width, height, role: "img", "aria-label": `${title}: ${description}` },
    s("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis-line" }),
    line ? s("polyline", { points: line, class: "series" }) : null,
    points.map((p, i) => [
      p.value === null ? null : s("circle", { cx: x(i), cy: y(p.value), r: 4, class: "point" }, s("title", {}, `${p.label}: ${format(p.value)}`)),
      p.value === null ? null : s("text", { x: x(i), y: y(p.value) - 8, "text-anchor": "middle", class: "axis" }, format(p.value)),
      s("text", { x: x(i), y: height - pad + 16, "text-anchor": "middle", class: "axis small" }, p.label),
    ]),
    values.length ? null : s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis" }, t("portfolio.no_data"))),
  h("figcaption", {}, title, values.length ? null : h("span", { class: "muted reason" }, points.map((p) => p.reason).filter(Boolean).pop())));
}
