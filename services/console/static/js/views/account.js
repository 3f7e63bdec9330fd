// One account on one page: its place on each path, its timeline, score and risk with the
// explanation, what was sent to whom and why, tasks, contacts, and a manual move.
import { ApiError, get, getOr, post } from "../api.js";
import { clear, field, h, select, table } from "../dom.js";
import { dateTime, number } from "../format.js";
import { t } from "../i18n.js";
import { badge, empty, northStarChip, pager, section, statusBadge } from "./common.js";

export async function renderAccountSearch(context) {
  const input = h("input", { id: "account-id", required: true, autocomplete: "off" });
  const form = h("form", {
    class: "filters", role: "search", onsubmit: (event) => {
      event.preventDefault();
      location.hash = context.href(`account/${encodeURIComponent(input.value.trim())}`);
    },
  }, field(t("account.find"), input), h("button", { type: "submit" }, t("open")));
  const risk = context.query.risk || "";
  const page = await get(`${context.api.scoring}/accounts`, { risk_level: risk, cursor: context.query.cursor, limit: 50 });
  const riskPicker = select([["", t("all")], ["high", t("risk.high")], ["medium", t("risk.medium")], ["low", t("risk.low")]], risk, {
    id: "risk-filter", onchange: (event) => { location.hash = context.href("account", { risk: event.target.value }); },
  });
  const rows = page.items.map((item) => [
    h("a", { href: context.href(`account/${encodeURIComponent(item.account_id)}`) }, item.account_id),
    number(item.health, 1), item.risk_level ? badge(`risk-${item.risk_level}`, t(`risk.${item.risk_level}`)) : "—",
    item.tier || "—", item.signals.join(", ") || "—", dateTime(item.evaluated_at),
  ]);
  return [
    h("h1", {}, t("nav.account")), form,
    section(t("account.scored"), field(t("risk"), riskPicker),
      rows.length ? table(t("account.scored"), [t("account"), t("health"), t("risk"), t("path.tier"), t("signals"), t("evaluated")], rows, { id: "scored-accounts" }) : empty(t("account.none_scored")),
      pager(context, "account", page.next_cursor)),
  ];
}

export async function renderAccount(context) {
  const [accountId] = context.args;
  const { engine, scoring, messaging } = context.api;
  const a = encodeURIComponent(accountId);
  const [position, transitions, score, history, contacts, deliveries, plans, tasks, owners] = await Promise.all([
    getOr(null, `${engine}/accounts/${a}`),
    get(`${engine}/accounts/${a}/timeline`, { limit: 500 }),
    getOr(null, `${scoring}/accounts/${a}`),
    getOr({ items: [] }, `${scoring}/accounts/${a}/history`, { limit: 100 }),
    get(`${messaging}/contacts`, { account: accountId, limit: 200 }),
    get(`${messaging}/deliveries`, { account: accountId, limit: 200 }),
    get(`${messaging}/plans`, { account: accountId, limit: 200 }),
    get(`${messaging}/tasks`, { account: accountId, limit: 200 }),
    get(`${messaging}/owners`, { account: accountId }),
  ]);
  if (!position && !score && !transitions.items.length && !contacts.items.length) {
    return [h("h1", {}, accountId), empty(t("account.unknown"))];
  }
  const owner = owners[0];
  const summaries = position ? Object.fromEntries(await Promise.all(position.paths.map(async (p) => [p.path_id,
    (await get(`${engine}/paths/${encodeURIComponent(p.path_id)}/versions/${p.path_version}`)).summary]))) : {};
  return [
    h("div", { class: "toolbar" }, h("h1", {}, t("account.title", { id: accountId })),
      score && score.risk_level ? badge(`risk-${score.risk_level}`, `${t("risk")}: ${t(`risk.${score.risk_level}`)}`) : null,
      score && score.health !== null ? badge("health", `${t("health")} ${number(score.health, 1)}`) : null,
      owner ? h("span", { class: "muted" }, `${t("owner")}: ${owner.name || owner.contact_id}`) : null),
    positions(context, position),
    scoreSection(score),
    contactsSection(contacts.items, plans, deliveries.items, context),
    tasksSection(tasks.items),
    timelineSection(context, transitions.items, history.items, deliveries.items, tasks.items),
    position ? moveSection(context, accountId, position, summaries) : null,
  ];
}

