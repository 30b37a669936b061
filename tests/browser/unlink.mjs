// Flow 7: a linked person signs in again, unlinks Discord from the account page, then deletes
// all their data there (typing delete to confirm).
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT (the linked web account), DISCORD_ID.

import { check, run, setting, signIn } from './lib.mjs';

const subject = setting('SUBJECT');
const discordId = setting('DISCORD_ID');

await run('unlink', async (flow) => {
  const { page, base, step, see } = flow;
  await signIn(flow, subject);
  await page.goto(`${base}/account`);
  const linked = await see('[data-testid="linked-discord"]', 'the account page naming the linked Discord account');
  check((await linked.innerText()).includes(discordId), `the account page does not name ${discordId}`);
  await step('linked');
  await (await see('[data-testid="unlink"]', 'the Unlink Discord button')).click();
  await page.waitForLoadState('load');
  await see('[data-testid="account-page"]', 'the account page after unlinking');
  check((await page.locator('[data-testid="linked-discord"]').count()) === 0, 'the account page still names a link');
  await step('unlinked');

  await (await see('[data-testid="delete-confirm"]', 'the box to confirm deleting everything')).fill('delete');
  await (await see('[data-testid="delete-data"]', 'the Delete all my data button')).click();
  await page.waitForLoadState('load');
  await see('[data-testid="deleted"]', 'the page saying everything is deleted');
  await step('deleted');
});
