"""HTTP from a Tenure behaviour plugin in Python, through its node
(`wasi:http`; Python's urllib needs sockets, which a plugin does not get).

    import tenure_http

    reply = tenure_http.post("http://127.0.0.1:8080/hook", b'{"up":true}',
                             headers={"content-type": "application/json"})
    reply.status, reply.body           # 200, b"..."

The node sends only what its `[plugin] allow-http` lists (scheme, host,
port); an entry in `leader` mode only while this node leads with a lease,
and then with the fencing token in a header the plugin cannot set itself.
A refused request raises `Refused`: nothing left the node.

A callback has a deadline (100 ms by default) that counts time spent
waiting, so `get`/`post`/`request` wait `wait_ms` at most (default 50) and
then raise `Timeout`, abandoning the request. A call that may take longer
starts now and is collected later, in a later callback:

    pending = tenure_http.start("POST", url, body, headers)   # returns at once
    ...                                  # keep it, e.g. until the next wake-up
    reply = pending.result()             # None while not in; else the reply
    tenure_http.wait([p1, p2], 20)       # or wait for some, 20 ms at most

An answer that is in holds one of the node's `http-max-concurrent` slots
until `result()` takes it (or `close()` abandons the request): take it.

Natively (unit tests) the wasi:http bindings are absent; only `split_url`
and `error_name` work there.
"""

import re

try:
    from componentize_py_types import Err, Ok
    from wit_world.imports import monotonic_clock, outgoing_handler, poll
    from wit_world.imports import wasi_http_types as wasi
    from wit_world.imports.streams import StreamError_Closed
except ImportError:  # natively: the pure helpers only
    wasi = None

__all__ = ["HttpError", "Pending", "Refused", "Response", "Timeout",
           "error_name", "get", "post", "request", "split_url", "start", "wait"]

# Bytes per body write (what `blocking-write-and-flush` takes at most) and
# per body read.
_WRITE_CHUNK = 4096
_READ_CHUNK = 64 << 10


class HttpError(Exception):
    """A request that brought no response; `code` is the `wasi:http`
    error-code's WIT name (`connection-refused`, ...) or None."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Refused(HttpError):
    """The node refused the request before sending it."""


class Timeout(HttpError):
    """No response within the node's timeouts, or within `wait_ms`."""


class Response:
    """A response, read whole: `status`, `headers` ((name, bytes) pairs,
    lowercase names) and `body` (bytes)."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def header(self, name):
        """The first value of header `name`, as text; None if absent."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value.decode("utf-8", errors="replace")
        return None


def split_url(url):
    """(scheme, authority, path-with-query) of an http(s) URL; raises
    HttpError for anything else."""
    match = re.fullmatch(r"(https?)://([^/?#\s]+)([/?][^#\s]*)?", url, re.IGNORECASE)
    if not match:
        raise HttpError(f"{url!r} is not an http:// or https:// URL with a host")
    path = match[3] or "/"
    return match[1].lower(), match[2], path if path.startswith("/") else "/" + path


def error_name(code):
    """A `wasi:http` error-code (a binding's `ErrorCode_...` value) by its
    WIT name, with its payload if it has one: `HTTP-request-denied`,
    `connection-refused`, `internal-error: reason`."""
    name = type(code).__name__
    if name.startswith("ErrorCode_"):
        name = name[len("ErrorCode_"):]
    words = re.findall(r"[A-Z][a-z0-9]*", name) or [name]
    words = [w.upper() if w in ("Dns", "Tls", "Http", "Ip", "Uri") else w.lower() for w in words]
    text = "-".join(words)
    payload = getattr(code, "value", None)
    if isinstance(payload, (str, int)):
        text += f": {payload}"
    elif payload is not None:
        fields = {k: v for k, v in vars(payload).items() if v is not None}
        if fields:
            text += ": " + " ".join(f"{k.replace('_', '-')}={v}" for k, v in fields.items())
    return text


def _error(code):
    name = error_name(code)
    if name == "HTTP-request-denied":
        return Refused("refused by the node: not in its [plugin] allow-http, a leader-mode "
                       "entry while it does not lead with a lease, or too many requests in "
                       "flight (the node's log says which)", name)
    if name in ("connection-timeout", "connection-read-timeout", "HTTP-response-timeout"):
        return Timeout(f"timed out ({name})", name)
    return HttpError(f"the request failed: {name}", name)


class Pending:
    """A request the node is carrying out; see `start`. Every wasi:http
    resource is dropped explicitly, children before parents, as wasi:http
    requires (left to the garbage collector the order would be arbitrary,
    and a parent dropped first traps)."""

    def __init__(self, future):
        self._future = future

    def result(self):
        """The Response if it is in (raising HttpError if the request
        failed), None if not yet. Once it answered, the request is done."""
        if self._future is None:
            raise HttpError("this request's answer was taken already")
        got = self._future.get()
        if got is None:
            return None
        self.close()
        if isinstance(got, Err):
            raise HttpError("this request's answer was taken already")
        if not isinstance(got.value, Ok):
            raise _error(got.value.value)
        return _read(got.value.value)

    def close(self):
        """Abandons the request (the node stops it) or lets go of its answer."""
        if self._future is not None:
            self._future.__exit__(None, None, None)
            self._future = None


