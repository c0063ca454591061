// Unit tests of the greeter, natively in Node (no wasm): the WIT import
// `tenure:election/leader-api@0.1.0` is answered by a stub that records
// what the greeter asked of its node.
//
//   node --test greeter.test.mjs      # from this folder; build.sh runs it
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { test } from 'node:test';

const STUB = `
const host = globalThis.greeterHost;
export const thisNode = () => host.node;
export const isLeader = () => host.leader;
export const currentTerm = () => host.term;
export const log = (level, message) => host.logs.push(level + ' ' + message);
export const schedule = (ms, tag) => {
  host.scheduled.push([ms, tag]);
  return BigInt(host.scheduled.length);
};
export const cancelSchedule = (id) => host.cancelled.push(id);
export const broadcast = (payload) => host.sent.push(new TextDecoder().decode(payload));
`;
register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'tenure:election/leader-api@0.1.0') {
    return { url: 'data:text/javascript,' + encodeURIComponent(${JSON.stringify(STUB)}), shortCircuit: true };
  }
  return next(specifier, context);
}`),
);

const host = {
  node: 'n1',
  leader: false,
  term: 0n,
  logs: [],
  scheduled: [],
  cancelled: [],
  sent: [],
};
globalThis.greeterHost = host;
const { behaviour } = await import('./greeter.js');
const seen = () => JSON.parse(new TextDecoder().decode(behaviour.onCall(new TextEncoder().encode('seen'))));

// The tests share the module's one greeter, so they run in order.

test('bad config is refused with the key', () => {
  assert.throws(() => behaviour.init([['colour', 'blue']]), /unknown config key `colour` \(known: greeting, period-ms\)/);
  assert.throws(() => behaviour.init([['period-ms', 'soon']]), /`period-ms`: `soon` is not a whole number/);
  assert.throws(() => behaviour.init([['period-ms', '9']]), /between 10 and 60000/);
  assert.throws(() => behaviour.init([['period-ms', '1e3']]), /`1e3` is not a whole number/);
});

test('a leader beats, greets and stops when it follows', () => {
  behaviour.init([['greeting', 'hi'], ['period-ms', '100']]);
  host.leader = true;
  host.term = 3n;
  behaviour.onBecomeLeader(3n);
  assert.deepEqual(host.scheduled, [[100n, 'beat']]);
  behaviour.onScheduled(1n, 'beat');
  assert.deepEqual(host.sent, ['hi from n1, leader of term 3, beat 1']);
  assert.equal(host.scheduled.length, 2, 'the next beat is asked for');
  host.leader = false;
  behaviour.onBecomeFollower('n2', 4n);
  assert.deepEqual(host.cancelled, [2n]);
  behaviour.onScheduled(2n, 'beat'); // fired before the cancel took effect
  assert.equal(host.sent.length, 1, 'no beat as a follower');
  behaviour.onMessage('n2', new TextEncoder().encode('hi from n2'));
  const record = seen();
  assert.equal(record.plugin, 'js');
  assert.deepEqual(record['led-terms'], [3]);
  assert.deepEqual(record.beats, [[3, 1]]);
  assert.deepEqual(record.greetings, { n2: 'hi from n2' });
  assert.equal(record.counts['on-scheduled'], 2);
  assert.ok(record.events.includes('on-become-follower n2 4'));
  assert.throws(() => behaviour.onCall(new TextEncoder().encode('sing')), /unknown request "sing": try `seen` or `ping`/);
});

test('a snapshot restores, and garbage is refused leaving the state alone', () => {
  const snapshot = behaviour.snapshot();
  assert.ok(new TextDecoder().decode(snapshot).startsWith('tenure-greeter 1\n'));
  const before = seen();
  for (const [garbage, reason] of [
    ['tenure-plugin-logger 1\ninit 1\n', /not a greeter snapshot/],
    ['tenure-greeter 1\nnot json', /malformed/],
    ['tenure-greeter 1\n{}', /malformed/],
  ]) {
    assert.throws(() => behaviour.restore(new TextEncoder().encode(garbage)), reason);
  }
  const unknown = JSON.parse(new TextDecoder().decode(snapshot).split('\n')[1]);
  unknown.counts.sing = 1;
  assert.throws(
    () => behaviour.restore(new TextEncoder().encode(`tenure-greeter 1\n${JSON.stringify(unknown)}`)),
    /unknown callback `sing`/,
  );
  const after = seen();
  assert.deepEqual(after.beats, before.beats);
  assert.equal(after.counts.init, before.counts.init, 'a refused snapshot changed the counts');
  behaviour.restore(snapshot);
  assert.equal(seen().counts.init, before.counts.init * 2, 'restored counts add up');
});

// --- HTTP egress -----------------------------------------------------------

const core = await import('./greeter_core.js');

test('the HTTP keys are off unless configured, and a bad URL is refused with the key', () => {
  assert.deepEqual(core.parseHttpConfig([]), { 'job-url': null, webhook: null });
  assert.deepEqual(core.parseHttpConfig([['webhook', '']]).webhook, null);
  assert.deepEqual(core.parseConfig([['greeting', 'hi'], ['webhook', 'http://h/x'], ['job-url', 'http://h/j']]), ['hi', 200]);
  assert.throws(() => core.parseConfig([['web-hook', 'http://h/']]), /HTTP egress adds job-url and webhook/);
  for (const url of ['http://127.0.0.1:8080/hook', 'HTTPS://jobs.example.com', 'http://[::1]:9/a/b?term=1&x=y', 'http://h?q']) {
    assert.equal(core.parseHttpConfig([['job-url', url]])['job-url'], url);
  }
  // The same cases as test_greeter_core.py's.
  for (const bad of [
    'ftp://h/x', 'h/x', 'http://', 'http:/h/x', 'http://user:pw@h/x', 'http://h/x#part',
    'http://h:0/', 'http://h:65536/', 'http://h:port/', 'http://h x/', 'http://h/x y', ' http://h/',
  ]) {
    assert.throws(
      () => core.parseHttpConfig([['webhook', bad]]),
      (reason) => reason.startsWith(`\`webhook\`: \`${bad}\` is not an http:// or https:// URL`),
      bad,
    );
  }
});

