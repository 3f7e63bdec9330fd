// The growth path: stages and nodes as a graph, with accounts now, conversion, median days
// and overdue per node; a click lists the accounts in a node.
import { get, getOr } from "../api.js";
import { field, h, s, select, table } from "../dom.js";
import { date, dateTime, days, number, percent } from "../format.js";
import { t } from "../i18n.js";
import { badge, empty, errorBox, northStarChip, pager, section } from "./common.js";
import { besideLive, lastSimulation, playbookChoice, playbookDrafts, savedDrafts, simulate } from "./simulation.js";

const STAGE_WIDTH = 230;
const STAGE_GAP = 70;
const NODE_HEIGHT = 96;
const NODE_GAP = 26;
const HEAD = 58;
const MARGIN = 16;

export async function renderPaths(context) {
  const page = await get(`${context.api.engine}/paths`, { limit: 200 });
  if (page.items.length === 1) {
    location.replace(context.href(`path/${encodeURIComponent(page.items[0].path_id)}`));
  }
  return section(t("path.list"),
    page.items.length
      ? h("ul", { class: "links" }, page.items.map((item) => h("li", {},
        h("a", { href: context.href(`path/${encodeURIComponent(item.path_id)}`) }, item.name),
        h("span", { class: "muted" }, ` ${item.path_id} · v${item.current_version}`),
        item.paused ? badge("paused", t("path.paused")) : null)))
      : empty(t("path.none")));
}

export async function renderPath(context) {
  const [pathId] = context.args;
  const { engine, scoring } = context.api;
  const id = encodeURIComponent(pathId);
  const [detail, paths, funnel, overdue, portfolio] = await Promise.all([
    get(`${engine}/paths/${id}`),
    get(`${engine}/paths`, { limit: 200 }),
    get(`${engine}/paths/${id}/funnel`),
    get(`${engine}/paths/${id}/overdue`),
    getOr(null, `${scoring}/portfolio`),
  ]);
  const version = Number(context.query.version || detail.current_version);
  const shown = await get(`${engine}/paths/${id}/versions/${version}`);
  const figures = figuresByNode(funnel, overdue);
  const pathPicker = select(paths.items.map((p) => [p.path_id, p.name]), pathId, {
    id: "path-picker",
    onchange: (event) => { location.hash = context.href(`path/${encodeURIComponent(event.target.value)}`); },
  });
  const versionPicker = select(detail.versions.map((v) => [v.version,
    `v${v.version} · ${date(v.published_at)}${v.version === detail.current_version ? ` (${t("path.current")})` : ""}`]),
  version, {
    id: "version-picker",
    onchange: (event) => {
      const { draft, playbooks } = context.query; // the chosen draft stays chosen
      location.hash = context.href(`path/${id}`, { version: event.target.value, draft, playbooks });
    },
  });
  return [
    h("div", { class: "toolbar" },
      h("h1", {}, shown.summary.name),
      field(t("path.path"), pathPicker), field(t("path.version"), versionPicker),
      detail.paused ? badge("paused", t("path.paused")) : null,
      h("a", { class: "button", href: context.href("author", { kind: "path", id: pathId }) }, t("path.edit"))),
    northStarChip(portfolio && portfolio.north_star),
    h("p", { class: "muted" }, t("path.summary", {
      accounts: number(funnel.accounts), type: shown.summary.business_type, every: shown.summary.review_every,
    })),
    section(t("path.graph"), graph(context, pathId, shown.summary, figures)),
    section(t("path.figures"), figuresTable(context, pathId, shown.summary, figures)),
    draftChoice(context, pathId, version),
    await compared(context, pathId, shown.summary, figures),
  ];
}

/** The chosen draft (`?draft=NAME&playbooks=A,B`) and draft playbooks to compare with. */
function draftChoice(context, pathId, version) {
  const drafts = savedDrafts(context, "path").filter((draft) => draft.id === pathId);
  const chosen = (context.query.playbooks || "").split(",").filter(Boolean);
  const picker = select([["", t("draft.last_simulation")], ...drafts.map((d) => [d.name, `${d.name} · ${dateTime(d.saved_at)}`])],
    context.query.draft || "", { id: "draft-picker" });
  const playbooks = playbookChoice(context, chosen);
  const form = h("form", {
    class: "filters", id: "draft-choice", onsubmit: (event) => {
      event.preventDefault();
      location.hash = context.href(`path/${encodeURIComponent(pathId)}`, {
        version: context.query.version, draft: picker.value, playbooks: picker.value ? playbooks.names().join(",") : "",
      });
    },
  }, field(t("draft.path"), picker), playbooks.element, h("button", { type: "submit" }, t("draft.compare")));
  return section(t("draft.title"), h("p", { class: "muted" },
    drafts.length ? t("draft.help") : t("draft.none_saved")), form);
}

