//! What tests/deploy.rs reads the recipes with: the repository's files,
//! the manifests (YAML, with saphyr), an INI reader for the unit file, the
//! Containerfile's exec forms, three pods of the shipped ConfigMap's config
//! as real processes, and a notify socket's datagrams.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use saphyr::{LoadableYamlNode, YamlOwned};
use tenure_host::config::{NodeConfig, overrides};
use tenure_host::testing::processes::LocalCluster;

use crate::kit;

/// A strong admin token for the nodes these tests start.
pub const TOKEN: &str = "3f2a9c0d11e4b7a5c0ffee00d15ea5e0b16b00b5";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate is in the repository")
        .to_path_buf()
}

pub fn read(path: &str) -> String {
    let path = repo().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory for one test, with a cluster secret file in it.
pub fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("tenure-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let secret = dir.join("cluster-secret");
    std::fs::write(&secret, "9c41d7e2b08a4f6e5d3c2b1a0f9e8d7c\n").expect("secret");
    (dir, secret)
}

// ---- YAML -------------------------------------------------------------------

/// Every document of every manifest the kustomization lists, by kind and
/// name (`Service/tenure`).
pub fn manifests() -> BTreeMap<String, YamlOwned> {
    let kustomization = yaml_docs("deploy/kubernetes/kustomization.yaml").remove(0);
    let mut listed = Vec::new();
    for file in seq(&kustomization, "resources") {
        listed.push(file.as_str().expect("a file name").to_string());
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, on_disk, "the kustomization lists every manifest");
    let mut by_name = BTreeMap::new();
    for file in listed {
        for doc in yaml_docs(&format!("deploy/kubernetes/{file}")) {
            let key = format!("{}/{}", text(&doc, "kind"), text(&doc, "metadata:name"));
            assert!(by_name.insert(key.clone(), doc).is_none(), "{key} twice");
        }
    }
    by_name
}

pub fn yaml_docs(path: &str) -> Vec<YamlOwned> {
    YamlOwned::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The node at a `:`-separated `path` (`spec:ports:0:port`; keys such as
/// `tenure.toml` have dots); panics naming it.
pub fn at<'a>(node: &'a YamlOwned, path: &str) -> &'a YamlOwned {
    path.split(':').fold(node, |node, step| {
        let next = match step.parse::<usize>() {
            Ok(i) => node.as_sequence_get(i),
            Err(_) => node.as_mapping_get(step),
        };
        next.unwrap_or_else(|| panic!("no {path:?} (stopped at {step:?})"))
    })
}

pub fn text(node: &YamlOwned, path: &str) -> String {
    let found = at(node, path);
    match (found.as_str(), found.as_integer(), found.as_bool()) {
        (Some(s), _, _) => s.to_string(),
        (_, Some(i), _) => i.to_string(),
        (_, _, Some(b)) => b.to_string(),
        _ => panic!("{path:?} is no scalar: {found:?}"),
    }
}

pub fn seq<'a>(node: &'a YamlOwned, path: &str) -> &'a [YamlOwned] {
    at(node, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("{path:?} is no sequence"))
}

/// The StatefulSet's tenure container.
pub fn container(manifests: &BTreeMap<String, YamlOwned>) -> &YamlOwned {
    let set = &manifests["StatefulSet/tenure"];
    seq(set, "spec:template:spec:containers")
        .iter()
        .find(|c| text(c, "name") == "tenure")
        .expect("a container named tenure")
}

/// The ConfigMap's node config, as `tenure run` reads it for pod `pod`
/// (HOSTNAME), with the Secret's file at `secret`.
pub fn configmap_config(
    manifests: &BTreeMap<String, YamlOwned>,
    pod: &str,
    secret: &Path,
) -> NodeConfig {
    let toml = text(&manifests["ConfigMap/tenure"], "data:tenure.toml");
    let env = [
        ("TENURE_NODE_ID".to_string(), pod.to_string()),
        (
            "TENURE_SECRET_FILE".to_string(),
            secret.display().to_string(),
        ),
    ];
    let set = overrides::collect(env, &[]).expect("overrides");
    NodeConfig::parse_with(&toml, Path::new("/etc/tenure"), &set).expect("the ConfigMap's config")
}

/// The probes of the tenure container: (kind, path, port number).
pub fn probes(container: &YamlOwned) -> Vec<(String, String, u16)> {
    let ports: BTreeMap<String, u16> = seq(container, "ports")
        .iter()
        .map(|p| {
            (
                text(p, "name"),
                text(p, "containerPort").parse().expect("port"),
            )
        })
        .collect();
    ["startupProbe", "livenessProbe", "readinessProbe"]
        .iter()
        .map(|kind| {
            let port = text(container, &format!("{kind}:httpGet:port"));
            let port = ports
                .get(&port)
                .copied()
                .unwrap_or_else(|| port.parse().expect("a port"));
            (
                kind.to_string(),
                text(container, &format!("{kind}:httpGet:path")),
                port,
            )
        })
        .collect()
}

