//! A behaviour plugin callback round trip: the host calls into the plugin's
//! store (setting its epoch deadline, lowering the arguments), the plugin
//! runs and calls back into the host (here `log`), and the host collects
//! its effects. The logger plugin notes every callback, so each call below
//! includes one host import. `cargo bench -p tenure-host --bench plugin`.

mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tenure_host::plugin::{LeaderView, PluginComponent, PluginLimits, ViewClock, plugin_engine};

/// Where `scripts/build-guests.sh` puts the logger plugin.
fn logger_wasm() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("wasm32-wasip2/release/tenure_plugin_logger.wasm")
}

fn callbacks(c: &mut Criterion) {
    let component = common::component();
    let (nodes, _) = common::elected(&component);
    let status = nodes[1].status().clone();
    let (clock, _) = ViewClock::manual();
    let view = Arc::new(Mutex::new(LeaderView::from_status(&status, clock)));
    let engine = plugin_engine().expect("plugin engine");
    let plugin = PluginComponent::from_file(&engine, &logger_wasm())
        .expect("build the guests first: scripts/build-guests.sh");
    let limits = PluginLimits {
        deadline: Duration::from_millis(100),
        memory_bytes: 64 << 20,
        ..PluginLimits::default()
    };
    let mut instance = plugin
        .instantiate(view, &limits, Arc::new(AtomicU64::new(1)))
        .expect("instantiates");
    let (initialised, _) = instance.init(&[]).expect("init runs");
    initialised.expect("init succeeds");
    let sender = "n1".to_string();
    let payload = [7u8; 64];
    c.bench_function("plugin: on-message, 64 bytes (logger)", |b| {
        b.iter(|| {
            black_box(
                instance
                    .on_message(&sender, black_box(&payload))
                    .expect("runs"),
            )
        })
    });
    c.bench_function("plugin: on-term-changed (logger)", |b| {
        b.iter(|| black_box(instance.on_term_changed(1, 2).expect("runs")))
    });
}

criterion_group!(benches, callbacks);
criterion_main!(benches);
