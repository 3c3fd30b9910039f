// What every browser test here shares: reading its environment, numbered screenshots, the
// review of a page (picture, axe-core, narrow layout), bounded text expectations, and a
// headless Chromium whose pages must not misbehave by themselves.

import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** How long one expectation may take to come true on the page. */
export const WAIT_MS = 20_000;

/** The environment variable `name`, which the Rust test `owner` sets. */
export function required(name, owner) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; ${owner} sets it`);
  return value;
}

/** One line for the Rust side, which reads the script's stdout. */
export function say(line) {
  process.stdout.write(`${line}\n`);
}

/** Screenshots numbered in the order taken, in `artefacts`. */
export function pictures(artefacts) {
  mkdirSync(artefacts, { recursive: true });
  let shot = 0;
  return async function screenshot(page, name) {
    shot += 1;
    const file = path.join(artefacts, `${String(shot).padStart(2, "0")}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    say(`screenshot ${file}`);
  };
}

/** Runs axe-core on the page; fails on serious or critical violations. */
export async function accessible(page, name) {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const results = await axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(" ")).slice(0, 5),
    }));
  });
  for (const violation of violations) {
    say(`axe ${name}: ${violation.impact} ${violation.id} (${violation.help}) at ${violation.targets.join(", ")}`);
  }
  const blocking = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (blocking.length) {
    throw new Error(
      `${name} has ${blocking.length} serious or critical accessibility violation(s): ${blocking
        .map((v) => `${v.id} at ${v.targets.join(", ")}`)
        .join("; ")}`,
    );
  }
}

/** A page's picture, accessibility, and a picture at `narrowWidth` px with nothing sticking out. */
export function reviewer(screenshot, narrowWidth) {
  return async function review(page, name) {
    await screenshot(page, name);
    await accessible(page, name);
    const wide = page.viewportSize();
    await page.setViewportSize({ width: narrowWidth, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    await screenshot(page, `${name}-${narrowWidth}px`);
    await page.setViewportSize(wide);
    if (overflow > narrowWidth) {
      throw new Error(`${name} is ${overflow} px wide at a ${narrowWidth} px screen`);
    }
  };
}

/** Waits (bounded) until `locator` contains `text`. */
export async function expectText(locator, text) {
  try {
    await locator.filter({ hasText: text }).first().waitFor({ timeout: WAIT_MS });
  } catch {
    const shown = await locator
      .first()
      .innerText({ timeout: 1000 })
      .catch(() => "(nothing)");
    throw new Error(`expected “${text}” in ${locator}, found: ${shown.slice(0, 500)}`);
  }
}

/**
 * Runs `flow(page)` in headless Chromium (VOLTFLEET_CHROMIUM, default /usr/bin/chromium) with
 * these context options. Uncaught errors, CSP refusals and failed loads the flow did not
 * provoke on purpose (`provoked(url)`) fail it; so does any error, after a last screenshot.
 */
export async function browse({ context, provoked, screenshot }, flow) {
  const browser = await chromium.launch({
    executablePath: process.env.VOLTFLEET_CHROMIUM || "/usr/bin/chromium",
    // Nothing but loopback is reachable (no QUIC tries); root (CI) cannot use the sandbox.
    args: ["--disable-quic", ...(process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [])],
  });
  const page = await (await browser.newContext(context)).newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`console: ${text}`);
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (response.status() >= 400 && !provoked(url)) {
      problems.push(`${response.status()} for ${url.pathname}`);
    }
  });
  try {
    await flow(page);
  } catch (error) {
    await screenshot(page, "failure").catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
  if (problems.length) throw new Error(`the pages misbehaved: ${problems.join("; ")}`);
}
