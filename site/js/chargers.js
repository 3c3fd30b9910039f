// A charger as a card: its EVSEs ("points") with their live status and connectors, and a
// Start button on each available one. Shared by the charger page and the location page, with
// the start itself: POST /charging/start, then on to the live session.

import { api, auth, ApiError } from "./api.js";
import { h, siteUrl } from "./dom.js";
import { connectorFacts, evseStatus } from "./format.js";
import { describeError, signInUrl } from "./layout.js";

/**
 * The card of `charger` (the API's ChargerView), headed by its id. `state` holds what the page
 * remembers between renders: `starting` ("IDENTITY/EVSE" while a start is on its way) and
 * `problems` (a Map from the same key to a sentence). `onStart(charger, evse)` is called by the
 * Start buttons.
 */
export function chargerCard(charger, { level = 2, state, onStart }) {
  const online = charger.online;
  return h(
    "article",
    { class: "charger card", "aria-labelledby": `charger-${charger.identity}` },
    h(
      "div",
      { class: "charger-head" },
      h(
        `h${level}`,
        { id: `charger-${charger.identity}` },
        h("a", { href: chargerUrl(charger.identity) }, `Charger ${charger.identity}`),
      ),
      onlineBadge(online),
    ),
    evseList(charger, { level: level + 1, state, onStart }),
  );
}

/** "Online" or "Offline", as a badge. */
export function onlineBadge(online) {
  return h(
    "span",
    { class: `badge tone-${online ? "ok" : "idle"}` },
    online ? "Online" : "Offline — not connected now",
  );
}

/** The EVSEs of `charger` as a list, each headed at `level`. */
export function evseList(charger, { level, state, onStart }) {
  if (charger.evses.length === 0) {
    return h("p", { class: "muted" }, "This charger has no charging points yet.");
  }
  const heading = `h${Math.min(level, 6)}`;
  return h(
    "ul",
    { class: "evses" },
    charger.evses.map((evse) => evseItem(charger, evse, heading, state, onStart)),
  );
}

function evseItem(charger, evse, heading, state, onStart) {
  const key = `${charger.identity}/${evse.evse}`;
  const status = evseStatus(evse, charger.online);
  const starting = state.starting === key;
  let action = null;
  if (evse.available && auth.signedIn) {
    action = h(
      "button",
      {
        type: "button",
        class: "button primary",
        "data-focus-key": `start-${key}`,
        "aria-disabled": starting ? "true" : undefined,
        onclick: () => {
          if (!state.starting) onStart(charger, evse);
        },
      },
      starting ? "Starting…" : "Start charging",
      h("span", { class: "visually-hidden" }, ` on point ${evse.evse}`),
    );
  } else if (evse.available) {
    action = h(
      "a",
      { class: "button primary sign-in-to-charge", href: signInUrl() },
      "Sign in to charge",
      h("span", { class: "visually-hidden" }, ` on point ${evse.evse}`),
    );
  }
  return h(
    "li",
    { class: "evse", "data-evse": evse.evse },
    h(
      "div",
      { class: "evse-head" },
      h(heading, {}, `Point ${evse.evse}`),
      h("span", { class: `badge tone-${status.tone}` }, status.label),
    ),
    evse.connectors.length
      ? h(
          "ul",
          { class: "connectors", "aria-label": `Connectors of point ${evse.evse}` },
          evse.connectors.map((connector) =>
            h(
              "li",
              {},
              connectorFacts(connector).map((fact, index) => [
                index ? " · " : "",
                h("span", { class: "nowrap" }, fact),
              ]),
            ),
          ),
        )
      : null,
    action,
    h("p", { class: "problem" }, state.problems.get(key) || ""),
  );
}

/** The charger page of `identity` — the address its QR code carries. */
export function chargerUrl(identity) {
  return `${siteUrl("charger/")}?id=${encodeURIComponent(identity)}`;
}

/**
 * Asks the charger to start on `evse`: on 202 the browser goes to the live session, which
 * waits for the charger to report the start; otherwise the problem is kept for the EVSE and
 * returned as a sentence.
 */
export async function startCharging(charger, evse, state, rerender) {
  const key = `${charger.identity}/${evse.evse}`;
  state.starting = key;
  state.problems.delete(key);
  rerender();
  try {
    await api.post(
      "/charging/start",
      { charger: charger.identity, evse: evse.evse },
      { auth: true },
    );
    const next = new URL(siteUrl("session/"));
    next.searchParams.set("charger", charger.identity);
    next.searchParams.set("evse", String(evse.evse));
    location.assign(next.href);
    return null;
  } catch (error) {
    state.starting = null;
    const sentence =
      error instanceof ApiError && error.status === 401
        ? "Your sign-in has expired; sign in again to charge."
        : describeError(error);
    state.problems.set(key, sentence);
    rerender();
    return `Point ${evse.evse}: ${sentence}`;
  }
}
