/**
 * The dashboard in a real headless browser (Debian's chromium driven by playwright-core): the page loads, the graph
 * shows the example mesh's workloads and allowed edges with a live proxy, a rejected revision appears with its
 * diagnostics, and the explain form answers.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startStatusServer } from '../../src/admin/status-server.js';
import type { ControlPlane } from '../../src/app/control-plane.js';
import type { EnvoyProcess } from '../support/envoy.js';
import { PolicyDir } from '../support/mesh-fixture.js';
import { startPlane, startSidecar } from '../support/mesh-harness.js';

describe('dashboard in a headless browser', { timeout: 120_000 }, () => {
  const policy = new PolicyDir();
  let cp: ControlPlane;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let envoy: EnvoyProcess;
  let url: string;

  before(async () => {
    cpSync('examples/mesh', policy.dir, { recursive: true });
    cp = await startPlane({ configDir: policy.dir, stateDir: mkdtempSync(path.join(os.tmpdir(), 'chancery-dash-')) });
    server = await startStatusServer(cp, '127.0.0.1', 0);
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/dashboard`;
    envoy = await startSidecar(cp, 'shop/frontend-1', {
      extraArgs: ['--prometheus-port', '0', '--admin-address', '127.0.0.11:15111'],
    });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await envoy?.stop();
    server?.close();
    await cp?.stop();
    policy.cleanup();
  });

  test('the page loads and the graph shows the workloads, allowed edges and the live proxy', async () => {
    await page.goto(url);
    await page.waitForSelector('#graph g.node');
    assert.equal(await page.title(), 'Chancery');
    const nodes = await page.$$eval('#graph g.node', (els) => els.map((e) => e.getAttribute('data-id')));
    assert.deepEqual(nodes.sort(), [
      'istio-system/ingress-1',
      'outside',
      'shop/backend-1',
      'shop/backend-2',
      'shop/frontend-1',
    ]);
    const edges = await page.$$eval('#graph g.edge', (els) =>
      els.map((e) => `${e.getAttribute('data-from')}->${e.getAttribute('data-to')}`),
    );
    assert.deepEqual(edges.sort(), [
      'istio-system/ingress-1->shop/backend-1',
      'istio-system/ingress-1->shop/backend-2',
      'outside->istio-system/ingress-1',
      'shop/frontend-1->shop/backend-1',
      'shop/frontend-1->shop/backend-2',
    ]);
    await page.waitForFunction(() => document.querySelector('#proxies tbody')?.textContent?.includes('in sync'));
    assert.match((await page.textContent('#proxies tbody')) ?? '', /shop\/frontend-1\s*in sync/);
    await page.screenshot({ path: path.join(os.tmpdir(), 'chancery-dashboard.png') });
  });

  test('a rejected revision appears with its diagnostics', async () => {
    policy.write(
      'broken.yaml',
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: x, namespace: shop }\nspec:\n  hosts: [x.shop.svc]\n  portz: []\n',
    );
    await page.waitForSelector('#revisions tr.rev-rejected', { timeout: 15_000 });
    const text = (await page.textContent('#revisions tr.rev-rejected')) ?? '';
    assert.match(text, /rejected/);
    assert.match(text, /broken\.yaml:6:3 CH0201 spec\.portz: unknown field/);
  });

  test('the explain form answers and names the deciding rule', async () => {
    await page.selectOption('#from', 'shop/frontend-1');
    await page.fill('#to', 'backend.shop.svc');
    await page.fill('#path', '/admin/users');
    await page.click('#explain button');
    // The placeholder says "ALLOW or DENY" too: wait for an answer, not for the word.
    const answered = () => /^(ALLOW|DENY) \(|^error:/.test(document.getElementById('answer')?.textContent ?? '');
    await page.waitForFunction(answered);
    const answer = (await page.textContent('#answer')) ?? '';
    assert.match(answer, /^DENY \(403\)/);
    assert.match(answer, /decided by shop\/backend-no-admin\/rules\[0\] at shop\/authorization\.yaml:32:7/);
  });
});
