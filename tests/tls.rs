//! Mutual TLS between real `tenure run` processes: `tenure certs` makes
//! the files, a cluster elects and fails over on them, a certificate of
//! another CA or an expired one is refused and counted, and a rotated
//! certificate is picked up on SIGHUP without a restart.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use kit::{BOUND, CLUSTER_ID, Cluster};
use tenure_host::admin_client::{Credentials, exchange, exchange_as, fetch_status_as};

/// Runs `tenure certs` for `nodes` into `out`.
fn make_certs(out: &Path, nodes: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["certs", "--cluster", CLUSTER_ID, "--out"])
        .arg(out)
        .args(nodes)
        .output()
        .expect("tenure certs runs");
    assert!(output.status.success(), "{output:?}");
}

/// Node `id`'s config with `[tls]` (files `cert`/`key` in `dir`) in place
/// of the kit's shared secret.
fn use_tls(cluster: &Cluster, id: &str, dir: &Path, cert: &str) {
    cluster.local.use_tls(id, dir, cert).expect("a TLS config");
}

fn mode(path: PathBuf) -> u32 {
    std::fs::metadata(&path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_cluster_on_mutual_tls_elects_fails_over_refuses_strangers_and_rotates() {
    let mut cluster = Cluster::configure("tls", 3, |_| String::new());
    let certs = cluster.dir.join("certs");
    make_certs(&certs, &["n1", "n2", "n3"]);
    assert_eq!(mode(certs.join("ca.key")), 0o600);
    assert_eq!(mode(certs.join("n1.key")), 0o600);
    for id in ["n1", "n2", "n3"] {
        use_tls(&cluster, id, &certs, id);
        cluster.spawn(id);
    }
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);

    // kill -9 the leader: the survivors elect another over TLS.
    let killed = Instant::now();
    cluster.kill9(&leader);
    let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&survivors, BOUND);
    eprintln!(
        "mutual TLS: kill -9 of {leader} (term {term}) -> {next} leads term {next_term} after {:?} \
         (includes status polling)",
        killed.elapsed()
    );
    assert!(next_term > term);
    cluster.spawn(&leader);
    cluster.wait_for_leader(&all, BOUND);

    // A node whose certificate comes from another CA cannot talk to the
    // cluster: it refuses their certificates (the dialler checks the
    // listener's first, so the refusal is counted on its side), and it
    // never learns a leader.
    let strangers = cluster.dir.join("strangers");
    make_certs(&strangers, &["n4"]);
    cluster.add_joiner("n4", &["n1", "n2", "n3"]);
    use_tls(&cluster, "n4", &strangers, "n4");
    cluster.spawn("n4");
    let deadline = Instant::now() + BOUND;
    let refused = loop {
        let report = cluster.status("n4");
        if let Some(report) = report.filter(|r| r.transport.certificate_refused > 0) {
            assert!(
                report.leader.is_none(),
                "a stranger learned the leader: {report:?}"
            );
            break report.transport.certificate_refused;
        }
        assert!(
            Instant::now() < deadline,
            "n4 was not refused\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("a certificate of another CA: {refused} connection(s) refused");
    let members = cluster.status(&next).expect("the leader answers").members;
    assert!(!members.contains(&"n4".to_string()), "{members:?}");
    // A node given another node's certificate does not start at all.
    cluster.kill9("n4");
    use_tls(&cluster, "n4", &certs, "n2");
    let (status, log) = cluster
        .spawn_expecting_exit("n4", BOUND)
        .expect("an impostor does not start");
    assert!(!status.success());
    assert!(log.contains("names node \"n2\""), "{log}");

    // Rotation: new certificates from the same CA, then SIGHUP.
    make_certs(&certs, &["n1"]);
    cluster.signal("n1", libc::SIGHUP);
    cluster.wait_for_log("n1", "TLS certificate reloaded", BOUND);
    // Its peers reconnect to it afresh (n2 restarts) and n1 dials them
    // with the new certificate: the cluster still agrees.
    cluster.kill9("n2");
    cluster.spawn("n2");
    cluster.wait_for_leader(&all, BOUND);

    // An expired certificate: n3 restarts on one and is refused.
    let ca = tenure_transport::certs::CaFiles {
        cert_pem: std::fs::read_to_string(certs.join("ca.pem")).expect("ca"),
        key_pem: std::fs::read_to_string(certs.join("ca.key")).expect("ca key"),
    };
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let expired = tenure_transport::certs::issue_node_between(
        &ca,
        CLUSTER_ID,
        "n3",
        &[],
        now - 3 * day,
        now - day,
    )
    .expect("an expired certificate");
    std::fs::write(certs.join("n3-expired.pem"), expired.cert_pem).expect("write");
    std::fs::write(certs.join("n3-expired.key"), expired.key_pem).expect("write");
    let before: u64 = ["n1", "n2"]
        .iter()
        .filter_map(|id| cluster.status(id))
        .map(|r| r.transport.certificate_refused)
        .sum();
    cluster.kill9("n3");
    use_tls(&cluster, "n3", &certs, "n3-expired");
    cluster.spawn("n3");
    let deadline = Instant::now() + BOUND;
    loop {
        let after: u64 = ["n1", "n2"]
            .iter()
            .filter_map(|id| cluster.status(id))
            .map(|r| r.transport.certificate_refused)
            .sum();
        if after > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n3's expired certificate was not refused\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.wait_for_leader(&["n1", "n2"], BOUND);
    cluster.assert_one_leader_per_term();
}

#[test]
fn the_admin_endpoint_speaks_https_and_takes_admin_certificates_instead_of_tokens() {
    let mut cluster = Cluster::configure("tls-admin", 1, |_| {
        "[admin-auth]\ntokens-file = \"admin-tokens\"\n\
         [admin-tls]\ncert = \"certs/n1.pem\"\nkey = \"certs/n1.key\"\nclient-ca = \"certs/ca.pem\"\n"
            .to_string()
    });
    let certs = cluster.dir.join("certs");
    let output = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["certs", "--cluster", CLUSTER_ID, "--out"])
        .arg(&certs)
        .args(["--san", "n1=127.0.0.1", "--admin", "ops", "n1"])
        .output()
        .expect("tenure certs runs");
    assert!(output.status.success(), "{output:?}");
    const TOKEN: &str = "4f1d8c2a9e7b3605d1c4e8f2a6b9037e";
    std::fs::write(cluster.dir.join("admin-tokens"), format!("ci {TOKEN}\n")).expect("tokens");
    cluster.spawn("n1");
    let admin = cluster.admin("n1");
    let ca = certs.join("ca.pem");
    let https = Credentials::none()
        .with_tls(&ca, None)
        .expect("a TLS client");
    let deadline = Instant::now() + BOUND;
    loop {
        let report = kit::block_on(fetch_status_as(admin, &https, Duration::from_secs(1)));
        if report.is_ok_and(|r| r.role == "leader") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no leader over HTTPS\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Plain HTTP gets no answer.
    let plain = kit::block_on(exchange(
        admin,
        "GET",
        "/status",
        &[],
        Duration::from_secs(2),
    ));
    assert!(plain.is_err() || plain.is_ok_and(|r| r.code != 200));

    let tenure = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tenure"))
            .env_remove("TENURE_ADMIN_TOKEN")
            .env_remove("TENURE_ADMIN_TOKEN_FILE")
            .args(args)
            .args(["--admin", &admin.to_string()])
            .output()
            .expect("tenure runs")
    };
    let ca_arg = ca.to_string_lossy().to_string();
    let path = |name: &str| certs.join(name).to_string_lossy().to_string();
    let status = tenure(&["status", "--ca", &ca_arg]);
    assert!(status.status.success(), "{status:?}");
    // No token and no certificate: 401.
    let refused = tenure(&["step-down", "--ca", &ca_arg]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{refused:?}"
    );
    // A member's node certificate is no admin credential.
    let (n1_pem, n1_key) = (path("n1.pem"), path("n1.key"));
    let member = tenure(&[
        "step-down",
        "--ca",
        &ca_arg,
        "--client-cert",
        &n1_pem,
        "--client-key",
        &n1_key,
    ]);
    assert!(
        String::from_utf8_lossy(&member.stderr).contains("401"),
        "{member:?}"
    );
    // The admin certificate is.
    let (ops_pem, ops_key) = (path("ops-admin.pem"), path("ops-admin.key"));
    let by_cert = tenure(&[
        "step-down",
        "--ca",
        &ca_arg,
        "--client-cert",
        &ops_pem,
        "--client-key",
        &ops_key,
    ]);
    assert!(by_cert.status.success(), "{by_cert:?}");
    // And a token over HTTPS.
    let by_token = kit::block_on(exchange_as(
        admin,
        &Credentials::bearer(TOKEN)
            .with_tls(&ca, None)
            .expect("client"),
        "POST",
        "/step-down",
        &[],
        Duration::from_secs(5),
    ))
    .expect("answers");
    assert_eq!(by_token.code, 200, "{by_token:?}");
    let events =
        std::fs::read_to_string(cluster.data_dir("n1").join("events.log")).expect("events");
    assert!(events.contains("\"who\":\"cert:ops\""), "{events}");
    assert!(events.contains("\"who\":\"ci\""), "{events}");

    // Rotation: a new certificate for the endpoint, then SIGHUP.
    let output = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["certs", "--cluster", CLUSTER_ID, "--out"])
        .arg(&certs)
        .args(["--san", "n1=127.0.0.1", "n1"])
        .output()
        .expect("tenure certs runs");
    assert!(output.status.success(), "{output:?}");
    cluster.signal("n1", libc::SIGHUP);
    cluster.wait_for_log("n1", "admin TLS certificate reloaded", BOUND);
    let status = tenure(&["status", "--ca", &ca_arg]);
    assert!(status.status.success(), "after the reload: {status:?}");
}
