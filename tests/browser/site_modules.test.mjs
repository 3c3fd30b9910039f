// The website's logic that needs no page: the map's projection, how figures read, the API
// client's problems and query strings. Run with `node --test` (tests/tests/website.rs does).

import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, withQuery } from "../../site/js/api.js";
import * as format from "../../site/js/format.js";
import { projection, roundDistance } from "../../site/js/map.js";

test("the map puts north up, east right, inside the padding, at one scale on both axes", () => {
  const west = { lat: 40.41, lon: -3.71 };
  const east = { lat: 40.43, lon: -3.68 };
  const map = projection([west, east], 640, 440, 48);
  const a = map.place(west);
  const b = map.place(east);
  assert.ok(b.x > a.x, "east is to the right");
  assert.ok(b.y < a.y, "north is up");
  for (const { x, y } of [a, b]) {
    assert.ok(x >= 48 - 1e-9 && x <= 640 - 48 + 1e-9, `x ${x} inside`);
    assert.ok(y >= 48 - 1e-9 && y <= 440 - 48 + 1e-9, `y ${y} inside`);
  }
  // The distance on the map matches the distance on the ground (equirectangular, locally).
  const metres = Math.hypot((b.x - a.x) * map.metresPerUnit, (b.y - a.y) * map.metresPerUnit);
  const dLat = (east.lat - west.lat) * 111_320;
  const dLon = (east.lon - west.lon) * 111_320 * Math.cos((40.42 * Math.PI) / 180);
  assert.ok(Math.abs(metres - Math.hypot(dLat, dLon)) < 5, `${metres} m`);
});

test("one point sits in the middle of a map of about a kilometre", () => {
  const map = projection([{ lat: 40.4273, lon: -3.6913 }], 600, 400, 40);
  const { x, y } = map.place({ lat: 40.4273, lon: -3.6913 });
  assert.ok(Math.abs(x - 300) < 1e-6 && Math.abs(y - 200) < 1e-6, `${x},${y}`);
  const spanMetres = (400 - 2 * 40) * map.metresPerUnit;
  assert.ok(spanMetres > 1000 && spanMetres < 1300, `${spanMetres} m tall`);
});

test("the scale bar takes round distances", () => {
  assert.equal(roundDistance(1234), 1000);
  assert.equal(roundDistance(2600), 2000);
  assert.equal(roundDistance(7000), 5000);
  assert.equal(roundDistance(480), 200);
  assert.equal(roundDistance(0.3), 1);
});

test("figures read as drivers expect", () => {
  assert.equal(format.power(22_000), "22 kW");
  assert.equal(format.power(7_400), "7.4 kW");
  assert.equal(format.energy(3_500), "3.50 kWh");
  assert.equal(format.energy(0), "0.00 kWh");
  assert.equal(format.distance(850), "850 m");
  assert.equal(format.distance(1_234), "1.2 km");
  assert.equal(format.duration(725), "0:12:05");
  assert.equal(format.duration(3 * 3600 + 7), "3:00:07");
  assert.equal(format.isoDuration(725), "PT0H12M5S");
  assert.equal(format.connectorName("IEC_62196_T2_COMBO"), "CCS2");
  assert.equal(format.connectorName("NEW_THING"), "NEW THING");
  assert.deepEqual(
    format.connectorFacts({ standard: "IEC_62196_T2", format: "SOCKET", power_type: "AC_3_PHASE", max_power_w: 22_000 }),
    ["Type 2 socket", "AC three-phase", "22 kW"],
  );
  assert.deepEqual(format.evseStatus({ status: "Available" }, true), { label: "Available", tone: "ok" });
  assert.equal(format.evseStatus({ status: "Available" }, false).label, "Offline");
  assert.equal(format.evseStatus({ status: "Faulted" }, true).tone, "bad");
  assert.equal(format.stopReason("Remote"), "Stopped in the app");
  assert.deepEqual(format.openingHours({ twentyfourseven: true }), ["Open 24 hours, every day"]);
  assert.deepEqual(
    format.openingHours({
      twentyfourseven: false,
      regular_hours: [{ weekday: 1, period_begin: "08:00", period_end: "20:00" }],
    }),
    ["Monday 08:00–20:00"],
  );
});

test("problems keep their kind and their fields", () => {
  const error = new ApiError(422, {
    type: "/api/v1/problems/validation-error",
    title: "The request has invalid fields",
    detail: "Fix the fields named in `errors` and send the request again.",
    request_id: "r-1",
    errors: [{ field: "email", detail: "is required" }],
  });
  assert.equal(error.kind, "validation-error");
  assert.equal(error.fieldError("email"), "is required");
  assert.equal(error.fieldError("name"), null);
  assert.equal(error.requestId, "r-1");
  assert.equal(new ApiError(502).kind, "about:blank");
});

test("query strings leave out what is not set", () => {
  assert.equal(withQuery("/locations", {}), "/locations");
  assert.equal(
    withQuery("/locations", { near: "40.4,-3.7", available: "", min_power_kw: undefined, limit: 20 }),
    "/locations?near=40.4%2C-3.7&limit=20",
  );
});
