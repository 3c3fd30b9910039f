// / — find a charger: locations with live availability near the driver's position (or typed
// coordinates, or everywhere), filtered by availability, power and connector, listed and
// drawn on the site's own map, the availability read again every 15 seconds.

import { api, withQuery } from "./api.js";
import { h, replaceChildren, say, siteUrl } from "./dom.js";
import { SEARCHABLE_CONNECTORS, connectorName, distance, power, timeOfDay } from "./format.js";
import { clearProblems, showProblems } from "./forms.js";
import { describeError, mountHeader, poll } from "./layout.js";
import { drawMap } from "./map.js";

const REFRESH_MS = 15_000;
const PAGE_SIZE = 20;

mountHeader();

const form = document.getElementById("search");
const near = document.getElementById("near");
const list = document.getElementById("location-list");
const more = document.getElementById("more");
const summary = document.getElementById("results-summary");
const alert = document.getElementById("page-alert");
const status = document.getElementById("page-status");
const mapFigure = document.getElementById("map-figure");

for (const standard of SEARCHABLE_CONNECTORS) {
  form.connector_type.append(h("option", { value: standard }, connectorName(standard)));
}

/** The search now shown: its parameters, the locations loaded (by id, in order), and the cursor. */
let search = { params: {}, origin: null };
let items = new Map();
let nextCursor = null;
/** Whether a search has been shown, so that there is something to keep up to date. */
let searched = false;

/** The search parameters from the form; the point of a `near` search as `origin`. */
function readForm() {
  const text = near.value.trim().replace(/\s+/g, "");
  const params = {
    min_power_kw: form.min_power_kw.value,
    connector_type: form.connector_type.value,
    available: form.available.checked ? "true" : "",
  };
  let origin = null;
  if (text) {
    params.near = text;
    params.radius_m = form.radius_m.value;
    const [lat, lon] = text.split(",").map(Number);
    if (Number.isFinite(lat) && Number.isFinite(lon)) origin = { lat, lon };
  }
  return { params, origin };
}

/** Puts the parameters of this page's address into the form. */
function fillForm(query) {
  near.value = query.get("near") || "";
  if (query.get("radius_m")) form.radius_m.value = query.get("radius_m");
  form.min_power_kw.value = query.get("min_power_kw") || "";
  form.connector_type.value = query.get("connector_type") || "";
  form.available.checked = query.get("available") === "true";
}

function locationUrl(item) {
  return `${siteUrl("location/")}?id=${item.id}`;
}

function availabilityTone(item) {
  if (item.evses_total === 0) return "idle";
  return item.evses_available > 0 ? "ok" : "bad";
}

function availabilityText(item) {
  return `${item.evses_available} of ${item.evses_total} available`;
}

function listItem(item) {
  const facts = [];
  if (item.max_power_w) facts.push(`Up to ${power(item.max_power_w)}`);
  if (item.connector_types.length) facts.push(item.connector_types.map(connectorName).join(", "));
  if (item.distance_m !== undefined && item.distance_m !== null) {
    facts.push(`${distance(item.distance_m)} away`);
  }
  return h(
    "li",
    { class: "location card", "data-location": item.id },
    h(
      "div",
      {},
      h("h3", {}, h("a", { href: locationUrl(item), "data-focus-key": `list-${item.id}` }, item.name)),
      h("p", { class: "address" }, `${item.address}, ${item.postal_code} ${item.city}`),
      h("ul", { class: "facts", "aria-label": "Details" }, facts.map((fact) => h("li", {}, fact))),
    ),
    h(
      "p",
      { class: `availability tone-${availabilityTone(item)}` },
      h("strong", {}, `${item.evses_available} of ${item.evses_total}`),
      " available",
    ),
  );
}

function render() {
  const shown = [...items.values()];
  if (shown.length === 0) {
    replaceChildren(
      list,
      h(
        "li",
        { class: "card empty" },
        search.params.near
          ? "No location matches within this distance. Widen the search or relax the filters."
          : "No location matches these filters.",
      ),
    );
  } else {
    replaceChildren(list, shown.map(listItem));
  }
  more.hidden = !nextCursor;
  const count = `${shown.length}${nextCursor ? "+" : ""} location${shown.length === 1 ? "" : "s"}`;
  summary.textContent = `${count} · updated ${timeOfDay(new Date().toISOString())}`;
  mapFigure.hidden = shown.length === 0;
  drawMap(
    document.getElementById("map"),
    shown.map((item) => ({
      id: item.id,
      lat: item.latitude,
      lon: item.longitude,
      label: item.name,
      title: `${item.name}: ${availabilityText(item)}`,
      href: locationUrl(item),
      tone: availabilityTone(item),
    })),
    search.origin,
  );
}

