"""The greeter's logic, free of any WIT binding so it reads (and runs) as
plain Python.

The greeter is a leader-only heartbeat: while its node leads, it wakes up
every `period-ms`, logs a beat and broadcasts a greeting to its peers'
greeters. Every callback it sees is recorded, and `on-call` answers with
that record as JSON, so a test (or an operator with curl) can check what
the plugin saw. The JavaScript greeter in ../js answers the same requests
with the same JSON; only the `plugin` field differs.

Optionally the greeter talks HTTP (see README.md, "HTTP egress"): it POSTs
each leadership change to a `webhook` and, while leading, each beat to a
`job-url`, and records what became of every request. This module holds
that logic too — the URLs, the bodies, the record — but not the requests
themselves, which app.py makes through `wasi:http`.
"""

import json
import re

# The wasi:http error-code names; app.py records them (re-exported here
# for the unit tests).
from tenure_http import error_name  # noqa: F401

# The first line of every snapshot: format name and version.
SNAPSHOT_HEADER = "tenure-greeter 1"

# The callbacks of the WIT `behaviour` interface, in declaration order.
CALLBACKS = (
    "init",
    "on-become-leader",
    "on-become-follower",
    "on-peer-joined",
    "on-peer-left",
    "on-term-changed",
    "on-message",
    "on-call",
    "on-scheduled",
    "inspect",
    "snapshot",
    "restore",
)

# How many recent events are kept (older ones are dropped, counts are not).
MAX_EVENTS = 200

# The config keys the greeter understands, with their defaults.
DEFAULT_CONFIG = {"greeting": "hello", "period-ms": "200"}

# Bounds on `period-ms`: at least 10 ms, at most a minute.
PERIOD_MIN_MS = 10
PERIOD_MAX_MS = 60_000

# The optional HTTP keys, each an http(s) URL; absent or empty means off.
HTTP_KEYS = ("job-url", "webhook")

# How many request outcomes `seen` keeps (the last ones).
MAX_HTTP = 50

# How long a callback waits for answers, at most: well inside the default
# 100 ms callback deadline, so a slow server never costs the instance.
HTTP_WAIT_MS = 50

# How many requests may wait for an answer across callbacks; starting one
# more abandons the oldest (the host allows 8 in flight by default).
MAX_IN_FLIGHT = 4

# What an http(s) URL looks like here: a scheme, a host (a name, an IPv4
# address or an IPv6 one in brackets), an optional port, then an optional
# path and query. No user info, no fragment, no spaces.
_URL = re.compile(
    r"(?P<scheme>[A-Za-z]+)://"
    r"(?P<authority>(?P<host>[A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?)"
    r"(?P<path>[/?][^#\s]*)?"
)


class ConfigError(ValueError):
    """A config the greeter refuses; the message names the key."""


def parse_config(pairs):
    """The greeting and period from `init`'s key/value pairs (the HTTP
    keys are accepted here and read by `parse_http_config`)."""
    config = dict(DEFAULT_CONFIG)
    for key, value in pairs:
        if key in HTTP_KEYS:
            continue
        if key not in DEFAULT_CONFIG:
            known = ", ".join(sorted(DEFAULT_CONFIG))
            raise ConfigError(
                f"unknown config key `{key}` (known: {known}); "
                f"HTTP egress adds {' and '.join(HTTP_KEYS)}"
            )
        config[key] = value
    period = config["period-ms"]
    if not period.isdigit() or not PERIOD_MIN_MS <= int(period) <= PERIOD_MAX_MS:
        raise ConfigError(
            f"`period-ms`: `{period}` is not a whole number of milliseconds "
            f"between {PERIOD_MIN_MS} and {PERIOD_MAX_MS}"
        )
    return config["greeting"], int(period)


def parse_url(key, value):
    """An http(s) URL as the parts a `wasi:http` request takes: a dict of
    `url`, `scheme` (lowercase), `authority` and `path` (with the query; "/"
    when absent). Raises ConfigError naming `key`."""
    match = _URL.fullmatch(value)
    scheme = match and match["scheme"].lower()
    port = match and match["port"]
    if not match or scheme not in ("http", "https") or (port and not 0 < int(port) < 65536):
        raise ConfigError(
            f"`{key}`: `{value}` is not an http:// or https:// URL with a host "
            f"(like http://127.0.0.1:8080/hook; no user info or fragment)"
        )
    return {
        "url": value,
        "scheme": scheme,
        "authority": match["authority"],
        "path": match["path"] or "/",
    }


def parse_http_config(pairs):
    """The `webhook` and `job-url` URLs (see `parse_url`) from `init`'s
    key/value pairs, as a dict with both keys; None for one that is off."""
    urls = dict.fromkeys(HTTP_KEYS)
    for key, value in pairs:
        if key in HTTP_KEYS:
            urls[key] = parse_url(key, value) if value else None
    return urls


def _json(value):
    """Compact JSON with sorted keys: the same bytes as the JS greeter's."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def leadership_body(node, term, leader=None, leading=True):
    """The webhook's body for a leadership change: this node now leads
    `term`, or follows `leader` (None while an election is under way)."""
    if leading:
        return _json({"node": node, "event": "leader", "term": term})
    return _json({"node": node, "event": "follower", "leader": leader, "term": term})


def job_body(node, term, beat):
    """The leader-only job's body for one beat."""
    return _json({"node": node, "term": term, "beat": beat})


