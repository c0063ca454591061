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
does not lead with a lease). Requests go through the `wasi:http` bindings
componentize-py generates (Python's urllib needs sockets, which a plugin
does not get). A callback waits for answers 50 ms at most, polling the
response futures together with a monotonic-clock timer; a request not
answered by then stays pending and is looked at again in later callbacks.
`seen` reports every outcome under `http`.

Built with componentize-py against the repository's wit/ (world `plugin`):
see build.sh. The class below binds greeter_core's logic to the WIT
`behaviour` interface; componentize-py finds it by its name.
"""

import json

from componentize_py_types import Err, Ok

from wit_world import exports
from wit_world.imports import leader_api, monotonic_clock, outgoing_handler, poll
from wit_world.imports import wasi_http_types as http
# `tenure:election/types`: named after its package, as wasi:http has a
# `types` interface too.
from wit_world.imports.tenure_election_types import LogLevel

from greeter_core import (
    HTTP_WAIT_MS,
    MAX_IN_FLIGHT,
    ConfigError,
    Greeter,
    error_name,
    job_body,
    leadership_body,
    parse_config,
    parse_http_config,
)

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


# --- HTTP egress, through the wasi:http bindings ---------------------------
#
# Every resource below is dropped explicitly (`__exit__`), children before
# their parents (a pollable before its future, the body's stream before the
# body), as wasi:http requires: left to the garbage collector, the order
# would be arbitrary and a parent dropped first traps.


class InFlight:
    """A request sent, its answer not yet read."""

    def __init__(self, id, future, callback):
        self.id = id
        self.future = future
        # Which callback sent it (`CALLS` then), to tell late answers.
        self.callback = callback


# Requests waiting for an answer, oldest first; across callbacks.
IN_FLIGHT = []
# Callbacks that settled so far: a request sent while CALLS was n and
# answered once it is past n was answered late, in a later callback.
CALLS = 0


def post(url, body, event, term, beat=None):
    """See `send`; an unexpected binding error is recorded, never raised
    (raised from `on-become-leader`, it would refuse leadership)."""
    id = STATE.sent(url["url"], event, term, beat)
    try:
        send(id, url, body)
    except Err as e:
        STATE.answered(id, error=f"the request could not be made: {e.value}")


def send(id, url, body):
    """POSTs `body` (JSON) to `url` (from parse_url) for request `id`,
    recorded as pending; `settle` reads the answer. A request the host
    refuses (`HTTP-request-denied`: not allowed, or a `leader` entry while
    this node does not lead with a lease) gets that error in its future,
    so it is recorded like any other outcome."""
    while len(IN_FLIGHT) >= MAX_IN_FLIGHT:
        oldest = IN_FLIGHT.pop(0)
        oldest.future.__exit__(None, None, None)  # the host stops that request
        STATE.answered(oldest.id, error="abandoned: still pending when more were sent")
    headers = http.Fields.from_list([("content-type", b"application/json")])
    request = http.OutgoingRequest(headers)
    try:
        request.set_method(http.Method_Post())
        request.set_scheme(http.Scheme_Https() if url["scheme"] == "https" else http.Scheme_Http())
        request.set_authority(url["authority"])
        request.set_path_with_query(url["path"])
    except Err:
        request.__exit__(None, None, None)
        STATE.answered(id, error="the URL does not make a valid request")
        return
    outgoing = request.body()
    stream = outgoing.write()
    try:
        # One small write (the API allows 4096 bytes): it fills the body's
        # buffer at once, before the request is even handed over.
        stream.blocking_write_and_flush(body)
    except Err as e:
        STATE.answered(id, error=f"writing the body failed: {e.value}")
        stream.__exit__(None, None, None)
        outgoing.__exit__(None, None, None)
        request.__exit__(None, None, None)
        return
    stream.__exit__(None, None, None)
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        outgoing.__exit__(None, None, None)
        STATE.answered(id, error=error_name(e.value))
        return
    try:
        http.OutgoingBody.finish(outgoing, None)
    except Err as e:
        future.__exit__(None, None, None)
        STATE.answered(id, error=error_name(e.value))
        return
    IN_FLIGHT.append(InFlight(id, future, CALLS))


def settle(wait_ms=HTTP_WAIT_MS):
    """Reads every answer that is in, waiting up to `wait_ms` for the rest
    (one poll on all the futures and a timer, so a slow server cannot make
    this callback overrun its deadline). What is still pending then stays
    in IN_FLIGHT for a later callback. Called once at the end of every
    callback that makes requests."""
    global CALLS
    try:
        if not IN_FLIGHT:
            return
        deadline = monotonic_clock.now() + wait_ms * 1_000_000
        while True:
            read_answers()
            if not IN_FLIGHT or monotonic_clock.now() >= deadline:
                return
            pollables = [r.future.subscribe() for r in IN_FLIGHT]
            timer = monotonic_clock.subscribe_instant(deadline)
            try:
                poll.poll(pollables + [timer])
            finally:
                timer.__exit__(None, None, None)
                for p in pollables:
                    p.__exit__(None, None, None)
    finally:
        CALLS += 1


def read_answers():
    """Records the outcome of every request whose answer is in."""
    for r in list(IN_FLIGHT):
        got = r.future.get()
        if got is None:
            continue
        IN_FLIGHT.remove(r)
        late = r.callback != CALLS
        if isinstance(got, Err):
            STATE.answered(r.id, error="the answer was already taken", late=late)
        elif isinstance(got.value, Ok):
            response = got.value.value
            STATE.answered(r.id, status=response.status(), late=late)
            response.__exit__(None, None, None)
        else:
            STATE.answered(r.id, error=error_name(got.value.value), late=late)
        r.future.__exit__(None, None, None)
