// Flow 3: sign in, open the chat, send a message, and watch the answer stream in: its text is
// sampled while it arrives and must grow step by step before the answer is marked done.
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT, MESSAGE. The test paces the Bedrock stand-in so
// the answer's words arrive spaced out.

import { check, run, setting, signIn } from './lib.mjs';

const subject = setting('SUBJECT');
const message = setting('MESSAGE');

await run('chat', async (flow) => {
  const { page, base, step, see, log } = flow;
  await signIn(flow, subject);

  await page.goto(`${base}/chat`);
  const field = await see('[data-testid="chat-message"]', 'the chat message field');
  await field.fill(message);
  await step('chat-message');
  const answers = page.locator('[data-testid="chat-answer"]');
  const before = await answers.count();
  await (await see('[data-testid="send"]', 'the send button')).click();

  // Sample the newest answer's text until it is marked done.
  const samples = [];
  let streamingShot = false;
  const deadline = Date.now() + 60_000;
  for (;;) {
    check(
      Date.now() < deadline,
      `the answer was not marked done within a minute; its text so far: ${samples.at(-1) ?? '(none)'}`,
    );
    const state = await page.evaluate((before) => {
      const all = document.querySelectorAll('[data-testid="chat-answer"]');
      const answer = all.length > before ? all[all.length - 1] : null;
      return answer ? { text: answer.textContent.trim(), done: answer.dataset.done === 'true' } : null;
    }, before);
    if (state) {
      if (samples.at(-1) !== state.text) {
        samples.push(state.text);
      }
      if (state.done) {
        break;
      }
      if (!streamingShot && state.text.length > 0) {
        streamingShot = true;
        await step('answer-streaming');
      }
    }
    await page.waitForTimeout(40);
  }
  const answer = samples.at(-1);
  await step('answer-done');
  log(`the answer: ${answer}`);
  log(`seen while streaming: ${samples.length} different texts, lengths ${samples.map((text) => text.length).join(' → ')}`);

  check(answer.length > 0, 'the finished answer is empty');
  check(answer.includes('Stand-in reply to'), `the answer is not the model's (stand-in's) reply: ${answer}`);
  const partial = samples.filter((text) => text.length > 0 && text !== answer);
  check(
    partial.length >= 3,
    `the answer did not stream: only ${partial.length} partial texts were seen before it was complete (${samples.length} samples)`,
  );
  for (let index = 1; index < samples.length; index += 1) {
    check(
      samples[index].length >= samples[index - 1].length,
      `the answer shrank while streaming: "${samples[index - 1]}" then "${samples[index]}"`,
    );
  }
});