/** The simulation beside the live figures: of the chosen draft (simulated now), or the
 * tab's last one; an error box when the chosen draft cannot be simulated. */
async function compared(context, pathId, summary, figures) {
  const name = context.query.draft;
  if (!name) return besideLive(context, summary, figures, lastSimulation(context, pathId));
  const draft = savedDrafts(context, "path").find((d) => d.name === name && d.id === pathId);
  if (!draft) return section(t("draft.title"), empty(t("draft.missing", { name })));
  const names = (context.query.playbooks || "").split(",").filter(Boolean);
  const playbooks = playbookDrafts(context, names);
  try {
    const report = await simulate(context, draft.source, draft.source_name, playbooks);
    return besideLive(context, summary, figures, {
      at: new Date().toISOString(), report, draft: name, playbooks: playbooks.map((p) => p.name),
    });
  } catch (error) {
    return errorBox(error);
  }
}

function figuresByNode(funnel, overdue) {
  const found = new Map();
  for (const step of funnel.steps) found.set(`${step.stage}/${step.node ?? ""}`, { ...step, overdue: 0 });
  for (const item of overdue.nodes) {
    const key = `${item.stage}/${item.node}`;
    found.set(key, { ...(found.get(key) || { accounts_now: 0 }), overdue: item.accounts });
  }
  return found;
}

function accountsLink(context, pathId, query) {
  return context.href(`path/${encodeURIComponent(pathId)}/accounts`, query);
}

/** Where each stage and node sits: stages left to right, nodes top to bottom. */
function layout(summary) {
  const boxes = new Map();
  summary.stages.forEach((stage, column) => {
    const x = MARGIN + column * (STAGE_WIDTH + STAGE_GAP);
    boxes.set(stage.id, { x, y: MARGIN, width: STAGE_WIDTH, height: HEAD - 8, stage: true });
    stage.nodes.forEach((node, row) => {
      boxes.set(node.id, {
        x: x + 10, y: MARGIN + HEAD + row * (NODE_HEIGHT + NODE_GAP), width: STAGE_WIDTH - 20, height: NODE_HEIGHT,
      });
    });
  });
  return boxes;
}

function edges(summary) {
  const found = [];
  summary.stages.forEach((stage, column) => {
    stage.nodes.forEach((node, row) => {
      if (node.next.length) {
        for (const branch of node.next) found.push({ from: node.id, to: branch.goto, when: branch.when });
      } else if (row + 1 < stage.nodes.length) {
        found.push({ from: node.id, to: stage.nodes[row + 1].id });
      }
    });
    if (stage.next.length) {
      for (const branch of stage.next) found.push({ from: stage.id, to: branch.goto, when: branch.when });
    } else if (column + 1 < summary.stages.length) {
      found.push({ from: stage.id, to: summary.stages[column + 1].id });
    }
  });
  return found;
}

function edgePath(from, to) {
  if (Math.abs(from.x - to.x) < 20) { // same column: down the middle, or around the right side
    const x = from.x + from.width / 2;
    if (to.y > from.y) return `M${x},${from.y + from.height} L${x},${to.y - 2}`;
    const side = from.x + from.width + 18;
    return `M${from.x + from.width},${from.y + 20} C${side},${from.y + 20} ${side},${to.y + 20} ${to.x + to.width + 2},${to.y + 20}`;
  }
  const forward = to.x > from.x;
  const x1 = forward ? from.x + from.width : from.x;
  const x2 = forward ? to.x - 2 : to.x + to.width + 2;
  const y1 = from.y + from.height / 2;
  const y2 = to.y + to.height / 2;
  const bend = (x2 - x1) / 2;
  return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
}

