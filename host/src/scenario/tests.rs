//! Scenario parsing: every step and expectation, and the errors bad files
//! get (line, key, what was expected).

use std::path::Path;
use std::time::Duration;

use super::*;

const HEAD: &str = "[cluster]\nnodes = 3\n";

fn parsed(steps: &str) -> Scenario {
    parse(&format!("{HEAD}{steps}"), Path::new("s.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(text: &str) -> String {
    match parse(text, Path::new("s.toml")) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn only(steps: &str) -> Action {
    let mut scenario = parsed(steps);
    assert_eq!(scenario.steps.len(), 1);
    scenario.steps.remove(0).action
}

#[test]
fn the_cluster_table_has_defaults_and_the_name_is_the_file_stem() {
    let s = parsed("[[step]]\nrun = \"1s\"\n");
    assert_eq!(
        (s.nodes, s.first_seed, s.seeds, s.timings),
        (3, 1, 1, (150, 300, 50))
    );
    assert_eq!(s.name, "s");
    assert_eq!(s.plugins, vec![None, None, None]);
    let s = parse(
        "name = \"n\"\n[cluster]\nnodes = 5\nseed = 9\nseeds = 20\nelection-timeout-min-ms = 100\n\
         election-timeout-max-ms = 200\nheartbeat-ms = 20\n[[step]]\nrun = \"1s\"\n",
        Path::new("s.toml"),
    )
    .expect("parses");
    assert_eq!(
        (s.name.as_str(), s.nodes, s.first_seed, s.seeds, s.timings),
        ("n", 5, 9, 20, (100, 200, 20))
    );
}

#[test]
fn plugins_builds_and_per_node_overrides() {
    let text = "[cluster]\nnodes = 3\n\
        [plugin]\npath = \"p.wasm\"\nconfig = { period-ms = 100, greeting = \"hi\", on = true }\ndeadline-ms = 20\n\
        [builds.v2]\npath = \"sub/p2.wasm\"\nmemory-mib = 8\n\
        [nodes.n2]\nbuild = \"v2\"\nconfig = { greeting = \"yo\" }\n\
        [nodes.n3]\nplugin = false\n\
        [[step]]\nswap = { to = \"v2\", on = [\"n1\"] }\n";
    let s = parse(text, Path::new("dir/s.toml")).expect("parses");
    let n1 = s.plugins[0].as_ref().expect("n1 runs the plugin");
    assert_eq!(n1.path, Path::new("dir/p.wasm"));
    assert_eq!(n1.config["period-ms"], "100");
    assert_eq!(n1.config["on"], "true");
    assert_eq!(n1.deadline_ms, Some(20));
    let n2 = s.plugins[1].as_ref().expect("n2 runs v2");
    assert_eq!(
        (n2.path.as_path(), n2.memory_mib),
        (Path::new("dir/sub/p2.wasm"), Some(8))
    );
    assert_eq!(n2.config["greeting"], "yo");
    assert_eq!(s.plugins[2], None);
    assert!(s.builds.contains_key("v2"));
}

#[test]
fn plugin_paths_expand_environment_variables() {
    // SAFETY-free: a variable no other test reads.
    let text = "[cluster]\nnodes = 1\n[plugin]\npath = \"${TENURE_SCENARIO_TEST_UNSET:-fallback}/p.wasm\"\n[[step]]\nrun = \"1s\"\n";
    let s = parse(text, Path::new("s.toml")).expect("parses");
    assert_eq!(
        s.plugins[0].as_ref().map(|p| p.path.clone()),
        Some("fallback/p.wasm".into())
    );
    let error = refused(&text.replace(":-fallback", ""));
    assert!(
        error.contains("TENURE_SCENARIO_TEST_UNSET is not set"),
        "{error}"
    );
}

#[test]
fn every_step_parses() {
    let cases: Vec<(&str, &str)> = vec![
        ("elect = true", "elect within 3s"),
        ("elect = \"500ms\"", "elect within 500ms"),
        (
            "elect = { within = \"2s\", is = \"n2\", changed = true }",
            "elect within 2s, must be n2, must be a new leader",
        ),
        ("run = \"1.5s\"", "run 1500ms"),
        ("crash = \"leader\"", "crash leader"),
        (
            "crash = [\"n1\", \"previous-leader\"]",
            "crash n1, previous-leader",
        ),
        ("restart = \"crashed\"", "restart crashed"),
        (
            "pause = { node = \"followers\", for = \"1m\" }",
            "pause followers for 60s",
        ),
        (
            "partition = [[\"leader\"], [\"n2\", \"n3\"]]",
            "partition [leader] | [n2, n3]",
        ),
        (
            "cut = { from = \"leader\", to = \"all\" }",
            "cut leader -> all",
        ),
        ("heal = true", "heal"),
        (
            "network = { delay-ms = [1, 20.5], loss = 0.1 }",
            "network delay 1-20.5 ms, loss 0.1, duplicate 0, reorder 0",
        ),
        (
            "call = { request = \"ping\", reply = \"^pong\" }",
            "call leader with \"ping\"",
        ),
        (
            "call = { on = \"n3\", request = \"x\", error = \"unknown\" }",
            "call n3 with \"x\"",
        ),
        ("transfer = \"n3\"", "transfer leadership to n3"),
        ("transfer = { to = \"n2\" }", "transfer leadership to n2"),
        ("expect = { log = \"^beat\" }", "expect log /^beat/ on all"),
        (
            "expect = { log = \"x\", on = \"leader\", since = \"leader-elected\", count = 2 }",
            "expect log /x/ on leader since the leader was elected",
        ),
    ];
    for (step, shown) in cases {
        let action = only(&format!("[[step]]\n{step}\n"));
        assert_eq!(action.to_string(), shown, "{step}");
    }
    let Action::Network(n) =
        only("[[step]]\nnetwork = { delay-ms = [1, 20], reorder = 0.5, duplicate = 1 }\n")
    else {
        panic!("network");
    };
    assert_eq!(
        (n.min_delay_ns, n.max_delay_ns, n.reorder, n.duplicate),
        (1_000_000, 20_000_000, 0.5, 1.0)
    );
    let Action::Pause { duration, .. } =
        only("[[step]]\npause = { node = \"n1\", for = \"250ms\" }\n")
    else {
        panic!("pause");
    };
    assert_eq!(duration, Duration::from_millis(250));
}

#[test]
fn expectations_parse_with_their_defaults() {
    let Action::Expect(e) = only("[[step]]\nexpect = { log = \"^run\" }\n") else {
        panic!("expect");
    };
    assert_eq!((e.on.clone(), e.since), (Targets::All, Since::Start));
    assert_eq!(
        e.count,
        Count {
            at_least: Some(1),
            ..Count::default()
        },
        "no condition means at least one"
    );
    let Action::Expect(e) = only(
        "[[step]]\nexpect = { log = \"^run\", at-most = 3, at-least = 1, since = \"previous-step\", \
         nodes = [\"leader\"], while-leading = true, one-node-per-term = true }\n",
    ) else {
        panic!("expect");
    };
    assert_eq!(
        e.count,
        Count {
            exactly: None,
            at_least: Some(1),
            at_most: Some(3)
        }
    );
    assert_eq!(e.since, Since::PreviousStep);
    assert_eq!(e.nodes, Some(Targets::Nodes(vec![NodeRef::Leader])));
    assert!(e.while_leading && e.one_node_per_term);
    let Action::Expect(e) =
        only("[[step]]\nexpect = { log = \"^run\", one-node-per-term = true }\n")
    else {
        panic!("expect");
    };
    assert_eq!(
        e.count,
        Count::default(),
        "a condition given: no implicit count"
    );
}

#[test]
fn bad_files_name_the_line_the_key_and_what_was_expected() {
    let cases = [
        // (file, expected error)
        (
            "[cluster]\nnodes = 3\n[[step]]\nrun = 5\n",
            "s.toml:3: step 1: `run`: expected a duration with its unit",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nrun = \"5 parsecs\"\n",
            "s.toml:3: step 1: `run`: expected a duration like",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nrun = \"1s\"\ncrash = \"n1\"\n",
            "s.toml:3: step 1: a step has exactly one action",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\n",
            "s.toml:3: step 1: a step has exactly one action (elect, run",
        ),
        (
            "[cluster]\nnodes = 3\n\n[[step]]\nrun = \"1s\"\n\n[[step]]\ncrash = \"n4\"\n",
            "s.toml:7: step 2: `crash`: no node \"n4\": expected \"leader\", \"previous-leader\" or n1 to n3",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nelect = { within = \"1s\", bogus = 1 }\n",
            "`elect`: unknown key `bogus`; expected within, is, changed",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nexpect = { log = \"(\" }\n",
            "`expect`: bad regular expression \"(\"",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nexpect = { on = \"leader\" }\n",
            "`expect`: missing `log`",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nexpect = { log = \"x\", count = 1, at-least = 1 }\n",
            "give `count`, or `at-least`/`at-most`, not both",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nexpect = { log = \"x\", since = \"noon\" }\n",
            "since: expected \"start\", \"previous-step\" or \"leader-elected\"",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nswap = { to = \"v9\" }\n",
            "`swap`: to: no build \"v9\"; name one of [builds] (none defined)",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nnetwork = { loss = 2 }\n",
            "loss: expected a probability from 0 to 1",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nnetwork = { delay-ms = [5, 1] }\n",
            "delay-ms: expected [MIN, MAX] in milliseconds",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\ncall = { on = \"n1\" }\n",
            "`call`: missing `request`",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\nheal = false\n",
            "expected `heal = true`",
        ),
        (
            "[cluster]\nnodes = 3\n[[step]]\npartition = []\n",
            "expected at least one group",
        ),
        (
            "[cluster]\nnodes = 0\n[[step]]\nheal = true\n",
            "s.toml: cluster.nodes: expected 1 to 15, found 0",
        ),
        (
            "[cluster]\nnodes = 3\nheartbeat-ms = 500\n[[step]]\nheal = true\n",
            "expected 0 < heartbeat-ms < election-timeout-min-ms",
        ),
        ("[cluster]\nnodes = 3\n", "no steps"),
        (
            "[cluster]\nnodes = 3\nnode = 1\n[[step]]\nheal = true\n",
            "s.toml:3: unknown field `node`, expected one of `nodes`",
        ),
        (
            "[cluster]\nnodes = \"three\"\n[[step]]\nheal = true\n",
            "s.toml:2: invalid type: string \"three\", expected usize",
        ),
        ("[cluster\nnodes = 3\n", "s.toml:1:"),
        ("[[step]]\nheal = true\n", "missing field `cluster`"),
        (
            "[cluster]\nnodes = 3\n[nodes.n7]\nplugin = false\n[[step]]\nheal = true\n",
            "nodes.n7: no such node (this cluster has n1 to n3)",
        ),
        (
            "[cluster]\nnodes = 3\n[nodes.n1]\nbuild = \"v2\"\n[[step]]\nheal = true\n",
            "nodes.n1.build: no build \"v2\" in [builds]",
        ),
        (
            "[cluster]\nnodes = 3\n[plugin]\npath = \"p.wasm\"\nconfig = { a = [1] }\n[[step]]\nheal = true\n",
            "plugin.config.a: expected a string, number or boolean, found array",
        ),
    ];
    for (text, expected) in cases {
        let error = refused(text);
        assert!(
            error.contains(expected),
            "for {text:?}\n  got: {error}\n  expected: {expected}"
        );
    }
}

#[test]
fn durations_need_a_unit_and_a_sane_size() {
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    for bad in ["2", "s", "1h", "-1s", "0ms", "2 s", "1e3ms", "2d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert!(parse_duration("25h").is_err() || parse_duration("1441m").is_err());
    assert!(
        parse_duration("1441m")
            .unwrap_err()
            .contains("at most a day")
    );
}
