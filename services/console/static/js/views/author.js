// Author a growth path, playbook or metric definitions: edit, validate with every problem
// at its line, publish a new version; the versions and who published them.
import { ApiError, get, post } from "../api.js";
import { clear, field, h, select, table } from "../dom.js";
import { dateTime } from "../format.js";
import { t } from "../i18n.js";
import { empty, section } from "./common.js";
import { playbookChoice, playbookDrafts, saveDraft, savedDrafts, simulate, simulationResult } from "./simulation.js";

const KINDS = ["path", "playbook", "metrics"];

/** Where each kind of file lives in the admin APIs. */
function endpoints(context, kind) {
  const { engine, scoring, messaging } = context.api;
  if (kind === "metrics") {
    return {
      list: async () => [{ id: "metrics", name: t("author.metrics") }],
      versions: async () => (await get(`${scoring}/definitions`, { limit: 200 })).items,
      source: async (_id, version) => (await get(`${scoring}/definitions/${version}`)).source,
      validate: `${scoring}/definitions/validate`, publish: `${scoring}/definitions`,
    };
  }
  const base = kind === "path" ? `${engine}/paths` : `${messaging}/playbooks`;
  const key = kind === "path" ? "path_id" : "playbook_id";
  return {
    list: async () => (await get(base, { limit: 200 })).items.map((item) => ({ id: item[key], name: item.name })),
    versions: async (id) => (await get(`${base}/${encodeURIComponent(id)}`)).versions.slice().reverse(),
    source: async (id, version) => (await get(`${base}/${encodeURIComponent(id)}/versions/${version}`)).source,
    validate: `${base}/validate`, publish: base,
  };
}

