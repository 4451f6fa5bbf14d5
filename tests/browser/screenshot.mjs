// The README's dashboard screenshot: seeds demo data into a fresh SQLite file, signs in as
// the demo's platform staff and captures the Platform dashboard at 1280 px.
// `KFACTOR_BIN=target/debug/kfactor node tests/browser/screenshot.mjs docs/dashboard.jpg`
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startServer } from './server.mjs';

const BIN = process.env.KFACTOR_BIN || path.resolve('target/debug/kfactor');
const OUT = process.argv[2] || 'docs/dashboard.jpg';
const dir = mkdtempSync(path.join(os.tmpdir(), 'kfactor-demo-'));
const db = `sqlite://${path.join(dir, 'demo.db')}?mode=rwc`;
const seeded = execFileSync(BIN, ['seed-demo', '--users', '3000'], {
  env: { ...process.env, KFACTOR_DATABASE_URL: db },
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'ignore'],
});
const staff = /log in as platform staff: (\S+) \/ (\S+)/.exec(seeded);
if (!staff) throw new Error(`no staff login in seed-demo's output:\n${seeded}`);

const server = await startServer(BIN, { KFACTOR_DATABASE_URL: db });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${server.url}/login?next=${encodeURIComponent('/dashboard?org=platform&range=12w&interval=week')}`);
  await page.fill('#email', staff[1]);
  await page.fill('#password', staff[2]);
  await Promise.all([page.waitForURL(/\/dashboard/), page.click('button[type=submit]')]);
  await page.waitForSelector('#chart-k');
  const jpeg = OUT.endsWith('.jpg');
  await page.screenshot({ path: OUT, fullPage: true, ...(jpeg ? { type: 'jpeg', quality: 80 } : {}) });
  console.log(`wrote ${OUT}`);
} finally {
  await browser.close();
  await server.stop();
}
