// kfactor's live activity through the real `graphql-ws` client (the reference
// implementation of graphql-transport-ws), run by .ci/run:
// `KFACTOR_BIN=target/debug/kfactor node tests/ws-client/run.mjs`.
// Connects, authenticates, subscribes, receives an event caused by a mutation over HTTP,
// completes; runs a query over the socket; and a bad token is refused with 4403.
import assert from 'node:assert/strict';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { startServer } from '../browser/server.mjs';

const BIN = process.env.KFACTOR_BIN || path.resolve('target/debug/kfactor');
const PASSWORD = 'correct horse battery';
const SIGN_UP = `mutation($i: SignUpInput!) { signUp(input: $i) { token organization { id } userErrors { code message } } }`;
const CREATE_PROJECT = `mutation($o: ID!) { createProject(input: {organizationId: $o, name: "Roadmap"}) { project { id } userErrors { code } } }`;
const COMMENT = `mutation($p: ID!, $b: String!) { addComment(projectId: $p, body: $b) { comment { id } } }`;
const ACTIVITY = `subscription($o: ID!) { activity(organizationId: $o) { type summary organizationId actor { displayName } } }`;

const server = await startServer(BIN);
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

/** A graphql-ws client of this server that never retries (a refusal must be seen). */
function client(token, extra = {}) {
  return createClient({
    url: `${server.url.replace('http', 'ws')}/graphql/ws`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    shouldRetry: () => false,
    ...extra,
  });
}

/** Resolves with the value `promise` resolves to, or fails after `ms` with `what`. */
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

try {
  const ana = (await server.gql(SIGN_UP, { i: { name: 'Ana', email: 'ana@example.com', password: PASSWORD } })).signUp;
  assert.deepEqual(ana.userErrors, []);
  const org = ana.organization.id;
  const project = (await server.gql(CREATE_PROJECT, { o: org }, ana.token)).createProject.project.id;

  await step('subscribe, receive an event caused by an HTTP mutation, complete', async () => {
    const c = client(ana.token);
    let acked = false;
    c.on('connected', () => { acked = true; });
    const events = [];
    let failed;
    let completed = false;
    const unsubscribe = c.subscribe({ query: ACTIVITY, variables: { o: org } }, {
      next: (v) => events.push(v),
      error: (e) => { failed = e; },
      complete: () => { completed = true; },
    });
    // The subscription starts asynchronously on the server: comment until an event arrives.
    const deadline = Date.now() + 15000;
    for (let i = 0; events.length === 0; i++) {
      assert.ok(Date.now() < deadline, 'no event within 15 s');
      assert.equal(failed, undefined, `subscription failed: ${JSON.stringify(failed)}`);
      await server.gql(COMMENT, { p: project, b: `Hello ${i}` }, ana.token);
      const wait = Date.now() + 500;
      while (events.length === 0 && Date.now() < wait) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(acked, 'connection_ack before any event');
    const first = events[0];
    assert.equal(first.errors, undefined, JSON.stringify(first));
    assert.equal(first.data.activity.type, 'COMMENT_ADDED');
    assert.equal(first.data.activity.organizationId, org);
    assert.equal(first.data.activity.actor.displayName, 'Ana');
    // Completing from the client sends `complete`; the sink is told the stream is over.
    unsubscribe();
    const until = Date.now() + 5000;
    while (!completed && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.ok(completed, 'complete after unsubscribing');
    await c.dispose();
  });

  await step('a query over the socket answers once and the server completes it', async () => {
    const c = client(ana.token);
    const answers = [];
    await within(10000, 'the query to complete', new Promise((resolve, reject) => {
      c.subscribe({ query: '{ me { name } }' }, {
        next: (v) => answers.push(v),
        error: reject,
        complete: resolve,
      });
    }));
    assert.deepEqual(answers, [{ data: { me: { name: 'Ana' } } }]);
    await c.dispose();
  });

  await step('an invalid operation is an error, not a result', async () => {
    const c = client(ana.token);
    const err = await within(10000, 'the error', new Promise((resolve, reject) => {
      c.subscribe({ query: '{ nope }' }, { next: reject, error: resolve, complete: () => reject(new Error('completed')) });
    }));
    assert.ok(Array.isArray(err) && err.length > 0, JSON.stringify(err));
    await c.dispose();
  });

  await step('a bad token is refused with 4403', async () => {
    let closed;
    const c = client('not-a-session', { on: { closed: (e) => { closed = e; } } });
    const err = await within(10000, 'the refusal', new Promise((resolve, reject) => {
      c.subscribe({ query: ACTIVITY, variables: { o: org } }, { next: reject, error: resolve, complete: () => reject(new Error('completed')) });
    }));
    assert.equal(err.code, 4403, `close event ${err.code} ${err.reason}`);
    assert.match(err.reason, /^Forbidden/);
    assert.equal(closed.code, 4403);
    await c.dispose();
  });
} finally {
  await server.stop();
}

console.log(results.join('\n'));
if (results.some((r) => r.startsWith('FAIL'))) {
  process.exitCode = 1;
} else {
  console.log(`graphql-ws client tests passed (${results.length})`);
}
