/**
 * Browser test scaffolding: the whole product (API, workers, sandbox site) listening on loopback, and Debian's
 * Chromium driven by playwright-core. Chromium that cannot start is a test failure with the reason, never a
 * skip: these tests are the only proof the pages work.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Test } from 'tap';
import { buildStack, type TestStack } from '../helper.ts';

export const CHROMIUM_PATH = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), '.tap', 'artifacts', 'browser');
export const WIDTHS = [375, 1280] as const;

type Teardown = { teardown(fn: () => unknown): void };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface WebStack extends TestStack {
  baseUrl: string;
}

/** The product on a real port, with PUBLIC_URL pointing at it (connect links carry that URL). */
export async function startWebStack(t: Teardown, env: Record<string, string> = {}): Promise<WebStack> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const stack = await buildStack(t, { env: { PUBLIC_URL: baseUrl, ...env } });
  await stack.app.listen({ host: '127.0.0.1', port });
  return { ...stack, baseUrl };
}

/**
 * Headless Chromium with a fresh profile: Playwright gives every launch its own temporary --user-data-dir
 * (and passes --headless itself); the other switches keep Chromium from reaching the network on its own.
 */
export async function launchChromium(t: Teardown): Promise<Browser> {
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      timeout: 30_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (error) {
    throw new Error(
      `Chromium could not be launched from ${CHROMIUM_PATH} (install it with \`apt-get install -y chromium\`; .ci/run does): ${(error as Error).message}`,
      { cause: error },
    );
  }
  t.teardown(() => browser.close());
  return browser;
}

/** A page that fails the test on any script error or CSP violation the pages cause. */
export async function openPage(browser: Browser, problems: string[]): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of (40[0-9]|409)/.test(message.text())) problems.push(`console error: ${message.text()}`);
  });
  return page;
}

export interface LayoutCheck {
  width: number;
  fits: boolean;
}

/**
 * Screenshots the current screen at 375 px and 1280 px into .tap/artifacts/browser/<name>-<width>.png and
 * reports, per width, whether the page fits without horizontal scrolling.
 */
export async function captureScreen(page: Page, name: string): Promise<LayoutCheck[]> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const checks: LayoutCheck[] = [];
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    const fits = (await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')) as boolean;
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}.png`), fullPage: true });
    checks.push({ width, fits });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  return checks;
}

// The page functions below are strings: they run in the browser, and this project compiles without DOM types.

/** Every input, select and textarea on the page that no label, aria-label or aria-labelledby names. */
export async function unlabelledInputs(page: Page): Promise<string[]> {
  return (await page.evaluate(`[...document.querySelectorAll('input:not([type="hidden"]), select, textarea')]
    .filter((input) => input.labels.length === 0 && !input.getAttribute('aria-label') && !input.getAttribute('aria-labelledby'))
    .map((input) => input.outerHTML)`)) as string[];
}

export async function isFocused(page: Page, selector: string): Promise<boolean> {
  return (await page.evaluate(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) as boolean;
}

/** Presses Tab until the focused element matches `selector` (fails after `limit` presses): keyboard-only navigation. */
export async function tabTo(page: Page, selector: string, limit = 40): Promise<void> {
  for (let presses = 0; presses < limit; presses += 1) {
    if (await isFocused(page, selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}

/** Screenshots a screen at both widths and checks that it fits them and that every input has a label. */
export async function checkScreen(t: Test, page: Page, name: string): Promise<void> {
  for (const check of await captureScreen(page, name)) t.ok(check.fits, `${name}: no horizontal overflow at ${check.width} px`);
  t.same(await unlabelledInputs(page), [], `${name}: every input has a label`);
}
