"""The greeter's logic, free of any WIT binding so it reads (and runs) as
plain Python.

The greeter is a leader-only heartbeat: while its node leads, it wakes up
every `period-ms`, logs a beat and broadcasts a greeting to its peers'
greeters. Every callback it sees is recorded, and `on-call` answers with
that record as JSON, so a test (or an operator with curl) can check what
the plugin saw. The JavaScript greeter in ../js answers the same requests
with the same JSON; only the `plugin` field differs.
"""

import json

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


class ConfigError(ValueError):
    """A config the greeter refuses; the message names the key."""


def parse_config(pairs):
    """The greeting and period from `init`'s key/value pairs."""
    config = dict(DEFAULT_CONFIG)
    for key, value in pairs:
        if key not in DEFAULT_CONFIG:
            known = ", ".join(sorted(DEFAULT_CONFIG))
            raise ConfigError(f"unknown config key `{key}` (known: {known})")
        config[key] = value
    period = config["period-ms"]
    if not period.isdigit() or not PERIOD_MIN_MS <= int(period) <= PERIOD_MAX_MS:
        raise ConfigError(
            f"`period-ms`: `{period}` is not a whole number of milliseconds "
            f"between {PERIOD_MIN_MS} and {PERIOD_MAX_MS}"
        )
    return config["greeting"], int(period)


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
