//! The config parser's tests.

use super::*;

const GOOD: &str = r#"
    node-id = "n1"
    cluster-id = "demo"
    listen = "127.0.0.1:7101"
    secret = "0123456789abcdef"
    [peers]
    n1 = "127.0.0.1:7101"
    n2 = "127.0.0.1:7102"
    [timings]
    heartbeat-interval-ms = 40
    [plugin]
    path = "p.wasm"
    [plugin.config]
    period-ms = 500
    job = "backup"
"#;

fn error(text: &str) -> String {
    format!(
        "{:#}",
        NodeConfig::parse(text, Path::new("/etc/tenure")).unwrap_err()
    )
}

#[test]
fn a_good_config_gets_defaults_and_resolved_paths() {
    let c = NodeConfig::parse(GOOD, Path::new("/etc/tenure")).expect("valid");
    assert_eq!(c.peers.len(), 1, "self is not a peer");
    assert_eq!(c.timings.heartbeat_interval_ms, 40);
    assert_eq!(c.timings.election_timeout_min_ms, 150);
    assert_eq!(c.admin.ip().to_string(), "127.0.0.1");
    assert_eq!(c.data_dir, Path::new("/etc/tenure/tenure-data/n1"));
    assert_eq!(c.cache_dir, Path::new("/etc/tenure/tenure-data/n1/cache"));
    let p = c.plugin.expect("plugin");
    assert_eq!(p.path, Path::new("/etc/tenure/p.wasm"));
    assert_eq!(p.config["period-ms"], "500");
    assert_eq!((p.deadline_ms, p.memory_mib), (100, 64));
    assert!(c.pre_vote && c.voter && c.fast_failover);
    assert_eq!((c.priority, c.timings.stability_window_ms), (0, 2_000));
    assert_eq!(c.timings.lease_drift_margin_ms, 15);
}

#[test]
fn protocol_keys_are_read() {
    let text =
        format!("{GOOD}\n[protocol]\npriority = 7\nobserver = true\nfast-failover = false\n")
            .replace(
                "heartbeat-interval-ms = 40",
                "heartbeat-interval-ms = 40\nstability-window-ms = 500\nlease-drift-margin-ms = 5",
            );
    let c = NodeConfig::parse(&text, Path::new("/etc/tenure")).expect("valid");
    assert_eq!((c.priority, c.voter, c.fast_failover), (7, false, false));
    assert_eq!(c.timings.stability_window_ms, 500);
    assert_eq!(c.timings.lease_drift_margin_ms, 5);
    let bad = error(&format!("{GOOD}\n[protocol]\npriority = 300\n"));
    assert!(bad.contains("priority"), "{bad}");
}

#[test]
fn bad_configs_name_the_key() {
    let replace = |from: &str, to: &str| GOOD.replace(from, to);
    assert!(
        error(&replace(
            "listen = \"127.0.0.1:7101\"",
            "listen = \"nowhere\""
        ))
        .contains("`listen`")
    );
    assert!(error(&replace("n2 = \"127.0.0.1:7102\"", "n2 = \"x\"")).contains("`peers.n2`"));
    assert!(
        error(&replace(
            "secret = \"0123456789abcdef\"",
            "secret = \"short\""
        ))
        .contains("`secret`")
    );
    assert!(error(&replace("secret = \"0123456789abcdef\"", "")).contains("`secret`"));
    assert!(error(&replace("node-id = \"n1\"", "node-id = \"n 1\"")).contains("`node-id`"));
    assert!(error(&replace("job = \"backup\"", "job = [1]")).contains("`plugin.config.job`"));
    assert!(
        error(&replace(
            "heartbeat-interval-ms = 40",
            "heartbeat-interval = 40"
        ))
        .contains("heartbeat-interval")
    );
    assert!(
        error(&replace("[plugin]", "[plugin]\ndeadline-ms = 0")).contains("`plugin.deadline-ms`")
    );
    // toml's own errors name the key and line.
    assert!(
        error(&replace(
            "heartbeat-interval-ms = 40",
            "heartbeat-interval-ms = \"fast\""
        ))
        .contains("heartbeat-interval-ms")
    );
}

#[test]
fn weak_secrets_and_a_shared_admin_port_are_refused_by_name() {
    let spaces = GOOD.replace("0123456789abcdef", &" ".repeat(16));
    assert!(
        error(&spaces).contains("`secret`: refused"),
        "{}",
        error(&spaces)
    );
    let repeated = GOOD.replace("0123456789abcdef", "abababababababababab");
    assert!(error(&repeated).contains("bits of randomness"));
    let same_port = GOOD.replace(
        "listen = \"127.0.0.1:7101\"",
        "listen = \"127.0.0.1:7101\"\nadmin = \"0.0.0.0:7101\"",
    );
    let message = error(&same_port);
    assert!(message.contains("`admin` and `listen`"), "{message}");
}

