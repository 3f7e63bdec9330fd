// Numbers, dates and durations in the chosen language.
import { language, t } from "./i18n.js";

export function number(value, digits = 0) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(value);
}

export function percent(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 1 }).format(value);
}

export function dateTime(value) {
  if (!value) return "—";
  return new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(value));
}

export function date(value) {
  if (!value) return "—";
  return new Intl.DateTimeFormat(language(), { dateStyle: "medium" }).format(new Date(value));
}

export function days(value) {
  if (value === null || value === undefined) return "—";
  return t("days", { n: number(value, 1) });
}

/** Days since an ISO time, for "in node for N days". */
export function daysSince(value, now = Date.now()) {
  return value ? (now - new Date(value).getTime()) / 86_400_000 : null;
}
