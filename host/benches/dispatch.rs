//! One protocol event through the compiled component: the host hands a
//! follower's instance a leader's heartbeat (lowering the arguments), the
//! guest decodes it and encodes an acknowledgement, and the host collects
//! the effects. `cargo bench -p tenure-host --bench dispatch`; the same
//! event on the native core is `cargo bench -p tenure-election-core`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn heartbeat_to_follower(c: &mut Criterion) {
    let component = common::component();
    let (mut nodes, heartbeat) = common::elected(&component);
    let follower = &mut nodes[1];
    c.bench_function("component: follower handles a heartbeat", |b| {
        b.iter(|| {
            black_box(
                follower
                    .on_message("n1", black_box(&heartbeat))
                    .expect("handles"),
            )
        })
    });
    c.bench_function(
        "component: status() (the export; hosts keep the reported one)",
        |b| b.iter(|| black_box(follower.query_status().expect("status"))),
    );
}

criterion_group!(benches, heartbeat_to_follower);
criterion_main!(benches);
