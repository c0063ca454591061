//! `tenure certs --cluster ID --out DIR NODE…`: a cluster CA and one
//! certificate per node, ready for `[tls]`.
//!
//! In DIR: `ca.pem` (give it to every node), `ca.key` (keep it off the
//! nodes: it signs their certificates), and `NODE.pem` / `NODE.key` for each
//! node. Each node certificate names its node and cluster in a URI SAN
//! (`tenure://CLUSTER/NODE`), which is what peers check; `--san
//! NODE=NAME,…` adds DNS or IP names. Keys are written owner-only.
//!
//! Run it again with the same DIR to issue new node certificates from the
//! same CA — a rotation: write them, then send the nodes SIGHUP. A CA is
//! created only when DIR has none.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tenure_transport::certs::{self, CaFiles};

/// What `tenure certs` was asked for.
pub struct CertsRequest {
    /// The cluster id the certificates name.
    pub cluster: String,
    /// Where the files go.
    pub out: PathBuf,
    /// The nodes to issue certificates for.
    pub nodes: Vec<String>,
    /// `NODE=NAME,NAME…` extra subject names.
    pub sans: Vec<String>,
    /// Node certificate validity, in days.
    pub days: u32,
    /// Names to issue admin client certificates for.
    pub admins: Vec<String>,
}

/// Makes (or reuses) the CA and issues the node certificates.
pub fn certs(request: CertsRequest) -> anyhow::Result<ExitCode> {
    if request.nodes.is_empty() && request.admins.is_empty() {
        bail!("name at least one node: `tenure certs --cluster ID --out DIR n1 n2 n3`");
    }
    if !(1..=3650).contains(&request.days) {
        bail!("`--days`: must be between 1 and 3650, got {}", request.days);
    }
    let sans = parse_sans(&request.sans, &request.nodes)?;
    fs::create_dir_all(&request.out)
        .with_context(|| format!("creating {}", request.out.display()))?;
    let ca = ca(&request.out, &request.cluster)?;
    for node in &request.nodes {
        let names = sans.get(node).cloned().unwrap_or_default();
        let pem = certs::issue_node(&ca, &request.cluster, node, &names, request.days)
            .with_context(|| format!("issuing the certificate of {node}"))?;
        write(
            &request.out.join(format!("{node}.pem")),
            &pem.cert_pem,
            0o644,
        )?;
        write(
            &request.out.join(format!("{node}.key")),
            &pem.key_pem,
            0o600,
        )?;
        println!(
            "{node}: {}/{node}.pem and {node}.key (tenure://{}/{node}{}), valid {} days",
            request.out.display(),
            request.cluster,
            if names.is_empty() {
                String::new()
            } else {
                format!(", {}", names.join(", "))
            },
            request.days
        );
    }
    for admin in &request.admins {
        let pem = certs::issue_admin_client(&ca, &request.cluster, admin, request.days)
            .with_context(|| format!("issuing the admin certificate of {admin}"))?;
        write(
            &request.out.join(format!("{admin}-admin.pem")),
            &pem.cert_pem,
            0o644,
        )?;
        write(
            &request.out.join(format!("{admin}-admin.key")),
            &pem.key_pem,
            0o600,
        )?;
        println!(
            "admin {admin}: {}/{admin}-admin.pem and .key (tenure-admin://{}/{admin}), for \
             `tenure --ca ca.pem --client-cert {admin}-admin.pem --client-key {admin}-admin.key …`",
            request.out.display(),
            request.cluster
        );
    }
    println!(
        "\nIn each node's config (paths relative to it):\n\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\n\
         Keep ca.key off the nodes. To rotate, run this again and send each node SIGHUP.",
        request.out.join("ca.pem").display(),
        request.out.join("NODE.pem").display(),
        request.out.join("NODE.key").display(),
    );
    Ok(ExitCode::SUCCESS)
}

/// The CA in `dir`, or a new one written there.
fn ca(dir: &Path, cluster: &str) -> anyhow::Result<CaFiles> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    match (cert.exists(), key.exists()) {
        (true, true) => {
            let read = |p: &Path| {
                fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            println!("using the CA in {}", cert.display());
            Ok(CaFiles {
                cert_pem: read(&cert)?,
                key_pem: read(&key)?,
            })
        }
        (false, false) => {
            let ca = certs::new_cluster_ca(cluster).context("making the cluster CA")?;
            write(&cert, &ca.cert_pem, 0o644)?;
            write(&key, &ca.key_pem, 0o600)?;
            println!(
                "made a CA for cluster {cluster}: {} (keep {} secret)",
                cert.display(),
                key.display()
            );
            Ok(ca)
        }
        _ => bail!(
            "{} holds only half a CA (ca.pem and ca.key go together); restore the other or remove it",
            dir.display()
        ),
    }
}

/// `NODE=NAME,NAME…` into names per node; every node must be one asked for.
fn parse_sans(
    entries: &[String],
    nodes: &[String],
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut sans: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in entries {
        let Some((node, names)) = entry.split_once('=') else {
            bail!("`--san {entry}`: expected NODE=NAME[,NAME…]");
        };
        if !nodes.iter().any(|n| n == node) {
            bail!("`--san {entry}`: {node} is not one of the nodes named");
        }
        sans.entry(node.to_string()).or_default().extend(
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        );
    }
    Ok(sans)
}

/// Writes `text` to `path` atomically (a temporary file, then a rename)
/// with `mode`, so a node reloading on SIGHUP never reads half a file.
fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_name_only_the_nodes_asked_for() {
        let nodes = vec!["n1".to_string(), "n2".to_string()];
        let sans = parse_sans(&["n1=10.0.0.1,n1.example.com".into()], &nodes).expect("parses");
        assert_eq!(sans["n1"], ["10.0.0.1", "n1.example.com"]);
        assert!(parse_sans(&["n9=x".into()], &nodes).is_err());
        assert!(parse_sans(&["n1".into()], &nodes).is_err());
    }
}