function positions(context, position) {
  if (!position) return section(t("account.positions"), empty(t("account.on_no_path")));
  return section(t("account.positions"), position.paths.map((p) => h("div", { class: "position" },
    h("h3", {}, h("a", { href: context.href(`path/${encodeURIComponent(p.path_id)}`) }, p.path_id), ` v${p.path_version}`),
    h("p", {}, t("account.at", { stage: p.stage, node: p.node || "—", tier: p.tier || "—" }),
      h("span", { class: "muted" }, ` · ${t("account.enrolled")} ${dateTime(p.enrolled_at)}`)),
    p.last_error ? h("p", { class: "error" }, p.last_error) : null,
    h("ol", { class: "node-steps", "aria-label": t("account.nodes") }, p.nodes.map((n) =>
      h("li", { class: `step ${n.status}` }, `${n.node}: ${t(`node_status.${n.status}`)}`,
        h("span", { class: "muted" }, ` ${dateTime(n.entered_at)}`)))))));
}

function scoreSection(score) {
  if (!score) return section(t("account.score"), empty(t("account.not_scored")));
  return section(t("account.score"),
    h("p", {}, `${t("health")}: `, h("strong", {}, number(score.health, 1)), ` · ${t("band")}: ${score.band ? t(`band.${score.band}`) : "—"} · ${t("path.tier")}: ${score.tier || "—"}`),
    northStarChip(score.north_star),
    h("h3", {}, t("account.explanation")),
    score.explanation.length ? h("ul", { class: "sentences" }, score.explanation.map((line) => h("li", {}, line))) : empty("—"),
    h("h3", {}, t("signals")),
    score.signals.length
      ? h("ul", { class: "signals" }, score.signals.map((signal) => h("li", {},
        badge(`severity-${signal.severity}`, signal.kind), " ", signal.sentence)))
      : empty(t("account.no_signals")),
    score.components.length ? table(t("account.components"), [t("account.component"), t("account.value"), t("account.weight"), t("account.points"), t("account.detail")],
      score.components.map((c) => [c.component, number(c.value, 2), number(c.weight, 2), number(c.contribution, 1), c.detail])) : null);
}

function contactsSection(contacts, plans, deliveries, context) {
  const rows = contacts.map((c) => [c.name || c.contact_id, c.roles.map((r) => t(`role.${r}`)).join(", ") || "—",
    c.email || c.phone || "—",
    Object.entries(c.consent).map(([category, yes]) => `${category}: ${yes ? t("consent.in") : t("consent.out")}`).join(", ") || t("consent.default"),
    c.bounced.length ? c.bounced.join(", ") : "—"]);
  const sent = deliveries.map((d) => [d.contact_id, d.step_id, d.channel, statusBadge(d.status), d.reason || "—",
    dateTime(d.planned_at), h("a", { href: context.href(`delivery/${encodeURIComponent(d.delivery_id)}`) }, t("open"))]);
  const planned = plans.map((p) => [p.contact_id || "—", t(`role.${p.role}`), p.step_id, p.channel || "—",
    statusBadge(p.status), p.reason || "—", dateTime(p.planned_at)]);
  return section(t("account.people"),
    rows.length ? table(t("account.contacts"), [t("contact"), t("roles"), t("address"), t("consent"), t("bounced")], rows, { id: "contacts" }) : empty(t("account.no_contacts")),
    h("h3", {}, t("account.deliveries")),
    sent.length ? table(t("account.deliveries"), [t("contact"), t("step"), t("channel"), t("status"), t("why"), t("planned"), t("details")], sent, { id: "account-deliveries" }) : empty(t("account.no_deliveries")),
    h("h3", {}, t("account.plans")),
    planned.length ? table(t("account.plans_caption"), [t("contact"), t("role"), t("step"), t("channel"), t("status"), t("why"), t("planned")], planned, { id: "account-plans" }) : empty(t("account.no_plans")));
}

function tasksSection(tasks) {
  const now = Date.now();
  return section(t("account.tasks"), tasks.length
    ? table(t("account.tasks"), [t("task"), t("owner"), t("status"), t("due")], tasks.map((task) => [
      task.title, task.owner_contact_id || "—", statusBadge(task.status),
      h("span", { class: task.status === "open" && new Date(task.due_at) < now ? "overdue" : "" }, dateTime(task.due_at))]))
    : empty(t("account.no_tasks")));
}

function timelineEntries(transitions, history, deliveries, tasks) {
  return [
    ...transitions.map((x) => ({
      at: x.occurred_at, kind: "transition", label: t(`kind.${x.kind}`), text: [x.stage, x.node].filter(Boolean).join(" / "),
      who: x.kind === "moved" && x.payload.actor ? t("timeline.by", { actor: x.payload.actor }) : null, why: x.reason,
    })),
    ...history.map((x) => ({ at: x.occurred_at, kind: "score", label: t("timeline.score"), text: `${t("health")} ${number(x.health, 1)} · ${t("risk")} ${x.risk_level ? t(`risk.${x.risk_level}`) : "—"}${x.tier ? ` · ${x.tier}` : ""}`, why: x.signals.join(", ") })),
    ...deliveries.map((x) => ({ at: x.planned_at, kind: "delivery", label: t("timeline.delivery"), text: `${x.step_id} → ${x.contact_id} (${x.channel})`, why: `${t(`status.${x.status}`)}${x.reason ? `: ${x.reason}` : ""}` })),
    ...tasks.map((x) => ({ at: x.created_at, kind: "task", label: t("timeline.task"), text: x.title, why: t(`status.${x.status}`) })),
  ].sort((a, b) => new Date(b.at) - new Date(a.at));
}

