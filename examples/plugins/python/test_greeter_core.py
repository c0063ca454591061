"""Unit tests of the greeter's logic, natively (no wasm, no bindings):

    python3 -m unittest test_greeter_core     # from this folder

build.sh runs them before every build.
"""

import json
import unittest

from greeter_core import (
    CALLBACKS,
    MAX_EVENTS,
    SNAPSHOT_HEADER,
    ConfigError,
    Greeter,
    parse_config,
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
