// What every browser flow shares: Debian's Chromium driven by playwright-core, a screenshot
// of each step, clear failures, and signing in and out through the OpenID Connect provider.
//
// A flow is run by tests/browser.rs, which starts Atelier and its stand-ins and passes
// ATELIER_URL (the app), SCREENSHOTS (a folder for this flow's screenshots) and the flow's own
// settings in the environment. A flow exits 0 when it passed, and 1 with a message saying
// what was missing, on which page, otherwise.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

/// Debian's Chromium (`apt-get install chromium`); never a browser downloaded by Playwright.
export const CHROMIUM = '/usr/bin/chromium';

/// Headless, and quiet on a closed network: without the background-networking flags Chromium
/// keeps trying to reach Google's services, and those connections are refused here.
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/// How long one action or wait may take before the flow fails (the machine may be busy
/// compiling while the tests run).
const TIMEOUT_MS = 30_000;

/// A setting from the environment, which tests/browser.rs provides.
export function setting(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser flows through \`cargo test --test end_to_end browser\``);
  }
  return value;
}

/// Fails the flow with `message` unless `condition` holds.
export function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/// Runs `body` in a fresh Chromium profile and reports the outcome. `body` gets:
/// - `page`: the Playwright page; `base`: the app's URL without a trailing slash;
/// - `step(name)`: records a step and its full-page screenshot as NN-name.png;
/// - `see(selector, what)`: waits until the selector (a string or a locator) is visible and
///   returns its locator, or fails saying `what` was expected and on which page;
/// - `log(...)`: a line in the flow's output.
export async function run(flow, body) {
  const started = Date.now();
  const base = setting('ATELIER_URL').replace(/\/+$/, '');
  const screenshots = setting('SCREENSHOTS');
  mkdirSync(screenshots, { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), `atelier-browser-${flow}-`));
  const log = (...parts) => console.log(`[${flow}]`, ...parts);
  const browserMessages = [];
  let context;
  let page;
  let steps = 0;

  const screenshot = async (name) => {
    steps += 1;
    const file = path.join(screenshots, `${String(steps).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
  const step = async (name) => {
    await screenshot(name);
    log(`step ${steps}: ${name} (${page.url()})`);
  };
  const see = (selector, what) => seeOn(page, '', selector, what);

  try {
    ({ context, page } = await launch(profile));
    page.on('pageerror', (error) => browserMessages.push(`script error on ${page.url()}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        browserMessages.push(`console ${message.type()} on ${page.url()}: ${message.text()}`);
      }
    });
    await body({ page, base, step, see, log });
    log(`passed: ${steps} steps in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${screenshots}`);
  } catch (error) {
    process.exitCode = 1;
    console.error(`[${flow}] FAILED: ${error.message}`);
    if (page) {
      try {
        const file = await screenshot('failure');
        console.error(`[${flow}] the page at the failure: ${page.url()}, screenshot ${file}`);
        const text = (await page.locator('body').innerText({ timeout: 2_000 })).replace(/\s+/g, ' ').trim();
        console.error(`[${flow}] its text: ${text.slice(0, 1_500)}`);
      } catch (inner) {
        console.error(`[${flow}] (no screenshot of the failure: ${firstLine(inner)})`);
      }
    }
    if (error.stack) {
      console.error(error.stack);
    }
    // What the browser itself reported, for the diagnosis.
    for (const message of browserMessages) {
      console.error(`[${flow}] browser: ${message}`);
    }
  } finally {
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/// A second person's browser beside the flow's own (a fresh profile): returns what `run`
/// gives a flow (`page`, `base`, `step`, `see`, `log`) for that person, and `close()`. Their
/// screenshots are named after `who`.
export async function secondBrowser(who) {
  const base = setting('ATELIER_URL').replace(/\/+$/, '');
  const screenshots = setting('SCREENSHOTS');
  const profile = mkdtempSync(path.join(tmpdir(), `atelier-browser-${who}-`));
  const { context, page } = await launch(profile);
  let steps = 0;
  const log = (...parts) => console.log(`[${who}]`, ...parts);
  const step = async (name) => {
    steps += 1;
    await page.screenshot({ path: path.join(screenshots, `${who}-${String(steps).padStart(2, '0')}-${name}.png`), fullPage: true });
    log(`step ${steps}: ${name} (${page.url()})`);
  };
  const see = (selector, what) => seeOn(page, who, selector, what);
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, base, step, see, log, close };
}

/// Chromium on a fresh, empty profile (launchPersistentContext is Playwright's way of passing
/// --user-data-dir), with the flows' timeouts.
async function launch(profile) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  page.setDefaultNavigationTimeout(TIMEOUT_MS);
  return { context, page };
}

