// A Tenure behaviour plugin in JavaScript: the greeter.
//
// While its node leads, the greeter wakes up every `period-ms` (default
// 200), logs a beat and broadcasts a greeting to the greeters on the other
// nodes. It records every callback it sees; `on-call` answers:
//
// - `seen`: everything recorded, as JSON (see `seen()` below);
// - `ping`: `pong from NODE`;
// - anything else: an error naming the requests it knows.
//
// Config (`[plugin.config]` in the node's config): `greeting` (default
// "hello") and `period-ms` (10 to 60000). Unknown keys or a bad period
// refuse the plugin at `init`, with the reason.
//
// The Python greeter in ../python answers the same requests with the same
// JSON; only the `plugin` field differs.
//
// Built with componentize-js against the repository's wit/ (world
// `plugin`): see build.sh. WIT names map to JavaScript as componentize-js
// does it: the exported interface `behaviour` is the object of that name,
// callbacks are camelCase, `u64` is a BigInt, `list<u8>` a Uint8Array,
// `option<T>` is T or undefined, and an error `result` is a thrown value.

import {
  broadcast,
  cancelSchedule,
  currentTerm,
  isLeader,
  log as hostLog,
  schedule,
  thisNode,
} from 'tenure:election/leader-api@0.1.0';

/** The first line of every snapshot: format name and version. */
const SNAPSHOT_HEADER = 'tenure-greeter 1';

/** The callbacks of the WIT `behaviour` interface, in declaration order. */
const CALLBACKS = [
  'init',
  'on-become-leader',
  'on-become-follower',
  'on-peer-joined',
  'on-peer-left',
  'on-term-changed',
  'on-message',
  'on-call',
  'on-scheduled',
  'inspect',
  'snapshot',
  'restore',
];

/** How many recent events and beats are kept (counts are not dropped). */
const MAX_EVENTS = 200;

/** The config keys the greeter understands, with their defaults. */
const DEFAULT_CONFIG = { greeting: 'hello', 'period-ms': '200' };
const PERIOD_MIN_MS = 10;
const PERIOD_MAX_MS = 60000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// One greeter per plugin instance: the host instantiates the component
// afresh after a trap or a swap, which starts this module over.
const state = {
  node: '',
  greeting: DEFAULT_CONFIG.greeting,
  periodMs: Number(DEFAULT_CONFIG['period-ms']),
  counts: Object.fromEntries(CALLBACKS.map((name) => [name, 0])),
  events: [],
  ledTerms: [],
  /** [term, number] of every beat, in order. */
  beats: [],
  beatCount: 0,
  /** The pending wake-up's id (a BigInt) while leading, else null. */
  wakeUp: null,
  /** The last greeting heard from each peer. */
  greetings: {},
};

function info(message) {
  hostLog('info', message);
}

/** Counts `callback` and records it with its arguments. */
function note(callback, detail = '') {
  state.counts[callback] += 1;
  state.events.push(detail ? `${callback} ${detail}` : callback);
  state.events.splice(0, Math.max(0, state.events.length - MAX_EVENTS));
}

/** The greeting and period from `init`'s key/value pairs; throws the reason. */
function parseConfig(pairs) {
  const config = { ...DEFAULT_CONFIG };
  for (const [key, value] of pairs) {
    if (!Object.hasOwn(DEFAULT_CONFIG, key)) {
      const known = Object.keys(DEFAULT_CONFIG).sort().join(', ');
      throw `unknown config key \`${key}\` (known: ${known})`;
    }
    config[key] = value;
  }
  const period = config['period-ms'];
  const ms = Number(period);
  if (!/^[0-9]+$/.test(period) || ms < PERIOD_MIN_MS || ms > PERIOD_MAX_MS) {
    throw (
      `\`period-ms\`: \`${period}\` is not a whole number of milliseconds ` +
      `between ${PERIOD_MIN_MS} and ${PERIOD_MAX_MS}`
    );
  }
  return [config.greeting, ms];
}

/** Asks for the next beat, unless one is pending. */
function startBeating() {
  if (state.wakeUp === null) {
    state.wakeUp = schedule(BigInt(state.periodMs), 'beat');
  }
}

function stopBeating() {
  if (state.wakeUp !== null) {
    cancelSchedule(state.wakeUp);
    state.wakeUp = null;
  }
}

/** The recorded state as plain JSON values (terms as numbers). */
function record() {
  return {
    counts: state.counts,
    events: state.events,
    'led-terms': state.ledTerms,
    beats: state.beats,
    'beat-count': state.beatCount,
    greetings: state.greetings,
  };
}

