// A draft growth path simulated on the workspace's recent events: its figures per node and
// the outreach it would produce per role. Drafts of paths and playbooks are saved by name in
// this browser (per workspace), so the Path view can compare a chosen one, with chosen draft
// playbooks, with the live figures at a stable address; the tab's last simulation is kept too.
import { post } from "../api.js";
import { h, table } from "../dom.js";
import { dateTime, number } from "../format.js";
import { t } from "../i18n.js";
import { empty, section } from "./common.js";

const STORE = "milepost.simulation";
const DRAFTS = "milepost.drafts";

/** Simulate `source` (a path file), with draft `playbooks` ({source, source_name}) when
 * given, and remember the report as the path's last simulation in this tab. */
export async function simulate(context, source, sourceName, playbooks = []) {
  const report = await post(`${context.api.simulation}/paths`, {
    source, source_name: sourceName,
    playbooks: playbooks.map((p) => ({ source: p.source, source_name: p.source_name })),
  });
  const key = `${STORE}.${context.workspace}.${report.path.id}`;
  sessionStorage.setItem(key, JSON.stringify({ at: new Date().toISOString(), report }));
  return report;
}

/** The last simulation of `pathId` in this tab: {at, report}, or null. */
export function lastSimulation(context, pathId) {
  const kept = sessionStorage.getItem(`${STORE}.${context.workspace}.${pathId}`);
  return kept ? JSON.parse(kept) : null;
}

function draftKey(context) {
  return `${DRAFTS}.${context.workspace}`;
}

/** The drafts of `kind` ("path" or "playbook") saved in this browser for the workspace, by
 * name: {name, id, source, source_name, saved_at}. */
export function savedDrafts(context, kind) {
  const all = JSON.parse(localStorage.getItem(draftKey(context)) || "{}");
  return Object.values(all[kind] || {}).sort((a, b) => a.name.localeCompare(b.name));
}

/** Save `source` as the draft `name` of `kind` (replacing one of that name); its name
 * without commas, as addresses list playbook drafts comma-separated. */
