//! The fault test's network: one *hub* namespace holding the bridges, and
//! one namespace per node, each joined to the hub by two veth pairs.
//!
//! ```text
//!  node ns tnetns-PID-nI            hub ns tnetns-PID-hub
//!   eth0 10.0.G.I/16  ───veth───  nI ─ br0 | br1 | br2   (the cluster: faults)
//!   ctl0 10.1.0.I/24  ───veth───  cI ─ brc 10.1.0.254    (control: never faulted)
//! ```
//!
//! Peers talk on the cluster network, by name (`nI.cluster.test`, from
//! `/etc/netns/NS/hosts`, which `ip netns exec` mounts over `/etc/hosts`).
//! The admin endpoints and the fencing store are on the control network,
//! which no fault touches, so the test always sees every node and every
//! write. A full partition moves each side's cluster links to a bridge of
//! its own (the links to the other side are gone; nothing answers, as
//! when a switch fails); a one-way partition drops, with nftables in one
//! node's namespace, the connections others dial to it. Nothing is
//! created in the root namespace but the namespaces' names and their
//! `/etc/netns` folders, all named after the test's pid, and everything
//! is deleted when [`Net`] is dropped (on a panic too); what a killed
//! earlier run left behind is deleted on the next start.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

/// Every name this test creates starts with this.
pub const PREFIX: &str = "tnetns-";
/// The port nodes listen on for peers (each node has its own IP).
pub const PEER_PORT: u16 = 7100;
/// The admin port, on the control network.
pub const ADMIN_PORT: u16 = 7200;
/// The fencing store's port, on the hub's control address.
pub const STORE_PORT: u16 = 7300;
/// The hub's address on the control network.
pub const HUB_CONTROL_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 254);
/// How many cluster bridges there are (a 2/2/1 split needs three).
const BRIDGES: usize = 3;
/// The nftables table of a one-way partition.
const NFT_TABLE: &str = "tnetns";

/// Runs `program args`, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args).map(drop)
}

/// Why this machine cannot run the test, if it cannot: not root, or no
/// usable `ip netns`.
pub fn unusable() -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need it)".into());
    }
    let probe = format!("{PREFIX}{}-probe", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("`ip netns` is not usable here: {e:#}"));
    }
    let _ = ip(&["netns", "del", &probe]);
    None
}

/// The namespaces and links of one run. See the module docs.
pub struct Net {
    hub: String,
    /// Node id → its namespace.
    ns: BTreeMap<String, String>,
    /// Node id → its index `I` (1-based) and address generation `G`.
    index: BTreeMap<String, (u8, u8)>,
    /// Whether nftables works in these namespaces; why not, if not.
    pub nft: Result<(), String>,
}

