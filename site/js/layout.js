// What every page shares: the account part of the header, polling that pauses while the tab
// is hidden, and how a failed request reads.

import { ApiError, auth } from "./api.js";
import { h, replaceChildren, siteUrl } from "./dom.js";

/** The address of the sign-in page that comes back to this page afterwards. */
export function signInUrl() {
  const next = `${location.pathname}${location.search}`;
  return `${siteUrl("account/")}?next=${encodeURIComponent(next)}`;
}

/** Keeps the header's account entry (`#account-nav`) in step with the sign-in. */
export function mountHeader() {
  const slot = document.getElementById("account-nav");
  if (!slot) return;
  const render = (driver) => {
    if (!driver) {
      replaceChildren(slot, h("a", { href: signInUrl(), "data-focus-key": "account" }, "Sign in"));
      return;
    }
    const onAccountPage = location.pathname.replace(/\/$/, "").endsWith("/account");
    replaceChildren(
      slot,
      h(
        "a",
        {
          href: siteUrl("account/"),
          "aria-current": onAccountPage ? "page" : undefined,
          title: driver.email || undefined,
        },
        driver.name ? driver.name : "Account",
      ),
      h(
        "button",
        {
          type: "button",
          "data-focus-key": "account",
          onclick: async () => {
            await auth.signOut();
            location.assign(siteUrl(""));
          },
        },
        "Sign out",
      ),
    );
  };
  render(auth.driver);
  auth.onChange(render);
}

/** A sentence for a failed request, for an alert. */
export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.status === 0) return `${error.title}. ${error.detail}`;
    if (error.status === 429) return "Too many requests; wait a moment and try again.";
    const text = error.detail || error.title || `The service answered ${error.status}.`;
    return error.requestId && error.status >= 500 ? `${text} (request ${error.requestId})` : text;
  }
  return "Something went wrong; reload the page and try again.";
}

/**
 * Runs `task` now (or after one interval, unless `immediate`) and then every `intervalMs`
 * after it finishes, skipping turns while the tab is hidden and catching up as soon as it is
 * shown again. `task` handles its own errors.
 */
export function poll(task, intervalMs, { immediate = true } = {}) {
  let timer = null;
  let running = false;
  let stopped = false;
  const turn = async () => {
    clearTimeout(timer);
    if (stopped || running) return;
    if (document.hidden) return;
    running = true;
    try {
      await task();
    } finally {
      running = false;
      if (!stopped) timer = setTimeout(turn, intervalMs);
    }
  };
  const onVisible = () => {
    if (!document.hidden) turn();
  };
  document.addEventListener("visibilitychange", onVisible);
  if (immediate) turn();
  else timer = setTimeout(turn, intervalMs);
  return {
    /** Runs the task now (and restarts the interval). */
    now: turn,
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}

/** The value of query parameter `name` of this page, or "". */
export function param(name) {
  return new URLSearchParams(location.search).get(name) || "";
}
