// The services' admin APIs, reached with the session cookie (same origin); every change
// carries the CSRF token read from its cookie.
const CSRF_COOKIE = "milepost_csrf";

export class ApiError extends Error {
  constructor(status, detail) {
    super((detail && detail.message) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || {};
  }
}

function csrfToken() {
  const found = document.cookie.split("; ").find((part) => part.startsWith(`${CSRF_COOKIE}=`));
  return found ? decodeURIComponent(found.slice(CSRF_COOKIE.length + 1)) : "";
}

/** The JSON answer of `method path` (a query object is appended); ApiError otherwise. */
export async function call(method, path, { query, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, item);
    }
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  const response = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "object" && !Array.isArray(data.detail)
      ? data.detail
      : { message: JSON.stringify(data.detail ?? data), problems: [] };
    throw new ApiError(response.status, detail);
  }
  return data;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body) => call("POST", path, { body });

/** The answer, or `fallback` when the API says 404 (e.g. an account not scored yet). */
export async function getOr(fallback, path, query) {
  try {
    return await get(path, query);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return fallback;
    throw error;
  }
}

/** The admin API roots of one workspace. */
export function roots(workspace) {
  const w = encodeURIComponent(workspace);
  return {
    engine: `/api/engine/workspaces/${w}`,
    scoring: `/api/scoring/workspaces/${w}`,
    messaging: `/api/messaging/workspaces/${w}`,
    simulation: `/api/simulation/workspaces/${w}`,
  };
}
