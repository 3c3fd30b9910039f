// /location/?id=N — a location with its chargers, each charging point with its live status.

import { api, ApiError } from "./api.js";
import { h, replaceChildren, say } from "./dom.js";
import { connectorName, openingHours, power, timeOfDay } from "./format.js";
import { chargerCard, startCharging } from "./chargers.js";
import { describeError, mountHeader, param, poll } from "./layout.js";

const REFRESH_MS = 15_000;

mountHeader();

const id = param("id").trim();
const title = document.getElementById("page-title");
const lead = document.getElementById("page-lead");
const alert = document.getElementById("page-alert");
const status = document.getElementById("page-status");
/** Start problems show under their point; this region reads them out. */
const announce = document.getElementById("page-announce");
const state = { starting: null, problems: new Map() };
let place = null;
let shown = "";

function detail(term, ...value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, ...value));
}

function render() {
  replaceChildren(
    document.getElementById("details"),
    detail(
      "Available now",
      `${place.evses_available} of ${place.evses_total} charging points`,
    ),
    detail(
      "Opening hours",
      h("ul", { class: "hours" }, openingHours(place.opening_hours).map((line) => h("li", {}, line))),
    ),
    detail("Price", place.tariff_text || "Ask the operator"),
    detail(
      "Connectors",
      place.connector_types.map(connectorName).join(", ") || "–",
      place.max_power_w ? ` · up to ${power(place.max_power_w)}` : "",
    ),
  );
  replaceChildren(
    document.getElementById("chargers"),
    place.chargers.length
      ? place.chargers.map((charger) =>
          chargerCard(charger, {
            level: 3,
            state,
            onStart: async (which, evse) => {
              const problem = await startCharging(which, evse, state, render);
              if (problem) say(announce, problem);
            },
          }),
        )
      : h("p", { class: "card empty" }, "No chargers are installed here yet."),
  );
}

async function refresh() {
  let next;
  try {
    next = await api.get(`/locations/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      title.textContent = "Location not found";
      say(alert, "There is no such location. Find another one on the map.");
      refresher.stop();
      return;
    }
    say(alert, `The location could not be loaded: ${describeError(error)}`);
    return;
  }
  if (alert.textContent.startsWith("The location could not")) say(alert, "");
  document.getElementById("updated").textContent = `Updated ${timeOfDay(new Date().toISOString())}`;
  const json = JSON.stringify(next);
  if (json === shown) return;
  shown = json;
  const before = place;
  place = next;
  title.textContent = next.name;
  document.title = `${next.name} · voltfleet`;
  lead.textContent = `${next.address}, ${next.postal_code} ${next.city}`;
  document.getElementById("about").hidden = false;
  document.getElementById("chargers-section").hidden = false;
  render();
  if (before && before.evses_available !== next.evses_available) {
    say(status, `${next.evses_available} of ${next.evses_total} charging points are available now.`);
  }
}

let refresher = { stop() {} };
if (!id) {
  title.textContent = "Which location?";
  say(alert, "This address names no location. Find one on the map.");
} else {
  refresher = poll(refresh, REFRESH_MS);
}
