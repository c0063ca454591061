// The greeter's logic that needs no WIT import, so Node runs it as it is:
// the config, the HTTP bodies and the record of HTTP outcomes. greeter.js
// binds it to the node; greeter.test.mjs tests both. The Python greeter's
// greeter_core.py holds the same logic, with the same messages and bytes.

/** The config keys the greeter understands, with their defaults. */
export const DEFAULT_CONFIG = { greeting: 'hello', 'period-ms': '200' };
export const PERIOD_MIN_MS = 10;
export const PERIOD_MAX_MS = 60000;

/** The optional HTTP keys, each an http(s) URL; absent or empty means off. */
export const HTTP_KEYS = ['job-url', 'webhook'];

/** How many request outcomes `seen` keeps (the last ones). */
export const MAX_HTTP = 50;

/**
 * How long a callback waits for answers, at most: well inside the default
 * 100 ms callback deadline, so a slow server never costs the instance.
 */
export const HTTP_WAIT_MS = 50;

/**
 * How many requests may wait for an answer across callbacks; starting one
 * more abandons the oldest (the host allows 8 in flight by default).
 */
export const MAX_IN_FLIGHT = 4;

// What an http(s) URL looks like here: a scheme, a host (a name, an IPv4
// address or an IPv6 one in brackets), an optional port, then an optional
// path and query. No user info, no fragment, no spaces.
const URL_SHAPE =
  /^([A-Za-z]+):\/\/(([A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?)([/?][^#\s]*)?$/;

/** The greeting and period from `init`'s key/value pairs; throws the reason. */
export function parseConfig(pairs) {
  const config = { ...DEFAULT_CONFIG };
  for (const [key, value] of pairs) {
    if (HTTP_KEYS.includes(key)) continue; // read by parseHttpConfig
    if (!Object.hasOwn(DEFAULT_CONFIG, key)) {
      const known = Object.keys(DEFAULT_CONFIG).sort().join(', ');
      throw `unknown config key \`${key}\` (known: ${known}); HTTP egress adds ${HTTP_KEYS.join(' and ')}`;
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

/** `value`, checked to be an http(s) URL; throws the reason, naming `key`. */
export function parseUrl(key, value) {
  const match = URL_SHAPE.exec(value);
  const scheme = match?.[1].toLowerCase();
  const port = match?.[4];
  if (!match || !['http', 'https'].includes(scheme) || (port && !(Number(port) > 0 && Number(port) < 65536))) {
    throw (
      `\`${key}\`: \`${value}\` is not an http:// or https:// URL with a host ` +
      `(like http://127.0.0.1:8080/hook; no user info or fragment)`
    );
  }
  return value;
}

/** The `webhook` and `job-url` URLs from `init`'s pairs; null for one that is off. */
export function parseHttpConfig(pairs) {
  const urls = Object.fromEntries(HTTP_KEYS.map((key) => [key, null]));
  for (const [key, value] of pairs) {
    if (HTTP_KEYS.includes(key)) urls[key] = value ? parseUrl(key, value) : null;
  }
  return urls;
}

/** JSON with keys sorted at every level, as Python's sort_keys does. */
export function sortedJson(value) {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/**
 * The webhook's body for a leadership change: this node now leads `term`,
 * or (`leading` false) follows `leader`, null while an election is under way.
 */
export function leadershipBody(node, term, leader = null, leading = true) {
  return leading
    ? sortedJson({ node, event: 'leader', term })
    : sortedJson({ node, event: 'follower', leader, term });
}

/** The leader-only job's body for one beat. */
export function jobBody(node, term, beat) {
  return sortedJson({ node, term, beat });
}

/** What a failed fetch() says: its message (fetch() gives no error code). */
export function describeError(error) {
  return error instanceof Error ? error.message : String(error);
}

/** The outcome of each recent request, oldest first, as `seen` shows it. */
export class HttpRecord {
  constructor() {
    this.entries = [];
    this.sentCount = 0;
  }

  /**
   * Records a request just made to `url` (for a leadership `event`, "leader"
   * or "follower", or a "beat") as pending; returns its id, for `answered`.
   */
  sent(url, event, term, beat = null) {
    this.sentCount += 1;
    const entry = { id: this.sentCount, url, event, term, error: 'pending' };
    if (beat !== null) entry.beat = beat;
    this.entries.push(entry);
    this.entries.splice(0, Math.max(0, this.entries.length - MAX_HTTP));
    return this.sentCount;
  }

  /**
   * Records the outcome of request `id`: its HTTP `status`, or an `error`.
   * `late` marks an answer that came in a callback after the one that sent
   * the request. An entry already dropped from the record is not brought back.
   */
  answered(id, { status = null, error = null, late = false }) {
    const entry = this.entries.find((e) => e.id === id);
    if (!entry) return;
    delete entry.error;
    if (status !== null) entry.status = status;
    else entry.error = error;
    if (late) entry.late = true;
  }

  /**
   * Takes over the outcomes from a snapshot (absent in one from before HTTP
   * egress), checked; throws on a malformed one. A request still pending
   * died with the instance that made it: its answer will never be read.
   */
  takeOver(saved) {
    const int = (v) => {
      if (!Number.isInteger(v)) throw new Error(`${JSON.stringify(v)} is not a whole number`);
      return v;
    };
    const entries = (saved ?? []).slice(-MAX_HTTP).map((e) => {
      const out = { id: int(e.id), url: String(e.url), event: String(e.event), term: int(e.term) };
      if ('beat' in e) out.beat = int(e.beat);
      if ('status' in e) out.status = int(e.status);
      else if (e.error === 'pending') out.error = 'lost: the plugin was replaced before the answer came';
      else if (e.error === undefined) throw new Error('an HTTP outcome has no status or error');
      else out.error = String(e.error);
      if (e.late) out.late = true;
      return out;
    });
    return () => {
      this.entries = entries;
      this.sentCount = Math.max(this.sentCount, ...entries.map((e) => e.id));
    };
  }
}