// ---- the unit file ----------------------------------------------------------

/// `[Section]` → (key, value) in order (keys repeat: `Environment=`).
pub fn ini(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "line {}: continuation lines are not read here",
            n + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: {line:?} is no KEY=VALUE", n + 1));
        let section = current
            .clone()
            .unwrap_or_else(|| panic!("line {}: a key before any section", n + 1));
        sections
            .entry(section)
            .or_default()
            .push((key.trim().into(), value.trim().into()));
    }
    sections
}

pub fn one<'a>(section: &'a [(String, String)], key: &str) -> &'a str {
    let found: Vec<&str> = section
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{key}: {found:?}");
    found[0]
}

// ---- the image --------------------------------------------------------------

/// The JSON array after `instruction` on its (last) line of the Containerfile.
pub fn exec_form(containerfile: &str, instruction: &str) -> Vec<String> {
    let line = containerfile
        .lines()
        .rfind(|l| l.starts_with(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("no {instruction}"));
    serde_json::from_str(&line[instruction.len()..]).unwrap_or_else(|e| panic!("{line}: {e}"))
}

// ---- the shipped configs, running -------------------------------------------

/// The ConfigMap's node config, with test ports for the pods' names: each
/// `tenure-N.tenure.tenure.svc.cluster.local:7101` becomes `localhost:PORT`
/// (still a name, resolved on every dial).
pub fn three_pods(dir: &Path, secret: &Path) -> LocalCluster {
    let m = manifests();
    let binary = Path::new(env!("CARGO_BIN_EXE_tenure"));
    let mut pods = LocalCluster::plan(dir, binary, "tenure", 0).expect("planned");
    let ids = ["tenure-0", "tenure-1", "tenure-2"];
    for id in ids {
        pods.add_node(id).expect("ports");
    }
    let mut toml = text(&m["ConfigMap/tenure"], "data:tenure.toml");
    for id in ids {
        let port = pods.listen(id).expect("planned").port();
        toml = toml.replace(
            &format!("{id}.tenure.tenure.svc.cluster.local:7101"),
            &format!("localhost:{port}"),
        );
    }
    assert!(!toml.contains("svc.cluster.local"), "every peer replaced");
    for id in ids {
        std::fs::write(pods.config_path(id), &toml).expect("config");
        let listen = pods.listen(id).expect("planned").to_string();
        let admin = pods.admin(id).expect("planned").to_string();
        let data = pods.data_dir(id).display().to_string();
        let secret = secret.display().to_string();
        for (key, value) in [
            ("HOSTNAME", id),
            ("TENURE_LISTEN", &listen),
            ("TENURE_ADMIN", &admin),
            ("TENURE_DATA_DIR", &data),
            ("TENURE_SECRET_FILE", &secret),
            ("TENURE_ADMIN_TOKEN", TOKEN),
            // No Kubernetes API here to label pods with: the hooks succeed
            // doing nothing (the real one never fails either).
            ("TENURE_HOOKS_BECAME_LEADER", ":"),
            ("TENURE_HOOKS_BECAME_FOLLOWER", ":"),
        ] {
            pods.set_env(id, key, value).expect("env");
        }
        pods.spawn(id).expect("tenure starts");
    }
    pods
}

/// `GET path`'s status code, or `None` while nothing answers (a node still
/// starting).
pub fn try_get(admin: std::net::SocketAddr, path: &str) -> Option<u16> {
    let asked = tenure_host::admin_client::request(admin, "GET", path, &[], kit::PROBE_TIMEOUT);
    kit::block_on(asked).ok().map(|(code, _)| code)
}

/// Polls until exactly one pod answers `GET /leader` with 200; returns it.
pub fn the_leader(pods: &LocalCluster, ids: &[String]) -> String {
    let deadline = Instant::now() + kit::BOUND;
    loop {
        let leading: Vec<&String> = ids
            .iter()
            .filter(|id| try_get(pods.admin(id).expect("planned"), "/leader") == Some(200))
            .collect();
        if let [one] = leading.as_slice() {
            return one.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no single leader: {leading:?}\n{}",
            pods.log_tails(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn datagrams_until(
    socket: &UnixDatagram,
    bound: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + bound;
    let mut got: Vec<(Instant, String)> = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&got.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "not all messages within {bound:?}: {got:?}"
        );
        socket.set_read_timeout(Some(left)).expect("timeout");
        match socket.recv(&mut buf) {
            Ok(n) => got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    got
}
