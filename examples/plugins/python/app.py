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

HTTP egress, off unless configured: `webhook` (an http(s) URL) gets a POST
on every leadership change, `job-url` one on every beat while leading (the
leader-only job: the node's `[plugin] allow-http` puts it in `leader` mode,
so the host stamps it with the fencing token and refuses it when this node
does not lead with a lease). Requests go through tenure_http.py, a small
helper over the `wasi:http` bindings componentize-py generates (Python's
urllib needs sockets, which a plugin does not get): each starts at once,
and a callback waits for answers 50 ms at most; a request not answered by
then stays pending and is collected in a later callback. `seen` reports
every outcome under `http`.

Built with componentize-py against the repository's wit/ (world `plugin`):
see build.sh. The class below binds greeter_core's logic to the WIT
`behaviour` interface; componentize-py finds it by its name.
"""

import json

from componentize_py_types import Err

from wit_world import exports
from wit_world.imports import leader_api
# `tenure:election/types`: named after its package, as wasi:http has a
# `types` interface too.
from wit_world.imports.tenure_election_types import LogLevel

import tenure_http
from greeter_core import (
    HTTP_WAIT_MS,
    MAX_IN_FLIGHT,
    ConfigError,
    Greeter,
    job_body,
    leadership_body,
    parse_config,
    parse_http_config,
)

JSON = {"content-type": "application/json"}

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
            STATE.urls = parse_http_config(config)
        except ConfigError as e:
            raise Err(str(e))
        log(f"greeter (python) ready on {STATE.node}: every {STATE.period_ms} ms while leading")

    def on_become_leader(self, term):
        STATE.note("on-become-leader", str(term))
        if term not in STATE.led_terms:
            STATE.led_terms.append(term)
        log(f"{STATE.greeting}: {STATE.node} leads term {term}")
        start_beating()
        hook = STATE.urls["webhook"]
        if hook:
            post(hook, leadership_body(STATE.node, term), "leader", term)
        settle()

    def on_become_follower(self, leader, term):
        STATE.note("on-become-follower", f"{leader or 'none'} {term}")
        stop_beating()
        hook = STATE.urls["webhook"]
        if hook:
            body = leadership_body(STATE.node, term, leader=leader, leading=False)
            post(hook, body, "follower", term)
        settle()

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
            settle(wait_ms=0)  # answers that came meanwhile, without waiting
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
            settle()
            return
        term = leader_api.current_term()
        greeting = STATE.beat(term)
        log(greeting)
        leader_api.broadcast(greeting.encode())
        start_beating()
        job = STATE.urls["job-url"]
        if job:
            body = job_body(STATE.node, term, STATE.beat_count)
            post(job, body, "beat", term, beat=STATE.beat_count)
        settle()

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


# --- HTTP egress, through tenure_http (the node's wasi:http) -------------
#
# Start now, collect later: each post starts at once, and every callback
# that posts ends by collecting what came in, waiting HTTP_WAIT_MS at most;
# what is still pending then is collected in a later callback.

# Requests waiting for an answer, oldest first, across callbacks: (id in
# STATE's record, tenure_http.Pending, CALLS when it was sent).
PENDING = []
# Callbacks that settled so far: an answer collected once CALLS moved on
# came in a later callback than the one that sent the request.
CALLS = 0


def post(url, body, event, term, beat=None):
    """POSTs `body` (JSON) to `url` (from parse_url), recorded in STATE as
    pending until `settle` collects its outcome. Never raises (raised from
    `on-become-leader`, it would refuse leadership)."""
    id = STATE.sent(url["url"], event, term, beat)
    while len(PENDING) >= MAX_IN_FLIGHT:
        oldest_id, oldest, _ = PENDING.pop(0)
        oldest.close()  # the node stops that request
        STATE.answered(oldest_id, error="abandoned: still pending when more were sent")
    try:
        pending = tenure_http.start("POST", url["url"], body, JSON)
    except tenure_http.HttpError as e:
        STATE.answered(id, error=e.code or f"the request could not be made: {e}")
        return
    PENDING.append((id, pending, CALLS))


def settle(wait_ms=HTTP_WAIT_MS):
    """Records every answer that is in, waiting up to `wait_ms` for the
    rest. Called at the end of every callback that posts."""
    global CALLS
    try:
        tenure_http.wait([pending for _, pending, _ in PENDING], wait_ms)
        for entry in list(PENDING):
            id, pending, sent_in = entry
            late = sent_in != CALLS
            try:
                reply = pending.result()
            except tenure_http.HttpError as e:
                PENDING.remove(entry)
                STATE.answered(id, error=e.code or str(e), late=late)
                continue
            if reply is not None:
                PENDING.remove(entry)
                STATE.answered(id, status=reply.status, late=late)
    finally:
        CALLS += 1
