// The operator's console in a real headless browser (Debian's chromium, driven by playwright-core): log in,
// find the submission whose back office answered 400, replay it once the back office is fixed, see it
// delivered and the audit entry; a wrong token is refused. The page must run under its strict CSP.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { newToken, tokenHash } from '../src/auth/auth';
import type { BackOffice } from '../src/demo/back-office';
import type { RunningRouter } from '../src/main';
import { eventually, FIXTURES, startCityRouter, variant } from './support/harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ADMIN = newToken();
const SUBMITTER = newToken();

let router: RunningRouter;
let backOffice: BackOffice;
let close: (() => Promise<void>) | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  ({ router, backOffice, close } = await startCityRouter('embedded', {
    auth: { clients: { 'ops-anna': { tokenSha256: tokenHash(ADMIN), roles: ['admin'] }, formserver: { tokenSha256: tokenHash(SUBMITTER), tenants: '*' } } },
  }));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await close?.();
});

async function submit(xml: string): Promise<string> {
  const response = await fetch(`${router.url}/api/v1/submissions`, { method: 'POST', headers: { 'content-type': 'application/xml', authorization: `Bearer ${SUBMITTER}` }, body: xml });
  expect(response.status).toBe(202);
  return ((await response.json()) as { submissionId: string }).submissionId;
}

test('a wrong token is refused at the login', async () => {
  await page.goto(`${router.url}/console/`);
  await page.fill('#token', newToken());
  await page.click('#login-button');
  await page.waitForSelector('#login-error:has-text("not accepted")');
  expect(await page.isVisible('#nav')).toBe(false);
});

test('log in, find the failed submission, replay it after the fix, see it delivered and audited', async () => {
  pageErrors.length = 0; // the refused login answered 401 above
  backOffice.setBehaviour((office) => (office === 'muenchen-lbk' ? 400 : 201));
  const id = await submit(variant(readFileSync(path.join(FIXTURES, 'valid/xbau-0200-antrag-muenchen.xml'), 'utf8')));
  await eventually(async () => (await router.store.get(id))?.state === 'failed', 20_000, 'the delivery to fail');

  await page.goto(`${router.url}/console/`);
  await page.fill('#token', ADMIN);
  await page.click('#login-button');
  // Overview: targets with health and last hour's outcomes.
  const lbk = page.locator('#targets tr[data-target="muenchen-lbk"]');
  await lbk.waitFor();
  expect(await lbk.locator('td').nth(5).textContent()).toBe('1');

  // Dead letters: the failed submission is listed; open it.
  await page.click('nav button[data-view="dead"]');
  const row = page.locator(`#list tr[data-id="${id}"]`);
  await row.waitFor();
  expect(await row.textContent()).toContain('muenchen-lbk: dead (http-status)');
  await row.click();
  await page.waitForSelector(`#detail-id:has-text("${id}")`);
  expect(await page.textContent('#detail-deliveries tr[data-target="muenchen-lbk"]')).toContain('HTTP 400');

  // The back office is fixed; replay to the same target with a note.
  backOffice.setBehaviour(undefined);
  await page.click('#detail-deliveries tr[data-target="muenchen-lbk"] button.replay');
  await page.fill('#action-note', 'LBK fixed its import');
  await page.click('#action-ok');
  await page.waitForSelector('#action-message:has-text("replay done")');

  // Delivered: open it again until the state shows it, with the audit entry.
  await eventually(async () => {
    await page.click('nav button[data-view="submissions"]');
    await page.locator(`#list tr[data-id="${id}"]`).click();
    await page.waitForSelector(`#detail-id:has-text("${id}")`);
    return (await page.textContent('#detail-state')) === 'delivered';
  }, 20_000, 'the console to show the submission delivered');
  expect(await page.textContent('#audit')).toContain('ops-anna replay muenchen-lbk — LBK fixed its import');
  expect(await page.textContent('#timeline')).toContain('replayed muenchen-lbk');
  expect(backOffice.received.filter((r) => r.submissionId === id)).toHaveLength(1);
  // The chart has bars for this hour.
  await page.click('nav button[data-view="overview"]');
  await page.waitForSelector('#chart svg rect.received');
  expect(pageErrors).toEqual([]);
}, 90_000);
