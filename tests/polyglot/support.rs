//! The polyglot tests' helpers: the built greeters, a cluster of
//! `tenure run` processes sharing one artifact cache, and the greeters'
//! `seen` record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tenure_host::admin_client::request;

use super::kit;

/// How long a node may take to start: the first one compiles an 18 MB
/// component (about 15 s on an idle 2-core machine, several times that
/// under load).
pub(crate) const START_BOUND: Duration = Duration::from_secs(300);

/// How long anything else may take: an election, a failover, a few beats.
pub(crate) const BOUND: Duration = Duration::from_secs(20);

/// The greeter's beat period in these tests.
pub(crate) const PERIOD_MS: u64 = 100;

/// One cluster at a time: each compiles a large component, and two at once
/// on two cores would only slow both and blur the timings they print.
pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

/// The artifact cache every node of this run shares, created on first use
/// (caches that earlier runs left behind, whose process is gone, are
/// removed then: a compiled Python greeter is about 50 MB).
pub(crate) fn shared_cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let temp = std::env::temp_dir();
        for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("tenure-polyglot-cache-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = temp.join(format!("tenure-polyglot-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cache dir");
        dir
    })
}

/// How many tests this file has: the last to pass removes the cache.
pub(crate) const TESTS: usize = 7;

/// Marks a test passed; the last one removes the shared cache.
pub(crate) fn passed() {
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    if PASSED.fetch_add(1, Ordering::SeqCst) + 1 == TESTS {
        let _ = std::fs::remove_dir_all(shared_cache());
    }
}

/// A built greeter: `lang` is what its `seen` reply calls itself.
pub(crate) struct Greeter {
    pub(crate) lang: &'static str,
    pub(crate) wasm: PathBuf,
}

impl Greeter {
    pub(crate) fn new(lang: &'static str, file: &str) -> Greeter {
        let wasm = tenure_host::component_path::election_wasm().with_file_name(file);
        assert!(
            wasm.is_file(),
            "{} not found: build the polyglot plugins first with scripts/build-polyglot.sh",
            wasm.display()
        );
        Greeter { lang, wasm }
    }
}

/// How one node loaded its plugin, from its log: the cache outcome and
/// the milliseconds it took.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) cache: String,
    pub(crate) ms: f64,
}

/// Three `tenure run` processes running one greeter (the kit's
/// [`kit::Cluster`]), every node's `DATA-DIR/cache` a link to one shared
/// artifact cache.
pub(crate) struct Cluster {
    pub(crate) kit: kit::Cluster,
}

pub(crate) const ALL: [&str; 3] = ["n1", "n2", "n3"];

impl Cluster {
    /// Writes the configs and links every node's cache to one directory;
    /// starts nothing.
    pub(crate) fn new(name: &str, greeter: &Greeter) -> Cluster {
        Cluster::with(name, greeter, "", "")
    }

    /// Like [`Cluster::new`], with `plugin` lines added to each node's
    /// `[plugin]` table and `config` lines to its `[plugin.config]`.
    pub(crate) fn with(name: &str, greeter: &Greeter, plugin: &str, config: &str) -> Cluster {
        let plugin = format!(
            "[plugin]\npath = \"{}\"\n{plugin}[plugin.config]\nperiod-ms = \"{PERIOD_MS}\"\n\
             greeting = \"hi\"\n{config}",
            greeter.wasm.display()
        );
        let kit = kit::Cluster::configure(&format!("polyglot-{name}"), 3, |_| plugin.clone());
        for id in ALL {
            // The host keeps its artifacts in DATA-DIR/cache; a link makes
            // that one directory for all three nodes.
            let data = kit.data_dir(id);
            std::fs::create_dir_all(&data).expect("data dir");
            std::os::unix::fs::symlink(shared_cache(), data.join("cache")).expect("cache link");
        }
        Cluster { kit }
    }

