// The dashboard's browser tests (test/e2e/dashboard*.test.ts) share these: Debian's chromium, sign-in
// and navigation that survive this machine's network changes, and where screenshots go.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { eventually } from './wait.js';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Chromium aborts what is in flight when the host's network interfaces change (other tests on this
 * machine add and remove veth links all the time): net::ERR_NETWORK_CHANGED. The page retries its own
 * requests; the test retries navigation and sign-in.
 */
export const NETWORK_CHANGED = /ERR_NETWORK_CHANGED|Failed to fetch/;

export async function gotoRetrying(page: Page, url: string): Promise<void> {
  for (let i = 0; ; i++) {
    try { await page.goto(url); return; } catch (e) { if (i >= 4 || !NETWORK_CHANGED.test(String(e))) throw e; }
  }
}

export async function signInAt(page: Page, url: string, token: string): Promise<void> {
  for (let i = 0; ; i++) {
    await gotoRetrying(page, url);
    await page.fill('[data-test=token]', token);
    await page.click('[data-test=login]');
    // Done when the shell is up or the page says why not (a refusal is for the caller to check).
    const msg = await eventually(async () => {
      if (await page.locator('[data-test=user]').count()) return { text: '' };
      const text = (await page.locator('[data-test=login-message]').textContent({ timeout: 500 }).catch(() => null)) ?? '';
      return text && !text.startsWith('Checking') ? { text } : undefined;
    }, 'the sign-in to finish', 60_000);
    if (i >= 4 || !NETWORK_CHANGED.test(msg.text)) return;
  }
}

/**
 * Where the screenshots go: SKIFF_DASHBOARD_SHOTS, else a directory of this run's own under the temp
 * dir. They are the test's artifacts, so they are kept (the path is printed) when the rest is removed.
 */
export function screenshotDir(): string {
  const dir = process.env.SKIFF_DASHBOARD_SHOTS ?? join(tmpdir(), `skiff-dashboard-shots-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
