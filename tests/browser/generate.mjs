// Flow 1: sign in through the OpenID Connect provider, generate from the home page's form, find the image
// in the gallery and on its own page, sign out, and see the gallery ask to sign in again.
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT (who signs in), PROMPT.

import { check, generate, loaded, pathOf, run, setting, signIn, signOut } from './lib.mjs';

const subject = setting('SUBJECT');
const prompt = setting('PROMPT');

await run('generate', async (flow) => {
  const { page, base, step, see, log } = flow;

  const who = await signIn(flow, subject);
  log(`signed in; the header says: ${who}`);

  const made = await generate(flow, prompt, { from: '/' });
  log(`generated ${made.join(', ')}`);

  await page.goto(`${base}/gallery`);
  const items = page.locator('[data-testid="gallery-item"]');
  await see(items, 'images in the gallery');
  const listed = await items.evaluateAll((elements) =>
    elements.map((element) => (element.matches('a') ? element : element.querySelector('a'))?.getAttribute('href')),
  );
  const listedPaths = listed.filter(Boolean).map((href) => pathOf(href, base));
  for (const path of made) {
    check(listedPaths.includes(path), `the gallery does not list the new image ${path}; it lists ${listedPaths.join(', ')}`);
  }
  await loaded(items.first().locator('img').first(), 'the newest thumbnail in the gallery');
  await step('gallery');

  // The open gallery is live: an image made in another tab joins it without a reload.
  const shown = await items.count();
  await page.evaluate(() => {
    window.stillTheSamePage = true;
  });
  const otherTab = await page.context().newPage();
  const elsewhere = await generate({ ...flow, page: otherTab }, `${prompt}, seen from another tab`);
  await otherTab.close();
  await page
    .waitForFunction((before) => document.querySelectorAll('[data-testid="gallery-item"]').length > before, shown)
    .catch(() => {
      throw new Error(`the open gallery did not show the image made in another tab (${elsewhere.join(', ')})`);
    });
  check(await page.evaluate(() => window.stillTheSamePage === true), 'the gallery reloaded instead of adding the image');
  const newest = await items.first().locator('a').first().getAttribute('href');
  check(elsewhere.includes(pathOf(newest, base)), `the newest thumbnail is ${newest}, not the new image ${elsewhere}`);
  await step('gallery-live');

  // The image's own page: the full image and its prompt.
  await page.locator(`[data-testid="gallery-item"] a[href="${made[0]}"]`).first().click();
  await page.waitForURL((url) => made.includes(url.pathname));
  const full = await see('main img', "the image on its gallery page");
  await loaded(full, 'the full image on its gallery page');
  const text = await page.locator('main').innerText();
  check(text.includes(prompt), `the image's page does not show its prompt "${prompt}"`);
  await step('image-page');

  await signOut(flow);

  // Signed out, the gallery asks to sign in (or sends the browser straight to the provider).
  await page.goto(`${base}/gallery`);
  await page.waitForLoadState('load');
  const atProvider = await page.locator('input[name="sub"]').isVisible().catch(() => false);
  if (!atProvider) {
    await see('[data-testid="sign-in"]', 'the signed-out gallery asking to sign in');
    const left = await items.count();
    check(left === 0, `the signed-out gallery still shows ${left} images`);
  }
  await step('gallery-signed-out');
});