test('HTTP bodies are compact sorted JSON, byte for byte as the Python greeter makes them', () => {
  assert.equal(core.leadershipBody('n1', 3), '{"event":"leader","node":"n1","term":3}');
  assert.equal(core.leadershipBody('n1', 4, 'n2', false), '{"event":"follower","leader":"n2","node":"n1","term":4}');
  assert.equal(core.leadershipBody('n1', 5, null, false), '{"event":"follower","leader":null,"node":"n1","term":5}');
  assert.equal(core.jobBody('n1', 3, 7), '{"beat":7,"node":"n1","term":3}');
  assert.equal(core.describeError(new TypeError('NetworkError when attempting to fetch resource')), 'NetworkError when attempting to fetch resource');
});

test('the HTTP record: pending until answered, bounded, carried over a swap', () => {
  const record = new core.HttpRecord();
  const first = record.sent('http://h/hook', 'leader', 3);
  const second = record.sent('http://h/job', 'beat', 3, 1);
  assert.equal(record.entries[0].error, 'pending');
  record.answered(first, { status: 200 });
  record.answered(second, { error: 'NetworkError when attempting to fetch resource', late: true });
  assert.deepEqual(record.entries, [
    { id: 1, url: 'http://h/hook', event: 'leader', term: 3, status: 200 },
    { id: 2, url: 'http://h/job', event: 'beat', term: 3, beat: 1, error: 'NetworkError when attempting to fetch resource', late: true },
  ]);
  record.sent('http://h/job', 'beat', 3, 2);
  const next = new core.HttpRecord();
  next.takeOver(JSON.parse(JSON.stringify(record.entries)))();
  assert.equal(next.entries[2].error, 'lost: the plugin was replaced before the answer came');
  assert.equal(next.sent('http://h/job', 'beat', 3, 3), 4, 'ids go on');
  assert.throws(() => next.takeOver([{ id: 1 }]));
  next.takeOver(undefined)(); // a snapshot from before HTTP egress
  assert.deepEqual(next.entries, []);
  const bounded = new core.HttpRecord();
  for (let beat = 0; beat < core.MAX_HTTP + 5; beat++) bounded.sent('http://h/job', 'beat', 1, beat);
  assert.equal(bounded.entries.length, core.MAX_HTTP);
  assert.equal(bounded.entries[0].id, 6);
  bounded.answered(1, { status: 200 }); // dropped already: not brought back
  assert.equal(bounded.entries.length, core.MAX_HTTP);
});

