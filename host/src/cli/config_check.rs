//! `tenure config check FILE`: validates a node's config as `tenure run`
//! would read it — every key, range and file it names — without starting
//! anything.

use std::path::Path;

use anyhow::{Context as _, bail};
use tenure_host::config::NodeConfig;
use tenure_transport::PeerAddr;

/// Checks the config at `path`, with `sets` and the environment's
/// `TENURE_…` keys over it as `run` would; prints a summary, or fails with
/// the key and the problem named.
pub fn check(path: &Path, sets: &[String]) -> anyhow::Result<()> {
    let config = NodeConfig::load_with(path, sets)?;
    // What the protocol checks when it starts (the built-in build's rules):
    // timings that make sense together, ids within bounds.
    let t = &config.timings;
    let mut bootstrap: Vec<String> = config.peers.keys().cloned().collect();
    bootstrap.push(config.node_id.clone());
    let options = tenure_election_core::Options {
        node_id: config.node_id.clone(),
        cluster_id: config.cluster_id.clone(),
        bootstrap,
        timings: tenure_election_core::Timings {
            election_timeout_min_ms: t.election_timeout_min_ms,
            election_timeout_max_ms: t.election_timeout_max_ms,
            heartbeat_interval_ms: t.heartbeat_interval_ms,
            peer_timeout_heartbeats: t.peer_timeout_heartbeats,
            lease_drift_margin_ms: t.lease_drift_margin_ms,
            stability_window_ms: t.stability_window_ms,
        },
        pre_vote: config.pre_vote,
        priority: config.priority,
        voter: config.voter,
        joining: config.join,
    };
    if let Err(e) = options.validate() {
        bail!("`{}`: {}", e.field, e.reason);
    }
    let mut files = Vec::new();
    if let Some(plugin) = &config.plugin {
        files.push(("[plugin] path", plugin.path.clone()));
    }
    if let Some(component) = &config.protocol_component {
        files.push(("[protocol] component", component.clone()));
    }
    if let Some(tls) = &config.tls {
        files.push(("[tls] ca", tls.ca.clone()));
        files.push(("[tls] cert", tls.cert.clone()));
        files.push(("[tls] key", tls.key.clone()));
    }
    for (key, file) in &files {
        if !file.is_file() {
            bail!("`{key}`: {} is not a file", file.display());
        }
    }
    if let Some(tls) = &config.tls {
        tls.load(&config.cluster_id, &config.node_id)
            .context("`[tls]`: the certificate does not serve this node")?;
    }
    // What `run` refuses before it binds: an admin endpoint open to the
    // network without tokens.
    config
        .admin_auth
        .check_exposure(config.admin, config.admin_tls.as_ref())?;
    warn_unresolved(&config);
    let plugin = config.plugin.as_ref().map_or("no plugin".to_string(), |p| {
        format!(
            "plugin {} ({} allow-http entries)",
            p.path.display(),
            p.egress.rules.len()
        )
    });
    println!(
        "{}: ok — node {} of cluster {}, {} peers, listen {}, admin {}, data {}, {plugin}",
        path.display(),
        config.node_id,
        config.cluster_id,
        config.peers.len(),
        config.listen,
        config.admin,
        config.data_dir.display(),
    );
    Ok(())
}

/// Warns (on stderr) about each peer name that does not resolve now: not
/// an error, since a peer's name may appear only once it runs (a
/// StatefulSet's pods are added to DNS as they start), and the node
/// retries every dial.
fn warn_unresolved(config: &NodeConfig) {
    use std::net::ToSocketAddrs as _;
    for (id, peer) in &config.peers {
        let PeerAddr::Name { host, port } = peer else {
            continue;
        };
        match (host.as_str(), *port).to_socket_addrs() {
            Ok(addrs) if addrs.len() > 0 => {}
            Ok(_) => eprintln!(
                "warning: `peers.{id}`: {peer} resolves to no address now; the node will keep trying"
            ),
            Err(e) => eprintln!(
                "warning: `peers.{id}`: {peer} does not resolve now ({e}); the node will keep trying"
            ),
        }
    }
}
