// Flow 6: the forms no other flow submits, as a first-time visitor would: the prompt checker,
// generating from its improved prompt (the studio prefilled), and deleting an image from its
// page.
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT, PROMPT.

import { check, generate, pathOf, run, secondBrowser, setting, signIn } from './lib.mjs';

const subject = setting('SUBJECT');
const prompt = setting('PROMPT');

await run('forms', async (flow) => {
  const { page, base, step, see, log } = flow;
  await signIn(flow, subject);

  // The checker: a prompt in, a critique with improved prompts out.
  await page.goto(`${base}/check`);
  const form = page.locator('form[action="/check"]');
  await (await see(form.locator('textarea[name="prompt"]'), "the checker's prompt field")).fill(prompt);
  await step('check-prompt');
  await form.locator('button[type="submit"]').click();
  const critique = await see('[data-testid="critique"]', 'the critique of the prompt');
  check((await critique.innerText()).length > 0, 'the critique is empty');
  await step('critique');

  // An improved prompt opens the studio with it filled in; generating from there works.
  await critique.getByRole('link', { name: 'Generate with this prompt' }).first().click();
  await page.waitForURL((url) => url.pathname === '/studio', { waitUntil: 'load' });
  const filled = await page.locator('textarea[name="prompt"]').inputValue();
  check(filled.length > 0, 'the studio did not receive the improved prompt');
  const made = await generate(flow, filled);
  log(`generated ${made.join(', ')} from the improved prompt`);

  // Publishing from the image's page: its public page opens without a session, with the
  // picture in its Open Graph tags; unpublished, it is gone.
  await page.goto(`${base}${made[0]}`);
  await (await see('[data-testid="publish-image"]', "the image page's Publish button")).click();
  await page.waitForLoadState('load');
  const publicLink = await see('[data-testid="public-page"]', 'the link to the public page');
  const publicPath = pathOf(await publicLink.getAttribute('href'), base);
  const anonymous = await secondBrowser('visitor');
  const visitor = anonymous.page;
  const shown = await visitor.goto(`${base}${publicPath}`);
  check(shown.status() === 200, `the public page answers ${shown.status()} without a session`);
  const ogImage = await visitor.locator('meta[property="og:image"]').getAttribute('content');
  check(ogImage && ogImage.endsWith(`${publicPath}/full`), `the public page's og:image is ${ogImage}`);
  await step('published');
  await (await see('[data-testid="unpublish-image"]', "the image page's Unpublish button")).click();
  await page.waitForLoadState('load');
  // Asked afresh (a browser may keep the public page for its 60 seconds, as told), it is gone.
  const unpublished = await visitor.context().request.get(`${base}${publicPath}`);
  check(unpublished.status() === 404, `the unpublished page answers ${unpublished.status()}, not 404`);
  await anonymous.close();

  // Deleting from the image's page: it leaves the gallery.
  await (await see('[data-testid="delete-image"]', "the image page's Delete button")).click();
  await page.waitForURL((url) => url.pathname === '/gallery', { waitUntil: 'load' });
  await step('deleted');
  const hrefs = await page
    .locator('[data-testid="gallery-item"] a')
    .evaluateAll((links) => links.map((link) => link.getAttribute('href')));
  check(!hrefs.map((href) => pathOf(href, base)).includes(made[0]), `the deleted image ${made[0]} is still listed`);
  const gone = await page.goto(`${base}${made[0]}`);
  check(gone.status() === 404, `the deleted image's page answers ${gone.status()}, not 404`);
});
