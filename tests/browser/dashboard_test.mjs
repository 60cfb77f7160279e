// The dashboard in Debian's headless Chromium, driven by playwright-core, against the real
// controller (REST, SQLite) with fake edges (segwan-fake-controller): sign in as the operator,
// see the devices, create a tenant; sign in as the tenant, create a slice, create a delay
// session, watch the chart draw points and the statistics fill; see an API error shown next to
// its field with the input kept. Screenshots go to $SEGWAN_ARTIFACTS.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const SRC = process.env.SEGWAN_SOURCE_DIR;
const BUILD = process.env.SEGWAN_BUILD_DIR;
const ARTIFACTS = process.env.SEGWAN_ARTIFACTS || join(BUILD, 'test-artifacts', 'browser');
const CHROMIUM = '/usr/bin/chromium';
const SKIP = 77;

if (!existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} is missing (scripts/install-deps installs Debian's chromium)`);
  process.exit(SKIP);
}
const { chromium } = await import(join(SRC, 'web', 'node_modules', 'playwright-core', 'index.mjs'));
mkdirSync(ARTIFACTS, { recursive: true });

const dir = mkdtempSync(join(tmpdir(), 'segwan-browser-'));
const port = 18500 + (process.pid % 400);
const server = spawn(join(BUILD, 'tests', 'segwan-fake-controller'),
  ['--data-dir', dir, '--port', String(port), '--web-root', join(BUILD, 'dashboard')], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve, reject) => {
  server.stdout.on('data', (d) => { if (String(d).includes('listening')) resolve(); });
  server.on('exit', (code) => reject(new Error(`segwan-fake-controller exited with ${code}`)));
});
const operatorToken = readFileSync(join(dir, 'operator.token'), 'utf8').trim();
const url = `http://127.0.0.1:${port}/`;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const step = (s) => console.log(`--- ${s}`);

async function signIn(token) {
  await page.goto(url);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
}