/** A stand-in for fetch(): records each call; a test settles it by hand. */
const requests = [];
globalThis.fetch = (url, init) => {
  let settle;
  const promise = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  init.signal.addEventListener('abort', () => settle.reject(new DOMException('aborted', 'AbortError')));
  requests.push({ url, init, ...settle });
  return promise;
};
const response = (status) => ({ status, arrayBuffer: async () => new ArrayBuffer(0) });
const httpSeen = async () => JSON.parse(new TextDecoder().decode(await behaviour.onCall(new TextEncoder().encode('seen')))).http;

test('a bad webhook refuses the plugin at init', () => {
  assert.throws(() => behaviour.init([['webhook', 'ftp://h/']]), /`webhook`: `ftp:\/\/h\/` is not an http:\/\/ or https:\/\/ URL/);
});

test('leadership changes go to the webhook and beats to the job URL, each outcome recorded', async () => {
  const before = (await httpSeen()).length;
  behaviour.init([['period-ms', '100'], ['webhook', 'http://h:8080/hook'], ['job-url', 'https://jobs/run?x=1']]);
  host.leader = true;
  host.term = 5n;
  host.scheduled.length = 0;
  const leading = behaviour.onBecomeLeader(5n);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].url, 'http://h:8080/hook');
  assert.equal(requests[0].init.method, 'POST');
  assert.equal(requests[0].init.headers['content-type'], 'application/json');
  assert.equal(requests[0].init.body, '{"event":"leader","node":"n1","term":5}');
  requests[0].resolve(response(204));
  await leading;
  // A job that answers within the wait, one that fails, one that is slow.
  const beats = [];
  for (const settleIt of [(r) => r.resolve(response(200)), (r) => r.reject(new TypeError('NetworkError when attempting to fetch resource')), null]) {
    const started = performance.now();
    const beat = behaviour.onScheduled(BigInt(host.scheduled.length), 'beat');
    const sent = requests.at(-1);
    if (settleIt) settleIt(sent);
    await beat;
    beats.push([sent, performance.now() - started]);
  }
  assert.equal(beats[0][0].url, 'https://jobs/run?x=1');
  assert.match(beats[0][0].init.body, /^\{"beat":\d+,"node":"n1","term":5\}$/);
  assert.ok(beats[2][1] >= 45 && beats[2][1] < 90, `the slow beat waited ${beats[2][1]} ms, about 50`);
  let http = (await httpSeen()).slice(before);
  assert.deepEqual(http.map((e) => [e.event, e.status ?? e.error]), [
    ['leader', 204],
    ['beat', 200],
    ['beat', 'NetworkError when attempting to fetch resource'],
    ['beat', 'pending'],
  ]);
  // The slow one answers later, and a later callback records it as late.
  beats[2][0].resolve(response(202));
  host.leader = false;
  const following = behaviour.onBecomeFollower('n2', 6n);
  requests.at(-1).resolve(response(200));
  await following;
  assert.equal(requests.at(-1).init.body, '{"event":"follower","leader":"n2","node":"n1","term":6}');
  http = (await httpSeen()).slice(before);
  assert.deepEqual(http.at(-2), { ...http.at(-2), status: 202, late: true });
  assert.equal(http.at(-2).error, undefined);
  assert.deepEqual(http.at(-1), { id: http.at(-1).id, url: 'http://h:8080/hook', event: 'follower', term: 6, status: 200 });
});

test('requests never answered are abandoned beyond the in-flight limit', async () => {
  behaviour.init([['job-url', 'http://h/slow']]);
  host.leader = true;
  await behaviour.onBecomeLeader(7n);
  const first = requests.length;
  for (let i = 0; i < core.MAX_IN_FLIGHT + 1; i++) {
    await behaviour.onScheduled(BigInt(host.scheduled.length), 'beat');
  }
  const http = await httpSeen();
  const mine = http.filter((e) => e.url === 'http://h/slow');
  assert.equal(requests.length - first, core.MAX_IN_FLIGHT + 1);
  assert.equal(mine[0].error, 'abandoned: still pending when more were sent');
  assert.ok(mine.slice(1).every((e) => e.error === 'pending'));
  for (const r of requests.slice(first)) r.resolve(response(200)); // let the rest go
  await behaviour.onScheduled(BigInt(host.scheduled.length), 'beat');
  requests.at(-1).resolve(response(200));
  assert.ok((await httpSeen()).filter((e) => e.url === 'http://h/slow').slice(1).every((e) => e.status === 200));
});
