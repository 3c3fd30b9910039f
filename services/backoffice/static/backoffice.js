// voltfleet Back Office: the live dashboard. Charger events arrive by Server-Sent Events;
// each one is listed (as text, never as HTML) and the figures are fetched again, at most
// once every few seconds. Pages without a live section load this and do nothing.
"use strict";

(function () {
  const section = document.querySelector("[data-live]");
  if (!section || !window.EventSource) {
    return;
  }
  const state = document.querySelector("[data-live-state]");
  const list = document.querySelector("[data-event-list]");
  const MAX_EVENTS = 20;
  const REFRESH_MS = 2000;
  let refreshTimer = null;

  function setState(text) {
    if (state) {
      state.textContent = text;
    }
  }

  async function refresh() {
    refreshTimer = null;
    try {
      const response = await fetch(section.dataset.live, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        setState("The figures could not be refreshed (" + response.status + ").");
        return;
      }
      const figures = await response.json();
      for (const element of section.querySelectorAll("[data-figure]")) {
        const name = element.dataset.figure;
        if (name === "energy_today_kwh") {
          element.textContent = (figures.energy_today_wh / 1000).toFixed(1);
        } else if (name in figures) {
          element.textContent = String(figures[name]);
        }
      }
    } catch (error) {
      setState("The figures could not be refreshed; retrying on the next event.");
    }
  }

  function describe(event) {
    const parts = [event.charge_point, event.type.replace(/_/g, " ")];
    if (event.connector_id !== undefined) {
      parts.push("connector " + event.connector_id);
    }
    if (event.status) {
      parts.push(event.status);
    }
    if (event.registration) {
      parts.push(event.registration);
    }
    return parts.join(" · ");
  }

  function show(event) {
    if (!list) {
      return;
    }
    const placeholder = list.querySelector(".muted");
    if (placeholder) {
      placeholder.remove();
    }
    const item = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = event.at;
    time.textContent = new Date(event.at).toLocaleTimeString();
    item.append(time, " ", describe(event));
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) {
      list.lastElementChild.remove();
    }
  }

  const source = new EventSource(section.dataset.events);
  source.addEventListener("open", function () {
    setState("Live: figures update as chargers report.");
  });
  source.addEventListener("error", function () {
    setState("Live updates are interrupted; reconnecting…");
  });
  source.addEventListener("charger", function (message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    show(event);
    if (refreshTimer === null) {
      refreshTimer = setTimeout(refresh, REFRESH_MS);
    }
  });
})();
