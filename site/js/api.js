// The website's client of the public API: JSON in and out, RFC 9457 problems thrown as
// `ApiError`, and the signed-in driver's tokens.
//
// The tokens live in this tab's sessionStorage (the site is several pages, so memory alone
// would forget them at every link). The access token is refreshed with the refresh token a
// minute before it expires, and once more when the API answers 401 anyway; a refresh that
// fails ends the sign-in here too.

import { API_BASE } from "../config.js";

const STORAGE_KEY = "voltfleet.auth";
/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;

/** A failed request: the API's problem, or a stand-in for a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || `The API answered ${status}.`);
    this.name = "ApiError";
    this.status = status;
    this.type = typeof problem.type === "string" ? problem.type : "about:blank";
    /** The last segment of the problem type, such as `validation-error` or `charger-offline`. */
    this.kind = this.type.split("/").pop();
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    /** `[{field, detail}]` for invalid fields. */
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.requestId = problem.request_id || null;
  }

  /** The problem with `field`, or null. */
  fieldError(field) {
    const found = this.errors.find((error) => error.field === field);
    return found ? found.detail : null;
  }
}

function networkError(cause) {
  const error = new ApiError(0, {
    type: "network",
    title: "The service cannot be reached",
    detail: "Check your connection and try again.",
  });
  error.cause = cause;
  return error;
}

function signedOutError() {
  return new ApiError(401, {
    type: "signed-out",
    title: "Not signed in",
    detail: "Sign in to continue.",
  });
}

/** `path` with the non-empty `params` as its query. */
export function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "" && value !== false) {
      query.set(key, String(value));
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** One HTTP exchange; the parsed JSON body, or null for 204. */
async function send(method, path, { body, token, signal } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
    });
  } catch (cause) {
    if (cause && cause.name === "AbortError") throw cause;
    throw networkError(cause);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const json = type.includes("json") ? await response.json().catch(() => null) : null;
  if (response.ok) return json;
  if (json && type.includes("problem+json")) throw new ApiError(response.status, json);
  throw new ApiError(response.status, {
    title: "The service answered with an error",
    detail:
      response.status >= 500
        ? "The service is having trouble; try again in a moment."
        : `The service answered ${response.status}.`,
  });
}

// The signed-in driver.

let tokens = readTokens();
let refreshing = null;
let refreshTimer = null;
const listeners = new Set();

function readTokens() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    return stored && stored.access_token && stored.refresh_token ? stored : null;
  } catch {
    return null;
  }
}

function writeTokens(next) {
  tokens = next;
  try {
    if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage refused (private mode, quota): the sign-in lasts as long as this page.
  }
  scheduleRefresh();
  for (const listener of listeners) listener(auth.driver);
}

function fromTokenResponse(answer) {
  return {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    expires_at: Date.now() + Number(answer.expires_in || 0) * 1000,
  };
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  if (!tokens) return;
  const wait = Math.max(0, tokens.expires_at - REFRESH_MARGIN_MS - Date.now());
  refreshTimer = setTimeout(() => {
    refresh().catch(() => {});
  }, wait);
}

/** A new token pair for the current refresh token; one at a time, shared by all callers. */
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const current = tokens;
      if (!current) throw signedOutError();
      try {
        const answer = await send("POST", "/auth/refresh", {
          body: { refresh_token: current.refresh_token },
        });
        writeTokens({ ...current, ...fromTokenResponse(answer) });
      } catch (error) {
        // 401: expired, revoked or used elsewhere; the sign-in is over. Anything else (the
        // network) may pass: keep the tokens and let the next request try again.
        if (error instanceof ApiError && (error.status === 401 || error.status === 422)) {
          writeTokens(null);
        }
        throw error;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

/**
 * A request to the API. With `auth`, it carries the driver's access token, refreshes it when
 * it is about to expire, and on a 401 refreshes once and tries again.
 */
export async function request(method, path, { body, auth = false, signal } = {}) {
  if (!auth) return send(method, path, { body, signal });
  if (!tokens) throw signedOutError();
  if (Date.now() > tokens.expires_at - 5_000) await refresh().catch(() => {});
  if (!tokens) throw signedOutError();
  try {
    return await send(method, path, { body, signal, token: tokens.access_token });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401 || !tokens) throw error;
    await refresh();
    return send(method, path, { body, signal, token: tokens.access_token });
  }
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, body, options) => request("POST", path, { ...options, body }),
};

/** The driver's sign-in. */
export const auth = {
  /** `{name, email}` of the signed-in driver, or null. */
  get driver() {
    return tokens ? tokens.driver || { name: "", email: "" } : null;
  },

  get signedIn() {
    return tokens !== null;
  },

  /** Calls `listener(driver or null)` whenever the sign-in changes. */
  onChange(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },

  async signIn(email, password) {
    const answer = await send("POST", "/auth/login", { body: { email, password } });
    writeTokens(fromTokenResponse(answer));
    try {
      const me = await request("GET", "/me", { auth: true });
      writeTokens({ ...tokens, driver: { name: me.name, email: me.email } });
    } catch {
      // The sign-in stands; the name shows once /me answers on a later page.
    }
    return auth.driver;
  },

  signUp(name, email, password) {
    return send("POST", "/accounts", { body: { name, email, password } });
  },

  /** Ends the session at the API (best effort) and here (always). */
  async signOut() {
    const current = tokens;
    writeTokens(null);
    if (!current) return;
    try {
      await send("POST", "/auth/logout", { token: current.access_token });
    } catch {
      // Expired or unreachable: the tokens are gone from this tab either way.
    }
  },
};

scheduleRefresh();