class Greeter:
    """What the greeter remembers: counts, recent events, beats, greetings."""

    def __init__(self, language):
        self.language = language
        self.node = ""
        self.greeting = DEFAULT_CONFIG["greeting"]
        self.period_ms = int(DEFAULT_CONFIG["period-ms"])
        self.counts = {name: 0 for name in CALLBACKS}
        self.events = []
        self.led_terms = []
        # (term, number) of every beat, in order; bounded like events.
        self.beats = []
        self.beat_count = 0
        # The pending wake-up's id while leading, else None.
        self.wake_up = None
        # The last greeting heard from each peer.
        self.greetings = {}
        # The HTTP URLs (see parse_http_config); both off by default.
        self.urls = dict.fromkeys(HTTP_KEYS)
        # The outcome of each recent request (see `sent`), oldest first.
        self.http = []
        self.http_sent = 0

    def note(self, callback, detail=""):
        """Counts `callback` and records it with its arguments."""
        self.counts[callback] += 1
        self.events.append(f"{callback} {detail}".rstrip())
        del self.events[:-MAX_EVENTS]

    def beat(self, term):
        """Counts one leader beat in `term`; returns the greeting to send."""
        self.beat_count += 1
        self.beats.append([term, self.beat_count])
        del self.beats[:-MAX_EVENTS]
        return f"{self.greeting} from {self.node}, leader of term {term}, beat {self.beat_count}"

    def sent(self, url, event, term, beat=None):
        """Records a request just made to `url` (for a leadership `event`,
        "leader" or "follower", or a "beat") as pending; returns its id,
        for `answered`."""
        self.http_sent += 1
        entry = {"id": self.http_sent, "url": url, "event": event, "term": term,
                 "error": "pending"}
        if beat is not None:
            entry["beat"] = beat
        self.http.append(entry)
        del self.http[:-MAX_HTTP]
        return self.http_sent

    def answered(self, id, status=None, error=None, late=False):
        """Records the outcome of request `id`: its HTTP `status`, or an
        `error` (the refusal, a timeout, ...). `late` marks an answer that
        came in a callback after the one that sent the request. An entry
        already dropped from the record is not brought back."""
        for entry in self.http:
            if entry["id"] == id:
                entry.pop("error", None)
                if status is not None:
                    entry["status"] = status
                else:
                    entry["error"] = error
                if late:
                    entry["late"] = True
                return

    def seen(self):
        """The `seen` answer: everything recorded, as JSON bytes."""
        return json.dumps(
            {
                "plugin": self.language,
                "node": self.node,
                "counts": self.counts,
                "events": self.events,
                "led-terms": self.led_terms,
                "beats": self.beats,
                "beat-count": self.beat_count,
                "greetings": self.greetings,
                "http": self.http,
            },
            sort_keys=True,
        ).encode()

    def encode(self):
        """The snapshot: a header line, then the state as JSON."""
        state = {
            "counts": self.counts,
            "events": self.events,
            "led-terms": self.led_terms,
            "beats": self.beats,
            "beat-count": self.beat_count,
            "greetings": self.greetings,
            "wake-up": self.wake_up,
            "http": self.http,
        }
        return f"{SNAPSHOT_HEADER}\n{json.dumps(state, sort_keys=True)}".encode()

    def decode(self, snapshot):
        """Takes over a snapshot from `encode` (the counts add up); empty
        means nothing to take over. Raises ValueError with the reason."""
        if not snapshot:
            return
        try:
            header, body = snapshot.decode().split("\n", 1)
        except (UnicodeDecodeError, ValueError):
            raise ValueError("snapshot is not a greeter snapshot") from None
        if header != SNAPSHOT_HEADER:
            raise ValueError(
                f"snapshot is not a greeter snapshot (expected first line `{SNAPSHOT_HEADER}`)"
            )
        # Read everything before changing anything: a refused snapshot
        # leaves this greeter as it was.
        try:
            state = json.loads(body)
            counts = {name: int(count) for name, count in state["counts"].items()}
            events = [str(e) for e in state["events"]][-MAX_EVENTS:]
            led_terms = [int(t) for t in state["led-terms"]]
            beats = [[int(t), int(n)] for t, n in state["beats"]][-MAX_EVENTS:]
            beat_count = int(state["beat-count"])
            greetings = {str(k): str(v) for k, v in state["greetings"].items()}
            wake_up = None if state["wake-up"] is None else int(state["wake-up"])
            # Optional: a snapshot from before HTTP egress has none.
            http = [_taken_over(e) for e in state.get("http", [])][-MAX_HTTP:]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"snapshot state is malformed: {e!r}") from None
        unknown = sorted(set(counts) - set(self.counts))
        if unknown:
            raise ValueError(f"snapshot names unknown callback `{unknown[0]}`")
        for name, count in counts.items():
            self.counts[name] += count
        self.events = events + self.events
        del self.events[:-MAX_EVENTS]
        self.led_terms, self.beats, self.beat_count = led_terms, beats, beat_count
        self.greetings, self.wake_up = greetings, wake_up
        self.http = http
        self.http_sent = max([self.http_sent] + [e["id"] for e in http])


def _taken_over(entry):
    """A request outcome from a snapshot, checked. A request still pending
    died with the instance that made it: its answer will never be read."""
    out = {"id": int(entry["id"]), "url": str(entry["url"]),
           "event": str(entry["event"]), "term": int(entry["term"])}
    if "beat" in entry:
        out["beat"] = int(entry["beat"])
    if "status" in entry:
        out["status"] = int(entry["status"])
    elif entry["error"] == "pending":
        out["error"] = "lost: the plugin was replaced before the answer came"
    else:
        out["error"] = str(entry["error"])
    if entry.get("late"):
        out["late"] = True
    return out
