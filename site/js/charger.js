// /charger/?id=IDENTITY — what the QR code on a charger leads to: where it is, when it is
// open, what it costs, and each charging point with its live status and a Start button.

import { api, ApiError } from "./api.js";
import { h, replaceChildren, say, siteUrl } from "./dom.js";
import { openingHours, timeOfDay } from "./format.js";
import { evseList, onlineBadge, startCharging } from "./chargers.js";
import { describeError, mountHeader, param, poll } from "./layout.js";

/** How often the points' status is read again. */
const REFRESH_MS = 15_000;

mountHeader();

const identity = param("id").trim();
const title = document.getElementById("page-title");
const lead = document.getElementById("page-lead");
const alert = document.getElementById("page-alert");
const status = document.getElementById("page-status");
/** Start problems show under their point; this region reads them out. */
const announce = document.getElementById("page-announce");
const details = document.getElementById("details");
const points = document.getElementById("points");
const updated = document.getElementById("updated");
const state = { starting: null, problems: new Map() };
let charger = null;
let shown = "";
let locationLoaded = false;

function render() {
  replaceChildren(
    points,
    evseList(charger, {
      level: 3,
      state,
      onStart: async (which, evse) => {
        const problem = await startCharging(which, evse, state, render);
        if (problem) say(announce, problem);
      },
    }),
  );
}

function detail(term, ...value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, ...value));
}

async function loadLocation(summary) {
  const items = [detail("Status", onlineBadge(charger.online))];
  if (summary) {
    items.unshift(
      detail(
        "Location",
        h("a", { href: `${siteUrl("location/")}?id=${summary.id}` }, summary.name),
        h("br"),
        `${summary.address}, ${summary.city}`,
      ),
    );
    try {
      const place = await api.get(`/locations/${summary.id}`);
      items.push(
        detail(
          "Opening hours",
          h("ul", { class: "hours" }, openingHours(place.opening_hours).map((line) => h("li", {}, line))),
        ),
        detail("Price", place.tariff_text || "Ask the operator"),
      );
    } catch {
      // The charger itself matters more; its location's hours show on a later refresh.
      return false;
    }
  }
  replaceChildren(details, items);
  document.getElementById("about").hidden = false;
  return true;
}

async function refresh() {
  let next;
  try {
    next = await api.get(`/chargers/${encodeURIComponent(identity)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      title.textContent = "Charger not found";
      say(
        alert,
        `There is no charger “${identity}”. Check the code on the charger, or find one on the map.`,
      );
      refresher.stop();
      return;
    }
    say(alert, `The charger's status could not be loaded: ${describeError(error)}`);
    return;
  }
  if (alert.textContent.startsWith("The charger's status")) say(alert, "");
  const before = charger;
  charger = next;
  updated.textContent = `Updated ${timeOfDay(new Date().toISOString())}`;
  const json = JSON.stringify(next);
  if (json === shown) return;
  shown = json;
  title.textContent = `Charger ${next.identity}`;
  document.title = `Charger ${next.identity} · voltfleet`;
  lead.textContent = next.location
    ? `${next.location.name} · ${next.location.address}, ${next.location.city}`
    : "Not assigned to a location yet.";
  if (!locationLoaded || before?.online !== next.online) {
    locationLoaded = await loadLocation(next.location);
  }
  document.getElementById("points-section").hidden = false;
  render();
  if (before) announceChanges(before, next);
}

function announceChanges(before, next) {
  const news = [];
  if (before.online !== next.online) news.push(next.online ? "The charger is back online." : "The charger went offline.");
  for (const evse of next.evses) {
    const old = before.evses.find((item) => item.evse === evse.evse);
    if (old && old.available !== evse.available) {
      news.push(`Point ${evse.evse} is ${evse.available ? "available" : "no longer available"}.`);
    }
  }
  if (news.length) say(status, news.join(" "));
}

let refresher = { stop() {} };
if (!identity) {
  title.textContent = "Which charger?";
  say(alert, "This address names no charger. Scan the QR code on the charger again, or find one on the map.");
} else {
  refresher = poll(refresh, REFRESH_MS);
}
