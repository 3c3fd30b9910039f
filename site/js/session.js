// /session/ — the driver's running sessions, read again every few seconds (energy so far,
// power, duration, where), each with a Stop button; and the history, page by page.
// After a start (`?charger=…&evse=…`) it waits for the charger to report the session.

import { api, ApiError, auth, withQuery } from "./api.js";
import { h, replaceChildren, say, siteUrl } from "./dom.js";
import {
  dateTime,
  duration,
  energy,
  isoDuration,
  power,
  stopReason,
  timeOfDay,
} from "./format.js";
import { describeError, mountHeader, param, poll, signInUrl } from "./layout.js";

/** How often the running sessions are read again. */
const LIVE_MS = 3_000;
const HISTORY_PAGE = 10;
/** How long to wait for a charger to report a start before saying so. */
const START_PATIENCE_MS = 120_000;

mountHeader();

const alert = document.getElementById("page-alert");
const liveBox = document.getElementById("live");
const liveStatus = document.getElementById("live-status");
const liveUpdated = document.getElementById("live-updated");
const historyRows = document.getElementById("history-rows");
const historyMore = document.getElementById("history-more");
const historyAlert = document.getElementById("history-alert");

/** The start this page waits for, from the charger page. */
let waiting = param("charger")
  ? { charger: param("charger"), evse: Number(param("evse")) || null, since: Date.now() }
  : null;
/** Running sessions by id: the last view, when it was read, and the card's live parts. */
const cards = new Map();
let historyCursor = null;
let live = null;

function showSignedOut() {
  live?.stop();
  document.getElementById("signed-in").hidden = true;
  document.getElementById("signed-out").hidden = false;
  document.getElementById("sign-in-link").href = signInUrl();
}

function isSignedOut(error) {
  return error instanceof ApiError && error.status === 401;
}

function where(view) {
  return view.location ? view.location.name : "";
}

function sessionCard(view) {
  const figures = {
    energy: h("dd", {}),
    power: h("dd", {}),
    duration: h("time", {}),
    started: h("dd", {}, timeOfDay(view.started_at)),
  };
  const problem = h("p", { class: "problem" });
  const stop = h(
    "button",
    { type: "button", class: "button danger", "data-focus-key": `stop-${view.id}` },
    "Stop charging",
  );
  const badge = h("span", { class: "badge tone-busy" }, "Charging");
  const element = h(
    "article",
    { class: "session card", "aria-labelledby": `session-${view.id}`, "data-session": view.id },
    h(
      "div",
      { class: "session-head" },
      h(
        "div",
        {},
        h("h3", { id: `session-${view.id}` }, `${view.charger} · point ${view.evse}`),
        h("p", {}, where(view) || "Charging session"),
      ),
      badge,
    ),
    h(
      "dl",
      { class: "figures" },
      h("div", { class: "primary" }, h("dt", {}, "Energy"), figures.energy),
      h("div", {}, h("dt", {}, "Power"), figures.power),
      h("div", {}, h("dt", {}, "Duration"), h("dd", {}, figures.duration)),
      h("div", {}, h("dt", {}, "Started"), figures.started),
    ),
    stop,
    problem,
  );
  const card = { view, readAt: Date.now(), element, figures, badge, stop, problem, stopping: false };
  stop.addEventListener("click", () => stopSession(card));
  return card;
}

function updateCard(card, view) {
  card.view = view;
  card.readAt = Date.now();
  card.figures.energy.textContent = energy(view.energy_wh);
  card.figures.power.textContent = view.power_w === null ? "–" : power(view.power_w);
  tick(card);
}

/** The duration from the API's last answer plus the time since, every second. */
function tick(card) {
  const seconds = card.view.duration_s + (Date.now() - card.readAt) / 1000;
  card.figures.duration.textContent = duration(seconds);
  card.figures.duration.setAttribute("datetime", isoDuration(seconds));
}

async function stopSession(card) {
  if (card.stopping) return;
  card.stopping = true;
  card.problem.textContent = "";
  card.stop.setAttribute("aria-disabled", "true");
  card.stop.textContent = "Stopping…";
  try {
    await api.post(`/sessions/${card.view.id}/stop`, undefined, { auth: true });
    card.badge.className = "badge tone-warn";
    card.badge.textContent = "Stopping";
    say(liveStatus, `Stop requested at ${card.view.charger}; waiting for the charger to end the session.`);
    live.now();
  } catch (error) {
    card.stopping = false;
    card.stop.removeAttribute("aria-disabled");
    card.stop.textContent = "Stop charging";
    if (isSignedOut(error)) return showSignedOut();
    const sentence = describeError(error);
    card.problem.textContent = sentence;
    say(alert, `The session could not be stopped: ${sentence}`);
  }
}

