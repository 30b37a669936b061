// Flow 4: link a Discord account. The test makes a one-time link token with the core (as the
// bot's /link does); signed in, the browser opens its URL, sees which Discord account it
// links, confirms, and is told it is done. Opening the same URL again says it was used.
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT, LINK_URL, DISCORD_ID.

import { check, run, setting, signIn } from './lib.mjs';

const subject = setting('SUBJECT');
const linkUrl = setting('LINK_URL');
const discordId = setting('DISCORD_ID');

await run('link', async (flow) => {
  const { page, step, see, log } = flow;
  await signIn(flow, subject);

  await page.goto(linkUrl);
  const offer = await see('[data-testid="link-offer"]', 'the offer naming the Discord account to link');
  const offered = await offer.innerText();
  check(offered.includes(discordId), `the offer does not name Discord account ${discordId}: ${offered}`);
  await step('link-offer');
  await (await see('[data-testid="confirm-link"]', 'the confirm-link button')).click();
  const done = await see('[data-testid="link-done"]', 'the page saying the accounts are linked');
  log(`linked: ${(await done.innerText()).replace(/\s+/g, ' ').trim()}`);
  await step('link-done');

  // A link token works once.
  await page.goto(linkUrl);
  const refusal = await see('[data-testid="link-error"]', 'a notice that the link cannot be used again');
  const said = (await refusal.innerText()).replace(/\s+/g, ' ').trim();
  log(`opened again: ${said}`);
  check(
    /already (been )?used|was used|has been used/i.test(said),
    `opening the link again does not say it was already used: ${said}`,
  );
  check((await page.locator('[data-testid="confirm-link"]').count()) === 0, 'a used link still offers to confirm');
  await step('link-used');

});
