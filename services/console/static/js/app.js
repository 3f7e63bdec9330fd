// The console's shell: sign-in, the header, and hash routes (#/w/{workspace}/{view}/...).
import { ApiError, call, roots } from "./api.js";
import { clear, field, h, select } from "./dom.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";
import { renderAccount, renderAccountSearch, renderDelivery } from "./views/account.js";
import { renderAuthor } from "./views/author.js";
import { errorBox } from "./views/common.js";
import { renderNodeAccounts, renderPath, renderPaths } from "./views/path.js";
import { renderPortfolio } from "./views/portfolio.js";
import { renderWork } from "./views/work.js";

const ROUTES = [
  ["path", /^path$/, renderPaths],
  ["path", /^path\/([^/]+)$/, renderPath],
  ["path", /^path\/([^/]+)\/accounts$/, renderNodeAccounts],
  ["account", /^account$/, renderAccountSearch],
  ["account", /^account\/([^/]+)$/, renderAccount],
  ["work", /^delivery\/([^/]+)$/, renderDelivery],
  ["author", /^author$/, renderAuthor],
  ["portfolio", /^portfolio$/, renderPortfolio],
  ["work", /^work$/, renderWork],
];
const NAV = ["path", "account", "author", "portfolio", "work"];
const LAST_WORKSPACE = "milepost.workspace";

let session = null; // {workspace: string|null, csrf_token}

/** Go to a hash route; `query` values that are empty are left out. */
export function href(workspace, view, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "" && value !== false) params.set(name, value);
  }
  const tail = params.toString();
  return `#/w/${encodeURIComponent(workspace)}/${view}${tail ? `?${tail}` : ""}`;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, queryString] = raw.split("?");
  const query = Object.fromEntries(new URLSearchParams(queryString || ""));
  const match = /^w\/([^/]+)(?:\/(.*))?$/.exec(path);
  if (!match) return { path, query };
  return { workspace: decodeURIComponent(match[1]), rest: match[2] || "", query };
}

async function loadSession() {
  try {
    session = await call("GET", "/api/console/session");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    session = null;
  }
}

function defaultWorkspace() {
  return session.workspace || localStorage.getItem(LAST_WORKSPACE) || "demo";
}

function header(workspace, active) {
  const top = document.getElementById("top");
  const languages = select(LANGUAGES.map((code) => [code, t(`language.${code}`)]), language(), {
    id: "language", onchange: (event) => { setLanguage(event.target.value); route(); },
  });
  const brand = h("a", { class: "brand", href: session ? href(defaultWorkspace(), "path") : "#/sign-in" },
    h("img", { src: "/console/milepost.svg", alt: "", width: 24, height: 24 }), "Milepost");
  if (!session) {
    clear(top, brand, h("div", { class: "tools" }, field(t("language"), languages)));
    return;
  }
  const workspaceInput = h("input", {
    id: "workspace", value: workspace || defaultWorkspace(), readonly: session.workspace ? true : null,
    size: 12, autocomplete: "off",
  });
  const switcher = h("form", {
    class: "workspace", onsubmit: (event) => {
      event.preventDefault();
      location.hash = href(workspaceInput.value.trim() || defaultWorkspace(), active || "path");
    },
  }, field(t("workspace"), workspaceInput));
  const nav = h("nav", { "aria-label": t("nav.label") }, h("ul", {}, NAV.map((view) =>
    h("li", {}, h("a", {
      href: href(workspace || defaultWorkspace(), view),
      "aria-current": view === active ? "page" : null,
    }, t(`nav.${view}`))))));
  const signOut = h("button", { type: "button", id: "sign-out", onclick: signOutNow }, t("sign_out"));
  clear(top, brand, nav, h("div", { class: "tools" }, switcher, field(t("language"), languages), signOut));
}

async function signOutNow() {
  await call("DELETE", "/api/console/session");
  session = null;
  location.hash = "#/sign-in";
}

function signInView(main) {
  const token = h("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const message = h("p", { class: "error", role: "alert", id: "sign-in-error" });
  const form = h("form", {
    class: "card sign-in", "aria-labelledby": "sign-in-title",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        session = await call("POST", "/api/console/session", { body: { token: token.value } });
        if (location.hash.startsWith("#/w/")) route();
        else location.hash = href(defaultWorkspace(), "path");
      } catch (error) {
        message.textContent = error.status === 401 ? t("sign_in.refused") : error.message;
      }
    },
  },
  h("h1", { id: "sign-in-title" }, t("sign_in.title")),
  h("p", {}, t("sign_in.help")),
  field(t("sign_in.token"), token), message,
  h("button", { type: "submit" }, t("sign_in.submit")));
  clear(main, form);
  token.focus();
}

let generation = 0;

async function route() {
  const current = ++generation;
  document.documentElement.lang = language();
  document.getElementById("skip-link").textContent = t("skip");
  const main = document.getElementById("main");
  const where = parseHash();
  if (!session) {
    header(null, null);
    document.title = `${t("sign_in.title")} · Milepost`;
    signInView(main);
    return;
  }
  if (!where.workspace) {
    location.hash = href(defaultWorkspace(), "path");
    return;
  }
  localStorage.setItem(LAST_WORKSPACE, where.workspace);
  const found = ROUTES.map(([view, pattern, render]) => [view, pattern.exec(where.rest), render])
    .find(([, match]) => match);
  const [view, match, render] = found || ["path", [""], renderPaths];
  header(where.workspace, view);
  document.title = `${t(`nav.${view}`)} · ${where.workspace} · Milepost`;
  clear(main, h("p", { class: "muted", role: "status" }, t("loading")));
  const context = {
    workspace: where.workspace, query: where.query, api: roots(where.workspace),
    args: match.slice(1).map(decodeURIComponent), href: (v, q) => href(where.workspace, v, q),
  };
  try {
    const content = await render(context);
    if (current === generation) clear(main, content);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session = null;
      route();
      return;
    }
    if (current === generation) clear(main, errorBox(error));
  }
}

document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault(); // the hash holds the route
  document.getElementById("main").focus();
});
window.addEventListener("hashchange", route);
loadSession().then(route);