impl Net {
    /// Creates the hub and one namespace per id (at most 200), all on
    /// bridge 0, with each node's hosts file.
    pub fn create(ids: &[String]) -> anyhow::Result<Net> {
        remove_stale();
        let tag = format!("{PREFIX}{}", std::process::id());
        let mut net = Net {
            hub: format!("{tag}-hub"),
            ns: BTreeMap::new(),
            index: BTreeMap::new(),
            nft: Ok(()),
        };
        ip(&["netns", "add", &net.hub])?;
        let hub = net.hub.clone();
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        for k in 0..BRIDGES {
            let br = format!("br{k}");
            ip(&["-n", &hub, "link", "add", &br, "type", "bridge"])?;
            ip(&["-n", &hub, "link", "set", &br, "up"])?;
        }
        ip(&["-n", &hub, "link", "add", "brc", "type", "bridge"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_CONTROL_IP}/24"),
            "dev",
            "brc",
        ])?;
        ip(&["-n", &hub, "link", "set", "brc", "up"])?;
        for (i, id) in ids.iter().enumerate() {
            let i = u8::try_from(i + 1)
                .ok()
                .filter(|i| *i <= 200)
                .context("too many nodes")?;
            let ns = format!("{tag}-{id}");
            ip(&["netns", "add", &ns])?;
            net.ns.insert(id.clone(), ns.clone());
            net.index.insert(id.clone(), (i, 0));
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            for (hub_end, node_end, bridge) in [("n", "eth0", "br0"), ("c", "ctl0", "brc")] {
                let hub_end = format!("{hub_end}{i}");
                ip(&[
                    "-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", node_end,
                    "netns", &ns,
                ])?;
                ip(&["-n", &hub, "link", "set", &hub_end, "master", bridge, "up"])?;
                ip(&["-n", &ns, "link", "set", node_end, "up"])?;
            }
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.control_ip(id)?),
                "dev",
                "ctl0",
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/16", net.cluster_ip(id)?),
                "dev",
                "eth0",
            ])?;
        }
        net.write_hosts()?;
        net.nft = net.probe_nft();
        Ok(net)
    }

    fn probe_nft(&self) -> Result<(), String> {
        let probe = || -> anyhow::Result<()> {
            let hub = self.hub.as_str();
            run(
                "ip",
                &[
                    "netns", "exec", hub, "nft", "add", "table", "inet", NFT_TABLE,
                ],
            )?;
            run(
                "ip",
                &[
                    "netns", "exec", hub, "nft", "delete", "table", "inet", NFT_TABLE,
                ],
            )?;
            Ok(())
        };
        probe().map_err(|e| format!("{e:#}"))
    }

    /// Node `id`'s namespace.
    pub fn ns(&self, id: &str) -> anyhow::Result<&str> {
        self.ns
            .get(id)
            .map(String::as_str)
            .with_context(|| format!("no node {id}"))
    }

    /// Node `id`'s address on the cluster network now.
    pub fn cluster_ip(&self, id: &str) -> anyhow::Result<Ipv4Addr> {
        let (i, generation) = *self
            .index
            .get(id)
            .with_context(|| format!("no node {id}"))?;
        Ok(Ipv4Addr::new(10, 0, generation, i))
    }

    /// Node `id`'s address on the control network.
    pub fn control_ip(&self, id: &str) -> anyhow::Result<Ipv4Addr> {
        let (i, _) = *self
            .index
            .get(id)
            .with_context(|| format!("no node {id}"))?;
        Ok(Ipv4Addr::new(10, 1, 0, i))
    }

    /// Node `id`'s admin endpoint.
    pub fn admin(&self, id: &str) -> anyhow::Result<SocketAddr> {
        Ok(SocketAddr::from((self.control_ip(id)?, ADMIN_PORT)))
    }

    /// The name peers dial node `id` by.
    pub fn name(id: &str) -> String {
        format!("{id}.cluster.test")
    }

    /// Moves the calling thread (and the threads it starts later) into
    /// the hub namespace, where the control network is.
    pub fn enter_hub(&self) -> anyhow::Result<()> {
        let path = format!("/run/netns/{}", self.hub);
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        use std::os::fd::AsRawFd as _;
        // SAFETY: setns(2) on a namespace file we hold open; it changes
        // only this thread's network namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns({path}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Puts each group's cluster links on a bridge of its own (at most
    /// three groups): a full partition between the groups.
    pub fn partition(&self, groups: &[Vec<String>]) -> anyhow::Result<()> {
        anyhow::ensure!(groups.len() <= BRIDGES, "at most {BRIDGES} groups");
        for (k, group) in groups.iter().enumerate() {
            for id in group {
                self.attach(id, k)?;
            }
        }
        Ok(())
    }

    /// Every cluster link back on bridge 0.
    pub fn heal_partition(&self) -> anyhow::Result<()> {
        for id in self.ns.keys() {
            self.attach(id, 0)?;
        }
        Ok(())
    }

    fn attach(&self, id: &str, bridge: usize) -> anyhow::Result<()> {
        let (i, _) = self.index[id];
        let link = format!("n{i}");
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &link,
            "master",
            &format!("br{bridge}"),
        ])
    }

    /// Drops, in `deaf`'s namespace, every packet from `from` to its peer
    /// port: their messages never reach it (new connections and open
    /// ones), while its own connections to them, and their answers, still
    /// flow. Connections go one way each (the dialler writes), so this is
    /// a one-way partition of messages.
    pub fn one_way(&self, deaf: &str, from: &[String]) -> anyhow::Result<()> {
        if let Err(why) = &self.nft {
            bail!("nftables is not usable: {why}");
        }
        let ns = self.ns(deaf)?;
        let sources: anyhow::Result<Vec<String>> = from
            .iter()
            .map(|id| Ok(self.cluster_ip(id)?.to_string()))
            .collect();
        let sources = sources?.join(", ");
        let nft = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns, "nft"];
            all.extend_from_slice(args);
            run("ip", &all).map(drop)
        };
        nft(&["add", "table", "inet", NFT_TABLE])?;
        nft(&[
            "add",
            "chain",
            "inet",
            NFT_TABLE,
            "input",
            "{ type filter hook input priority 0; policy accept; }",
        ])?;
        let port = PEER_PORT.to_string();
        let set = format!("{{ {sources} }}");
        nft(&[
            "add", "rule", "inet", NFT_TABLE, "input", "ip", "saddr", &set, "tcp", "dport", &port,
            "drop",
        ])
    }

    /// Removes every one-way rule.
    pub fn heal_one_way(&self) -> anyhow::Result<()> {
        if self.nft.is_err() {
            return Ok(());
        }
        for ns in self.ns.values() {
            // Absent unless this node was the deaf one: nothing to do.
            let _ = run(
                "ip",
                &[
                    "netns", "exec", ns, "nft", "delete", "table", "inet", NFT_TABLE,
                ],
            );
        }
        Ok(())
    }

    /// Gives node `id` a new cluster address (the next generation) and
    /// rewrites every hosts file; the node must be restarted to listen
    /// there. Returns the new address.
    pub fn readdress(&mut self, id: &str) -> anyhow::Result<Ipv4Addr> {
        let old = self.cluster_ip(id)?;
        let entry = self
            .index
            .get_mut(id)
            .with_context(|| format!("no node {id}"))?;
        entry.1 = if entry.1 >= 250 { 0 } else { entry.1 + 1 };
        let new = self.cluster_ip(id)?;
        let ns = self.ns(id)?.to_string();
        ip(&[
            "-n",
            &ns,
            "addr",
            "del",
            &format!("{old}/16"),
            "dev",
            "eth0",
        ])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{new}/16"),
            "dev",
            "eth0",
        ])?;
        self.write_hosts()?;
        Ok(new)
    }

    fn hosts_dir(ns: &str) -> PathBuf {
        PathBuf::from("/etc/netns").join(ns)
    }

    /// Writes every namespace's hosts file, in place (`ip netns exec`
    /// bind-mounts the file itself, so a renamed replacement would go
    /// unseen by a node already running).
    fn write_hosts(&self) -> anyhow::Result<()> {
        let mut text = String::from("127.0.0.1 localhost\n");
        for id in self.ns.keys() {
            text.push_str(&format!("{} {}\n", self.cluster_ip(id)?, Net::name(id)));
        }
        for ns in self.ns.values() {
            let dir = Net::hosts_dir(ns);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("hosts");
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.ns.values() {
            let _ = ip(&["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(Net::hosts_dir(ns));
        }
        let _ = ip(&["netns", "del", &self.hub]);
    }
}

/// Deletes what runs that died without cleaning up left: namespaces (and
/// their hosts folders) named after a pid that no longer runs.
fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only checks that the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        if !alive {
            eprintln!("netns: removing {name}, left by a run that died");
            let _ = ip(&["netns", "del", name]);
            let _ = std::fs::remove_dir_all(Net::hosts_dir(name));
        }
    }
}
