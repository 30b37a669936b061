// Flow 2: sign in, generate an image, open it in the edit page, paint a mask on the canvas
// over it, inpaint, then "keep editing" the result and inpaint again (a chained edit).
//
// Settings: ATELIER_URL, SCREENSHOTS, SUBJECT, PROMPT (for the first image), EDIT_PROMPT and
// SECOND_EDIT_PROMPT (what to paint in each edit).

import { check, generate, run, setting, signIn } from './lib.mjs';

const subject = setting('SUBJECT');
const prompt = setting('PROMPT');
const editPrompt = setting('EDIT_PROMPT');
const secondEditPrompt = setting('SECOND_EDIT_PROMPT');

/// Drags across the mask canvas with the mouse button down, over the middle of the picture.
async function paintMask({ page, see }, from, to) {
  const canvas = await see('canvas[data-testid="mask-canvas"]', 'the mask canvas over the image');
  await page.waitForFunction(
    () => {
      const element = document.querySelector('canvas[data-testid="mask-canvas"]');
      const box = element?.getBoundingClientRect();
      return element && element.width > 0 && box.width > 20 && box.height > 20;
    },
    null,
    { timeout: 30_000 },
  ).catch(() => {
    throw new Error('the mask canvas never got a size (did the image under it load?)');
  });
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const at = ([x, y]) => [box.x + box.width * x, box.y + box.height * y];
  const [startX, startY] = at(from);
  const [endX, endY] = at(to);
  await page.mouse.move(startX, startY);
  await page.mouse.down();
  await page.mouse.move(endX, endY, { steps: 25 });
  await page.mouse.move(endX, startY, { steps: 15 });
  await page.mouse.up();
}

/// Chooses inpaint, types what to paint, applies the edit, and returns the address of the
/// result image once it has loaded (one other than `previous`, for a chained edit).
async function inpaint(flow, what, name, previous = null) {
  const { page, see, step } = flow;
  const mode = await see('select[data-testid="mode"]', 'the edit mode menu');
  await mode.selectOption('inpaint');
  const field = await see('[data-testid="prompt"]', "the edit's prompt field");
  await field.fill(what);
  await step(`${name}-ready`);
  const apply = await see('[data-testid="apply-edit"]', 'the apply-edit button');
  await apply.click();
  await see('img[data-testid="edit-result"]', 'the edited image');
  const result = await page
    .waitForFunction(
      (previous) =>
        [...document.querySelectorAll('img[data-testid="edit-result"]')]
          .filter((image) => image.getAttribute('src') !== previous)
          .find((image) => image.complete && image.naturalWidth > 0)
          ?.getAttribute('src'),
      previous,
      { timeout: 60_000 },
    )
    .catch(() => {
      throw new Error(`the ${name} showed no loaded result image${previous ? ' other than the previous one' : ''}`);
    });
  const source = await result.jsonValue();
  await step(`${name}-result`);
  return source;
}

await run('edit', async (flow) => {
  const { page, base, step, see, log } = flow;
  await signIn(flow, subject);
  const [made] = await generate(flow, prompt);

  // From the image's page to the edit page.
  await page.goto(`${base}${made}`);
  const editLink = await see('[data-testid="edit-this-image"]', 'an "Edit this image" link on the image page');
  await editLink.click();
  await page.waitForURL((url) => url.pathname === '/edit');
  await see('canvas[data-testid="mask-canvas"]', 'the mask canvas');
  await step('edit-page');

  await paintMask(flow, [0.3, 0.3], [0.6, 0.6]);
  await step('mask-painted');
  const first = await inpaint(flow, editPrompt, 'first-edit');
  log(`first edit: ${first}`);

  // Keep editing the result: the chained edit starts from it.
  const keep = await see('[data-testid="keep-editing"]', 'a keep-editing button under the result');
  await keep.click();
  await see('canvas[data-testid="mask-canvas"]', 'the mask canvas for the chained edit');
  await step('keep-editing');
  await paintMask(flow, [0.55, 0.2], [0.8, 0.45]);
  await step('second-mask-painted');
  const second = await inpaint(flow, secondEditPrompt, 'second-edit', first);
  check(second !== first, 'the chained edit shows the same image as the first edit');
  log(`second edit: ${second}`);
});