function graph(context, pathId, summary, figures) {
  const boxes = layout(summary);
  const deepest = Math.max(1, ...summary.stages.map((stage) => stage.nodes.length));
  const tierBand = summary.tiers ? 52 + tierLines(summary.tiers).length * 18 : 0;
  const width = Math.max(MARGIN * 2 + summary.stages.length * (STAGE_WIDTH + STAGE_GAP) - STAGE_GAP,
    summary.tiers ? MARGIN * 2 + Math.max(...tierLines(summary.tiers).map((l) => l.length)) * 6.6 + 24 : 0);
  const height = MARGIN * 2 + HEAD + deepest * (NODE_HEIGHT + NODE_GAP) + tierBand;
  const lines = edges(summary).filter((e) => boxes.has(e.from) && boxes.has(e.to)).map((e) =>
    s("path", {
      d: edgePath(boxes.get(e.from), boxes.get(e.to)), class: e.when ? "edge branch" : "edge",
      "marker-end": "url(#arrow)",
    }, e.when ? s("title", {}, `${t("path.when")} ${e.when}`) : null));
  const stages = summary.stages.map((stage) => stageGroup(context, pathId, stage, boxes, figures));
  return h("div", { class: "graph-scroll" }, s("svg", {
    class: "path-graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "group",
    "aria-label": t("path.graph_label", { name: summary.name }),
  },
  s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))),
  stages, lines, summary.tiers ? tiersBand(summary, boxes, height - tierBand) : null));
}

