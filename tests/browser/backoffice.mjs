// The Back Office in headless Chromium: the admin signs in (after a wrong password), sees the
// dashboard and the connected charger in the list, opens it, sends Unlock connector, Reset and
// Get configuration and reads the charger's answers; then a viewer signs in, finds no command
// forms, and a POST crafted in the page with the viewer's own valid token is refused (403).
//
// Run by tests/tests/backoffice.rs, which owns the stack and the charger. Environment:
//   VOLTFLEET_BASE_URL          the proxy's origin, such as http://127.0.0.1:8080
//   VOLTFLEET_ARTEFACTS         the directory screenshots go to
//   VOLTFLEET_CHROMIUM          the browser (default /usr/bin/chromium)
//   VOLTFLEET_CHARGER           the connected charger (DEMO-CP-1)
//   VOLTFLEET_VENDOR            the vendor the charger booted with (markup, shown as text)
//   VOLTFLEET_VIEWER, VOLTFLEET_VIEWER_PASSWORD   the viewer made by the test
// It prints "screenshot PATH" for each picture and "done" at the end; any failure exits
// non-zero with the reason on stderr (and a last screenshot).

import { browse, expectText, pictures, required, reviewer, say } from "./harness.mjs";

const OWNER = "tests/tests/backoffice.rs";
const base = required("VOLTFLEET_BASE_URL", OWNER).replace(/\/$/, "");
const artefacts = required("VOLTFLEET_ARTEFACTS", OWNER);
const chargerId = required("VOLTFLEET_CHARGER", OWNER);
const vendor = required("VOLTFLEET_VENDOR", OWNER);
const viewer = required("VOLTFLEET_VIEWER", OWNER);
const viewerPassword = required("VOLTFLEET_VIEWER_PASSWORD", OWNER);
const screenshot = pictures(artefacts);
const review = reviewer(screenshot, 360);

