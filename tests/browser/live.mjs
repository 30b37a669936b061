// Flow 5: jobs live, behind a proxy that cuts every request at 60 s as CloudFront does, with
// an image model slower than that. Alice submits in the studio and follows her job on its
// page (checking, drawing) until her image appears; meanwhile Bob's job waits behind hers,
// his page says where it is in line, and he calls it back.
//
// Settings: ATELIER_URL, SCREENSHOTS, PROMPT (Alice's), SECOND_PROMPT (Bob's), and
// RESULT_WAIT_MS (how long Alice's image may take: the model's delay and some).

import { check, loaded, run, secondBrowser, setting, signIn } from './lib.mjs';

const prompt = setting('PROMPT');
const secondPrompt = setting('SECOND_PROMPT');
const resultWait = Number(setting('RESULT_WAIT_MS'));

/// Submits `text` from the studio and waits for the job's page.
async function submit({ page, base, see, step }, text, name) {
  await page.goto(`${base}/studio`);
  const form = page.locator('form[action="/studio"]').filter({ has: page.locator('textarea[name="prompt"]') });
  await (await see(form.locator('textarea[name="prompt"]'), "the studio's prompt field")).fill(text);
  await (await see(form.locator('[data-testid="generate"]'), "the studio's generate button")).click();
  await page.waitForURL((url) => url.pathname.startsWith('/jobs/'), { waitUntil: 'load' });
  await see('[data-testid="job-state"]', "the job's state on its page");
  await step(name);
}

await run('live', async (flow) => {
  const { page, log } = flow;
  await signIn(flow, 'alice');
  await submit(flow, prompt, 'alice-submitted');

  // Every state Alice's page shows, as it changes (the page updates itself from the events).
  const seen = [];
  const record = async () => {
    const state = await page.locator('[data-testid="job-state"]').getAttribute('data-state').catch(() => null);
    if (state && seen[seen.length - 1] !== state) {
      seen.push(state);
    }
  };
  await record();
  await page.locator('[data-testid="job-state"][data-state="running"]').waitFor({ state: 'visible' });
  await record();
  await flow.step('alice-drawing');

  // Bob's job waits behind Alice's (one job runs at a time here): he sees his place, and
  // calls the job back.
  const bob = await secondBrowser('bob');
  try {
    await signIn(bob, 'bob');
    await submit(bob, secondPrompt, 'bob-submitted');
    const bobState = bob.page.locator('[data-testid="job-state"]');
    check((await bobState.getAttribute('data-state')) === 'waiting', `Bob's job is not waiting: ${await bobState.innerText()}`);
    const place = await bobState.innerText();
    check(/next in line|1 in line/.test(place), `Bob's page does not say where his job is in line: "${place}"`);
    const cancel = await bob.see('[data-testid="cancel-job"]', 'a Cancel button on the waiting job');
    await bob.step('bob-waiting');
    await cancel.click();
    await bob.page.locator('[data-testid="job-state"][data-state="cancelled"]').waitFor({ state: 'visible' });
    const told = await bob.page.locator('[data-testid="job-state"]').innerText();
    check(/nothing was charged/i.test(told), `Bob's cancelled job does not say nothing was charged: "${told}"`);
    await bob.step('bob-cancelled');
  } finally {
    await bob.close();
  }

  // Alice's image arrives on her page, without her doing anything, after the slow model.
  const deadline = Date.now() + resultWait;
  const result = page.locator('img[data-testid="result-image"]').first();
  while (!(await result.isVisible().catch(() => false))) {
    check(Date.now() < deadline, `Alice's image did not appear within ${resultWait} ms; her page shows ${seen.join(' → ')}`);
    await record();
    await page.waitForTimeout(250);
  }
  await loaded(result, "Alice's image");
  await flow.step('alice-image');
  log(`Alice's page showed: ${seen.join(' → ')} → image`);
  check(seen.includes('running'), `Alice's page never showed her job being drawn: ${seen.join(' → ')}`);
});