export async function renderAuthor(context) {
  const kind = KINDS.includes(context.query.kind) ? context.query.kind : "path";
  const api = endpoints(context, kind);
  const items = await api.list();
  const id = context.query.id || (kind === "metrics" ? "metrics" : "");
  const versions = id ? await api.versions(id).catch(() => []) : [];
  const version = Number(context.query.version || (versions[0] && versions[0].version) || 0);
  const drafts = kind === "metrics" ? [] : savedDrafts(context, kind);
  const loaded = drafts.find((draft) => draft.name === context.query.draft);
  const source = loaded ? loaded.source : version ? await api.source(id, version) : "";
  const kindPicker = select(KINDS.map((k) => [k, t(`author.kind.${k}`)]), kind, {
    id: "author-kind", onchange: (event) => { location.hash = context.href("author", { kind: event.target.value }); },
  });
  const itemPicker = kind === "metrics" ? null : select([["", t("author.new")], ...items.map((i) => [i.id, `${i.name} (${i.id})`])], id, {
    id: "author-item", onchange: (event) => { location.hash = context.href("author", { kind, id: event.target.value }); },
  });
  const editor = makeEditor(source);
  const problems = h("ol", { id: "problems", class: "problems", "aria-live": "polite" });
  const result = h("p", { id: "author-result", role: "status" });
  const sourceName = `${id || kind}.yaml`;
  const simulation = h("div", { id: "simulation", "aria-live": "polite" });
  const run = async (url, done) => {
    clear(problems);
    editor.mark([]);
    result.className = "";
    result.textContent = t("author.working");
    try {
      const answer = typeof url === "function" ? await url() : await post(url, { source: editor.value(), source_name: sourceName });
      result.className = "ok";
      result.textContent = done(answer);
    } catch (error) {
      result.className = "error";
      result.textContent = error.message;
      const found = error instanceof ApiError ? error.detail.problems || [] : [];
      editor.mark(found);
      clear(problems, found.map((p) => h("li", {}, h("button", {
        type: "button", class: "problem", onclick: () => editor.goTo(p.line, p.column),
      }, p.line ? t("author.at_line", { line: p.line, column: p.column || 1 }) : t("author.no_line"),
      h("code", {}, p.field), " ", p.message))));
    }
  };
  const validateButton = h("button", { type: "button", id: "validate", onclick: () => run(api.validate, () => t("author.valid")) }, t("author.validate"));
  const publishButton = h("button", {
    type: "button", id: "publish", class: "primary",
    onclick: () => run(api.publish, (answer) => {
      setTimeout(() => { location.hash = context.href("author", { kind, id: answer.path_id || answer.playbook_id || id, version: answer.version }); }, 600);
      return t("author.published", { version: answer.version });
    }),
  }, t("author.publish"));
  const playbooks = kind === "path" ? playbookChoice(context, []) : null;
  const simulateButton = kind === "path" ? h("button", {
    type: "button", id: "simulate",
    onclick: () => run(() => simulate(context, editor.value(), sourceName, playbookDrafts(context, playbooks.names())), (report) => {
      clear(simulation, simulationResult(report));
      return t("simulation.done", { events: report.events.replayed });
    }),
  }, t("simulation.simulate")) : null;
  const draftName = h("input", { id: "draft-name", value: loaded ? loaded.name : `${id || kind} draft`, size: 20, autocomplete: "off" });
  const saveButton = kind === "metrics" ? null : h("button", {
    type: "button", id: "save-draft", onclick: () => {
      const name = saveDraft(context, kind, draftName.value.trim() || `${id || kind} draft`, editor.value(), sourceName);
      result.className = "ok";
      result.textContent = t("draft.saved", { name });
    },
  }, t("draft.save"));
  return [
    h("div", { class: "toolbar" }, h("h1", {}, t("nav.author")), field(t("author.kind"), kindPicker),
      itemPicker ? field(t("author.file"), itemPicker) : null),
    section(t("author.editor", { name: sourceName }), editor.element,
      playbooks ? playbooks.element : null,
      h("div", { class: "actions" }, validateButton, simulateButton, publishButton), result,
      saveButton ? h("div", { class: "actions" }, field(t("draft.name"), draftName), saveButton) : null,
      h("h3", { id: "problems-title" }, t("author.problems")), problems),
    simulation,
    kind === "metrics" ? null : section(t("draft.saved_title"), drafts.length
      ? h("ul", { class: "links", id: "drafts" }, drafts.map((draft) => h("li", {},
        h("a", { href: context.href("author", { kind, id: draft.id || id, draft: draft.name }) }, draft.name),
        h("span", { class: "muted" }, ` ${draft.id || "?"} · ${dateTime(draft.saved_at)}`))))
      : empty(t("draft.none_yet"))),
    section(t("author.versions"), versions.length ? table(t("author.versions"),
      [t("path.version"), t("author.published_at"), t("author.published_by"), t("author.source_name"), t("author.digest"), t("details")],
      versions.map((v) => [`v${v.version}`, dateTime(v.published_at), v.published_by || "—", v.source_name,
        h("code", {}, (v.digest || "").slice(0, 12)),
        h("a", { href: context.href("author", { kind, id, version: v.version }) }, t("author.load"))]), { id: "versions" })
      : empty(t("author.no_versions"))),
  ];
}

/** A textarea with a line-number gutter that marks the lines with problems. */
function makeEditor(text) {
  const gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  const area = h("textarea", {
    id: "source", class: "source", spellcheck: "false", rows: 28, wrap: "off",
    "aria-describedby": "problems-title", autocapitalize: "off",
  });
  area.value = text;
  let bad = new Set();
  const number = () => {
    const count = area.value.split("\n").length;
    clear(gutter, Array.from({ length: count }, (_, i) => h("span", { class: bad.has(i + 1) ? "bad" : "" }, `${i + 1}\n`)));
  };
  area.addEventListener("input", number);
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  number();
  return {
    element: h("div", { class: "editor" }, gutter, h("label", { for: "source", class: "visually-hidden" }, t("author.source")), area),
    value: () => area.value,
    mark(problems) {
      bad = new Set(problems.map((p) => p.line).filter(Boolean));
      area.setAttribute("aria-invalid", bad.size ? "true" : "false");
      number();
    },
    goTo(line, column) {
      if (!line) return;
      const lines = area.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((sum, l) => sum + l.length + 1, 0) + Math.max(0, (column || 1) - 1);
      area.focus();
      area.setSelectionRange(start, start + Math.max(1, (lines[line - 1] || "").length - (column || 1) + 1));
      area.scrollTop = Math.max(0, (line - 5) * 18);
    },
  };
}