async function signIn(page, email, password) {
  await page.goto(`${base}/backoffice/`);
  await page.waitForURL(`${base}/backoffice/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function send(page, title, fill) {
  const form = page.locator("details", { has: page.locator("summary", { hasText: title }) });
  if (!(await form.evaluate((details) => details.open))) await form.locator("summary").click();
  await fill(form);
  await form.getByRole("button", { name: `Send ${title}` }).click();
  await page.locator("[data-outcome] h2", { hasText: title }).waitFor();
  return page.locator("[data-outcome]");
}

async function main() {
  await browse(
    {
      context: { viewport: { width: 1024, height: 800 }, locale: "en-GB" },
      // The refusals the flow provokes on purpose are checked where they happen.
      provoked: (url) =>
        url.pathname === "/backoffice/login" ||
        url.pathname.includes("/commands/") ||
        url.pathname.startsWith("/api/"),
      screenshot,
    },
    flow,
  );
}

async function flow(page) {
  // 1. Signing in: a wrong password first, then the demo admin.
  await signIn(page, "admin@example.com", "not the password");
  await expectText(page.locator(".flash.error"), "Wrong email or password.");
  await review(page, "login-refused");
  await page.getByLabel("Email").fill("admin@example.com");
  await page.getByLabel("Password").fill("voltfleet-demo");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/backoffice/`);

  // 2. The dashboard counts the connected charger and goes live.
  await page.locator('[data-figure="online"]', { hasText: "1" }).waitFor();
  await expectText(page.locator("[data-live-state]"), "Live:");
  await review(page, "dashboard");

  // 3. The list: the charger is there, online, its vendor shown as text.
  await page.getByRole("link", { name: "Charge points" }).click();
  const row = page.locator("tbody tr", { has: page.getByRole("link", { name: chargerId, exact: true }) });
  await expectText(row, "Online");
  await expectText(row, vendor);
  if ((await page.locator("script:not([src])").count()) !== 0) throw new Error("the charger's vendor became a script");
  await review(page, "charge-points");

  // 4. The charger's page.
  await row.getByRole("link", { name: chargerId, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: new RegExp(chargerId) }).waitFor();
  await expectText(page.locator(".facts"), vendor);
  await review(page, "charge-point");
  // The connectors follow the charger live: the test reports EVSE 2 unavailable now.
  await expectText(page.locator("[data-charger] [data-live-state]"), "Live:");
  say("step charger-page");
  await page.locator('[data-evse-status="2"]', { hasText: "Unavailable" }).waitFor();
  await screenshot(page, "charge-point-live-status");

  // 5. Commands, each with the charger's answer on the page.
  let outcome = await send(page, "Unlock connector", (form) => form.getByLabel("Connector").fill("1"));
  await expectText(outcome, "The charger answered Unlocked.");
  await screenshot(page, "unlock-connector");
  outcome = await send(page, "Reset", (form) => form.getByLabel("Type").selectOption("Hard"));
  await expectText(outcome, "The charger answered Accepted.");
  await screenshot(page, "reset");
  outcome = await send(page, "Get configuration", async () => {});
  await expectText(outcome.locator("pre"), "HeartbeatInterval");
  await expectText(page.locator("#config-heading + p + .table-wrap td"), "MeterValueSampleInterval");
  await review(page, "get-configuration");
  // The messages just exchanged are in the charger's recent OCPP messages.
  const messages = page.locator("table.messages tbody");
  await expectText(messages.locator("tr", { hasText: "to the charger" }), "UnlockConnector");
  await expectText(messages.locator("tr", { hasText: "from the charger" }), "BootNotification");
  if (!(await messages.innerText()).includes(vendor)) throw new Error("the BootNotification's text is not shown as it was sent");

  // A form with a mistake says so next to the field, and sends nothing.
  const unlock = page.locator("details", { has: page.locator("summary", { hasText: "Unlock connector" }) });
  if (!(await unlock.evaluate((details) => details.open))) await unlock.locator("summary").click();
  await unlock.getByLabel("Connector").fill("0");
  await unlock.getByRole("button", { name: "Send Unlock connector" }).click();
  await expectText(page.locator("#unlock-connector-connector_id-error"), "Enter a number from 1");
  await screenshot(page, "unlock-connector-invalid");

  // 6. The session the charger reported, with its meter values charted.
  await page.getByRole("link", { name: "Transactions" }).click();
  const session = page.locator("tbody tr", { hasText: "DEMO-TAG-1" }).first();
  await expectText(session, "4.20");
  await review(page, "transactions");
  await session.getByRole("link").first().click();
  await expectText(page.locator("#chart-summary"), "3 energy and 3 power samples");
  if ((await page.locator(".chart svg polyline").count()) !== 2) throw new Error("the chart lacks a line");
  await review(page, "transaction");

  // Locations: Demo Plaza with the connected charger.
  await page.getByRole("link", { name: "Locations" }).click();
  await page.getByRole("link", { name: "Demo Plaza" }).click();
  await expectText(page.locator("tbody tr", { hasText: chargerId }), "Online");
  await review(page, "location");

  // ID tokens: the demo card, blocked from its page.
  await page.getByRole("link", { name: "ID tokens" }).click();
  await review(page, "id-tokens");
  await page.getByRole("link", { name: "DEMO-TAG-1", exact: true }).click();
  await page.getByLabel("Status").selectOption("Blocked");
  await page.getByRole("button", { name: "Save" }).click();
  await expectText(page.locator(".flash.ok"), "Saved: Blocked.");
  await review(page, "id-token");

  // 7. The admin's pages: the audit log has the commands just sent; the operators.
  await page.getByRole("link", { name: "Audit log" }).click();
  await expectText(page.locator("table.audit tbody tr"), "charge_point.command.UnlockConnector");
  await review(page, "audit-log");
  // An API key made here works against the API until it is revoked.
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByLabel("Name").fill("browser test");
  await page.getByRole("button", { name: "Make key" }).click();
  const key = (await page.locator("[data-new-key]").innerText()).trim();
  await review(page, "api-keys");
  const withKey = () =>
    page.evaluate(async (apiKey) => (await fetch("/api/v1/locations", { headers: { "X-API-Key": apiKey } })).status, key);
  if ((await withKey()) !== 200) throw new Error("the new API key was not accepted by the API");
  await page.getByRole("button", { name: "Revoke browser test" }).click();
  await expectText(page.locator(".flash.ok"), "no longer works");
  if ((await withKey()) !== 401) throw new Error("the revoked API key still works");
  await page.getByRole("link", { name: "Operators" }).click();
  await expectText(page.locator("tbody tr"), viewer);
  await review(page, "operators");

  // 8. Signing out ends the session.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/backoffice/login`);

  // 9. A viewer sees the charger but no commands, and a crafted POST is refused.
  await signIn(page, viewer, viewerPassword);
  await page.waitForURL(`${base}/backoffice/`);
  await page.goto(`${base}/backoffice/charge-points/${encodeURIComponent(chargerId)}`);
  await expectText(page.locator("#commands-heading + p"), "Your role is read-only");
  if ((await page.locator('form[action*="/commands/"]').count()) !== 0) throw new Error("a viewer was shown command forms");
  const status = await page.evaluate(async (charger) => {
    const token = document.querySelector('input[name="_csrf"]').value;
    const body = new URLSearchParams({ _csrf: token, type: "Hard" });
    const response = await fetch(`/backoffice/charge-points/${encodeURIComponent(charger)}/commands/reset`, {
      method: "POST",
      body,
    });
    return response.status;
  }, chargerId);
  if (status !== 403) throw new Error(`a viewer's crafted Reset got ${status}, not 403`);
  await review(page, "viewer-charge-point");
  say("done");
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
