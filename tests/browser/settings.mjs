// Flow 5: a first-time visitor signs in, opens Settings from the site's navigation, sets a
// default shape and what to leave out, saves, and finds the settings kept after a reload and
// preselected on the Generate page; then generates from the home page's form, which names no
// shape (tests/browser.rs checks the model was asked for the default shape).
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT, ASPECT, NEGATIVE, PROMPT.

import { check, generate, run, setting, signIn } from './lib.mjs';

const subject = setting('SUBJECT');
const aspect = setting('ASPECT');
const negative = setting('NEGATIVE');
const prompt = setting('PROMPT');

await run('settings', async (flow) => {
  const { page, base, step, see, log } = flow;
  await signIn(flow, subject);

  await (await see('header.site nav a[href="/settings"]', 'a Settings link in the site navigation')).click();
  await page.waitForURL((url) => url.pathname === '/settings');
  const form = await see('[data-testid="settings-form"]', 'the settings form');
  const aspectField = await see(form.locator('[data-testid="settings-aspect"]'), 'the default shape field');
  check((await aspectField.inputValue()) === '', 'a first-time visitor already has a default shape');
  await aspectField.fill(aspect);
  await form.locator('[data-testid="settings-negative"]').fill(negative);
  await step('settings-filled');
  await (await see(form.locator('[data-testid="save-settings"]'), 'the save button')).click();

  await see('[data-testid="settings-saved"]', 'the notice that the settings were saved');
  await step('settings-saved');
  await page.reload();
  const kept = await see('[data-testid="settings-aspect"]', 'the default shape field after a reload');
  check((await kept.inputValue()) === aspect, `the default shape was not kept: it shows "${await kept.inputValue()}"`);
  const keptNegative = await page.locator('[data-testid="settings-negative"]').inputValue();
  check(keptNegative === negative, `what to leave out was not kept: it shows "${keptNegative}"`);
  log(`kept: shape ${aspect}, leave out "${negative}"`);
  await step('settings-kept');

  // The Generate page starts from the defaults.
  await page.goto(`${base}/studio`);
  const shape = await see('select[name="aspect"]', "the Generate page's shape menu");
  check((await shape.inputValue()) === aspect, `the Generate page's shape is "${await shape.inputValue()}", not ${aspect}`);
  await step('studio-defaults');

  const made = await generate(flow, prompt, { from: '/' });
  log(`generated ${made.join(', ')} from the home page`);
});
