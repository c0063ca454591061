//! The behaviour plugin under test and the election component, each
//! compiled once per test process and shared by every cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::TestingError;
use crate::ElectionComponent;
use crate::artifact_cache::ArtifactCache;
use crate::plugin::{PluginComponent, PluginEngine, PluginLimits, plugin_engine};
use crate::sim::SimPlugin;

/// A compiled behaviour plugin with the config and limits each node will
/// run it with. Cheap to clone: the compiled component is shared.
///
/// ```no_run
/// use tenure_host::testing::Plugin;
///
/// # fn main() -> Result<(), tenure_host::testing::TestingError> {
/// let scheduler = Plugin::load("target/wasm32-wasip2/release/my_plugin.wasm")?
///     .config("period-ms", "500")
///     .deadline_ms(50);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Plugin {
    sim: SimPlugin,
}

impl Plugin {
    /// Compiles the plugin component at `path` (a `.wasm` built with
    /// `cargo build --release --target wasm32-wasip2`). The same path is
    /// compiled only once per process. Config starts empty; limits are
    /// the node's defaults (100 ms deadline, 64 MiB).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let plugin = tenure_host::testing::Plugin::load("my_plugin.wasm")?;
    /// # Ok(()) }
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Plugin, TestingError> {
        Plugin::load_cached(path.as_ref(), None)
    }

    /// Like [`Plugin::load`], compiling through the on-disk artifact
    /// `cache` when given: a build compiled before, by any process, skips
    /// Cranelift (seconds for a Python or JavaScript plugin). `tenure
    /// test` loads plugins this way.
    ///
    /// ```no_run
    /// # fn main() -> anyhow::Result<()> {
    /// let cache = tenure_host::artifact_cache::ArtifactCache::open("/tmp/artifacts".as_ref())?;
    /// let plugin = tenure_host::testing::Plugin::load_cached("greeter.wasm".as_ref(), Some(&cache))?;
    /// # Ok(()) }
    /// ```
    pub fn load_cached(path: &Path, cache: Option<&ArtifactCache>) -> Result<Plugin, TestingError> {
        let component = compiled(path, cache)?;
        Ok(Plugin {
            sim: SimPlugin {
                component,
                config: BTreeMap::new(),
                limits: PluginLimits::default(),
            },
        })
    }

    /// The same plugin with `key = value` added to the config its `init`
    /// receives (as the node's `[plugin.config]` table would give it).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let lock = tenure_host::testing::Plugin::load("lock.wasm")?.config("grace-ms", "1000");
    /// # Ok(()) }
    /// ```
    pub fn config(mut self, key: &str, value: &str) -> Plugin {
        self.sim.config.insert(key.to_string(), value.to_string());
        self
    }

    /// The same plugin with each callback limited to `ms` milliseconds
    /// (the node's `deadline-ms`). Deadlines are measured in real time,
    /// even in the simulator.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let plugin = tenure_host::testing::Plugin::load("p.wasm")?.deadline_ms(20);
    /// # Ok(()) }
    /// ```
    pub fn deadline_ms(mut self, ms: u64) -> Plugin {
        self.sim.limits.deadline = Duration::from_millis(ms);
        self
    }

    /// The same plugin with its memory capped at `mib` MiB (the node's
    /// `memory-mib`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let plugin = tenure_host::testing::Plugin::load("p.wasm")?.memory_mib(16);
    /// # Ok(()) }
    /// ```
    pub fn memory_mib(mut self, mib: usize) -> Plugin {
        self.sim.limits.memory_bytes = mib << 20;
        self
    }

    /// The same plugin allowed to reach `url` (`scheme://host[:port]`)
    /// over HTTP, as the node's `[plugin] allow-http` would allow it: only
    /// while its node leads with a lease, fenced with the term, when
    /// `leader_only`; from any node otherwise. Requests are real: point
    /// them at a server the test runs. An entry that does not parse is the
    /// harness's error.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let plugin = tenure_host::testing::Plugin::load("webhook.wasm")?
    ///     .allow_http("http://127.0.0.1:9000", true)?;
    /// # Ok(()) }
    /// ```
    pub fn allow_http(mut self, url: &str, leader_only: bool) -> Result<Plugin, TestingError> {
        use crate::plugin::egress::{EgressMode, EgressRule};
        let mode = if leader_only {
            EgressMode::Leader
        } else {
            EgressMode::Any
        };
        let rule = EgressRule::parse(url, mode).map_err(|e| TestingError::Load {
            what: format!("allow-http entry {url:?}"),
            reason: format!("{e:#}"),
        })?;
        let mut egress = (*self.sim.limits.egress).clone();
        egress.rules.push(rule);
        self.sim.limits.egress = std::sync::Arc::new(egress);
        Ok(self)
    }