export function saveDraft(context, kind, name, source, sourceName) {
  const all = JSON.parse(localStorage.getItem(draftKey(context)) || "{}");
  const clean = name.replaceAll(",", " ").trim();
  const id = (/^id:\s*["']?([^"'\s#]+)/m.exec(source) || [])[1] || "";
  all[kind] = { ...(all[kind] || {}), [clean]: { name: clean, id, source, source_name: sourceName, saved_at: new Date().toISOString() } };
  localStorage.setItem(draftKey(context), JSON.stringify(all));
  return clean;
}

/** Checkboxes of the saved playbook drafts, `chosen` (names) ticked; `names()` the ticked. */
export function playbookChoice(context, chosen) {
  const drafts = savedDrafts(context, "playbook");
  const boxes = drafts.map((draft, i) => h("input", {
    type: "checkbox", id: `draft-playbook-${i}`, value: draft.name, checked: chosen.includes(draft.name),
  }));
  const element = h("fieldset", { class: "draft-playbooks" }, h("legend", {}, t("draft.playbooks")),
    drafts.length
      ? drafts.map((draft, i) => h("div", { class: "field check" }, boxes[i],
        h("label", { for: boxes[i].id }, `${draft.name} (${draft.id || "?"})`)))
      : h("p", { class: "muted" }, t("draft.no_playbooks")));
  return { element, names: () => boxes.filter((box) => box.checked).map((box) => box.value) };
}

/** The saved playbook drafts named in `names`, in that order (unknown names left out). */
export function playbookDrafts(context, names) {
  const drafts = savedDrafts(context, "playbook");
  return names.map((name) => drafts.find((draft) => draft.name === name)).filter(Boolean);
}

/** Per "stage/node": accounts at the end, entries, completions, median days, overdue. */
export function nodeFigures(report) {
  const figures = new Map();
  const at = (stage, node) => {
    const key = `${stage}/${node || ""}`;
    if (!figures.has(key)) figures.set(key, { accounts: 0, entered: 0, completed: 0, median_days: null, overdue: 0 });
    return figures.get(key);
  };
  const items = report.snapshots.items;
  for (const place of items.length ? items[items.length - 1].places : []) at(place.stage, place.node).accounts = place.accounts;
  for (const trigger of report.triggers.by_node) {
    if (trigger.kind === "node_entered") at(trigger.stage, trigger.node).entered += trigger.count;
    if (trigger.kind === "node_overdue") at(trigger.stage, trigger.node).overdue += trigger.count;
  }
  for (const done of report.time_to_complete) {
    Object.assign(at(done.stage, done.node), { completed: done.completed, median_days: done.median_days });
  }
  return figures;
}

/** Messages planned per role and status, with one reason each; tasks counted apart. */
function outreachByRole(outreach) {
  const counts = new Map();
  let tasks = 0;
  for (const item of outreach) {
    tasks += item.tasks.length;
    for (const message of item.messages) {
      const key = `${message.role}\u0000${message.status}`;
      const found = counts.get(key) || { role: message.role, status: message.status, count: 0, reason: message.reason };
      found.count += 1;
      counts.set(key, found);
    }
  }
  const rows = [...counts.values()].sort((a, b) => a.role.localeCompare(b.role) || a.status.localeCompare(b.status));
  return { rows, tasks, triggers: outreach.length };
}

/** The report as the Author view shows it. */
export function simulationResult(report) {
  const events = report.events;
  const figures = [...nodeFigures(report)].sort(([a], [b]) => a.localeCompare(b));
  const nodes = figures.length
    ? table(t("simulation.nodes_caption"), [t("path.stage"), t("path.node"), t("simulation.accounts_end"),
      t("simulation.entered"), t("simulation.completed"), t("simulation.median_days"), t("path.overdue")],
    figures.map(([key, f]) => {
      const [stage, node] = key.split("/");
      return [stage, node || t("path.between_short"), number(f.accounts), number(f.entered), number(f.completed),
        f.median_days === null ? "—" : number(f.median_days, 1), number(f.overdue)];
    }), { id: "simulation-nodes" })
    : empty(t("simulation.no_nodes"));
  return section(t("simulation.title", { id: report.path.id, version: report.path.version }),
    h("p", { id: "simulation-summary" }, t("simulation.summary", {
      events: number(events.replayed), from: events.from ? dateTime(events.from) : "—",
      to: events.to ? dateTime(events.to) : "—", accounts: number(report.accounts.enrolled),
    })),
    nodes,
    report.outreach ? outreachTable(outreachByRole(report.outreach)) : null);
}

function outreachTable({ rows, tasks, triggers }) {
  return [
    h("h3", {}, t("simulation.outreach")),
    h("p", { class: "muted" }, t("simulation.outreach_summary", { triggers: number(triggers), tasks: number(tasks) })),
    rows.length
      ? table(t("simulation.outreach_caption"), [t("role"), t("status"), t("simulation.messages"), t("why")],
        rows.map((r) => [t(`role.${r.role}`), t(`status.${r.status}`), number(r.count), r.reason || "—"]),
        { id: "simulation-outreach" })
      : empty(t("simulation.no_messages")),
  ];
}

/** The Path view's live figures beside a simulation's, or null without one. `kept`:
 * {at, report, draft?, playbooks?}, a chosen draft (with its draft playbooks' names) or the
 * tab's last simulation. */
export function besideLive(context, summary, live, kept) {
  if (!kept) return null;
  const simulated = nodeFigures(kept.report);
  const rows = summary.stages.flatMap((stage) => stage.nodes.map((node) => {
    const key = `${stage.id}/${node.id}`;
    const l = live.get(key) || {};
    const s = simulated.get(key) || { accounts: 0, median_days: null, overdue: 0 };
    return [stage.name, node.name, number(l.accounts_now || 0), number(s.accounts),
      l.median_days_in_node === null || l.median_days_in_node === undefined ? "—" : number(l.median_days_in_node, 1),
      s.median_days === null ? "—" : number(s.median_days, 1), number(l.overdue || 0), number(s.overdue)];
  }));
  const title = kept.draft
    ? t("draft.beside", { name: kept.draft, version: kept.report.path.version, at: dateTime(kept.at) })
    : t("simulation.beside", { version: kept.report.path.version, at: dateTime(kept.at) });
  return section(title,
    kept.draft ? h("p", { id: "draft-playbooks-used" }, kept.playbooks.length
      ? t("draft.with_playbooks", { names: kept.playbooks.join(", ") }) : t("draft.current_playbooks")) : null,
    table(t("simulation.beside_caption"), [t("path.stage"), t("path.node"), t("simulation.live_accounts"),
      t("simulation.sim_accounts"), t("simulation.live_median"), t("simulation.sim_median"),
      t("simulation.live_overdue"), t("simulation.sim_overdue")], rows, { id: "simulation-beside" }),
    kept.report.outreach ? outreachTable(outreachByRole(kept.report.outreach)) : null);
}
