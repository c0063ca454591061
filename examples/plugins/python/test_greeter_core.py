"""Unit tests of the greeter's logic, natively (no wasm, no bindings):

    python3 -m unittest test_greeter_core     # from this folder

build.sh runs them before every build.
"""

import json
import unittest

from dataclasses import dataclass
from typing import Optional

from greeter_core import (
    CALLBACKS,
    MAX_EVENTS,
    MAX_HTTP,
    SNAPSHOT_HEADER,
    ConfigError,
    Greeter,
    error_name,
    job_body,
    leadership_body,
    parse_config,
    parse_http_config,
)


class ConfigTest(unittest.TestCase):
    def test_defaults_and_overrides(self):
        self.assertEqual(parse_config([]), ("hello", 200))
        self.assertEqual(parse_config([("greeting", "hi"), ("period-ms", "10")]), ("hi", 10))

    def test_bad_config_is_refused_with_the_key(self):
        for pairs, reason in [
            ([("colour", "blue")], "unknown config key `colour` (known: greeting, period-ms)"),
            ([("period-ms", "soon")], "`period-ms`: `soon` is not a whole number"),
            ([("period-ms", "9")], "between 10 and 60000"),
            ([("period-ms", "60001")], "between 10 and 60000"),
            ([("period-ms", "-5")], "`-5` is not a whole number"),
            ([("period-ms", "")], "`` is not a whole number"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                parse_config(pairs)
            self.assertIn(reason, str(caught.exception))


class HttpConfigTest(unittest.TestCase):
    def test_off_unless_configured(self):
        self.assertEqual(parse_http_config([]), {"webhook": None, "job-url": None})
        self.assertEqual(parse_http_config([("webhook", "")])["webhook"], None)

    def test_the_http_keys_are_known_to_parse_config(self):
        pairs = [("greeting", "hi"), ("webhook", "http://h/x"), ("job-url", "http://h/j")]
        self.assertEqual(parse_config(pairs), ("hi", 200))
        with self.assertRaises(ConfigError) as caught:
            parse_config([("web-hook", "http://h/")])
        self.assertIn("HTTP egress adds job-url and webhook", str(caught.exception))

    def test_urls_become_request_parts(self):
        for url, scheme, authority, path in [
            ("http://127.0.0.1:8080/hook", "http", "127.0.0.1:8080", "/hook"),
            ("HTTPS://jobs.example.com", "https", "jobs.example.com", "/"),
            ("http://[::1]:9/a/b?term=1&x=y", "http", "[::1]:9", "/a/b?term=1&x=y"),
            ("http://h?q", "http", "h", "?q"),
        ]:
            parsed = parse_http_config([("job-url", url)])["job-url"]
            self.assertEqual(
                parsed, {"url": url, "scheme": scheme, "authority": authority, "path": path}
            )

    def test_a_bad_url_is_refused_with_the_key(self):
        for bad in [
            "ftp://h/x",
            "h/x",
            "http://",
            "http:/h/x",
            "http://user:pw@h/x",
            "http://h/x#part",
            "http://h:0/",
            "http://h:65536/",
            "http://h:port/",
            "http://h x/",
            "http://h/x y",
            " http://h/",
        ]:
            with self.assertRaises(ConfigError, msg=bad) as caught:
                parse_http_config([("webhook", bad)])
            self.assertIn(f"`webhook`: `{bad}` is not an http:// or https:// URL", str(caught.exception))


class HttpBodyTest(unittest.TestCase):
    def test_bodies_are_compact_sorted_json(self):
        self.assertEqual(leadership_body("n1", 3), b'{"event":"leader","node":"n1","term":3}')
        self.assertEqual(
            leadership_body("n1", 4, leader="n2", leading=False),
            b'{"event":"follower","leader":"n2","node":"n1","term":4}',
        )
        self.assertEqual(
            leadership_body("n1", 5, leading=False),
            b'{"event":"follower","leader":null,"node":"n1","term":5}',
        )
        self.assertEqual(job_body("n1", 3, 7), b'{"beat":7,"node":"n1","term":3}')

    def test_error_codes_go_by_their_wit_names(self):
        # Stand-ins for the binding's classes (wit_world.imports.wasi_http_types).
        class ErrorCode_HttpRequestDenied:
            pass

        class ErrorCode_DestinationIpProhibited:
            pass

        @dataclass
        class ErrorCode_InternalError:
            value: Optional[str]

        @dataclass
        class DnsErrorPayload:
            rcode: Optional[str]
            info_code: Optional[int]

        @dataclass
        class ErrorCode_DnsError:
            value: DnsErrorPayload

        self.assertEqual(error_name(ErrorCode_HttpRequestDenied()), "HTTP-request-denied")
        self.assertEqual(error_name(ErrorCode_DestinationIpProhibited()), "destination-IP-prohibited")
        self.assertEqual(error_name(ErrorCode_InternalError("boom")), "internal-error: boom")
        self.assertEqual(error_name(ErrorCode_InternalError(None)), "internal-error")
        self.assertEqual(
            error_name(ErrorCode_DnsError(DnsErrorPayload("NXDOMAIN", None))),
            "DNS-error: rcode=NXDOMAIN",
        )


class HttpRecordTest(unittest.TestCase):
    def test_a_request_is_pending_until_answered(self):
        greeter = Greeter("python")
        first = greeter.sent("http://h/hook", "leader", 3)
        second = greeter.sent("http://h/job", "beat", 3, beat=1)
        third = greeter.sent("http://h/job", "beat", 3, beat=2)
        self.assertEqual(json.loads(greeter.seen())["http"][0]["error"], "pending")
        greeter.answered(first, status=200)
        greeter.answered(second, error="HTTP-request-denied")
        greeter.answered(third, status=503, late=True)
        self.assertEqual(
            json.loads(greeter.seen())["http"],
            [
                {"id": 1, "url": "http://h/hook", "event": "leader", "term": 3, "status": 200},
                {"id": 2, "url": "http://h/job", "event": "beat", "term": 3, "beat": 1,
                 "error": "HTTP-request-denied"},
                {"id": 3, "url": "http://h/job", "event": "beat", "term": 3, "beat": 2,
                 "status": 503, "late": True},
            ],
        )

    def test_only_the_last_outcomes_are_kept(self):
        greeter = Greeter("python")
        for beat in range(MAX_HTTP + 5):
            greeter.sent("http://h/job", "beat", 1, beat=beat)
        self.assertEqual(len(greeter.http), MAX_HTTP)
        self.assertEqual(greeter.http[0]["id"], 6)
        greeter.answered(1, status=200)  # dropped already: not brought back
        self.assertEqual(len(greeter.http), MAX_HTTP)
        self.assertNotIn(1, [e["id"] for e in greeter.http])


class TenureHttpTest(unittest.TestCase):
    """The pure parts of tenure_http (the rest needs the node)."""

    def test_urls_split_into_what_a_request_takes(self):
        from tenure_http import HttpError, split_url
        self.assertEqual(split_url("http://127.0.0.1:8080/a?b=1"), ("http", "127.0.0.1:8080", "/a?b=1"))
        self.assertEqual(split_url("HTTPS://x.example"), ("https", "x.example", "/"))
        self.assertEqual(split_url("http://x?q"), ("http", "x", "/?q"))
        for bad in ("x.example/a", "ftp://x/", "http:///a", "http://a b/"):
            with self.assertRaises(HttpError):
                split_url(bad)


class RecordTest(unittest.TestCase):
    def test_events_are_bounded_but_counts_are_not(self):
        greeter = Greeter("python")
        for i in range(MAX_EVENTS + 50):
            greeter.note("on-scheduled", f"{i} beat")
        self.assertEqual(len(greeter.events), MAX_EVENTS)
        self.assertEqual(greeter.events[-1], f"on-scheduled {MAX_EVENTS + 49} beat")
        self.assertEqual(greeter.counts["on-scheduled"], MAX_EVENTS + 50)

    def test_beats_number_on_and_name_the_term(self):
        greeter = Greeter("python")
        greeter.node, greeter.greeting = "n1", "hi"
        self.assertEqual(greeter.beat(3), "hi from n1, leader of term 3, beat 1")
        self.assertEqual(greeter.beat(3), "hi from n1, leader of term 3, beat 2")
        seen = json.loads(greeter.seen())
        self.assertEqual(seen["beats"], [[3, 1], [3, 2]])
        self.assertEqual(seen["plugin"], "python")
        self.assertEqual(sorted(seen["counts"]), sorted(CALLBACKS))


class SnapshotTest(unittest.TestCase):
    def test_round_trip_adds_counts_and_keeps_the_rest(self):
        old = Greeter("python")
        old.note("init")
        old.note("on-become-leader", "2")
        old.led_terms, old.wake_up = [2], 7
        old.node = "n1"
        old.beat(2)
        old.greetings["n2"] = "hi from n2"
        new = Greeter("js")
        new.note("init")
        new.decode(old.encode())
        self.assertEqual(new.counts["init"], 2)
        self.assertEqual(new.counts["on-become-leader"], 1)
        self.assertEqual((new.led_terms, new.wake_up, new.beat_count), ([2], 7, 1))
        self.assertEqual(new.greetings, {"n2": "hi from n2"})
        self.assertEqual(new.events, ["init", "on-become-leader 2", "init"])

    def test_http_outcomes_carry_over_and_pending_ones_are_lost(self):
        old = Greeter("python")
        done = old.sent("http://h/hook", "leader", 2)
        old.answered(done, status=204)
        old.sent("http://h/job", "beat", 2, beat=1)
        new = Greeter("js")
        new.decode(old.encode())
        self.assertEqual(new.http[0]["status"], 204)
        self.assertEqual(
            new.http[1]["error"], "lost: the plugin was replaced before the answer came"
        )
        self.assertEqual(new.sent("http://h/job", "beat", 2, beat=2), 3, "ids go on")

    def test_a_snapshot_without_http_is_taken(self):
        state = json.loads(Greeter("python").encode().decode().split("\n", 1)[1])
        del state["http"]
        greeter = Greeter("python")
        greeter.decode(f"{SNAPSHOT_HEADER}\n{json.dumps(state)}".encode())
        self.assertEqual(greeter.http, [])

    def test_empty_snapshot_is_no_state(self):
        greeter = Greeter("python")
        greeter.decode(b"")
        self.assertEqual(greeter.counts["restore"], 0)

    def test_garbage_is_refused_with_a_reason(self):
        valid = json.loads(Greeter("python").encode().decode().split("\n", 1)[1])
        valid["counts"]["sing"] = 1
        for garbage, reason in [
            (b"\xff\xfe", "not a greeter snapshot"),
            (b"tenure-plugin-logger 1\ninit 1\n", "not a greeter snapshot"),
            (f"{SNAPSHOT_HEADER}\nnot json".encode(), "malformed"),
            (f"{SNAPSHOT_HEADER}\n{{}}".encode(), "malformed"),
            (f"{SNAPSHOT_HEADER}\n{json.dumps(valid)}".encode(), "unknown callback `sing`"),
            (f"{SNAPSHOT_HEADER}\n{json.dumps(dict(valid, http=[{'id': 1}]))}".encode(), "malformed"),
        ]:
            greeter = Greeter("python")
            greeter.note("init")
            before = greeter.encode()
            with self.assertRaises(ValueError) as caught:
                greeter.decode(garbage)
            self.assertIn(reason, str(caught.exception))
            self.assertEqual(greeter.encode(), before, "a refused snapshot changed the state")


if __name__ == "__main__":
    unittest.main()