def _read(response):
    try:
        fields = response.headers()
        headers = fields.entries()
        fields.__exit__(None, None, None)
        body = response.consume()
        chunks, failed = [], None
        stream = body.stream()
        try:
            while True:
                chunks.append(stream.blocking_read(_READ_CHUNK))
        except Err as e:
            if not isinstance(e.value, StreamError_Closed):
                failed = e.value
        finally:
            stream.__exit__(None, None, None)
        wasi.IncomingBody.finish(body).__exit__(None, None, None)
        if failed is not None:
            raise HttpError(f"reading the response failed: {failed}")
        return Response(response.status(), headers, b"".join(chunks))
    finally:
        response.__exit__(None, None, None)


def _ready(future):
    pollable = future.subscribe()
    try:
        return pollable.ready()
    finally:
        pollable.__exit__(None, None, None)


_METHODS = {"GET": "Get", "HEAD": "Head", "POST": "Post", "PUT": "Put",
            "DELETE": "Delete", "PATCH": "Patch", "OPTIONS": "Options"}


def start(method, url, body=b"", headers=None):
    """Hands the request to the node and returns a Pending at once. Raises
    HttpError if the request cannot be made (a bad URL, method or header —
    the fencing header among them: that one is the node's to set)."""
    scheme, authority, path = split_url(url)
    entries = [(k.lower(), v.encode() if isinstance(v, str) else v)
               for k, v in (headers or {}).items()]
    if body and not any(k == "content-length" for k, _ in entries):
        entries.append(("content-length", str(len(body)).encode()))
    try:
        fields = wasi.Fields.from_list(entries)
    except Err as e:
        raise HttpError(f"the node refused a header ({e.value}); the fencing header is its own")
    request = wasi.OutgoingRequest(fields)
    try:
        known = _METHODS.get(method.upper())
        request.set_method(getattr(wasi, f"Method_{known}")() if known
                           else wasi.Method_Other(method.upper()))
        request.set_scheme(wasi.Scheme_Https() if scheme == "https" else wasi.Scheme_Http())
        request.set_authority(authority)
        request.set_path_with_query(path)
        outgoing = request.body()
    except Err:
        request.__exit__(None, None, None)
        raise HttpError(f"{method} {url} does not make a valid request")
    try:
        # Handed over before the body is written: the node reads the body
        # as it is written.
        future = outgoing_handler.handle(request, None)
    except Err as e:
        outgoing.__exit__(None, None, None)
        raise _error(e.value)
    try:
        stream = outgoing.write()
        try:
            for i in range(0, len(body), _WRITE_CHUNK):
                stream.blocking_write_and_flush(body[i:i + _WRITE_CHUNK])
        finally:
            stream.__exit__(None, None, None)
    except Err:
        # The exchange ended early (the answer says how), or the body could
        # not be written: dropped unfinished, it fails the request.
        outgoing.__exit__(None, None, None)
        return Pending(future)
    try:
        wasi.OutgoingBody.finish(outgoing, None)
    except Err:
        pass  # the answer says what went wrong
    return Pending(future)


def wait(pendings, wait_ms):
    """Waits until every one of `pendings` is in, or `wait_ms` passed (one
    poll on them all and a timer, so a slow server cannot make a callback
    overrun its deadline)."""
    deadline = monotonic_clock.now() + int(wait_ms * 1_000_000)
    while True:
        waiting = [p._future for p in pendings
                   if p._future is not None and not _ready(p._future)]
        if not waiting or monotonic_clock.now() >= deadline:
            return
        pollables = [f.subscribe() for f in waiting]
        timer = monotonic_clock.subscribe_instant(deadline)
        try:
            poll.poll(pollables + [timer])
        finally:
            timer.__exit__(None, None, None)
            for p in pollables:
                p.__exit__(None, None, None)


def request(method, url, body=b"", headers=None, wait_ms=50):
    """Sends a request and waits at most `wait_ms` for its Response; raises
    Refused, Timeout (the request is abandoned then) or HttpError."""
    pending = start(method, url, body, headers)
    wait([pending], wait_ms)
    reply = pending.result()
    if reply is None:
        pending.close()
        raise Timeout(f"no answer from {url} within {wait_ms} ms")
    return reply


def get(url, headers=None, wait_ms=50):
    """`GET url`; see `request`."""
    return request("GET", url, b"", headers, wait_ms)


def post(url, body, headers=None, wait_ms=50):
    """`POST url` with `body` (bytes, or text sent as UTF-8); see `request`."""
    return request("POST", url, body.encode() if isinstance(body, str) else body,
                   headers, wait_ms)
