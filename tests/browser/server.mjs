// Starts a kfactor server on a free port with a fresh SQLite file, and reads its JSON logs
// (the log transport prints every email there, link included).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until `check()` returns a truthy value, or fails after `ms` with `what`. */
export async function waitFor(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startServer(bin, extraEnv = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kfactor-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs = [];
  const child = spawn(bin, ['serve'], {
    cwd: dir,
    env: {
      ...process.env,
      KFACTOR_BIND: `127.0.0.1:${port}`,
      KFACTOR_PUBLIC_URL: url,
      KFACTOR_DATABASE_URL: `sqlite://${path.join(dir, 'kfactor.db')}?mode=rwc`,
      KFACTOR_LOG: 'info',
      KFACTOR_DIGEST_SCHEDULE: 'off',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { logs.push(JSON.parse(line)); } catch { logs.push({ raw: line }); }
    }
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => child.once('exit', r));
  await waitFor('the server to answer /healthz', async () => {
    if (child.exitCode !== null) throw new Error(`kfactor exited: ${stderr}`);
    try { return (await fetch(`${url}/healthz`)).ok; } catch { return false; }
  }, 60000);

  async function gql(query, variables = {}, token) {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = await res.json();
    if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
    return body.data;
  }

  /** The first link starting with `prefix` in an email to `to` (waits for the mailer). */
  async function emailLink(to, prefix) {
    return waitFor(`an email to ${to} with ${prefix}`, () => {
      for (const l of logs) {
        const f = l.fields || l;
        if (f.to === to && typeof f.body === 'string') {
          const link = f.body.split(/\s+/).find((w) => w.startsWith(prefix));
          if (link) return link;
        }
      }
      return null;
    });
  }

  async function stop() {
    child.kill('SIGTERM');
    await exited;
  }
  return { url, dir, gql, emailLink, stop, logs };
}
