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
