// Drives code-server (VS Code in a browser) in headless Chromium like a user would, for
// tests/e2e/test_vscode_real.py. Reads its job from the environment, prints one JSON line per
// step ("step" names it) and a last {"done": true}; screenshots go to OUT.
//
//   PLAYWRIGHT_CORE  folder of the playwright-core package    CHROMIUM  the browser binary
//   URL              code-server's address, with ?folder=     FILE      the file to open (name)
//   OUT              folder for screenshots
'use strict';

const path = require('node:path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const OUT = process.env.OUT;
const STEP_MS = Number(process.env.STEP_MS || 60000);
const GHOST = '.ghost-text-decoration, .ghost-text-decoration-preview, .suggest-preview-text .ghost-text';

function report(step, data = {}) {
  process.stdout.write(JSON.stringify({ step, ...data }) + '\n');
}

async function ghostText(page) {
  return page.evaluate((selector) => {
    return [...document.querySelectorAll(selector)].map((e) => e.textContent).join('\n');
  }, GHOST);
}

async function waitGhost(page, what, previous) {
  const started = Date.now();
  await page.waitForFunction(
    ([selector, before]) => {
      const text = [...document.querySelectorAll(selector)].map((e) => e.textContent).join('\n');
      return text.trim() !== '' && (before === null || text !== before);
    },
    [GHOST, previous ?? null],
    { timeout: STEP_MS },
  );
  const text = await ghostText(page);
  report(what, { ghost: text, ms: Date.now() - started });
  return text;
}

async function command(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: STEP_MS });
  await input.fill('>' + title);
  await page.locator('.quick-input-list .monaco-list-row').first().waitFor({ timeout: STEP_MS });
  await page.keyboard.press('Enter');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(STEP_MS);
    await page.goto(process.env.URL);
    await page.locator('.monaco-workbench').waitFor();
    report('workbench');

    // Open the file with Quick Open, as a user would.
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill(process.env.FILE);
    await page.locator('.quick-input-list .monaco-list-row').first().waitFor();
    await page.keyboard.press('Enter');
    const editor = page.locator('.editor-instance .monaco-editor').first();
    await editor.waitFor();
    report('opened');

    // The status item turns to a check mark once the model is loaded.
    const item = page.locator('.statusbar-item', { hasText: 'Code Llama' }).first();
    await item.waitFor();
    const started = Date.now();
    await page.locator('.statusbar-item:has-text("Code Llama") .codicon-check').first().waitFor({ timeout: 180000 });
    report('ready', { ms: Date.now() - started });

    // Type at the end of the file; ghost text appears after the last key.
    await editor.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('total = add(', { delay: 40 });
    const first = await waitGhost(page, 'ghost');
    await page.screenshot({ path: path.join(OUT, 'ghost-text.png') });
    // The editor part alone (the picture in editors/vscode/README.md).
    await page.screenshot({ path: path.join(OUT, 'ghost-text-editor.png'), clip: { x: 352, y: 36, width: 640, height: 216 } });

    // Tab accepts the whole suggestion.
    await page.keyboard.press('Tab');
    await page.waitForFunction((selector) => document.querySelectorAll(selector).length === 0, GHOST);
    report('accepted', { ghost: first });

    // Next line: a word at a time (Ctrl+Right), then other suggestions (Alt+]).
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.keyboard.type('result = add(', { delay: 40 });
    const second = await waitGhost(page, 'ghost-2');
    await page.keyboard.press('Control+ArrowRight');
    await page.waitForTimeout(300);
    report('word', { before: second, after: await ghostText(page) });

    // Alt+] asks for more suggestions (the first greedy, the others sampled) and shows the next.
    const shown = await ghostText(page);
    await page.keyboard.press('Alt+]');
    const cycled = await waitGhost(page, 'cycled-wait', shown);
    // The suggestion toolbar ("editor.inlineSuggest.showToolbar": "always") counts them: "2/3".
    const counter = page.locator('.inlineSuggestionsHints', { hasText: /\b2\/\d/ }).first();
    await counter.waitFor({ timeout: 30000 }).catch(() => undefined);
    const hints = await page.evaluate(() =>
      [...document.querySelectorAll('.inlineSuggestionsHints')].map((e) => e.textContent).join(' '),
    );
    report('cycled', { before: shown, ghost: await ghostText(page), first: cycled, hints });
    await page.keyboard.press('Escape');

    // The status tooltip.
    await item.hover();
    const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: /Code Llama|model|suggest/i }).first();
    await hover.waitFor();
    report('tooltip', { text: await hover.innerText() });
    await page.screenshot({ path: path.join(OUT, 'status-tooltip.png') });
    await page.mouse.move(640, 300);

    // The "write docstring" code action on the function's first line (Ctrl+. opens the menu).
    await editor.click();
    await page.keyboard.press('Control+Home');
    await page.keyboard.press('Control+.');
    const action = page.locator('.action-widget .monaco-list-row', { hasText: /docstring/i }).first();
    await action.waitFor();
    report('actions', { titles: await page.locator('.action-widget .monaco-list-row').allInnerTexts() });
    const lines = () => page.evaluate(() => document.querySelector('.editor-instance .view-lines')?.textContent ?? '');
    const before = await lines();
    await action.click();
    await page.waitForFunction(
      (text) => (document.querySelector('.editor-instance .view-lines')?.textContent ?? '') !== text,
      before,
      { timeout: 120000 },
    );
    report('action-run', { before, after: await lines() });

    // Save, and let the test read the file on disk.
    await page.keyboard.press('Control+S');
    await page.waitForTimeout(1000);
    report('saved');

    await command(page, 'Code Llama: Show Server Log');
    await page.waitForTimeout(1000);
    await page.screenshot({ path: path.join(OUT, 'output.png') });
    report('log-shown');
  } finally {
    await browser.close();
  }
  report('done');
}

main().catch((error) => {
  report('failed', { error: String(error && error.stack ? error.stack : error) });
  process.exitCode = 1;
});