function timelineSection(context, transitions, history, deliveries, tasks) {
  const entries = timelineEntries(transitions, history, deliveries, tasks);
  const list = h("ol", { class: "timeline", id: "timeline" });
  const show = (kind) => clear(list, entries.filter((e) => !kind || e.kind === kind).map((e) =>
    h("li", { class: `entry ${e.kind}` }, h("time", { datetime: e.at }, dateTime(e.at)), " ",
      badge(`kind-${e.kind}`, e.label), " ", e.text, e.who ? [" ", h("strong", { class: "actor" }, e.who)] : null,
      e.why ? h("span", { class: "muted" }, ` — ${e.why}`) : null)));
  const kinds = select([["", t("all")], ["transition", t("timeline.transition")], ["score", t("timeline.score")],
    ["delivery", t("timeline.delivery")], ["task", t("timeline.task")]], "", {
    id: "timeline-kind", onchange: (event) => show(event.target.value),
  });
  show("");
  return section(t("account.timeline"), field(t("timeline.show"), kinds), entries.length ? list : empty("—"));
}

/** The stages and nodes of a path as options: "Stage name" then "· node name" under it. */
function targets(summary) {
  return summary.stages.flatMap((stage) => [[stage.id, `${stage.name} (${stage.id})`],
    ...stage.nodes.map((node) => [node.id, `  · ${node.name} (${node.id})`])]);
}

function moveSection(context, accountId, position, summaries) {
  const message = h("p", { role: "status", id: "move-result" });
  const first = position.paths[0].path_id;
  const target = select(targets(summaries[first]), position.paths[0].node || position.paths[0].stage, { id: "move-target", required: true });
  const paths = select(position.paths.map((p) => [p.path_id, p.path_id]), first, {
    id: "move-path", onchange: (event) => clear(target, targets(summaries[event.target.value]).map(([value, text]) => h("option", { value }, text))),
  });
  const reason = h("textarea", { id: "move-reason", required: true, maxlength: 1000, rows: 2 });
  const form = h("form", {
    class: "move", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const moved = await post(`${context.api.engine}/accounts/${encodeURIComponent(accountId)}/moves`, {
          path_id: paths.value, target: target.value, note: reason.value.trim(),
        });
        message.className = "ok";
        message.textContent = t("move.queued", { id: moved.move_id });
      } catch (error) {
        message.className = "error";
        message.textContent = error instanceof ApiError ? error.message : String(error);
      }
    },
  }, field(t("move.path"), paths), field(t("move.target"), target), field(t("move.reason"), reason),
  h("button", { type: "submit" }, t("move.submit")), message);
  return section(t("move.title"), h("p", { class: "muted" }, t("move.help")), form);
}

export async function renderDelivery(context) {
  const [deliveryId] = context.args;
  const d = await get(`${context.api.messaging}/deliveries/${encodeURIComponent(deliveryId)}`);
  return [
    h("p", {}, h("a", { href: context.href(`account/${encodeURIComponent(d.account_id)}`) }, `← ${d.account_id}`)),
    h("h1", {}, t("delivery.title", { step: d.step_id })),
    section(t("delivery.what"), h("dl", { class: "facts" },
      [[t("status"), statusBadge(d.status)], [t("why"), d.reason || "—"], [t("contact"), d.contact_id], [t("channel"), d.channel],
        [t("delivery.category"), d.category], [t("delivery.subject"), d.subject || "—"], [t("planned"), dateTime(d.planned_at)],
        [t("delivery.not_before"), dateTime(d.not_before)], [t("delivery.finished"), dateTime(d.finished_at)],
        [t("delivery.playbook"), d.playbook_id ? `${d.playbook_id} v${d.playbook_version}` : "—"], [t("delivery.trigger"), d.trigger_id]]
        .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    h("h3", {}, t("delivery.body")), h("pre", { class: "body" }, d.body || "—")),
    section(t("delivery.attempts"), (d.history || []).length
      ? table(t("delivery.attempts"), [t("delivery.attempt"), t("status"), t("why"), t("delivery.started"), t("delivery.latency")],
        d.history.map((x) => [String(x.attempt), statusBadge(x.status), x.reason || "—", dateTime(x.started_at), x.latency_ms === null ? "—" : `${number(x.latency_ms, 1)} ms`]))
      : empty("—")),
  ];
}