    /// Starts node `id` and waits (at most [`START_BOUND`]) until its admin
    /// endpoint answers, which it does only once the plugin is loaded.
    /// Returns how the plugin was loaded.
    pub(crate) fn start(&mut self, id: &str) -> Load {
        self.kit.spawn(id);
        let deadline = Instant::now() + START_BOUND;
        while self.kit.status(id).is_none() {
            let exited = self.kit.wait_exit(id, Duration::ZERO);
            assert!(exited.is_none(), "{id} exited: {exited:?}\n{}", self.logs());
            assert!(
                Instant::now() < deadline,
                "{id} did not start within {START_BOUND:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = self.kit.local.log_since_start(id);
        plugin_load(&text).unwrap_or_else(|| panic!("{id} logged no plugin load:\n{text}"))
    }

    /// Runs a lone node whose greeter gets `config` (its `[plugin.config]`
    /// lines), sharing the cache; it must refuse to start. Returns its log.
    /// The node loads (and if need be compiles and caches) the component
    /// before `init` refuses, so this also warms the cache.
    pub(crate) fn refused_start(&self, greeter: &Greeter, config: &str) -> String {
        let plugin = format!(
            "[plugin]\npath = \"{}\"\n[plugin.config]\n{config}\n",
            greeter.wasm.display()
        );
        let mut lone = kit::Cluster::configure("polyglot-refused", 1, |_| plugin.clone());
        let data = lone.data_dir("n1");
        std::fs::create_dir_all(&data).expect("data dir");
        std::os::unix::fs::symlink(shared_cache(), data.join("cache")).expect("cache link");
        // Never waits longer than a start may take (the component may have
        // to be compiled first): a node that started after all is killed
        // when `lone` is dropped.
        match lone.spawn_expecting_exit("n1", START_BOUND) {
            Some((status, log)) => {
                assert!(!status.success(), "refused start exited 0:\n{log}");
                log
            }
            None => panic!(
                "a node with greeter config {config:?} kept running:\n{}",
                lone.logs()
            ),
        }
    }

    /// Starts n1 alone — it compiles the component unless an earlier test
    /// did — then n2 and n3, which must load the artifact n1's load left
    /// in the shared cache. Returns n1's load and the others' times.
    pub(crate) fn start_all(&mut self) -> (Load, Vec<f64>) {
        let first = self.start("n1");
        let mut cached = Vec::new();
        for id in ["n2", "n3"] {
            let load = self.start(id);
            assert_eq!(load.cache, "Hit", "{id} did not use the shared cache");
            cached.push(load.ms);
        }
        (first, cached)
    }

    pub(crate) fn kill9(&mut self, id: &str) {
        self.kit.kill9(id);
    }

    /// Waits until every node in `among` agrees on one leader among them
    /// that says it leads; returns it and its term.
    pub(crate) fn wait_for_leader(&self, among: &[&str]) -> (String, u64) {
        self.kit.wait_for_leader(among, BOUND)
    }

    /// `POST path` with `body` on node `id`: the status code and reply. A
    /// hot swap (`/plugin`) may have to compile, so it gets longer.
    pub(crate) fn call(&self, id: &str, path: &str, body: &[u8]) -> (u16, String) {
        let within = if path.starts_with("/plugin") {
            START_BOUND
        } else {
            BOUND
        };
        kit::block_on(request(self.kit.admin(id), "POST", path, body, within))
            .unwrap_or_else(|e| panic!("{id}: {e:#}\n{}", self.logs()))
    }

    /// What node `id`'s own plugin saw (its `seen` reply).
    pub(crate) fn seen(&self, id: &str) -> Seen {
        let (code, body) = self.call(id, "/call?local=true", b"seen");
        assert_eq!(code, 200, "{id}: {body}");
        Seen::parse(&body)
    }

    /// Waits until `ready` holds of node `id`'s `seen`; returns it.
    pub(crate) fn seen_when(&self, id: &str, what: &str, ready: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + BOUND;
        loop {
            let seen = self.seen(id);
            if ready(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: {what} within {BOUND:?}; its plugin saw {:#}\n{}",
                seen.json,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every (term, node) that some node's event log says became leader.
    pub(crate) fn leaders_by_term(&self) -> BTreeMap<u64, Vec<String>> {
        self.kit.leaders_by_term()
    }

    /// The last lines of every node's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        self.kit.logs()
    }
}

/// The `plugin loaded cache=Hit ms=12.3` line a node logs at start.
pub(crate) fn plugin_load(log: &str) -> Option<Load> {
    let line = log.lines().find(|l| l.contains("plugin loaded"))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .map(str::to_string)
    };
    Some(Load {
        cache: field("cache=")?,
        ms: field("ms=")?.parse().ok()?,
    })
}

/// A greeter's `seen` reply (see examples/plugins/python/greeter_core.py).
pub(crate) struct Seen {
    pub(crate) json: Value,
}

impl Seen {
    pub(crate) fn parse(body: &str) -> Seen {
        let json: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("`seen` is not JSON ({e}): {body}"));
        Seen { json }
    }

    pub(crate) fn count(&self, callback: &str) -> u64 {
        self.json["counts"][callback]
            .as_u64()
            .unwrap_or_else(|| panic!("no count for {callback}: {:#}", self.json))
    }

    pub(crate) fn events(&self) -> Vec<&str> {
        self.json["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e.as_str().expect("an event is text"))
            .collect()
    }

    pub(crate) fn saw(&self, event: &str) -> bool {
        self.events().contains(&event)
    }

    pub(crate) fn led_terms(&self) -> Vec<u64> {
        self.json["led-terms"]
            .as_array()
            .expect("led-terms")
            .iter()
            .map(|t| t.as_u64().expect("a term"))
            .collect()
    }

    /// The term of every beat.
    pub(crate) fn beat_terms(&self) -> Vec<u64> {
        self.json["beats"]
            .as_array()
            .expect("beats")
            .iter()
            .map(|b| b[0].as_u64().expect("a beat's term"))
            .collect()
    }

    pub(crate) fn beat_count(&self) -> u64 {
        self.json["beat-count"].as_u64().expect("beat-count")
    }

    pub(crate) fn greeting_from(&self, peer: &str) -> Option<&str> {
        self.json["greetings"][peer].as_str()
    }
}
