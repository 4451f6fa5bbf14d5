// Browser tests: what a person sees in kfactor's pages, in headless chromium. Run by
// .ci/run: `KFACTOR_BIN=target/debug/kfactor node tests/browser/run.mjs`. Screenshots go to
// $SCREENSHOTS (default: a new folder under the system's temporary directory).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startServer } from './server.mjs';

const BIN = process.env.KFACTOR_BIN || path.resolve('target/debug/kfactor');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS || mkdtempSync(path.join(os.tmpdir(), 'kfactor-screens-'));
mkdirSync(SHOTS, { recursive: true });
const PASSWORD = 'correct horse battery';

const SIGN_UP = `mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } organization { id } userErrors { code message } } }`;
const INVITE = `mutation($o: ID!, $e: [String!]!) { createInvitations(input: {organizationId: $o, emails: $e}) { invitations { id url } userErrors { code message } } }`;
const GROWTH = `query($o: ID!, $f: DateTime!, $t: DateTime!, $i: Interval!) { organization(id: $o) { growth(from: $f, to: $t, interval: $i) { viralCoefficient } } }`;

const server = await startServer(BIN);
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
const results = [];
async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    results.push(`FAIL ${name}: ${e.stack || e}`);
  }
}

try {
  const { gql, url } = server;
  const signUp = async (name, email, extra = {}) => {
    const p = (await gql(SIGN_UP, { i: { name, email, password: PASSWORD, ...extra } })).signUp;
    assert.deepEqual(p.userErrors, []);
    return p;
  };
  // Ana invites Bo and Cy; Bo signs up through the emailed link: K = 1/2 over Ana and Bo.
  const ana = await signUp('Ana', 'ana@example.com');
  const inv = (await gql(INVITE, { o: ana.organization.id, e: ['bo@example.com', 'cy@example.com'] }, ana.token)).createInvitations;
  assert.deepEqual(inv.userErrors, []);
  const boLink = await server.emailLink('bo@example.com', `${url}/invite/`);
  await signUp('Bo', 'bo@example.com', { inviteToken: boLink.split('/').pop() });

  await step('log in, and the K tile shows what the API returns for the window the page names', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${url}/dashboard`);
    assert.match(page.url(), /\/login\?next=/);
    await page.fill('#email', 'ana@example.com');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(/\/dashboard/), page.click('button[type=submit]')]);
    const k = async () => ({
      shown: (await page.textContent('#tile-k .value')).trim(),
      from: await page.getAttribute('#window-from', 'datetime'),
      to: await page.getAttribute('#window-to', 'datetime'),
      interval: (await page.textContent('#window-interval')).trim(),
    });
    const api = async (w) => (await gql(GROWTH, { o: ana.organization.id, f: w.from, t: w.to, i: w.interval }, ana.token)).organization.growth.viralCoefficient;
    const first = await k();
    assert.equal(first.shown, (await api(first)).toFixed(3));
    assert.equal(first.shown, '0.500');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-12w.png'), fullPage: true });

    // Switch to a custom range before any of it happened: K changes, and still agrees.
    await page.selectOption('select[name=range]', 'custom');
    await page.fill('input[name=from]', '2024-01-01');
    await page.fill('input[name=to]', '2024-03-31');
    await Promise.all([page.waitForURL(/range=custom/), page.click('#controls button[type=submit]')]);
    const second = await k();
    assert.equal(second.from, '2024-01-01T00:00:00Z');
    assert.equal(second.to, '2024-04-01T00:00:00Z');
    assert.notEqual(second.shown, first.shown);
    assert.equal(second.shown, (await api(second)).toFixed(3));
    assert.ok(await page.isVisible('#empty-window'), 'the empty state explains the zeros');

    // A phone-width viewport still shows the tiles.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/dashboard`);
    assert.ok(await page.isVisible('#tile-k'));
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: true });
    await page.close();
  });

  await step('a guest opens a shared link, comments and sees the comment', async () => {
    const project = (await gql(
      `mutation($o: ID!) { createProject(input: {organizationId: $o, name: "Launch plan", content: "Step one: ship."}) { project { id } userErrors { code message } } }`,
      { o: ana.organization.id }, ana.token)).createProject;
    assert.deepEqual(project.userErrors, []);
    const link = (await gql(
      `mutation($p: ID!) { createSharedLink(input: {resourceType: PROJECT, resourceId: $p, permission: COMMENT}) { sharedLink { url } userErrors { code message } } }`,
      { p: project.project.id }, ana.token)).createSharedLink;
    assert.deepEqual(link.userErrors, []);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(link.sharedLink.url);
    assert.equal((await page.textContent('h1')).trim(), 'Launch plan');
    await page.fill('#guest_name', 'Gus');
    await page.fill('#body', 'Looks great from here');
    await Promise.all([page.waitForLoadState('load'), page.click('form button[type=submit]')]);
    await page.waitForSelector('text=Looks great from here');
    assert.ok((await page.textContent('body')).includes('Gus'));
    await page.screenshot({ path: path.join(SHOTS, 'shared-comment.png'), fullPage: true });
    await ctx.close();
  });

  await step('an invitation page logs an existing user in and accepts', async () => {
    await signUp('Dee', 'dee@example.com');
    const i = (await gql(INVITE, { o: ana.organization.id, e: ['dee@example.com'] }, ana.token)).createInvitations;
    assert.deepEqual(i.userErrors, []);
    const deeLink = await server.emailLink('dee@example.com', `${url}/invite/`);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(deeLink);
    assert.ok((await page.textContent('h1')).includes('invited you to join'));
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForLoadState('load'), page.click('text=Log in and accept')]);
    await page.waitForSelector('text=You joined the organization');
    await page.screenshot({ path: path.join(SHOTS, 'invitation-accepted.png') });
    // Accepting signed the browser in: the dashboard opens without another log-in.
    await page.goto(`${url}/dashboard`);
    assert.match(page.url(), /\/dashboard/);
    await ctx.close();
  });

  await step('GraphiQL runs a query and shows the result', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${url}/graphql`);
    const editor = page.locator('.graphiql-query-editor .CodeMirror').first();
    await editor.waitFor();
    // Set the text through CodeMirror itself: typed keys would race the autocompletion
    // popup that opens once the schema has loaded.
    await page.evaluate(() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue('{ plans { key name } }'));
    // A click while GraphiQL is still starting up (fetching the schema) can be dropped:
    // click until the answer shows, within a deadline.
    const shows = () => page.waitForFunction(() => {
      const r = document.querySelector('.graphiql-response');
      return r && r.textContent.includes('"key"') && r.textContent.includes('free');
    }, null, { timeout: 1500 }).then(() => true, () => false);
    const deadline = Date.now() + 20000;
    let shown = false;
    while (!shown && Date.now() < deadline) {
      await page.click('.graphiql-execute-button');
      shown = await shows();
    }
    if (!shown) {
      await page.screenshot({ path: path.join(SHOTS, 'graphiql-failed.png') });
      const text = await page.evaluate(() => (document.querySelector('.graphiql-response') || {}).textContent);
      throw new Error(`GraphiQL showed no result; the response pane shows: ${text}`);
    }
    await page.screenshot({ path: path.join(SHOTS, 'graphiql.png') });
    await page.close();
  });
} finally {
  await browser.close();
  await server.stop();
}

console.log(results.join('\n'));
console.log(`screenshots: ${SHOTS}`);
if (results.some((r) => r.startsWith('FAIL'))) process.exit(1);
