//! The replay attack the transport's wire v2 closes, on real `tenure run`
//! processes: record a leader's connection to a follower, freeze the
//! leader, and play the recording back to its followers. Before v2 that
//! kept them loyal for as long as the replay went on (no election for
//! 20 s); now every replayed connection is refused and counted, and the
//! followers elect a new leader as if nothing were replayed.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kit::{BOUND, Cluster};

/// Forwards one connection at a time from `listener` to `target`, both
/// ways, keeping every byte sent towards `target`.
fn recording_proxy(listener: TcpListener, target: SocketAddr) -> Arc<Mutex<Vec<u8>>> {
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let keep = recorded.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let (mut from_client, mut to_server) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            let (mut from_server, mut to_client) = (server, client);
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = from_client.read(&mut buffer) {
                    if n == 0 || to_server.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    keep.lock()
                        .expect("recording")
                        .extend_from_slice(&buffer[..n]);
                }
            });
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = from_server.read(&mut buffer) {
                    if n == 0 || to_client.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    recorded
}

#[test]
fn a_recorded_leader_connection_replayed_to_its_followers_keeps_nobody_loyal() {
    let mut cluster = Cluster::configure("replay", 3, |_| String::new());
    // n1 reaches n2 through a recording proxy.
    let proxy = TcpListener::bind(("127.0.0.1", kit::free_port())).expect("a proxy port");
    let proxy_addr = proxy.local_addr().expect("address");
    let n2 = cluster.listen("n2");
    let config = cluster.local.config_path("n1");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(&format!("n2 = \"{n2}\""), &format!("n2 = \"{proxy_addr}\""));
    std::fs::write(&config, text).expect("config");
    let recorded = recording_proxy(proxy, n2);
    // n2 and n3 first, and n1 only once n2 answers: n1 dials n2 at once
    // when it starts, through the proxy, and keeps that connection. (Had
    // n2 not been up, n1 would learn n2's own address from n2's hello and
    // redial it directly, past the proxy: the test once recorded nothing.)
    cluster.spawn("n2");
    cluster.spawn("n3");
    let started = Instant::now();
    while cluster.status("n2").is_none() {
        assert!(
            started.elapsed() < BOUND,
            "n2 did not start\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.spawn("n1");
    let all = ["n1", "n2", "n3"];
    let (mut leader, _) = cluster.wait_for_leader(&all, BOUND);
    if leader != "n1" {
        kit::post(cluster.admin(&leader), "/transfer?to=n1", &[]);
        (leader, _) = cluster.wait_for_leader_where(&all, BOUND, "n1 leading", |l, _| l == "n1");
    }
    let term = cluster.status("n1").expect("n1 answers").term;
    // Record a second of n1's heartbeats to n2.
    std::thread::sleep(Duration::from_secs(1));
    let tape = recorded.lock().expect("recording").clone();
    assert!(tape.len() > 100, "only {} bytes recorded", tape.len());
    let before = cluster.status("n2").expect("n2 answers").transport.rejected;

    // Freeze the leader and replay the tape to both followers, on fresh
    // connections, every 20 ms.
    cluster.signal(&leader, libc::SIGSTOP);
    let frozen = Instant::now();
    let targets = [cluster.listen("n2"), cluster.listen("n3")];
    let replaying = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = replaying.clone();
    let replayer = std::thread::spawn(move || {
        let mut replays = 0u32;
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            for target in targets {
                if let Ok(mut stream) = TcpStream::connect(target) {
                    let _ = stream.write_all(&tape);
                    replays += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        replays
    });
    let (next, next_term) =
        cluster.wait_for_leader_where(&["n2", "n3"], BOUND, "a new leader", |l, t| {
            l != "n1" && t > term
        });
    let took = frozen.elapsed();
    replaying.store(false, std::sync::atomic::Ordering::Relaxed);
    let replays = replayer.join().expect("the replayer");
    let after = cluster.status("n2").expect("n2 answers").transport;
    eprintln!(
        "{replays} replays of {leader}'s recorded connection: {next} leads term {next_term} {took:?} \
         after the freeze; n2 refused {} frames",
        after.rejected - before
    );
    assert!(after.rejected > before, "{after:?}");
    assert!(
        took < Duration::from_secs(5),
        "the replay delayed the election: {took:?}"
    );
    cluster.signal(&leader, libc::SIGCONT);
    cluster.wait_for_leader(&all, BOUND);
    cluster.assert_one_leader_per_term();
}
