// The drivers' main flow on the website, in headless Chromium: find Demo Plaza with its live
// availability, open a charger's page as its QR code would, fail a sign-up and then succeed,
// start charging, follow the live session, stop it and find it in the history, sign out.
//
// Run by tests/tests/website.rs, which owns the stack and the charger. Environment:
//   VOLTFLEET_SITE_URL     the site's origin, such as http://127.0.0.1:8080
//   VOLTFLEET_ARTEFACTS    the directory screenshots go to
//   VOLTFLEET_CHROMIUM     the browser (default /usr/bin/chromium)
//   VOLTFLEET_CHARGER      the charger to charge at (default DEMO-CP-1)
//   EXPECT_LIVE_ENERGY, EXPECT_LIVE_POWER, EXPECT_FINAL_ENERGY
//                          what the session shows once the charger reported its meter
//                          ("3.50 kWh", "7.4 kW", "4.20 kWh")
// It prints "step NAME" when the charger side has something to do (start-pressed,
// stop-pressed), "screenshot PATH" for each picture, and "done" at the end; any failure
// exits non-zero with the reason on stderr (and a last screenshot).

import { browse, expectText, pictures, required, reviewer, say } from "./harness.mjs";

const OWNER = "tests/tests/website.rs";
const base = required("VOLTFLEET_SITE_URL", OWNER).replace(/\/$/, "");
const artefacts = required("VOLTFLEET_ARTEFACTS", OWNER);
const chargerId = process.env.VOLTFLEET_CHARGER || "DEMO-CP-1";
const liveEnergy = required("EXPECT_LIVE_ENERGY", OWNER);
const livePower = required("EXPECT_LIVE_POWER", OWNER);
const finalEnergy = required("EXPECT_FINAL_ENERGY", OWNER);
const screenshot = pictures(artefacts);
const review = reviewer(screenshot, 320);

async function main() {
  await browse(
    {
      context: { viewport: { width: 1280, height: 900 }, locale: "en-GB", timezoneId: "Europe/Madrid" },
      // The API's refusals are part of the flow (the bad sign-up); the site's own files never fail.
      provoked: (url) => url.pathname.startsWith("/api/"),
      screenshot,
    },
    flow,
  );
}

async function flow(page) {
  // 1. Find a charger: Demo Plaza with its live availability, in the list and on the map.
  await page.goto(`${base}/`);
  const plaza = page.locator(".location", { hasText: "Demo Plaza" });
  await plaza.locator(".availability", { hasText: "2 of 4 available" }).waitFor();
  await expectText(plaza, "Up to 22 kW");
  await expectText(plaza, "Type 2");
  await page.locator('#map a[aria-label="Demo Plaza: 2 of 4 available"]').waitFor();
  say("step locations");
  await review(page, "locations");

  // 2. The location's page, from the list.
  await plaza.getByRole("link", { name: "Demo Plaza" }).click();
  await page.getByRole("heading", { level: 1, name: "Demo Plaza" }).waitFor();
  await page.getByRole("link", { name: `Charger ${chargerId}` }).waitFor();
  await expectText(page.locator("#details"), "2 of 4 charging points");
  await review(page, "location");

  // 3. The charger's page, as its QR code opens it.
  await page.goto(`${base}/charger/?id=${encodeURIComponent(chargerId)}`);
  await page.getByRole("heading", { level: 1, name: `Charger ${chargerId}` }).waitFor();
  const point1 = page.locator('.evse[data-evse="1"]');
  await point1.locator(".badge", { hasText: "Available" }).waitFor();
  await expectText(page.locator("#details"), "Open 24 hours, every day");
  await expectText(page.locator("#details"), "0.39 EUR/kWh");
  const signIn = point1.getByRole("link", { name: "Sign in to charge on point 1" });
  await signIn.waitFor();
  await review(page, "charger-signed-out");

  // 4. Sign-up with a bad email and a short password: each problem next to its field.
  await signIn.click();
  await page.waitForURL(/\/account\/\?next=/);
  const signUp = page.locator("#sign-up");
  await signUp.getByLabel("Name").fill("Dora Driver");
  await signUp.getByLabel("Email").fill("dora.example.com");
  await signUp.getByLabel("Password").fill("short");
  await signUp.getByRole("button", { name: "Create account" }).click();
  await expectText(page.locator("#sign-up-email-error"), "Email is not an email address");
  await expectText(page.locator("#sign-up-password-error"), "Password is shorter than 10 characters");
  for (const field of ["#sign-up-email", "#sign-up-password"]) {
    const invalid = await page.locator(field).getAttribute("aria-invalid");
    if (invalid !== "true") throw new Error(`${field} is not marked invalid`);
  }
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (focused !== "sign-up-email") throw new Error(`the first invalid field is not focused (${focused})`);
  await review(page, "sign-up-problems");

  // 5. A good sign-up signs in and goes back to the charger.
  const email = `dora.${Date.now()}@example.com`;
  await signUp.getByLabel("Email").fill(email);
  await signUp.getByLabel("Password").fill("correct horse battery");
  await signUp.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL((url) => url.pathname.endsWith("/charger/"));
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.getByRole("link", { name: "Dora Driver" }).waitFor();
  const start = page.getByRole("button", { name: "Start charging on point 1" });
  await start.waitFor();
  await review(page, "charger-signed-in");

  // 6. Start: the charger is asked (RemoteStartTransaction) and the session page waits for it.
  await start.click();
  say("step start-pressed");
  await page.waitForURL((url) => url.pathname.endsWith("/session/"));
  await screenshot(page, "session-starting");

  // 7. The live session, once the charger reported the start and its meter.
  const live = page.locator("#live .session[data-session]");
  await live.locator(".figures", { hasText: liveEnergy }).waitFor();
  await expectText(live, livePower);
  await expectText(live, `${chargerId} · point 1`);
  await expectText(live, "Demo Plaza");
  await review(page, "session-live");

  // An access token the API refuses (as an expired one would be): the client refreshes it
  // once with the refresh token, tries again, and the page carries on.
  const refreshed = page.waitForResponse(
    (response) => response.url().endsWith("/api/v1/auth/refresh") && response.status() === 200,
  );
  await page.evaluate(() => {
    const stored = JSON.parse(sessionStorage.getItem("voltfleet.auth"));
    stored.access_token = "no.longer.valid";
    sessionStorage.setItem("voltfleet.auth", JSON.stringify(stored));
  });
  await page.reload();
  await refreshed;
  await live.locator(".figures", { hasText: liveEnergy }).waitFor();

  // 8. Stop: the charger is asked (RemoteStopTransaction); the history shows the session.
  await live.getByRole("button", { name: "Stop charging" }).click();
  say("step stop-pressed");
  await page.locator("#live-status", { hasText: "ended" }).waitFor();
  await page.locator("#live", { hasText: "You are not charging right now." }).waitFor();
  const row = page.locator("#history-rows tr").first();
  await expectText(row, finalEnergy);
  await expectText(row, "Stopped in the app");
  await expectText(row, `${chargerId} · point 1`);
  await review(page, "session-history");

  // 9. Sign out: the header offers to sign in again, and My charging asks for it.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL((url) => url.pathname === "/");
  await page.locator("#account-nav").getByRole("link", { name: "Sign in" }).waitFor();
  await page.goto(`${base}/session/`);
  await page.getByRole("heading", { name: "Sign in to see your charging" }).waitFor();
  await screenshot(page, "signed-out");
}


main().then(
  () => say("done"),
  (error) => {
    process.stderr.write(`main_flow failed: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