/// Waits until `selector` (a string or a locator) is visible on `page` and returns its
/// locator, or fails saying `what` (and `who`, when not the flow's own person) expected it.
async function seeOn(page, who, selector, what) {
  const locator = typeof selector === 'string' ? page.locator(selector).first() : selector.first();
  try {
    await locator.waitFor({ state: 'visible' });
  } catch (error) {
    const expected = who ? `${who} expected` : 'expected';
    throw new Error(`${expected} ${what} (${locator}) on ${page.url()}, but it did not appear: ${firstLine(error)}`);
  }
  return locator;
}

function firstLine(error) {
  return String(error?.message ?? error).split('\n')[0];
}

/// The path and query of a URL, for comparing links.
export function pathOf(url, base) {
  const parsed = new URL(url, base);
  return parsed.pathname + parsed.search;
}

/// Waits until an image has loaded with real pixels (after any redirect to the store), and
/// returns its natural size.
export async function loaded(image, what) {
  const size = await image
    .evaluate(
      (element) =>
        new Promise((resolve) => {
          const done = () => resolve({ width: element.naturalWidth, height: element.naturalHeight });
          if (element.complete) {
            done();
          } else {
            element.addEventListener('load', done, { once: true });
            element.addEventListener('error', done, { once: true });
          }
        }),
    )
    .catch((error) => {
      throw new Error(`${what}: could not read the image: ${firstLine(error)}`);
    });
  check(size.width > 0 && size.height > 0, `${what} did not load (it has no pixels)`);
  return size;
}

/// Signs in from the home page as `subject` through the provider's authorization form, and
/// waits until Atelier's header says who is signed in.
export async function signIn({ page, base, step, see }, subject) {
  await page.goto(`${base}/`);
  await step('home-signed-out');
  const signIn = await see('[data-testid="sign-in"]', 'a sign-in button on the home page');
  await signIn.click();

  // The provider's page: a form that asks for the subject to sign in as.
  const subjectField = await see('input[name="sub"]', "the sign-in provider's form asking for a subject");
  await subjectField.fill(subject);
  await step('provider-form');
  await page.getByRole('button', { name: 'Authorize' }).click();

  await page.waitForURL((url) => url.href.startsWith(base), { waitUntil: 'load' }).catch((error) => {
    throw new Error(`the provider never sent the browser back to Atelier (now at ${page.url()}): ${firstLine(error)}`);
  });
  const who = await see('[data-testid="signed-in-as"]', 'the header saying who is signed in');
  await step('signed-in');
  return (await who.innerText()).trim();
}

/// Signs out with the header's sign-out button; when the provider asks to confirm ending its
/// session too (RP-initiated logout), confirms. Waits until Atelier offers sign-in again.
export async function signOut({ page, base, step, see }) {
  const button = await see('[data-testid="sign-out"]', 'a sign-out button');
  await button.click();
  await page.waitForLoadState('load');
  if (!page.url().startsWith(base)) {
    const end = page.getByRole('button', { name: 'End session' });
    if (await end.isVisible().catch(() => false)) {
      await step('provider-end-session');
      await end.click();
    }
    await page.waitForURL((url) => url.href.startsWith(base), { waitUntil: 'load' }).catch((error) => {
      throw new Error(`signing out never came back to Atelier (now at ${page.url()}): ${firstLine(error)}`);
    });
  }
  await see('[data-testid="sign-in"]', 'a sign-in button after signing out');
  const stillIn = await page.locator('[data-testid="signed-in-as"]').count();
  check(stillIn === 0, `the header still says someone is signed in after signing out (${page.url()})`);
  await step('signed-out');
}

/// Generates images from `prompt` in the studio and returns the results' gallery paths
/// (`/gallery/{id}`), after checking every result image loaded.
/// Generates from the studio's form, or with `{ from: '/' }` from the home page's, as a person
/// who just arrived would.
export async function generate({ page, base, step, see }, prompt, { from = '/studio' } = {}) {
  const where = from === '/' ? 'the home page' : 'the studio';
  await page.goto(`${base}${from}`);
  const form = page.locator('form[action="/studio"]').filter({ has: page.locator('textarea[name="prompt"]') });
  const field = await see(form.locator('textarea[name="prompt"]'), `the prompt field of ${where}`);
  await field.fill(prompt);
  await step(from === '/' ? 'home-prompt' : 'studio-prompt');
  await (await see(form.locator('[data-testid="generate"]'), `the generate button of ${where}`)).click();

  const results = page.locator('img[data-testid="result-image"]');
  await see(results, 'the generated images');
  const images = await results.all();
  check(images.length > 0, 'the studio showed no results');
  const paths = [];
  for (const [index, image] of images.entries()) {
    await loaded(image, `result image ${index + 1}`);
    const link = image.locator('xpath=ancestor::a[1]');
    const href = (await link.count()) > 0 ? await link.getAttribute('href') : null;
    check(href && href.includes('/gallery/'), `result image ${index + 1} does not link to its gallery page`);
    paths.push(pathOf(href, base));
  }
  await step('studio-results');
  return paths;
}