/** JSON with keys sorted at every level, as Python's sort_keys does. */
function sortedJson(value) {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** The `seen` answer: everything recorded. */
function seen() {
  return sortedJson({ plugin: 'js', node: state.node, ...record() });
}

function restoreFrom(bytes) {
  if (bytes.length === 0) return;
  const text = decoder.decode(bytes);
  const newline = text.indexOf('\n');
  if (newline < 0 || text.slice(0, newline) !== SNAPSHOT_HEADER) {
    throw `snapshot is not a greeter snapshot (expected first line \`${SNAPSHOT_HEADER}\`)`;
  }
  // Read everything before changing anything: a refused snapshot leaves
  // this greeter as it was.
  let taken;
  try {
    const saved = JSON.parse(text.slice(newline + 1));
    const int = (v) => {
      if (!Number.isInteger(v)) throw new Error(`${JSON.stringify(v)} is not a whole number`);
      return v;
    };
    taken = {
      counts: Object.entries(saved.counts).map(([name, count]) => [name, int(count)]),
      events: saved.events.map(String).slice(-MAX_EVENTS),
      ledTerms: saved['led-terms'].map(int),
      beats: saved.beats.map(([t, n]) => [int(t), int(n)]).slice(-MAX_EVENTS),
      beatCount: int(saved['beat-count']),
      greetings: Object.fromEntries(
        Object.entries(saved.greetings).map(([k, v]) => [k, String(v)]),
      ),
      wakeUp: saved['wake-up'] === null ? null : BigInt(int(saved['wake-up'])),
    };
  } catch (e) {
    throw `snapshot state is malformed: ${e}`;
  }
  const unknown = taken.counts.find(([name]) => !Object.hasOwn(state.counts, name));
  if (unknown) throw `snapshot names unknown callback \`${unknown[0]}\``;
  for (const [name, count] of taken.counts) state.counts[name] += count;
  state.events = taken.events.concat(state.events).slice(-MAX_EVENTS);
  state.ledTerms = taken.ledTerms;
  state.beats = taken.beats;
  state.beatCount = taken.beatCount;
  state.greetings = taken.greetings;
  state.wakeUp = taken.wakeUp;
}

export const behaviour = {
  init(config) {
    state.node = thisNode();
    note('init', config.map(([k, v]) => `${k}=${v}`).join(' '));
    [state.greeting, state.periodMs] = parseConfig(config);
    info(`greeter (js) ready on ${state.node}: every ${state.periodMs} ms while leading`);
  },

  onBecomeLeader(term) {
    note('on-become-leader', `${term}`);
    if (!state.ledTerms.includes(Number(term))) state.ledTerms.push(Number(term));
    info(`${state.greeting}: ${state.node} leads term ${term}`);
    startBeating();
  },

  onBecomeFollower(leader, term) {
    note('on-become-follower', `${leader ?? 'none'} ${term}`);
    stopBeating();
  },

  onPeerJoined(peer) {
    note('on-peer-joined', peer);
  },

  onPeerLeft(peer) {
    note('on-peer-left', peer);
  },

  onTermChanged(oldTerm, newTerm) {
    note('on-term-changed', `${oldTerm} ${newTerm}`);
  },

  onMessage(sender, payload) {
    note('on-message', sender);
    state.greetings[sender] = decoder.decode(payload);
  },

  onCall(request) {
    const text = decoder.decode(request);
    note('on-call', text.slice(0, 64));
    const command = text.trim();
    if (command === 'seen') return encoder.encode(seen());
    if (command === 'ping') return encoder.encode(`pong from ${state.node}`);
    throw `unknown request ${JSON.stringify(text.slice(0, 64))}: try \`seen\` or \`ping\``;
  },

  onScheduled(id, tag) {
    note('on-scheduled', `${id} ${tag}`);
    if (id !== state.wakeUp) return; // a wake-up from a term this node no longer leads
    state.wakeUp = null;
    if (!isLeader()) return;
    const term = Number(currentTerm());
    state.beatCount += 1;
    state.beats.push([term, state.beatCount]);
    state.beats.splice(0, Math.max(0, state.beats.length - MAX_EVENTS));
    const greeting = `${state.greeting} from ${state.node}, leader of term ${term}, beat ${state.beatCount}`;
    info(greeting);
    broadcast(encoder.encode(greeting));
    startBeating();
  },

  inspect() {
    note('inspect');
    return Object.entries(state.counts)
      .map(([name, count]) => [name, `${count}`])
      .concat([['beats', `${state.beatCount}`]]);
  },

  snapshot() {
    note('snapshot');
    const wakeUp = state.wakeUp === null ? null : Number(state.wakeUp);
    return encoder.encode(`${SNAPSHOT_HEADER}\n${sortedJson({ ...record(), 'wake-up': wakeUp })}`);
  },

  restore(snapshot) {
    note('restore', `${snapshot.length} bytes`);
    try {
      restoreFrom(snapshot);
    } catch (reason) {
      hostLog('warn', `restore refused: ${reason}`);
      throw reason;
    }
    // Resume beating if this node leads and no wake-up carried over.
    if (isLeader() && state.wakeUp === null) startBeating();
  },
};
