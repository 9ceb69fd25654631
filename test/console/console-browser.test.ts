// The web console end to end, in a real headless Chromium against a real kakehi
// and real backends: log in, add a cluster, backend and frontend through the
// forms, review the proxy's dry-run diff, apply, and see requests served by the
// new route; a change made with `kakehi ctl` between review and apply is caught;
// an uploaded certificate is served on the next handshake; a read-only session
// is offered no change. The screenshots in docs/console/ come from this run.

import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { type Backend, closedPort, echoBackend } from '../helpers/backends.js';
import { launchBrowser, pageLog, waitText } from '../helpers/browser.js';
import { issueCert, makeCa, type TestCa } from '../helpers/certs.js';
import { ok } from '../helpers/command.js';
import { ctl } from '../helpers/ctl-table.js';
import { httpGet } from '../helpers/http.js';
import { type Kakehi, startKakehi } from '../helpers/kakehi-process.js';
import { handshake } from '../helpers/tls-client.js';
import { apiLogin, type ConsoleProcess, startConsole } from './console-process.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
/**
 * Where the screenshots go: a scratch directory, so a test run leaves the tree
 * as it found it; KAKEHI_CONSOLE_SHOTS=docs refreshes the ones docs/console.md shows.
 */
const SHOTS =
  process.env['KAKEHI_CONSOLE_SHOTS'] === 'docs'
    ? join(ROOT, 'docs', 'console')
    : join(tmpdir(), `kakehi-console-shots-${process.pid}`);
const HTTPS = '127.0.0.1:0';
/** What the page's inputs and textareas have, without the DOM's types in a Node program. */
type Field = { value: string };

