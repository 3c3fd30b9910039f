// voltfleet Back Office: the live parts. Charger events arrive by Server-Sent Events. On the
// dashboard each one is listed (as text, never as HTML) and the figures are fetched again, at
// most once every few seconds; on a charger's page its connectors' status and its connection
// follow the events. Pages without a live section load this and do nothing.
"use strict";

(function () {
  const section = document.querySelector("[data-charger]");
  if (!section || !window.EventSource) {
    return;
  }
  const charger = section.dataset.charger;
  const state = section.querySelector("[data-live-state]");
  const source = new EventSource(section.dataset.events);
  source.addEventListener("open", function () {
    state.textContent = "Live: the status follows what the charger reports.";
  });
  source.addEventListener("error", function () {
    state.textContent = "Live updates are interrupted; reconnecting…";
  });
  source.addEventListener("charger", function (message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    if (event.charge_point !== charger) {
      return;
    }
    if (event.type === "status_changed") {
      const target =
        event.connector_id === 0
          ? document.querySelector("[data-charger-status]")
          : section.querySelector('[data-evse-status="' + Number(event.connector_id) + '"]');
      if (target) {
        target.textContent = event.status;
        if (target.classList.contains("status")) {
          target.className = "status s-" + String(event.status).toLowerCase();
        }
      }
    } else if (event.type === "connected" || event.type === "disconnected") {
      const badge = document.querySelector("[data-connection] .badge");
      if (badge) {
        const online = event.type === "connected";
        badge.textContent = online ? "Online" : "Offline";
        badge.className = online ? "badge on" : "badge off";
      }
    }
  });
})();

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
