//! Nodes embedded in a Rust program (`tenure_host::embed`): three of them
//! in this test process, on one tokio runtime, each with its own ports
//! and data directory, driven only through the embedding API.

use std::time::{Duration, Instant};

use tenure_host::config::NodeConfig;
use tenure_host::embed::EmbeddedNode;
use tenure_host::testing::ports;

const IDS: [&str; 3] = ["n1", "n2", "n3"];
const BOUND: Duration = Duration::from_secs(15);

/// Three nodes' configs: planned ports, a data directory each under `dir`.
fn configs(dir: &std::path::Path) -> Vec<NodeConfig> {
    let listens: Vec<u16> = IDS.iter().map(|_| ports::port().expect("a port")).collect();
    let peers: String = IDS
        .iter()
        .zip(&listens)
        .map(|(id, port)| format!("{id} = \"127.0.0.1:{port}\"\n"))
        .collect();
    IDS.iter()
        .zip(&listens)
        .map(|(id, port)| {
            let text = format!(
                "node-id = \"{id}\"\ncluster-id = \"embed\"\nlisten = \"127.0.0.1:{port}\"\n\
                 data-dir = \"{id}\"\nsecret = \"embedded-test-secret-0123456789\"\n\
                 [peers]\n{peers}"
            );
            NodeConfig::parse(&text, dir).expect("a valid config")
        })
        .collect()
}

/// Waits until one of `nodes` leads with a lease: its index and guard.
async fn some_leader(nodes: &[&EmbeddedNode]) -> (usize, tenure_host::embed::LeaderGuard) {
    let waits = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Box::pin(async move { n.leading().await.map(|guard| (i, guard)) }));
    let (first, _, _) = futures_util::future::select_all(waits).await;
    first.expect("a leader")
}

#[tokio::test(flavor = "current_thread")]
async fn an_embedded_leader_stops_its_work_before_the_next_leader_starts() {
    let dir = std::env::temp_dir().join(format!("tenure-embed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut nodes = Vec::new();
    for config in configs(&dir) {
        nodes.push(EmbeddedNode::start(config).await.expect("starts"));
    }

    // One leads, with the term as its fencing token.
    let all: Vec<&EmbeddedNode> = nodes.iter().collect();
    let (first, guard) = tokio::time::timeout(BOUND, some_leader(&all))
        .await
        .expect("a leader within the bound");
    let token = guard.fencing_token();
    assert_eq!(nodes[first].leadership().term, token);
    assert!(!guard.is_lost());

    // A subscriber that comes late starts with the current state.
    let late = nodes[(first + 1) % 3].watch();
    assert_eq!(late.borrow().leader.as_deref(), Some(IDS[first]));

    // Step down: the guard is lost before any other node leads (both
    // awaited at once, each stamped when it completes).
    let others: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    let candidates: Vec<&EmbeddedNode> = others.iter().map(|&i| &nodes[i]).collect();
    nodes[first].step_down().await.expect("steps down");
    let lost = async {
        guard.lost().await;
        Instant::now()
    };
    let next_leader = async {
        let found = some_leader(&candidates).await;
        (Instant::now(), found)
    };
    let (lost_at, (next_at, (pick, next))) =
        tokio::time::timeout(BOUND, async { tokio::join!(lost, next_leader) })
            .await
            .expect("the guard is lost and another node leads");
    let second = others[pick];
    assert!(
        lost_at < next_at,
        "the next leader's guard came {:?} before the old one was lost",
        lost_at - next_at
    );
    println!(
        "the old guard was lost {:?} before the next leader's began",
        next_at - lost_at
    );
    assert!(next.fencing_token() > token, "a later term, a higher token");
    for node in &nodes {
        // Every subscriber ends on the latest state.
        assert_eq!(node.watch().borrow().clone(), node.leadership());
    }

    // A graceful shutdown of the leader hands leadership over first.
    let leader = nodes.remove(second);
    let started = Instant::now();
    leader.shutdown().await.expect("stops cleanly");
    assert!(next.is_lost(), "the guard of a node shut down is lost");
    let rest: Vec<&EmbeddedNode> = nodes.iter().collect();
    let (_, third) = tokio::time::timeout(BOUND, some_leader(&rest))
        .await
        .expect("a survivor leads");
    println!(
        "handed over on shutdown: a survivor leads term {} {:?} after shutdown began",
        third.fencing_token(),
        started.elapsed()
    );
    assert!(third.fencing_token() > next.fencing_token());
    drop(third);
    for node in nodes {
        node.shutdown().await.expect("stops");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
