// A real headless Chromium (Debian's `chromium` package) driven by
// puppeteer-core: no browser is downloaded at install. Tests that need one call
// launchBrowser(); scripts/debian-tools.sh installs the package when missing.

import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.KAKEHI_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run scripts/debian-tools.sh chromium as root (or set KAKEHI_CHROMIUM)`,
    );
  }
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The sandbox needs user namespaces a container running as root lacks.
    args: [
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--no-first-run',
      '--window-size=1366,900',
    ],
    defaultViewport: { width: 1366, height: 900 },
  });
}

/** Every console message and page error of a page, to show when a step fails. */
export function pageLog(page: Page): string[] {
  const lines: string[] = [];
  page.on('console', (m) => lines.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${(e as Error).message}`));
  page.on('requestfailed', (r) => lines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  return lines;
}

/** Waits until the element's text contains `text`; the element's last text is in the error. */
export async function waitText(page: Page, selector: string, text: string, timeout = 15_000): Promise<void> {
  try {
    await page.waitForFunction(
      // Runs in the page: `document` is the page's, typed loosely as the DOM lib is not loaded here.
      (sel: string, want: string) =>
        (
          globalThis as unknown as {
            document: { querySelector(s: string): { textContent: string | null } | null };
          }
        ).document
          .querySelector(sel)
          ?.textContent?.includes(want) === true,
      { timeout },
      selector,
      text,
    );
  } catch (err) {
    const got = await page.$eval(selector, (e) => e.textContent).catch(() => '(no such element)');
    throw new Error(`${selector} never said ${JSON.stringify(text)}; it says ${JSON.stringify(got)}`, {
      cause: err,
    });
  }
}
