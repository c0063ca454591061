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
// HTTP egress, off unless configured: `webhook` (an http(s) URL) gets a
// POST on every leadership change, `job-url` one on every beat while
// leading (the leader-only job: the node's `[plugin] allow-http` puts it in
// `leader` mode, so the host stamps it with the fencing token and refuses
// it when this node does not lead with a lease). Requests are plain
// `fetch()`. A callback that makes requests is an `async` function that
// waits for the answers 50 ms at most (a race with a timer): componentize-js
// runs the engine's event loop only while an export's promise is pending,
// so a request is written, sent and answered only during such waits — in
// the callback that made it, or in a later one (see README.md). `seen`
// reports every outcome under `http`.
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

import {
  DEFAULT_CONFIG,
  HTTP_WAIT_MS,
  HttpRecord,
  MAX_IN_FLIGHT,
  describeError,
  jobBody,
  leadershipBody,
  parseConfig,
  parseHttpConfig,
  sortedJson,
} from './greeter_core.js';

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
  /** The HTTP URLs (see parseHttpConfig); both off by default. */
  urls: { webhook: null, 'job-url': null },
  /** The outcome of each recent request. */
  http: new HttpRecord(),
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
    http: state.http.entries,
  };
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
      http: state.http.takeOver(saved.http),
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
  taken.http();
}

export const behaviour = {
  init(config) {
    state.node = thisNode();
    note('init', config.map(([k, v]) => `${k}=${v}`).join(' '));
    [state.greeting, state.periodMs] = parseConfig(config);
    state.urls = parseHttpConfig(config);
    info(`greeter (js) ready on ${state.node}: every ${state.periodMs} ms while leading`);
  },

  async onBecomeLeader(term) {
    note('on-become-leader', `${term}`);
    if (!state.ledTerms.includes(Number(term))) state.ledTerms.push(Number(term));
    info(`${state.greeting}: ${state.node} leads term ${term}`);
    startBeating();
    if (state.urls.webhook) {
      post(state.urls.webhook, leadershipBody(state.node, Number(term)), 'leader', Number(term));
    }
    await settle();
  },

  async onBecomeFollower(leader, term) {
    note('on-become-follower', `${leader ?? 'none'} ${term}`);
    stopBeating();
    if (state.urls.webhook) {
      const body = leadershipBody(state.node, Number(term), leader ?? null, false);
      post(state.urls.webhook, body, 'follower', Number(term));
    }
    await settle();
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
    if (command === 'seen') {
      if (inFlight.length === 0) return encoder.encode(seen());
      // Requests in flight: a promise (which componentize-js awaits, as for
      // an async callback) that first records the answers that came
      // meanwhile, without waiting for the others.
      return settle(0).then(() => encoder.encode(seen()));
    }
    if (command === 'ping') return encoder.encode(`pong from ${state.node}`);
    throw `unknown request ${JSON.stringify(text.slice(0, 64))}: try \`seen\` or \`ping\``;
  },

  async onScheduled(id, tag) {
    note('on-scheduled', `${id} ${tag}`);
    if (id !== state.wakeUp) return; // a wake-up from a term this node no longer leads
    state.wakeUp = null;
    if (!isLeader()) return settle();
    const term = Number(currentTerm());
    state.beatCount += 1;
    state.beats.push([term, state.beatCount]);
    state.beats.splice(0, Math.max(0, state.beats.length - MAX_EVENTS));
    const greeting = `${state.greeting} from ${state.node}, leader of term ${term}, beat ${state.beatCount}`;
    info(greeting);
    broadcast(encoder.encode(greeting));
    startBeating();
    if (state.urls['job-url']) {
      const body = jobBody(state.node, term, state.beatCount);
      post(state.urls['job-url'], body, 'beat', term, state.beatCount);
    }
    await settle();
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

// --- HTTP egress, with fetch() ---------------------------------------------

/** Requests waiting for an answer, oldest first; across callbacks. */
const inFlight = [];

/**
 * Callbacks that settled so far: a request sent while `calls` was n and
 * answered once it is past n was answered late, in a later callback.
 */
let calls = 0;

/**
 * POSTs `body` (JSON) to `url` and records the request as pending; its
 * outcome is recorded when fetch() settles, which happens while a callback
 * waits in `settle`. A request the host refuses (HTTP-request-denied: not
 * allowed, or a `leader` entry while this node does not lead with a lease)
 * rejects like any network error: fetch() does not say which.
 */
function post(url, body, event, term, beat = null) {
  const id = state.http.sent(url, event, term, beat);
  try {
    send(id, url, body);
  } catch (error) {
    // Never thrown on: from onBecomeLeader, it would refuse leadership.
    state.http.answered(id, { error: describeError(error) });
  }
}

function send(id, url, body) {
  while (inFlight.length >= MAX_IN_FLIGHT) {
    const oldest = inFlight.shift();
    oldest.abandoned = true;
    oldest.controller.abort(); // the engine drops the response future: the host stops it
    state.http.answered(oldest.id, { error: 'abandoned: still pending when more were sent' });
  }
  const sentIn = calls;
  const request = { id, controller: new AbortController(), abandoned: false };
  request.settled = fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: request.controller.signal,
  })
    .then(
      (response) => {
        state.http.answered(id, { status: response.status, late: calls !== sentIn });
        // Read the (small, host-buffered) body so its handles are released.
        response.arrayBuffer().catch(() => {});
      },
      (error) => {
        if (!request.abandoned) {
          state.http.answered(id, { error: describeError(error), late: calls !== sentIn });
        }
      },
    )
    .finally(() => {
      const at = inFlight.indexOf(request);
      if (at >= 0) inFlight.splice(at, 1);
    });
  inFlight.push(request);
}

/**
 * Waits up to `waitMs` for every request in flight to settle. The wait is
 * a promise the export returns, so componentize-js keeps running the event
 * loop — sending bodies, polling response futures and the timer — until it
 * settles; what is still pending then is settled in a later callback's wait.
 * Awaited once at the end of every callback that makes requests.
 */
async function settle(waitMs = HTTP_WAIT_MS) {
  try {
    if (inFlight.length === 0) return;
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    await Promise.race([Promise.allSettled(inFlight.map((r) => r.settled)), timeout]);
    clearTimeout(timer);
  } finally {
    calls += 1;
  }
}
