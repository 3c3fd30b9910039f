// The results map, drawn by the site itself: each location's latitude and longitude
// projected onto the bounding box of the results (equirectangular, longitudes shortened by
// the cosine of the middle latitude so that distances look right), a faint grid, a scale bar
// and the search centre. No tiles, no third party.

import { replaceChildren, s } from "./dom.js";

/** The viewBox follows the map's width on screen, so that labels keep their size. */
const MIN_WIDTH = 300;
const MAX_WIDTH = 720;
const ASPECT = 0.68;
const PADDING = 48;
const METRES_PER_DEGREE = 111_320;
/** The smallest span shown, in degrees of latitude (about 1.1 km), so one point has room. */
const MIN_SPAN = 0.01;

/**
 * Projects `points` ({lat, lon}) into the map's viewBox. Returns `{place(point) → {x, y},
 * metresPerUnit, bounds}`.
 */
export function projection(points, width, height, padding = PADDING) {
  const lats = points.map((point) => point.lat);
  const lons = points.map((point) => point.lon);
  let minLat = Math.min(...lats);
  let maxLat = Math.max(...lats);
  let minLon = Math.min(...lons);
  let maxLon = Math.max(...lons);
  const midLat = (minLat + maxLat) / 2;
  const shrink = Math.max(Math.cos((midLat * Math.PI) / 180), 0.01);
  // Spans in "degrees of latitude", so both axes share one scale.
  let spanX = Math.max((maxLon - minLon) * shrink, MIN_SPAN);
  let spanY = Math.max(maxLat - minLat, MIN_SPAN);
  const innerW = width - 2 * padding;
  const innerH = height - 2 * padding;
  const scale = Math.min(innerW / spanX, innerH / spanY);
  spanX = innerW / scale;
  spanY = innerH / scale;
  const centreLat = (minLat + maxLat) / 2;
  const centreX = ((minLon + maxLon) / 2) * shrink;
  minLat = centreLat - spanY / 2;
  maxLat = centreLat + spanY / 2;
  minLon = (centreX - spanX / 2) / shrink;
  maxLon = (centreX + spanX / 2) / shrink;
  return {
    place(point) {
      return {
        x: padding + (point.lon * shrink - (centreX - spanX / 2)) * scale,
        y: padding + (centreLat + spanY / 2 - point.lat) * scale,
      };
    },
    metresPerUnit: METRES_PER_DEGREE / scale,
    bounds: { minLat, maxLat, minLon, maxLon },
    shrink,
    scale,
  };
}

/** A round distance for the scale bar near `target` metres: 1, 2 or 5 times a power of ten. */
export function roundDistance(target) {
  const power = 10 ** Math.floor(Math.log10(Math.max(target, 1)));
  for (const step of [5, 2, 1]) {
    if (step * power <= target) return step * power;
  }
  return power;
}

function gridStep(spanDegrees) {
  const target = spanDegrees / 5;
  const power = 10 ** Math.floor(Math.log10(target));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= target) return step * power;
  }
  return 10 * power;
}

/**
 * Draws the map of `items` into `container`. Each item is `{id, lat, lon, label, title, href,
 * tone}`; `origin` ({lat, lon}) is the search centre, when there is one.
 */
export function drawMap(container, items, origin = null) {
  const points = items.map((item) => ({ lat: item.lat, lon: item.lon }));
  if (origin) points.push(origin);
  if (points.length === 0) {
    container.replaceChildren();
    return;
  }
  const width = Math.round(
    Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, container.clientWidth || MAX_WIDTH)),
  );
  const height = Math.round(width * ASPECT);
  const map = projection(points, width, height, width < 420 ? 36 : PADDING);
  const grid = s("g", { class: "grid", "aria-hidden": "true" });
  const { minLat, maxLat, minLon, maxLon } = map.bounds;
  const latStep = gridStep(maxLat - minLat);
  for (let lat = Math.ceil(minLat / latStep) * latStep; lat < maxLat; lat += latStep) {
    const { y } = map.place({ lat, lon: minLon });
    grid.append(s("line", { x1: 0, x2: width, y1: y.toFixed(1), y2: y.toFixed(1) }));
  }
  const lonStep = gridStep(maxLon - minLon);
  for (let lon = Math.ceil(minLon / lonStep) * lonStep; lon < maxLon; lon += lonStep) {
    const { x } = map.place({ lat: minLat, lon });
    grid.append(s("line", { x1: x.toFixed(1), x2: x.toFixed(1), y1: 0, y2: height }));
  }

  const barMetres = roundDistance((width / 4) * map.metresPerUnit);
  const barUnits = barMetres / map.metresPerUnit;
  const scale = s(
    "g",
    {
      class: "scale",
      "aria-hidden": "true",
      transform: `translate(${(width - 16 - barUnits).toFixed(1)} ${height - 18})`,
    },
    s("line", { x1: 0, x2: barUnits.toFixed(1), y1: 0, y2: 0 }),
    s("line", { x1: 0, x2: 0, y1: -5, y2: 5 }),
    s("line", { x1: barUnits.toFixed(1), x2: barUnits.toFixed(1), y1: -5, y2: 5 }),
    s("text", { x: 0, y: -9 }, barMetres >= 1000 ? `${barMetres / 1000} km` : `${barMetres} m`),
  );

  const layers = [s("rect", { width: width, height: height, fill: "transparent" }), grid];
  if (origin) {
    const { x, y } = map.place(origin);
    layers.push(
      s(
        "g",
        { class: "origin", transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` },
        s("title", {}, "Search centre"),
        s("circle", { class: "halo", r: 18 }),
        s("circle", { r: 7 }),
      ),
    );
  }
  for (const item of items) {
    const { x, y } = map.place(item);
    const rightHalf = x > width * 0.6;
    layers.push(
      s(
        "a",
        {
          href: item.href,
          class: `point tone-${item.tone}`,
          "aria-label": item.title,
          "data-focus-key": `map-${item.id}`,
          transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`,
        },
        s("title", {}, item.title),
        s("circle", { r: 11 }),
        s(
          "text",
          {
            x: rightHalf ? -17 : 17,
            y: 5,
            "text-anchor": rightHalf ? "end" : "start",
            "aria-hidden": "true",
          },
          item.label,
        ),
      ),
    );
  }
  layers.push(scale);
  const svg = s(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      role: "group",
      "aria-label": `Map of ${items.length} location${items.length === 1 ? "" : "s"}`,
    },
    layers,
  );
  replaceChildren(container, svg);
}
