//! The simulator's speed: one simulated second of a steady cluster (after
//! an election) per iteration, for 5 and 51 nodes. Criterion's throughput
//! is in simulated milliseconds per wall second: divide by 1000 for
//! simulated seconds per wall second. `cargo bench -p tenure-host --bench sim`.

mod common;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tenure_host::sim::Simulation;

const MS: u64 = 1_000_000;

fn steady_cluster(c: &mut Criterion) {
    let component = common::component();
    let mut group = c.benchmark_group("simulated second");
    group.throughput(Throughput::Elements(1_000));
    for nodes in [5usize, 51] {
        let mut sim = Simulation::new(component.clone(), 1);
        sim.add_cluster("bench", nodes, |_| {}).expect("cluster");
        // Past the first election, so iterations measure the steady state.
        sim.run_for(2_000 * MS);
        if nodes > 5 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(20));
        }
        group.bench_function(format!("{nodes} nodes"), |b| {
            b.iter(|| sim.run_for(1_000 * MS))
        });
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
    group.finish();
}

criterion_group!(benches, steady_cluster);
criterion_main!(benches);