function waitingCard() {
  const late = Date.now() - waiting.since > START_PATIENCE_MS;
  return h(
    "article",
    { class: "session card", "aria-labelledby": "waiting-title" },
    h(
      "div",
      { class: "session-head" },
      h(
        "div",
        {},
        h("h3", { id: "waiting-title" }, `${waiting.charger}${waiting.evse ? ` · point ${waiting.evse}` : ""}`),
        h("p", {}, "The charger accepted your start."),
      ),
      h("span", { class: "badge tone-warn" }, "Starting"),
    ),
    h(
      "p",
      {},
      late
        ? "The charger has not reported the start yet. Check that the cable is plugged in firmly; the session shows here as soon as it begins."
        : "Plug in your vehicle: the session shows here as soon as the charger reports it.",
    ),
  );
}

function idleNotice() {
  return h(
    "div",
    { class: "card notice" },
    h("p", {}, "You are not charging right now."),
    h("p", {}, h("a", { href: siteUrl("") }, "Find a charger"), " and start a session from its page."),
  );
}

async function refreshLive() {
  let page;
  try {
    page = await api.get("/sessions/active", { auth: true });
  } catch (error) {
    if (isSignedOut(error)) return showSignedOut();
    say(alert, `Your session could not be updated: ${describeError(error)}`);
    return;
  }
  if (alert.textContent.startsWith("Your session could not")) say(alert, "");
  liveUpdated.textContent = `Updated ${timeOfDay(new Date().toISOString())}`;
  const seen = new Set();
  let changed = false;
  for (const view of page.items) {
    seen.add(view.id);
    let card = cards.get(view.id);
    if (!card) {
      card = sessionCard(view);
      cards.set(view.id, card);
      changed = true;
      if (waiting && waiting.charger === view.charger) {
        waiting = null;
        history.replaceState(null, "", location.pathname);
      }
      say(liveStatus, `Charging at ${view.charger}, point ${view.evse}.`);
    }
    updateCard(card, view);
  }
  const ended = [...cards.values()].filter((card) => !seen.has(card.view.id));
  for (const card of ended) {
    cards.delete(card.view.id);
    changed = true;
  }
  if (changed || !liveBox.hasChildNodes() || (waiting && cards.size === 0)) {
    const elements = [...cards.values()].map((card) => card.element);
    if (elements.length === 0) elements.push(waiting ? waitingCard() : idleNotice());
    replaceChildren(liveBox, elements);
  }
  if (changed) await loadHistory();
  if (ended.length) {
    const rows = historyRows.querySelectorAll("tr");
    const finished = ended.map((card) => {
      const row = [...rows].find((tr) => tr.dataset.session === String(card.view.id));
      const amount = row ? row.dataset.energy : energy(card.view.energy_wh);
      return `Your session at ${card.view.charger} ended: ${amount}.`;
    });
    say(liveStatus, finished.join(" "));
  }
}

function historyRow(view) {
  const cell = (label, content, className) =>
    h("td", { "data-label": label, class: className }, content);
  return h(
    "tr",
    { "data-session": view.id, "data-energy": energy(view.energy_wh) },
    cell("Started", h("time", { datetime: view.started_at }, dateTime(view.started_at))),
    cell(
      "Where",
      h("span", {}, where(view) || view.charger, h("small", {}, `${view.charger} · point ${view.evse}`)),
    ),
    cell("Duration", duration(view.duration_s), "number"),
    cell("Energy", energy(view.energy_wh), "number"),
    cell("Outcome", view.active ? "In progress" : stopReason(view.stop_reason)),
  );
}

/** Loads the first page of the history (or the next one, with `more`). */
async function loadHistory({ more = false } = {}) {
  let page;
  try {
    page = await api.get(
      withQuery("/sessions", { limit: HISTORY_PAGE, cursor: more ? historyCursor : undefined }),
      { auth: true },
    );
  } catch (error) {
    if (isSignedOut(error)) return showSignedOut();
    say(historyAlert, `Your past sessions could not be loaded: ${describeError(error)}`);
    return;
  }
  say(historyAlert, "");
  historyCursor = page.next_cursor;
  const rows = page.items.map(historyRow);
  if (more) historyRows.append(...rows);
  else replaceChildren(historyRows, rows);
  document.getElementById("history-empty").hidden = historyRows.hasChildNodes();
  document.getElementById("history").hidden = !historyRows.hasChildNodes();
  historyMore.hidden = !historyCursor;
  if (more && rows[0]) {
    rows[0].setAttribute("tabindex", "-1");
    rows[0].focus();
  }
}

historyMore.addEventListener("click", () => loadHistory({ more: true }));

if (!auth.signedIn) {
  showSignedOut();
} else {
  document.getElementById("signed-in").hidden = false;
  live = poll(refreshLive, LIVE_MS);
  setInterval(() => {
    for (const card of cards.values()) tick(card);
  }, 1000);
  loadHistory();
}