#[test]
fn admin_tokens_and_limits_are_read_and_checked() {
    let dir = std::env::temp_dir().join(format!("tenure-config-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("tokens"),
        "# rotation: both accepted\nold 3f2a9c0d11e4b7a5c0ffee99\nnew 77b1c3d5e7f90a2b4c6d8e0f\n",
    )
    .expect("tokens");
    let text = format!(
        "{GOOD}\n[admin-auth]\ntokens-file = \"tokens\"\nprotect-reads = true\n\
         [admin-limits]\nmax-connections = 3\nheader-timeout-ms = 250\n"
    );
    let c = NodeConfig::parse(&text, &dir).expect("valid");
    let names: Vec<&str> = c
        .admin_auth
        .tokens
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["old", "new"]);
    assert!(c.admin_auth.protect_reads);
    assert_eq!(c.admin_limits.max_connections, 3);
    assert_eq!(c.admin_limits.header_timeout.as_millis(), 250);
    assert_eq!(c.admin_limits.max_upload_bytes, 64 << 20);
    // The token's value is not kept, and not printed.
    assert!(!format!("{:?}", c.admin_auth).contains("3f2a9c0d"));

    for (tokens, expected) in [
        ("ops short\n", "at least 16 bytes"),
        ("ops aaaaaaaaaaaaaaaaaaaaaaaa\n", "too weak"),
        (
            "ops 3f2a9c0d11e4b7a5c0ffee99 extra\n",
            "line 1: expected `NAME TOKEN`",
        ),
        (
            "a 3f2a9c0d11e4b7a5c0ffee99\na 77b1c3d5e7f90a2b4c6d8e0f\n",
            "appears twice",
        ),
        ("# nothing\n", "holds no tokens"),
    ] {
        std::fs::write(dir.join("tokens"), tokens).expect("tokens");
        let message = format!(
            "{:#}",
            NodeConfig::parse(&text, &dir).expect_err("a bad tokens file")
        );
        assert!(
            message.contains("admin-auth.tokens-file") && message.contains(expected),
            "{tokens:?}: {message}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let slow = error(&format!("{GOOD}\n[admin-limits]\nheader-timeout-ms = 5\n"));
    assert!(slow.contains("`admin-limits.header-timeout-ms`"), "{slow}");
}

#[test]
fn the_admin_address_is_served_beyond_loopback_only_with_tokens_or_by_name() {
    let c = NodeConfig::parse(GOOD, Path::new("/etc/tenure")).expect("valid");
    let remote: SocketAddr = "10.1.2.3:7201".parse().expect("address");
    let loopback: SocketAddr = "127.0.0.1:7201".parse().expect("address");
    assert!(c.admin_auth.check_exposure(loopback, None).is_ok());
    let refused = format!(
        "{:#}",
        c.admin_auth
            .check_exposure(remote, None)
            .expect_err("refused")
    );
    assert!(refused.contains("not a loopback address"), "{refused}");
    let mut with_token = c.admin_auth.clone();
    with_token
        .add_env_token(Some("9d41c7e2b05af3680e1d2c4b".into()))
        .expect("a strong token");
    assert!(with_token.check_exposure(remote, None).is_ok());
    let mut opted_out = c.admin_auth.clone();
    opted_out.insecure_allow_remote_without_auth = true;
    assert!(opted_out.check_exposure(remote, None).is_ok());
}

#[test]
fn egress_allowlists_and_plugin_limits_are_read_and_checked() {
    use crate::plugin::egress::EgressMode;
    let with = |plugin: &str, limits: &str| {
        GOOD.replace("path = \"p.wasm\"", &format!("path = \"p.wasm\"\n{plugin}")) + limits
    };
    let c = NodeConfig::parse(GOOD, Path::new("/")).expect("valid");
    let p = c.plugin.expect("plugin");
    assert!(p.egress.rules.is_empty(), "HTTP is denied by default");
    assert_eq!(p.quota, crate::plugin::quota::PluginQuota::default());

    let text = with(
        "allow-http = [\"http://127.0.0.1:9000\", { url = \"https://Hooks.example.com\", mode = \"any\" }]\n\
         http-timeout-ms = 2500\nhttp-connect-timeout-ms = 300\nfencing-header = \"X-Fence\"\n",
        "[plugin-limits]\nmax-wakeups = 10\nlog-lines-per-sec = 5\nmax-snapshot-bytes = 4096\n",
    );
    let p = NodeConfig::parse(&text, Path::new("/"))
        .expect("valid")
        .plugin
        .expect("plugin");
    let rules: Vec<(String, EgressMode)> = p
        .egress
        .rules
        .iter()
        .map(|r| (r.origin(), r.mode))
        .collect();
    assert_eq!(
        rules,
        [
            ("http://127.0.0.1:9000".to_string(), EgressMode::Leader),
            ("https://hooks.example.com:443".to_string(), EgressMode::Any),
        ],
        "a bare URL is fenced"
    );
    assert_eq!(
        p.egress.total_timeout,
        std::time::Duration::from_millis(2500)
    );
    assert_eq!(
        p.egress.connect_timeout,
        std::time::Duration::from_millis(300)
    );
    assert_eq!(
        crate::plugin::egress::EgressPolicy::default().connect_timeout,
        std::time::Duration::from_secs(2),
        "the connect timeout's default"
    );
    assert_eq!(p.quota.max_snapshot_bytes, 4096);
    assert_eq!(p.egress.fencing_header.as_str(), "x-fence");
    assert_eq!((p.quota.max_wakeups, p.quota.log_lines_per_sec), (10, 5));
    let limits = p.limits();
    assert_eq!(limits.usage.quota().max_wakeups, 10);

    for (plugin, limits, expected) in [
        ("allow-http = [\"ftp://x\"]\n", "", "plugin.allow-http[0]"),
        ("allow-http = [\"http://x/path\"]\n", "", "not a path"),
        (
            "allow-http = [{ url = \"http://x\", mode = \"sometimes\" }]\n",
            "",
            "plugin.allow-http[0].mode",
        ),
        (
            "allow-http = [\"http://x\", { url = \"http://x:80\", mode = \"any\" }]\n",
            "",
            "listed twice",
        ),
        (
            "http-max-concurrent = 0\n",
            "",
            "plugin.http-max-concurrent",
        ),
        (
            "http-connect-timeout-ms = 5\n",
            "",
            "plugin.http-connect-timeout-ms",
        ),
        (
            "http-connect-timeout-ms = 600001\n",
            "",
            "plugin.http-connect-timeout-ms",
        ),
        (
            "fencing-header = \"bad header\"\n",
            "",
            "plugin.fencing-header",
        ),
        (
            "",
            "[plugin-limits]\nmax-message-bytes = 100000\n",
            "plugin-limits.max-message-bytes",
        ),
        ("", "[plugin-limits]\nmax-wakeup = 3\n", "unknown field"),
        (
            "",
            "[plugin-limits]\nmax-snapshot-bytes = 0\n",
            "plugin-limits.max-snapshot-bytes",
        ),
    ] {
        let message = error(&with(plugin, limits));
        assert!(message.contains(expected), "{plugin}{limits}: {message}");
    }
}

#[test]
fn peers_may_be_dns_names_and_ipv6_literals() {
    let text = GOOD.replace(
        "n2 = \"127.0.0.1:7102\"",
        "n2 = \"[::1]:7102\"\nn3 = \"localhost:7103\"\ntenure-2 = \"tenure-2.tenure.prod.svc:7101\"",
    );
    // The published example secret is fine on loopback and `localhost` …
    let c = NodeConfig::parse(&text, Path::new("/etc/tenure")).expect("valid");
    assert_eq!(
        c.peers["n2"],
        PeerAddr::Socket("[::1]:7102".parse().expect("addr"))
    );
    assert_eq!(
        c.peers["n3"],
        PeerAddr::Name {
            host: "localhost".into(),
            port: 7103
        }
    );
    assert_eq!(
        c.peers["tenure-2"].to_string(),
        "tenure-2.tenure.prod.svc:7101"
    );
    // … but a name that may be anywhere counts as off loopback.
    let published = text.replace("0123456789abcdef", "example-cluster-secret-change-me");
    assert!(error(&published).contains("`secret`"));
}

#[test]
fn bad_peer_addresses_name_the_key_and_the_problem() {
    let replace = |to: &str| GOOD.replace("n2 = \"127.0.0.1:7102\"", &format!("n2 = \"{to}\""));
    for (bad, says) in [
        ("tenure-0", "no port"),
        ("tenure-0:0", "port"),
        ("::1:7102", "brackets"),
        ("bad host:7102", "DNS name"),
    ] {
        let e = error(&replace(bad));
        assert!(e.contains("`peers.n2`") && e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn node_ids_expand_environment_variables_and_name_the_missing_one() {
    let text = GOOD.replace(
        "node-id = \"n1\"",
        "node-id = \"${TENURE_TEST_SURELY_UNSET_VARIABLE}\"",
    );
    let e = error(&text);
    assert!(
        e.contains("`node-id`") && e.contains("TENURE_TEST_SURELY_UNSET_VARIABLE"),
        "{e}"
    );
    // TENURE_NODE_ID (here as its override) replaces the file's id, and is
    // expanded too; a peer entry with the resulting id is skipped.
    let set = overrides::collect([("TENURE_NODE_ID".to_string(), "n2".to_string())], &[])
        .expect("overrides");
    let c = NodeConfig::parse_with(&text, Path::new("/etc/tenure"), &set).expect("valid");
    assert_eq!(c.node_id, "n2");
    assert_eq!(c.peers.keys().collect::<Vec<_>>(), ["n1"]);
}
