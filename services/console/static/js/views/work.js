// The work: open CSM tasks per account owner with due and overdue, and the deliveries log.
import { get } from "../api.js";
import { field, h, select, table } from "../dom.js";
import { dateTime, number } from "../format.js";
import { t } from "../i18n.js";
import { empty, pager, section, statusBadge } from "./common.js";

const DELIVERY_STATUSES = ["queued", "deferred", "retrying", "sent", "failed", "suppressed"];
const TASK_STATUSES = ["open", "escalated", "done", "cancelled"];

export async function renderWork(context) {
  const tab = context.query.tab === "deliveries" ? "deliveries" : "tasks";
  const tabs = h("nav", { class: "tabs", "aria-label": t("work.tabs") }, ["tasks", "deliveries"].map((name) =>
    h("a", { href: context.href("work", { tab: name }), "aria-current": name === tab ? "page" : null }, t(`work.${name}`))));
  return [h("h1", {}, t("nav.work")), tabs, tab === "tasks" ? await tasks(context) : await deliveries(context)];
}

function filterForm(context, tab, controls) {
  return h("form", {
    class: "filters", role: "search", onsubmit: (event) => {
      event.preventDefault();
      const query = { tab };
      for (const [name, control] of Object.entries(controls)) query[name] = control.value.trim();
      location.hash = context.href("work", query);
    },
  }, Object.entries(controls).map(([name, control]) => field(t(`work.filter.${name}`), control)),
  h("button", { type: "submit" }, t("filter")));
}

async function tasks(context) {
  const status = context.query.status || "open";
  const page = await get(`${context.api.messaging}/tasks`, {
    status, owner: context.query.owner, account: context.query.account, cursor: context.query.cursor, limit: 200,
  });
  const controls = {
    status: select(TASK_STATUSES.map((s) => [s, t(`status.${s}`)]), status, { id: "task-status" }),
    owner: h("input", { id: "task-owner", value: context.query.owner || "", autocomplete: "off" }),
    account: h("input", { id: "task-account", value: context.query.account || "", autocomplete: "off" }),
  };
  const accounts = [...new Set(page.items.map((task) => task.account_id))];
  const owners = accounts.length ? await get(`${context.api.messaging}/owners`, { account: accounts }) : [];
  const names = new Map(owners.map((o) => [o.contact_id, o.name || o.contact_id]));
  const now = Date.now();
  const byOwner = new Map();
  for (const task of page.items) {
    const owner = task.owner_contact_id || "";
    if (!byOwner.has(owner)) byOwner.set(owner, []);
    byOwner.get(owner).push(task);
  }
  const groups = [...byOwner.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([owner, items]) => {
    const overdue = items.filter((task) => task.status === "open" && new Date(task.due_at) < now).length;
    const who = owner ? names.get(owner) || owner : t("work.no_owner");
    return section(`${who} — ${t("work.count", { n: number(items.length), overdue: number(overdue) })}`,
      table(t("work.tasks_of", { owner: who }), [t("account"), t("task"), t("status"), t("due"), t("work.escalates")],
        items.map((task) => [
          h("a", { href: context.href(`account/${encodeURIComponent(task.account_id)}`) }, task.account_id),
          task.title, statusBadge(task.status),
          h("span", { class: task.status === "open" && new Date(task.due_at) < now ? "overdue" : "" },
            dateTime(task.due_at), task.status === "open" && new Date(task.due_at) < now ? ` (${t("path.overdue")})` : ""),
          task.escalate_at ? dateTime(task.escalate_at) : "—",
        ]), { class: "tasks" }));
  });
  return [filterForm(context, "tasks", controls), groups.length ? groups : empty(t("work.no_tasks")),
    pager(context, "work", page.next_cursor)];
}

async function deliveries(context) {
  const { status, account, contact, cursor } = context.query;
  const page = await get(`${context.api.messaging}/deliveries`, { status, account, contact, cursor, limit: 50 });
  const controls = {
    status: select([["", t("all")], ...DELIVERY_STATUSES.map((s) => [s, t(`status.${s}`)])], status || "", { id: "delivery-status" }),
    account: h("input", { id: "delivery-account", value: account || "", autocomplete: "off" }),
    contact: h("input", { id: "delivery-contact", value: contact || "", autocomplete: "off" }),
  };
  const rows = page.items.map((d) => [
    h("a", { href: context.href(`delivery/${encodeURIComponent(d.delivery_id)}`) }, dateTime(d.planned_at)),
    h("a", { href: context.href(`account/${encodeURIComponent(d.account_id)}`) }, d.account_id),
    d.contact_id, d.step_id, d.channel, statusBadge(d.status), d.reason || "—",
  ]);
  return [filterForm(context, "deliveries", controls),
    section(t("work.deliveries"), rows.length
      ? table(t("work.deliveries"), [t("planned"), t("account"), t("contact"), t("step"), t("channel"), t("status"), t("why")], rows, { id: "deliveries" })
      : empty(t("work.no_deliveries")), pager(context, "work", page.next_cursor))];
}