function stageGroup(context, pathId, stage, boxes, figures) {
  const box = boxes.get(stage.id);
  const between = figures.get(`${stage.id}/`);
  const column = s("rect", {
    x: box.x, y: box.y, width: box.width, rx: 10,
    height: HEAD + stage.nodes.length * (NODE_HEIGHT + NODE_GAP) + 4, class: "stage-column",
  });
  const head = s("a", {
    href: accountsLink(context, pathId, { stage: stage.id }),
    "aria-label": t("path.stage_label", { name: stage.name, n: between ? between.accounts_now : 0 }),
  },
  s("rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: 10, class: "stage-head" }),
  s("text", { x: box.x + 12, y: box.y + 22, class: "stage-name" }, fit(stage.name, 28)),
  s("text", { x: box.x + 12, y: box.y + 40, class: "stage-meta" },
    t("path.between", { n: number(between ? between.accounts_now : 0) })));
  return s("g", { class: "stage" }, column, head,
    stage.nodes.map((node) => nodeGroup(context, pathId, stage, node, boxes.get(node.id), figures.get(`${stage.id}/${node.id}`))));
}

function nodeGroup(context, pathId, stage, node, box, figure) {
  const now = figure ? figure.accounts_now : 0;
  const overdue = figure ? figure.overdue : 0;
  const label = t("path.node_label", {
    name: node.name, n: now, conversion: percent(figure && figure.conversion),
    median: days(figure && figure.median_days_in_node), overdue,
  });
  return s("a", {
    href: accountsLink(context, pathId, { stage: stage.id, node: node.id }), "aria-label": label,
    class: "node-link", dataset: { node: node.id },
  },
  s("title", {}, label),
  s("rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: 8, class: overdue ? "node overdue" : "node" }),
  s("text", { x: box.x + 10, y: box.y + 20, class: "node-name" }, fit(node.name, node.escalations.length ? 21 : 26)),
  s("text", { x: box.x + 10, y: box.y + 40, class: "node-figure" }, t("path.now", { n: number(now) })),
  s("text", { x: box.x + 10, y: box.y + 58, class: "node-meta" },
    `${t("path.conversion")} ${percent(figure && figure.conversion)} · ${days(figure && figure.median_days_in_node)}`),
  s("text", { x: box.x + 10, y: box.y + 78, class: overdue ? "node-overdue" : "node-meta" },
    node.due ? t("path.overdue_n", { n: number(overdue), due: node.due }) : t("path.no_due")),
  node.escalations.length ? s("text", { x: box.x + box.width - 12, y: box.y + 20, "text-anchor": "end", class: "node-meta" },
    `⚑${node.escalations.length}`) : null);
}

/** `text` cut to `size` characters with an ellipsis (the full text is in the label). */
function fit(text, size) {
  return text.length > size ? `${text.slice(0, size - 1)}…` : text;
}

/** The tier levels, three to a line. */
function tierLines(tiers) {
  const levels = tiers.levels.map((level) => `${level.id} ${level.name || ""} ≥ ${number(level.enter_at)}`);
  const lines = [];
  for (let i = 0; i < levels.length; i += 3) lines.push(levels.slice(i, i + 3).join("  ›  "));
  return lines;
}

function tiersBand(summary, boxes, top) {
  const tiers = summary.tiers;
  const covered = tiers.stages.map((id) => boxes.get(id)).filter(Boolean);
  if (!covered.length) return null;
  const lines = tierLines(tiers);
  const right = Math.max(...covered.map((b) => b.x + b.width));
  const needed = Math.max(...lines.map((line) => line.length)) * 6.6 + 24;
  const x = Math.max(MARGIN, Math.min(Math.min(...covered.map((b) => b.x)), right - needed));
  const width = Math.max(right - x, needed);
  return s("g", { class: "tiers" },
    s("rect", { x, y: top + 8, width, height: 34 + lines.length * 18, rx: 8, class: "tier-band" }),
    s("text", { x: x + 12, y: top + 28, class: "stage-name" }, `${t("path.tiers")}: ${tiers.label}`),
    lines.map((line, i) => s("text", { x: x + 12, y: top + 48 + i * 18, class: "node-meta" }, line)));
}

function figuresTable(context, pathId, summary, figures) {
  const rows = [];
  for (const stage of summary.stages) {
    const between = figures.get(`${stage.id}/`);
    rows.push([h("strong", {}, stage.name), t("path.between_short"),
      h("a", { href: accountsLink(context, pathId, { stage: stage.id }) }, number(between ? between.accounts_now : 0)),
      "—", "—", "—"]);
    for (const node of stage.nodes) {
      const f = figures.get(`${stage.id}/${node.id}`) || {};
      rows.push(["", node.name,
        h("a", { href: accountsLink(context, pathId, { stage: stage.id, node: node.id }) }, number(f.accounts_now || 0)),
        percent(f.conversion), days(f.median_days_in_node),
        f.overdue ? h("a", { href: accountsLink(context, pathId, { stage: stage.id, node: node.id, overdue: "1" }), class: "overdue" }, number(f.overdue)) : "0"]);
    }
  }
  return table(t("path.figures_caption"), [t("path.stage"), t("path.node"), t("path.accounts_now"),
    t("path.conversion"), t("path.median_days"), t("path.overdue")], rows, { id: "path-figures" });
}

export async function renderNodeAccounts(context) {
  const [pathId] = context.args;
  const { stage, node, tier, overdue, cursor } = context.query;
  const page = await get(`${context.api.engine}/paths/${encodeURIComponent(pathId)}/accounts`, {
    stage, node, tier, overdue: overdue ? "true" : "", cursor, limit: 50,
  });
  const view = `path/${encodeURIComponent(pathId)}/accounts`;
  const overdueBox = h("input", { type: "checkbox", id: "only-overdue", checked: Boolean(overdue) });
  const tierInput = h("input", { id: "tier-filter", value: tier || "", size: 10 });
  const filters = h("form", {
    class: "filters", onsubmit: (event) => {
      event.preventDefault();
      location.hash = context.href(view, { stage, node, tier: tierInput.value.trim(), overdue: overdueBox.checked ? "1" : "" });
    },
  }, field(t("path.tier"), tierInput),
  h("div", { class: "field check" }, overdueBox, h("label", { for: "only-overdue" }, t("path.only_overdue"))),
  h("button", { type: "submit" }, t("filter")));
  const rows = page.items.map((item) => [
    h("a", { href: context.href(`account/${encodeURIComponent(item.account_id)}`) }, item.account_id),
    item.stage, item.node || "—", item.tier || "—", `v${item.path_version}`,
    item.node_entered_at ? date(item.node_entered_at) : date(item.stage_entered_at),
    item.overdue ? badge("overdue", t("path.overdue")) : "",
  ]);
  return [
    h("p", {}, h("a", { href: context.href(`path/${encodeURIComponent(pathId)}`) }, `← ${t("path.back")}`)),
    h("h1", {}, t("path.accounts_in", { where: [stage, node].filter(Boolean).join(" / ") || pathId })),
    filters,
    rows.length
      ? table(t("path.accounts_caption"), [t("account"), t("path.stage"), t("path.node"), t("path.tier"),
        t("path.version"), t("path.since"), t("path.overdue")], rows, { id: "node-accounts" })
      : empty(t("path.no_accounts")),
    pager(context, view, page.next_cursor),
  ];
}
