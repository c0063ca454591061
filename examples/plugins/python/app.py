"""A Tenure behaviour plugin in Python: the greeter.

While its node leads, the greeter wakes up every `period-ms` (default 200),
logs a beat and broadcasts a greeting to the greeters on the other nodes.
It records every callback it sees; `on-call` answers:

- `seen`: everything recorded, as JSON (see greeter_core.Greeter.seen);
- `ping`: `pong from NODE`;
- anything else: an error naming the requests it knows.

Config (`[plugin.config]` in the node's config): `greeting` (default
"hello") and `period-ms` (10 to 60000). Unknown keys or a bad period refuse
the plugin at `init`, with the reason.

Built with componentize-py against the repository's wit/ (world `plugin`):
see build.sh. The class below binds greeter_core's logic to the WIT
`behaviour` interface; componentize-py finds it by its name.
"""

import json

from componentize_py_types import Err

from wit_world import exports
from wit_world.imports import leader_api
from wit_world.imports.types import LogLevel

from greeter_core import ConfigError, Greeter, parse_config

# One greeter per plugin instance: the host instantiates the component
# afresh after a trap or a swap, which starts this module over.
STATE = Greeter("python")


def log(message, level=LogLevel.INFO):
    leader_api.log(level, message)


class Behaviour(exports.Behaviour):
    def init(self, config):
        STATE.node = leader_api.this_node()
        STATE.note("init", " ".join(f"{k}={v}" for k, v in config))
        try:
            STATE.greeting, STATE.period_ms = parse_config(config)
        except ConfigError as e:
            raise Err(str(e))
        log(f"greeter (python) ready on {STATE.node}: every {STATE.period_ms} ms while leading")

    def on_become_leader(self, term):
        STATE.note("on-become-leader", str(term))
        if term not in STATE.led_terms:
            STATE.led_terms.append(term)
        log(f"{STATE.greeting}: {STATE.node} leads term {term}")
        start_beating()

    def on_become_follower(self, leader, term):
        STATE.note("on-become-follower", f"{leader or 'none'} {term}")
        stop_beating()

    def on_peer_joined(self, peer):
        STATE.note("on-peer-joined", peer)

    def on_peer_left(self, peer):
        STATE.note("on-peer-left", peer)

    def on_term_changed(self, old, new):
        STATE.note("on-term-changed", f"{old} {new}")

    def on_message(self, sender, payload):
        text = payload.decode("utf-8", errors="replace")
        STATE.note("on-message", sender)
        STATE.greetings[sender] = text

    def on_call(self, request):
        text = request.decode("utf-8", errors="replace")
        STATE.note("on-call", text[:64])
        command = text.strip()
        if command == "seen":
            return STATE.seen()
        if command == "ping":
            return f"pong from {STATE.node}".encode()
        raise Err(f"unknown request {json.dumps(text[:64])}: try `seen` or `ping`")

    def on_scheduled(self, id, tag):
        STATE.note("on-scheduled", f"{id} {tag}")
        if id != STATE.wake_up:
            return  # a wake-up from a term this node no longer leads
        STATE.wake_up = None
        if not leader_api.is_leader():
            return
        term = leader_api.current_term()
        greeting = STATE.beat(term)
        log(greeting)
        leader_api.broadcast(greeting.encode())
        start_beating()

    def inspect(self):
        STATE.note("inspect")
        pairs = [(name, str(count)) for name, count in STATE.counts.items()]
        return pairs + [("beats", str(STATE.beat_count))]

    def snapshot(self):
        STATE.note("snapshot")
        return STATE.encode()

    def restore(self, snapshot):
        STATE.note("restore", f"{len(snapshot)} bytes")
        try:
            STATE.decode(snapshot)
        except ValueError as e:
            log(f"restore refused: {e}", LogLevel.WARN)
            raise Err(str(e))
        # Resume beating if this node leads and no wake-up carried over.
        if leader_api.is_leader() and STATE.wake_up is None:
            start_beating()


def start_beating():
    """Asks for the next beat, unless one is pending."""
    if STATE.wake_up is None:
        STATE.wake_up = leader_api.schedule(STATE.period_ms, "beat")


def stop_beating():
    if STATE.wake_up is not None:
        leader_api.cancel_schedule(STATE.wake_up)
        STATE.wake_up = None
