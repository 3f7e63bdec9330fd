// Pieces several views share: the pager, status badges, the North Star chip, errors.
import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { number } from "../format.js";
import { t } from "../i18n.js";

/** "Next page" link carrying the cursor, and "first page" when on a later one. */
export function pager(context, view, nextCursor) {
  const here = context.query;
  return h("nav", { class: "pager", "aria-label": t("pager.label") },
    here.cursor ? h("a", { href: context.href(view, { ...here, cursor: "" }) }, t("pager.first")) : null,
    nextCursor ? h("a", { href: context.href(view, { ...here, cursor: nextCursor }), rel: "next" }, t("pager.next")) : null);
}

export function badge(kind, text) {
  return h("span", { class: `badge ${kind}` }, text);
}

export function statusBadge(status) {
  return badge(`status-${status}`, t(`status.${status}`));
}

export function northStarChip(star) {
  if (!star) return null;
  return h("p", { class: "north-star" }, h("strong", {}, t("north_star")), " ",
    star.name, star.value !== null && star.value !== undefined ? ` = ${number(star.value, 2)}` : "",
    h("span", { class: "muted" }, ` (${star.window})`));
}

export function section(title, ...children) {
  const id = `s-${title.replace(/\W+/g, "-").toLowerCase()}-${Math.random().toString(36).slice(2, 6)}`;
  return h("section", { "aria-labelledby": id, class: "card" }, h("h2", { id }, title), ...children);
}

export function empty(text) {
  return h("p", { class: "muted empty" }, text);
}

/** An API error (or any other) as an alert, with the field at fault. */
export function errorBox(error) {
  const detail = error instanceof ApiError ? error.detail : {};
  return h("div", { class: "error card", role: "alert" },
    h("strong", {}, t("error")), " ", error.message,
    detail.field ? h("span", { class: "muted" }, ` (${detail.field})`) : null);
}