async function fetchPage(cursor) {
  return api.get(
    withQuery("/locations", { ...search.params, limit: PAGE_SIZE, cursor: cursor || undefined }),
  );
}

/** A new search from the form. */
async function runSearch({ focusResults = false } = {}) {
  search = readForm();
  searched = false;
  clearProblems(form, null);
  say(alert, "");
  const address = withQuery(location.pathname, search.params);
  history.replaceState(null, "", address);
  let page;
  try {
    page = await fetchPage(null);
  } catch (error) {
    if (error.errors && error.errors.length) showProblems(form, alert, error);
    else say(alert, `The locations could not be loaded: ${describeError(error)}`);
    summary.textContent = "";
    items = new Map();
    nextCursor = null;
    list.replaceChildren();
    more.hidden = true;
    mapFigure.hidden = true;
    return;
  }
  items = new Map(page.items.map((item) => [item.id, item]));
  nextCursor = page.next_cursor;
  searched = true;
  render();
  const count = page.items.length;
  say(status, `${count}${nextCursor ? " or more" : ""} location${count === 1 ? "" : "s"} found.`);
  if (focusResults) document.getElementById("results-title").focus();
}

/** Reads the first page again and updates availability in place. */
async function refresh() {
  if (!searched) return;
  let page;
  try {
    page = await fetchPage(null);
  } catch (error) {
    say(alert, `Live availability could not be updated: ${describeError(error)}`);
    return;
  }
  if (alert.textContent.startsWith("Live availability")) say(alert, "");
  const news = [];
  for (const item of page.items) {
    const old = items.get(item.id);
    if (old && old.evses_available !== item.evses_available) {
      news.push(`${item.name}: ${availabilityText(item)}.`);
    }
  }
  const firstIds = new Set(page.items.map((item) => item.id));
  const later = [...items.values()].filter((item) => !firstIds.has(item.id));
  items = new Map([...page.items, ...later].map((item) => [item.id, item]));
  render();
  if (news.length) say(status, news.join(" "));
}

// The map's drawing follows its width on screen.
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (searched) render();
  }, 200);
});

more.addEventListener("click", async () => {
  more.setAttribute("aria-disabled", "true");
  try {
    const page = await fetchPage(nextCursor);
    for (const item of page.items) items.set(item.id, item);
    nextCursor = page.next_cursor;
    render();
    const first = page.items[0];
    if (first) list.querySelector(`[data-focus-key="list-${first.id}"]`)?.focus();
  } catch (error) {
    say(alert, `More locations could not be loaded: ${describeError(error)}`);
  } finally {
    more.removeAttribute("aria-disabled");
  }
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  runSearch({ focusResults: true });
});

function locate({ quiet = false } = {}) {
  const error = document.getElementById("near-error");
  if (!("geolocation" in navigator)) {
    if (!quiet) error.textContent = "This browser cannot tell your position; type coordinates instead.";
    return;
  }
  const button = document.getElementById("locate");
  button.setAttribute("aria-disabled", "true");
  button.textContent = "Locating…";
  navigator.geolocation.getCurrentPosition(
    (position) => {
      button.removeAttribute("aria-disabled");
      button.textContent = "Use my position";
      const { latitude, longitude } = position.coords;
      near.value = `${latitude.toFixed(5)}, ${longitude.toFixed(5)}`;
      error.textContent = "";
      runSearch();
    },
    (failure) => {
      button.removeAttribute("aria-disabled");
      button.textContent = "Use my position";
      if (quiet) return;
      error.textContent =
        failure.code === failure.PERMISSION_DENIED
          ? "Your position is not shared with this site. Type coordinates, or leave the field empty to see every location."
          : "Your position could not be found. Type coordinates, or leave the field empty to see every location.";
    },
    { enableHighAccuracy: false, timeout: 10_000, maximumAge: 300_000 },
  );
}

document.getElementById("locate").addEventListener("click", () => locate());
document.getElementById("results-title").setAttribute("tabindex", "-1");

async function start() {
  const query = new URLSearchParams(location.search);
  fillForm(query);
  await runSearch();
  // Near the driver when they have already let this site know their position; asking
  // unprompted on arrival is left to the button.
  if (!query.get("near") && navigator.permissions && "geolocation" in navigator) {
    try {
      const permission = await navigator.permissions.query({ name: "geolocation" });
      if (permission.state === "granted") locate({ quiet: true });
    } catch {
      // No Permissions API for geolocation here: the button still works.
    }
  }
  poll(refresh, REFRESH_MS, { immediate: false });
}

start();