try {
  step('a wrong token is refused next to its field');
  await signIn('not-a-token');
  await page.waitForSelector('[data-for="token"]:has-text("unknown token")');

  step('the operator sees the devices and creates a tenant');
  await signIn(operatorToken);
  await page.waitForSelector('tr[data-device="edge-a"]');
  assert.match(await page.textContent('tr[data-device="edge-a"]'), /connected/);
  assert.match(await page.textContent('tr[data-device="edge-a"]'), /enabled/);
  assert.match(await page.textContent('tr[data-device="edge-a"]'), /table/);
  await shot('01-devices');
  await page.click('nav a:has-text("Tenants")');
  await page.fill('input[name=name]', 'acme');
  await page.click('button:has-text("Create tenant")');
  const tenantToken = (await page.textContent('#new-token', { timeout: 5000 })).trim();
  assert.equal(tenantToken.length, 48);
  await page.click('button:has-text("Create tenant")');  // empty name: the API's error shows
  await page.waitForSelector('[data-for="name"]:has-text("must be 1 to 64 characters")');
  await shot('02-tenants');
  await page.click('#signout');

  step('the tenant creates a slice');
  await signIn(tenantToken);
  await page.waitForSelector('#slice-form');
  await page.fill('#slice-form input[name=name]', 'blue');
  await page.selectOption('select[name="sites[0].device"]', 'edge-a');
  await page.selectOption('select[name="sites[1].device"]', 'edge-b');
  await page.fill('input[name="sites[0].nexthop4"]', 'not-an-address');
  await page.click('button:has-text("Create slice")');
  // The API's error appears next to that field, and what was typed is still there.
  await page.waitForSelector('[data-for="sites[0].nexthop4"]:has-text("is not an IPv4 address")');
  assert.equal(await page.inputValue('input[name="sites[0].nexthop4"]'), 'not-an-address');
  assert.equal(await page.inputValue('#slice-form input[name=name]'), 'blue');
  await shot('03-slice-error');
  await page.fill('input[name="sites[0].nexthop4"]', '10.10.1.2');
  await page.click('button:has-text("Create slice")');
  await page.waitForSelector('tr[data-slice="sl1"]');
  assert.match(await page.textContent('tr[data-slice="sl1"]'), /edge-a: applied/);
  assert.match(await page.textContent('tr[data-slice="sl1"]'), /edge-b: applied/);
  await shot('04-slices');

  step('a bad delay session is refused next to its field; a good one starts');
  await page.click('nav a:has-text("Delay sessions")');
  await page.selectOption('#session-form select[name=slice]', 'sl1');
  await page.fill('#session-form input[name=interval_ms]', '5');
  await page.click('button:has-text("Create and start")');
  await page.waitForSelector('[data-for="interval_ms"]:has-text("must be 10 to 60000")');
  assert.equal(await page.inputValue('#session-form input[name=interval_ms]'), '5');
  await shot('05-session-error');
  await page.fill('#session-form input[name=interval_ms]', '100');
  await page.click('button:has-text("Create and start")');

  step('the session page draws points and fills the statistics');
  await page.waitForURL(/#\/sessions\/ds1$/);
  await page.waitForFunction(() => Number(document.querySelector('#chart')?.dataset.points) >= 20, null, { timeout: 15000 });
  const first = Number(await page.getAttribute('#chart', 'data-points'));
  await page.waitForFunction((n) => Number(document.querySelector('#chart').dataset.points) > n, first, { timeout: 10000 });
  await page.waitForSelector('tr[data-series="direct"] td.num');
  const direct = Number(await page.textContent('tr[data-series="direct"] td.num'));
  const back = Number(await page.textContent('tr[data-series="return"] td.num'));
  console.log(`chart points ${first} and growing; direct mean ${direct} ms, return mean ${back} ms`);
  assert.ok(Math.abs(direct - 15) < 0.5, `direct mean ${direct}`);
  assert.ok(Math.abs(back - 5) < 0.5, `return mean ${back}`);
  assert.match(await page.textContent('#loss'), /outbound \d+, return \d+/);
  assert.ok((await page.$$('#intervals tr')).length >= 2, 'no interval rows');
  await shot('06-session');
  await page.selectOption('#range', '1h');
  await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) >= 1);
  await shot('07-session-1h');

  step('loss monitoring of the same flow: periods close and show next to the delay');
  await page.click('nav a:has-text("Loss")');
  await page.selectOption('#loss-form select[name=slice]', 'sl1');
  await page.fill('#loss-form input[name=period_ms]', '500');
  await page.click('button:has-text("Start monitoring")');
  await page.waitForSelector('[data-for="period_ms"]:has-text("must be 1000 to 3600000")');
  await page.fill('#loss-form input[name=period_ms]', '1000');
  await page.click('button:has-text("Start monitoring")');
  await page.waitForURL(/#\/loss\/ls1$/);
  await page.waitForSelector('#periods tr[data-period]', { timeout: 10000 });
  const row = await page.textContent('#periods tr[data-period]');
  console.log(`a loss period: ${row.replace(/\s+/g, ' ')}`);
  assert.match(row, /\d+\.\d\d%/);
  await shot('08-loss');
  await page.goto(`${url}#/sessions/ds1`);
  await page.waitForSelector('#flow-loss tr[data-period]', { timeout: 10000 });
  await shot('09-session-with-loss');

  step('steering: an SLA class, a steered direction, a switch away from the path that breaks it');
  await page.click('nav a:has-text("Steering")');
  await page.click('button:has-text("Create SLA class")');  // no name: the API's error shows
  await page.waitForSelector('#sla-form [data-for="name"]:has-text("must be")');
  await page.fill('#sla-form input[name=name]', 'gold');
  await page.fill('#sla-form input[name="limits.delay_ms"]', '12');
  await page.click('button:has-text("Create SLA class")');
  await page.waitForSelector('tr[data-sla="sla1"]:has-text("delay ≤ 12 ms")');
  await page.selectOption('#policy-form select[name=slice]', 'sl1');
  await page.selectOption('#policy-form select[name=sla]', 'sla1');
  await page.fill('#policy-form input[name="pairs[0].from"]', 'edge-a');
  await page.fill('#policy-form input[name="pairs[0].to"]', 'edge-z');
  await page.click('button:has-text("Start steering")');
  await page.waitForSelector('#policy-form [data-for="pairs[0].to"]:has-text("edge-z")');
  await page.fill('#policy-form input[name="pairs[0].to"]', 'edge-b');
  await page.click('button:has-text("Start steering")');
  // The direct path (15 ms) breaks the 12 ms SLA; the one via p1 (8 ms) meets it and takes over.
  const dir = '[data-direction="edge-a>edge-b"]';
  await page.waitForSelector(`${dir} tr[data-candidate="p1"].active`, { timeout: 20000 });
  await page.waitForSelector('#events tr[data-kind="switch"]', { timeout: 5000 });
  const sw = await page.textContent('#events tr[data-kind="switch"]');
  assert.match(sw, /direct → p1/);
  const directDelay = Number(await page.textContent(`${dir} tr[data-candidate="direct"] td[data-k="delay_ms"]`));
  const p1Delay = Number(await page.textContent(`${dir} tr[data-candidate="p1"] td[data-k="delay_ms"]`));
  console.log(`steering: direct ${directDelay} ms (violates), p1 ${p1Delay} ms (carries the traffic); ${sw.replace(/\s+/g, ' ')}`);
  assert.ok(Math.abs(directDelay - 15) < 1, `direct ${directDelay}`);
  assert.ok(Math.abs(p1Delay - 8) < 1, `p1 ${p1Delay}`);
  assert.match(await page.getAttribute(`${dir} tr[data-candidate="direct"] td[data-k="delay_ms"]`, 'class'), /bad-text/);
  assert.match(await page.textContent(`${dir} tr[data-candidate="direct"]`), /violates/);
  assert.match(await page.textContent(`${dir} tr[data-candidate="p1"]`), /complies.*carries it/);
  await shot('10-steering');

  step('stop and delete from the list');
  await page.click('nav a:has-text("Delay sessions")');
  await page.click('tr[data-session="ds1"] button:has-text("Stop")');
  await page.waitForSelector('tr[data-session="ds1"]:has-text("stopped")');
  page.once('dialog', (d) => d.accept());
  await page.click('tr[data-session="ds1"] button:has-text("Delete")');
  await page.waitForSelector('tr[data-session="ds1"]', { state: 'detached' });
  assert.deepEqual(consoleErrors, []);
  console.log('ok: dashboard');
} catch (e) {
  failed = true;
  console.error('FAIL:', e.message);
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