describe('web console in Chromium', { timeout: 240_000 }, () => {
  let ca: TestCa;
  let app: Backend;
  let kakehi: Kakehi;
  let console_: ConsoleProcess;
  let browser: Browser;
  let page: Page;
  let log: string[];

  before(async () => {
    ca = makeCa({ keyType: 'ec' });
    const fallback = issueCert(ca, ['fallback.test'], { keyType: 'ec' });
    app = await echoBackend('app');
    // Two listeners need two keys: the HTTPS one binds port 0, this one a free port.
    const HTTP = `127.0.0.1:${await closedPort()}`;
    kakehi = await startKakehi({
      listeners: [{ address: HTTP }, { address: HTTPS, protocol: 'https', strict_sni: false }],
      certificates: [
        {
          listener: HTTPS,
          certificate_file: fallback.fullchainPath,
          key_file: fallback.keyPath,
          default: true,
        },
      ],
      access_log: 'off',
    });
    console_ = await startConsole(kakehi.socketPath);
    browser = await launchBrowser();
    page = await browser.newPage();
    log = pageLog(page);
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await console_?.stop();
    await kakehi?.stop();
    await app?.close();
    if (process.env['KAKEHI_CONSOLE_SHOTS'] !== 'docs') rmSync(SHOTS, { recursive: true, force: true });
  });

  /** A step that prints the page's console and errors when it fails. */
  async function step(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      throw new Error(`${(err as Error).message}\npage log:\n${log.join('\n')}`, { cause: err });
    }
  }

  async function fill(form: string, values: Record<string, string>): Promise<void> {
    for (const [name, value] of Object.entries(values)) {
      const sel = `#${form} [name="${name}"]`;
      const tag = await page.$eval(sel, (e) => e.tagName);
      if (tag === 'SELECT') await page.select(sel, value);
      else {
        await page.$eval(sel, (e) => {
          (e as unknown as Field).value = '';
        });
        await page.type(sel, value);
      }
    }
    await page.click(`#${form} button[type="submit"]`);
  }

  async function go(section: string, ready: string): Promise<void> {
    await page.click(`#nav-${section}`);
    await page.waitForSelector(ready);
  }

  test('logs in with the editor token; the session cookie is HttpOnly, Secure and SameSite=Strict', async () => {
    await step(async () => {
      await page.goto(console_.origin);
      await page.waitForSelector('#token');
      await page.type('#token', 'not-the-token');
      await page.click('#login button[type="submit"]');
      await waitText(page, '#login-error', 'not valid');
      await page.$eval('#token', (e) => {
        (e as unknown as Field).value = '';
      });
      await page.type('#token', console_.tokens.editor);
      await page.click('#login button[type="submit"]');
      await page.waitForSelector('#generation');
      const [cookie] = await browser.defaultBrowserContext().cookies();
      assert.equal(cookie?.name, 'kakehi_console');
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.secure, true);
      assert.equal(cookie?.sameSite, 'Strict');
      assert.ok(
        console_.logs.some(
          (l) => l.msg === 'console login failed' && !JSON.stringify(l).includes('not-the-token'),
        ),
        'the failed login is logged, without the token',
      );
    });
  });

  test('adds a cluster, backend and frontend in the forms, reviews the dry-run diff, applies, and the route serves', async () => {
    await step(async () => {
      await go('clusters', '#cluster-form');
      await fill('cluster-form', { id: 'web', load_balancing: 'round_robin' });
      await fill('backend-form', { cluster: 'web', id: 'b1', address: app.address });
      await go('frontends', '#frontend-form');
      await fill('frontend-form', { hostname: 'app.test', cluster: 'web' });
      await go('changes', '#review');
      await waitText(page, 'ol.changes', 'put frontend app.test/ to web');
      await page.click('#review');
      await waitText(page, '#review-result', 'Reviewed against generation');
      const rows = await page.$$eval('#review-result tbody tr', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      );
      assert.deepEqual(
        rows.map((r) => [r[0], r[2]]),
        [
          ['web', 'created'],
          ['web/b1', 'created'],
          [rows[2]?.[0], 'created'],
        ],
      );
      // Nothing is applied by a review.
      assert.equal((await httpGet(kakehi.ports[0]!, '/', { host: 'app.test' })).status, 404);
      await page.screenshot({ path: join(SHOTS, 'review.png'), fullPage: true });
      await page.click('#apply');
      await waitText(page, '#review-result', 'Applied 3 change(s)');
      const res = await httpGet(kakehi.ports[0]!, '/hello', { host: 'app.test' });
      assert.equal(res.status, 200);
      assert.equal((JSON.parse(res.body) as { backend: string }).backend, 'app');
      const state = (await ok(kakehi.socketPath, 'list_clusters')) as {
        clusters: { id: string; source: string }[];
      };
      assert.equal(state.clusters.find((c) => c.id === 'web')?.source, 'console');
      await go('clusters', '#cluster-form');
      await waitText(page, 'section table', 'web');
      await page.screenshot({ path: join(SHOTS, 'clusters.png'), fullPage: true });
    });
  });

  test('a field error from the proxy shows next to the field it names, and nothing applies', async () => {
    await step(async () => {
      await go('clusters', '#backend-form');
      await fill('backend-form', { cluster: 'web', id: 'bad', address: 'no-port-here' });
      await go('changes', '#review');
      await page.click('#review');
      await waitText(page, '.kv.invalid', 'backend.address');
      await waitText(page, '.kv.invalid', 'expected host:port');
      assert.equal(await page.$eval('#apply', (b) => (b as unknown as { disabled: boolean }).disabled), true);
      await page.click('.change button.link');
      await page.waitForSelector('ol.changes', { hidden: true });
    });
  });

  test('a change made with kakehi ctl between review and apply is detected; reviewing again applies', async () => {
    await step(async () => {
      await go('clusters', '#backend-form');
      await fill('backend-form', { cluster: 'web', id: 'b2', address: app.address });
      await go('changes', '#review');
      await page.click('#review');
      await waitText(page, '#review-result', 'Reviewed against generation');
      const reviewed = Number(
        await page.$eval('#review-result p', (p) => /generation (\d+)/.exec(p.textContent ?? '')?.[1]),
      );
      const other = await ctl(kakehi.socketPath, 'cluster', 'add', '--id', 'other');
      assert.equal(other.code, 0, other.stderr);
      await page.click('#apply');
      await waitText(page, '.conflict', `since your review at generation ${reviewed}`);
      await waitText(page, '.conflict', `generation ${reviewed + 1} by runtime: created other`);
      const before = (await ok(kakehi.socketPath, 'list_backends', { cluster: 'web' })) as {
        backends: { id: string }[];
      };
      assert.deepEqual(
        before.backends.map((b) => b.id),
        ['b1'],
        'nothing applied on a stale generation',
      );
      await page.screenshot({ path: join(SHOTS, 'conflict.png'), fullPage: true });
      await page.click('#rebase');
      await waitText(page, '#review-result', `Reviewed against generation ${reviewed + 1}`);
      await page.click('#apply');
      await waitText(page, '#review-result', 'Applied 1 change(s)');
      const after = (await ok(kakehi.socketPath, 'list_backends', { cluster: 'web' })) as {
        backends: { id: string }[];
      };
      assert.deepEqual(after.backends.map((b) => b.id).sort(), ['b1', 'b2']);
    });
  });

  test('tests a URL, drains a backend, and imports a changes file through a review', async () => {
    await step(async () => {
      await go('frontends', '#route-form');
      await fill('route-form', { host: 'app.test', path: '/x' });
      await waitText(page, '#route-result', 'forward');
      await waitText(page, '#route-result', 'web');
      await go('clusters', '#backend-form');
      await page.waitForSelector('[aria-label="set web/b2 drain"]');
      await page.click('[aria-label="set web/b2 drain"]');
      await waitText(page, '#toast', 'web/b2 is drain');
      const q = (await ok(kakehi.socketPath, 'query_backends', { cluster: 'web' })) as {
        backends: { id: string; state: string }[];
      };
      assert.equal(q.backends.find((b) => b.id === 'b2')?.state, 'drain');
      await go('changes', '#import-text');
      await page.$eval(
        '#import-text',
        (e, v) => {
          (e as unknown as Field).value = v;
        },
        JSON.stringify({ changes: [{ op: 'put_cluster', cluster: { id: 'imported' } }] }),
      );
      await page.click('#import-add');
      await waitText(page, 'ol.changes', 'put cluster imported');
      await page.click('#review');
      await waitText(page, '#review-result', 'Reviewed against generation');
      await waitText(page, '#review-result tbody', 'imported');
      await page.click('#apply');
      await waitText(page, '#review-result', 'Applied 1 change(s)');
      const state = (await ok(kakehi.socketPath, 'list_clusters')) as {
        clusters: { id: string; source: string }[];
      };
      assert.equal(state.clusters.find((c) => c.id === 'imported')?.source, 'console');
    });
  });

  test('a certificate uploaded in the console is served on the next handshake; its key never comes back', async () => {
    await step(async () => {
      const leaf = issueCert(ca, ['upload.test'], { keyType: 'ec' });
      const tlsPort = kakehi.ports[1]!;
      assert.notEqual(
        (await handshake(tlsPort, { servername: 'upload.test' })).fingerprint,
        leaf.fingerprint,
      );
      await go('certificates', '#certificate-form');
      await page.type('#certificate-form [name="listener"]', HTTPS);
      // Typing a whole PEM key by key is slow; the fields take it as pasted text.
      await page.$eval(
        '#cert-pem',
        (e, v) => {
          (e as unknown as Field).value = v;
        },
        leaf.fullchainPem,
      );
      await page.$eval(
        '#key-pem',
        (e, v) => {
          (e as unknown as Field).value = v;
        },
        leaf.keyPem,
      );
      await page.click('#certificate-form button[type="submit"]');
      await go('changes', '#review');
      await waitText(page, 'ol.changes', 'private key, not shown');
      await page.click('#review');
      await waitText(page, '#review-result', 'Reviewed against generation');
      await page.click('#apply');
      await waitText(page, '#review-result', 'Applied 1 change(s)');
      assert.equal((await handshake(tlsPort, { servername: 'upload.test' })).fingerprint, leaf.fingerprint);
      await go('certificates', '#certificate-form');
      await waitText(page, 'section table', 'upload.test');
      await page.screenshot({ path: join(SHOTS, 'certificates.png'), fullPage: true });
      const html = await page.content();
      assert.ok(!html.includes('PRIVATE KEY'), 'no key in the page after applying');
      const api = await apiLogin(console_, console_.tokens.viewer);
      const exported = await fetch(`${console_.origin}/api/export`, { headers: { cookie: api.cookie } });
      assert.ok(!(await exported.text()).includes('PRIVATE KEY'), 'no key in the export');
    });
  });

  test('the events page shows the changes as a live timeline', async () => {
    await step(async () => {
      await go('events', '#timeline');
      await waitText(page, '#timeline', 'change_applied');
      await ctl(kakehi.socketPath, 'cluster', 'add', '--id', 'late');
      await waitText(page, '#timeline', 'created late');
      await page.screenshot({ path: join(SHOTS, 'events.png'), fullPage: true });
    });
  });

  test('the connectors page shows what each connector reported, problems included', async () => {
    await step(async () => {
      await ok(kakehi.socketPath, 'report_connector_status', {
        connector: 'pki',
        healthy: false,
        summary: '2 pairs served, 1 refused',
        problems: [{ item: '/etc/kakehi/pki/broken.pem', reason: 'the key does not match the certificate' }],
        pid: process.pid,
      });
      await go('connectors', 'section');
      await waitText(page, 'section table', 'the key does not match the certificate');
      await waitText(page, 'section table', '2 pairs served, 1 refused');
      await page.screenshot({ path: join(SHOTS, 'connectors.png') });
    });
  });

  test('the overview shows the workers with their memory and a live request-rate sparkline', async () => {
    await step(async () => {
      await go('overview', '#generation');
      const points = () =>
        page.$eval(
          'svg.spark polyline',
          (p) => (p.getAttribute('points') ?? '').split(' ').filter(Boolean).length,
        );
      // Each refresh (every 3 s) adds a point: traffic, then wait for the next point, a few times over.
      for (let n = await points(); n < 4; n = await points()) {
        for (let i = 0; i < 5; i++) await httpGet(kakehi.ports[0]!, '/', { host: 'app.test' });
        await page.waitForFunction(
          (before: number) =>
            (
              globalThis as unknown as {
                document: { querySelector(s: string): { getAttribute(a: string): string | null } | null };
              }
            ).document
              .querySelector('svg.spark polyline')
              ?.getAttribute('points')
              ?.split(' ')
              .filter(Boolean).length !== before,
          { timeout: 15_000 },
          n,
        );
      }
      await waitText(page, 'section table', 'MiB');
      await page.screenshot({ path: join(SHOTS, 'overview.png') });
    });
  });

  test('a read-only session is offered no change, and its API calls to change are refused', async () => {
    await step(async () => {
      const ctx = await browser.createBrowserContext();
      const viewer = await ctx.newPage();
      try {
        await viewer.goto(console_.origin);
        await viewer.waitForSelector('#token');
        await viewer.type('#token', console_.tokens.viewer);
        await viewer.click('#login button[type="submit"]');
        await viewer.waitForSelector('#generation');
        await waitText(viewer, '#whoami', 'read-only');
        await viewer.click('#nav-clusters');
        await waitText(viewer, 'section table', 'web');
        assert.equal(await viewer.$('#cluster-form'), null);
        assert.equal(
          await viewer.$$eval('section button', (bs) => bs.length),
          0,
          'no edit, remove or state button',
        );
        // The page hides the controls; the API is what refuses. Same-origin fetch with its own CSRF token:
        const status = await viewer.evaluate(async () => {
          const s = (await (await fetch('/api/session')).json()) as { csrf: string };
          const r = await fetch('/api/transaction', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-kakehi-csrf': s.csrf },
            body: JSON.stringify({ changes: [{ op: 'delete_cluster', id: 'web' }] }),
          });
          return r.status;
        });
        assert.equal(status, 403);
        const clusters = (await ok(kakehi.socketPath, 'list_clusters')) as { clusters: { id: string }[] };
        assert.ok(clusters.clusters.some((c) => c.id === 'web'));
      } finally {
        await ctx.close();
      }
    });
  });
});
