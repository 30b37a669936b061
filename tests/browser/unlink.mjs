// Flow 7: a linked person signs in again and unlinks Discord from the account page.
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
});
