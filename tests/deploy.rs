//! The recipes under `deploy/` checked against the binary they ship.
//!
//! No container engine, Kubernetes or systemd runs here, so this tests what
//! can be tested: the manifests parse (YAML, with saphyr) and the unit file
//! parses (a small INI reader below); every probe path, port, mount and
//! command they name matches what `tenure run` serves with the config they
//! ship — checked by running real processes with those configs, adapted to
//! test ports only; the image runs the command the README documents; and
//! the node speaks systemd's notify protocol end to end over a Unix
//! datagram socket this test binds.

#[path = "kit/mod.rs"]
mod kit;
#[path = "deploy/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kit::{BOUND, get};
use support::{
    TOKEN, configmap_config, container, datagrams_until, exec_form, ini, manifests, one, probes,
    read, scratch, seq, text, the_leader, three_pods,
};
use tenure_host::config::{NodeConfig, overrides};
use tenure_host::testing::processes::Process;
use tenure_transport::PeerAddr;

#[test]
fn the_kubernetes_manifests_parse_and_agree_with_the_config_they_ship() {
    let (dir, secret) = scratch("manifests");
    let m = manifests();
    let c = container(&m);
    let config = configmap_config(&m, "tenure-1", &secret);
    assert_eq!(config.node_id, "tenure-1");
    assert_eq!(config.peers.len(), 2, "self skipped: {:?}", config.peers);
    let replicas: usize = text(&m["StatefulSet/tenure"], "spec:replicas")
        .parse()
        .expect("replicas");
    for (id, addr) in &config.peers {
        let want = format!("{id}.tenure.tenure.svc.cluster.local:7101");
        assert_eq!(addr.to_string(), want);
        assert!(matches!(addr, PeerAddr::Name { .. }));
        let ordinal: usize = id
            .trim_start_matches("tenure-")
            .parse()
            .expect("an ordinal");
        assert!(ordinal < replicas, "{id} is no pod of {replicas} replicas");
    }

    // Probes: the paths the binary serves, on the admin port of the config.
    let probes = probes(c);
    let paths: Vec<&str> = probes.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/livez", "/livez", "/readyz"]);
    for (kind, _, port) in &probes {
        assert_eq!(*port, config.admin.port(), "{kind}");
    }
    let ports: BTreeMap<String, String> = seq(c, "ports")
        .iter()
        .map(|p| (text(p, "name"), text(p, "containerPort")))
        .collect();
    assert_eq!(ports["peer"], config.listen.port().to_string());
    assert!(config.listen.ip().is_unspecified() && config.admin.ip().is_unspecified());

    // The headless Service publishes names before pods are ready; the
    // leader Service selects the label the hooks set.
    let headless = &m["Service/tenure"];
    assert_eq!(text(headless, "spec:clusterIP"), "None");
    assert_eq!(text(headless, "spec:publishNotReadyAddresses"), "true");
    assert_eq!(text(&m["StatefulSet/tenure"], "spec:serviceName"), "tenure");
    assert_eq!(
        text(&m["StatefulSet/tenure"], "spec:podManagementPolicy"),
        "Parallel"
    );
    let leader = &m["Service/tenure-leader"];
    assert_eq!(text(leader, "spec:selector:tenure.dev/leader"), "true");
    let hooks = [
        config.hooks.became_leader.clone(),
        config.hooks.became_follower.clone(),
    ];
    for (hook, value) in hooks.iter().zip(["true", "false"]) {
        let hook = hook.as_deref().expect("a leader-label hook");
        assert_eq!(hook, format!("/etc/tenure/hooks/label-leader.sh {value}"));
    }
    let script = text(&m["ConfigMap/tenure"], "data:label-leader.sh");
    assert!(
        script.contains("tenure.dev/leader") && script.contains("exit 0"),
        "{script}"
    );

    // A majority survives the budget: at most one pod down of 3 (or 5).
    let pdb = &m["PodDisruptionBudget/tenure"];
    let unavailable: usize = text(pdb, "spec:maxUnavailable").parse().expect("a number");
    assert!(replicas - unavailable > replicas / 2);

    // Mounts: the config, the hooks, the secret and the data directory sit
    // where the config says.
    let mounts: BTreeMap<String, String> = seq(c, "volumeMounts")
        .iter()
        .map(|v| (text(v, "name"), text(v, "mountPath")))
        .collect();
    assert_eq!(Path::new(&mounts["data"]), config.data_dir);
    assert_eq!(
        Path::new(&mounts["secret"]).join("cluster-secret"),
        Path::new("/etc/tenure/secret/cluster-secret")
    );
    assert_eq!(mounts["hooks"], "/etc/tenure/hooks");
    assert_eq!(mounts["config"], "/etc/tenure/tenure.toml");
    let env = seq(c, "env");
    assert!(env.iter().any(|e| text(e, "name") == "TENURE_ADMIN_TOKEN"
        && text(e, "valueFrom:secretKeyRef:key") == "admin-token"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn config_check_accepts_the_configmap_with_its_token_and_names_only_warned_about() {
    let (dir, secret) = scratch("check");
    let m = manifests();
    let file = dir.join("tenure.toml");
    std::fs::write(&file, text(&m["ConfigMap/tenure"], "data:tenure.toml")).expect("config");
    let check = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenure"));
        command
            .args(["config", "check"])
            .arg(&file)
            .env("HOSTNAME", "tenure-1")
            .env("TENURE_SECRET_FILE", &secret)
            .env_remove("TENURE_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("TENURE_ADMIN_TOKEN", token);
        }
        command.output().expect("tenure config check runs")
    };
    // As the pod runs it: the Secret's token in the environment. The
    // peers' names do not resolve here; that is a warning, not a failure.
    let ok = check(Some(TOKEN));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("node tenure-1 of cluster tenure, 2 peers"),
        "{stdout}"
    );
    for line in stderr.lines() {
        assert!(line.starts_with("warning: `peers.tenure-"), "{line}");
    }
    // Without the token the admin endpoint, open beyond loopback for the
    // kubelet, is refused by name.
    let refused = check(None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("TENURE_ADMIN_TOKEN"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_unit_file_parses_and_notifies_watches_restarts_and_confines() {
    let unit = ini(&read("deploy/systemd/tenure.service"));
    assert_eq!(
        unit.keys().collect::<Vec<_>>(),
        ["Install", "Service", "Unit"]
    );
    let service = &unit["Service"];
    assert_eq!(one(service, "Type"), "notify");
    assert_eq!(one(service, "NotifyAccess"), "main");
    assert_eq!(
        one(service, "ExecStart"),
        "/usr/local/bin/tenure run --config /etc/tenure/tenure.toml"
    );
    assert!(
        one(service, "WatchdogSec")
            .trim_end_matches('s')
            .parse::<u64>()
            .expect("seconds")
            >= 2
    );
    assert_eq!(one(service, "Restart"), "on-failure");
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "tenure"),
        ("DynamicUser", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
    ] {
        assert_eq!(one(service, key), value, "{key}");
    }
    assert!(
        service.iter().all(|(k, _)| k != "MemoryDenyWriteExecute"),
        "wasmtime needs W^X flips"
    );
    let env: Vec<&str> = service
        .iter()
        .filter(|(k, _)| k == "Environment")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        env.contains(&"TENURE_SECRET_FILE=%d/cluster-secret"),
        "{env:?}"
    );
    assert!(one(service, "LoadCredential").starts_with("cluster-secret:"));
    assert_eq!(one(&unit["Install"], "WantedBy"), "multi-user.target");

    // The config the unit runs: StateDirectory=tenure is /var/lib/tenure.
    let (dir, secret) = scratch("unit");
    let set = overrides::collect(
        [("TENURE_SECRET_FILE".into(), secret.display().to_string())],
        &[],
    )
    .expect("overrides");
    let config = NodeConfig::parse_with(
        &read("deploy/systemd/tenure.toml"),
        Path::new("/etc/tenure"),
        &set,
    )
    .expect("the unit's config");
    assert_eq!(config.data_dir, Path::new("/var/lib/tenure"));
    assert!(config.admin.ip().is_loopback());
    assert!(
        config
            .peers
            .values()
            .all(|p| matches!(p, PeerAddr::Name { .. }))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_image_runs_the_command_the_readme_documents_as_a_user_with_a_data_volume() {
    let file = read("deploy/container/Containerfile");
    let mut command = exec_form(&file, "ENTRYPOINT");
    command.extend(exec_form(&file, "CMD"));
    let command = command.join(" ");
    let readme = read("README.md");
    let documented = readme
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("tenure run --config /etc/tenure/")
        })
        .expect("the README documents the image's command");
    assert_eq!(command, documented.trim());
    assert!(file.contains("COPY deploy/container/tenure.toml /etc/tenure/tenure.toml"));
    assert!(file.contains("cargo build --locked --release -p tenure-host"));
    let user = file
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );

    let (dir, secret) = scratch("image");
    let env = [
        ("TENURE_NODE_ID".to_string(), "n1".to_string()),
        (
            "TENURE_SECRET_FILE".to_string(),
            secret.display().to_string(),
        ),
        ("TENURE_PEERS_N2".to_string(), "n2.example:7101".to_string()),
    ];
    let set = overrides::collect(env, &[]).expect("overrides");
    let config = NodeConfig::parse_with(
        &read("deploy/container/tenure.toml"),
        Path::new("/etc/tenure"),
        &set,
    )
    .expect("the image's config");
    let volume: Vec<String> = exec_form(&file, "VOLUME");
    assert_eq!(volume, [config.data_dir.display().to_string()]);
    let exposed = file
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    assert_eq!(
        exposed,
        format!("{} {}", config.listen.port(), config.admin.port())
    );
    let health = file
        .lines()
        .find(|l| l.contains("CMD [\"curl\""))
        .expect("a HEALTHCHECK");
    assert!(
        health.contains(&format!("http://127.0.0.1:{}/livez", config.admin.port())),
        "{health}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_probe_the_manifests_name_answers_as_they_expect_and_pre_stop_hands_over() {
    let (dir, secret) = scratch("pods");
    let mut pods = three_pods(&dir.join("pods"), &secret);
    let ids = pods.ids();
    let m = manifests();
    let c = container(&m);
    let leader = the_leader(&pods, &ids);

    // Liveness, startup and readiness probes: 200 on every pod once a
    // leader is known (readiness polls: a follower learns of it a
    // heartbeat later). The leader Service's pod answers /leader 200, the
    // others 503 (the status an HAProxy check or a readiness-style probe
    // on /leader would go by).
    let deadline = Instant::now() + BOUND;
    for id in &ids {
        let admin = pods.admin(id).expect("planned");
        for (kind, path, _) in probes(c) {
            loop {
                let (code, body) = get(admin, &path);
                if code == 200 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{id} {kind} {path}: {code} {body}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let want = if *id == leader { 200 } else { 503 };
        assert_eq!(get(admin, "/leader").0, want, "{id} /leader");
    }

    // The preStop hook, as the manifest writes it, on the leader's admin
    // port, with the pod's environment (TENURE_ADMIN_TOKEN): it steps down
    // and another pod leads; on a follower it succeeds doing nothing.
    let pre_stop: Vec<String> = seq(c, "lifecycle:preStop:exec:command")
        .iter()
        .map(|a| a.as_str().expect("an argument").to_string())
        .collect();
    assert_eq!(&pre_stop[..2], ["sh", "-c"]);
    let admin_port = configmap_config(&m, "tenure-0", &secret).admin.port();
    assert!(
        pre_stop[2].contains(&format!("127.0.0.1:{admin_port}")),
        "{pre_stop:?}"
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tenure"))
        .parent()
        .expect("a directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_hook = |id: &str| {
        let script = pre_stop[2].replace(
            &format!("127.0.0.1:{admin_port}"),
            &pods.admin(id).expect("planned").to_string(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", &path)
            .env("TENURE_ADMIN_TOKEN", TOKEN)
            .status()
            .expect("sh runs")
    };
    let follower = ids.iter().find(|id| **id != leader).expect("a follower");
    assert!(run_hook(follower).success());
    assert!(run_hook(&leader).success());
    let deadline = Instant::now() + BOUND;
    loop {
        let next = the_leader(&pods, &ids);
        if next != leader {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{leader} still leads after the preStop hook"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in &ids {
        pods.kill(id).expect("killed");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Every datagram that reaches `socket` within `bound`, until `done` holds
/// for the messages so far.
#[test]
fn under_systemd_the_node_says_ready_pings_the_watchdog_and_says_stopping() {
    let (dir, secret) = scratch("notify");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("a notify socket");
    let (listen, admin) = (kit::free_port(), kit::free_port());
    let admin_addr: std::net::SocketAddr = ([127, 0, 0, 1], admin).into();
    let data = dir.join("data");
    let config = dir.join("tenure.toml");
    // The unit's config as shipped (its peers are names that do not resolve
    // here: the node starts and retries them all the same), on test ports.
    std::fs::write(&config, read("deploy/systemd/tenure.toml")).expect("config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenure"));
    command
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("TENURE_LISTEN", format!("127.0.0.1:{listen}"))
        .env("TENURE_ADMIN", admin_addr.to_string())
        .env("TENURE_DATA_DIR", &data)
        .env("TENURE_SECRET_FILE", &secret)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000");
    let mut node = Process::spawn(command, &dir.join("node.log")).expect("tenure starts");
    let log = || std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();

    // READY=1 first, and only once the admin endpoint answers: a probe
    // sent the moment it arrives is answered, at the first try.
    let ready = datagrams_until(&socket, BOUND, |m| !m.is_empty());
    assert!(
        ready[0].1.lines().any(|l| l == "READY=1"),
        "{ready:?}\n{}",
        log()
    );
    assert!(ready[0].1.contains("STATUS=node n1 serving"), "{ready:?}");
    assert_eq!(get(admin_addr, "/livez").0, 200);

    // WATCHDOG=1 every half WATCHDOG_USEC (200 ms), while the node answers.
    let pings = datagrams_until(&socket, BOUND, |m| {
        m.iter().filter(|m| m.as_str() == "WATCHDOG=1\n").count() >= 3
    });
    let times: Vec<Instant> = pings
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1\n")
        .map(|(t, _)| *t)
        .collect();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(100) && gap < Duration::from_secs(2),
            "{gap:?}"
        );
        println!("watchdog ping gap: {gap:?}");
    }

    // SIGTERM: STOPPING=1, then a clean exit.
    node.signal(libc::SIGTERM).expect("SIGTERM");
    datagrams_until(&socket, BOUND, |m| {
        m.iter().any(|m| m.lines().any(|l| l == "STOPPING=1"))
    });
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = node.try_exit().expect("waits") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", log());
    let _ = std::fs::remove_dir_all(dir);
}