    /// The simulator's description of this plugin, for code that drives
    /// [`crate::sim::Simulation`] directly.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let plugin = tenure_host::testing::Plugin::load("p.wasm")?;
    /// let spec = tenure_host::sim::NodeSpec::new("n1", "c", &["n1"]).with_plugin(plugin.sim_plugin());
    /// # Ok(()) }
    /// ```
    pub fn sim_plugin(&self) -> SimPlugin {
        self.sim.clone()
    }

    /// The compiled component (for [`super::Cluster::swap`] and
    /// [`crate::sim::Simulation::swap_plugin`]).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), tenure_host::testing::TestingError> {
    /// let plugin = tenure_host::testing::Plugin::load("p.wasm")?;
    /// println!("sha256 {}", plugin.component().sha256());
    /// # Ok(()) }
    /// ```
    pub fn component(&self) -> Arc<PluginComponent> {
        self.sim.component.clone()
    }
}

/// The plugin at `path`, compiled once per process.
fn compiled(
    path: &Path,
    disk: Option<&ArtifactCache>,
) -> Result<Arc<PluginComponent>, TestingError> {
    static CACHE: OnceLock<Mutex<BTreeMap<PathBuf, Arc<PluginComponent>>>> = OnceLock::new();
    let engine = engine()?;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(component) = cache.get(path) {
        return Ok(component.clone());
    }
    if !path.is_file() {
        return Err(TestingError::PluginNotBuilt {
            path: path.to_path_buf(),
        });
    }
    let load_error = |e: anyhow::Error| TestingError::Load {
        what: path.display().to_string(),
        reason: format!("{e:#}"),
    };
    let component = match disk {
        None => PluginComponent::from_file(&engine, path).map_err(load_error)?,
        Some(disk) => {
            let bytes = std::fs::read(path)
                .map_err(|e| load_error(anyhow::Error::new(e).context("reading the plugin")))?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            PluginComponent::from_cache(&engine, disk, &name, &bytes)
                .map_err(load_error)?
                .0
        }
    };
    let component = Arc::new(component);
    cache.insert(path.to_path_buf(), component.clone());
    Ok(component)
}

/// The process's plugin engine (with its epoch ticker).
fn engine() -> Result<PluginEngine, TestingError> {
    static ENGINE: OnceLock<Result<PluginEngine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| plugin_engine().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|reason| TestingError::Load {
            what: "the plugin engine".into(),
            reason,
        })
}

/// The election component, compiled once per process: from
/// `$TENURE_ELECTION_WASM` if set, else this repository's build
/// (`scripts/build-guests.sh`), else the copy embedded in this crate when
/// it was built after the component.
pub(super) fn election() -> Result<Arc<ElectionComponent>, TestingError> {
    static ELECTION: OnceLock<Result<Arc<ElectionComponent>, String>> = OnceLock::new();
    ELECTION
        .get_or_init(|| {
            let path = crate::component_path::election_wasm();
            let from_env = std::env::var_os(crate::component_path::ELECTION_WASM_ENV).is_some();
            match crate::builtin::ELECTION {
                Some(bytes) if !from_env && !path.is_file() => {
                    let engine = wasmtime::Engine::default();
                    ElectionComponent::from_bytes(&engine, bytes)
                        .map(Arc::new)
                        .map_err(|e| format!("{e:#}"))
                }
                _ => crate::component_path::load_election(Some(path)).map_err(|e| format!("{e:#}")),
            }
        })
        .clone()
        .map_err(|reason| TestingError::Load {
            what: "the election component".into(),
            reason,
        })
}
