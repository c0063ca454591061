//! A deliberately misbehaving Tenure behaviour plugin, for testing that the
//! host contains a bad plugin.
//!
//! `mode` chooses the misbehaviour (`loop`, `bomb`, `trap`, `refuse`, …,
//! `none`: see `config::Mode`) and `on` the callback where it happens (default
//! `on-become-leader`). Every other callback is a quiet no-op. Calls are
//! counted per callback and shown by `inspect`, so a test can tell the
//! plugin was reached.
//!
//! Build it with
//!
//! ```text
//! cargo build -p tenure-plugin-misbehave --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/tenure_plugin_misbehave.wasm`.

#[cfg(any(target_arch = "wasm32", test))]
mod config;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::{Cell, RefCell};

    use crate::config::{Callback, Config, Mode};

    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit",
        generate_all,
    });

    use exports::tenure::election::behaviour::Guest;
    use tenure::election::leader_api;
    use tenure::election::types::LogLevel;

    /// What `mode = "bomb"` allocates at a time: 1 MiB.
    const CHUNK_BYTES: usize = 1 << 20;
    /// How often `mode = "everywhere"` runs its job, in milliseconds.
    const EVERYWHERE_PERIOD_MS: u64 = 100;
    /// Requests `mode = "hold-http"` starts per call...
    const HOLD_PER_CALL: usize = 16;
    /// ... and holds at most per instance (under the host's cap of 1,024
    /// resources, so the instance lives and holds them for good).
    const HOLD_MOST: usize = 960;
    /// Transfers `mode = "transfer-loop"` asks for per call.
    const TRANSFERS_PER_CALL: usize = 1_000;

    thread_local! {
        /// The configuration; the default (`none`) until `init`.
        static CONFIG: Cell<Config> = Cell::new(Config::default());
        /// How often each callback has been called, indexed like
        /// [`Callback::ALL`].
        static COUNTS: RefCell<[u64; Callback::ALL.len()]> =
            const { RefCell::new([0; Callback::ALL.len()]) };
        /// How often `mode = "everywhere"` ran its job.
        static RUNS: Cell<u64> = const { Cell::new(0) };
        /// Where `mode = "bomb"` keeps what it allocated, so it is never freed.
        static BALLAST: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        /// What `mode = "hold-http"` started: never dropped, never read.
        static HELD: RefCell<Vec<wasi::http::types::FutureIncomingResponse>> =
            const { RefCell::new(Vec::new()) };
        /// What `mode = "hold-http"` asked `exhaust` keeps: header sets.
        static FIELDS: RefCell<Vec<wasi::http::types::Fields>> =
            const { RefCell::new(Vec::new()) };
    }

    /// Counts a call of `callback`, then misbehaves if it is the configured
    /// one. Returns the refusal for `mode = "refuse"`; the other modes
    /// never return.
    fn enter(callback: Callback) -> Result<(), String> {
        COUNTS.with_borrow_mut(|counts| {
            let count = &mut counts[callback.index()];
            *count = count.saturating_add(1);
        });
        let config = CONFIG.get();
        if config.on != callback {
            return Ok(());
        }
        match config.mode {
            Mode::None => Ok(()),
            Mode::Refuse => callback.refusal().map_or(Ok(()), |r| Err(r.to_string())),
            Mode::Loop => spin(),
            Mode::Bomb => bomb(),
            Mode::Trap => panic!("misbehave plugin: trapping in {}", callback.name()),
            Mode::FloodSend => loop {
                let peers = leader_api::peers();
                for peer in peers.iter().chain(std::iter::once(&"nobody".to_string())) {
                    leader_api::send(peer, &[0x5A; 4096]);
                }
            },
            Mode::FloodBroadcast => loop {
                leader_api::broadcast(&[0x5A; 4096]);
            },
            Mode::FloodLog => {
                let line = "x".repeat(CHUNK_BYTES);
                loop {
                    leader_api::log(LogLevel::Info, &line);
                }
            }
            Mode::FloodSchedule => loop {
                leader_api::schedule(0, "flood");
            },
            Mode::Stderr => {
                use std::io::Write as _;
                let line = format!("{}\n", "e".repeat(CHUNK_BYTES));
                loop {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                    let _ = std::io::stdout().write_all(line.as_bytes());
                }
            }
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(())
            }
            // Misbehave in `inspect`, `on-call` and `on-scheduled` themselves.
            Mode::HugeInspect
            | Mode::Escape
            | Mode::Everywhere
            | Mode::HoldHttp
            | Mode::TransferLoop => Ok(()),
        }
    }

    /// Spins forever; `black_box` keeps the optimiser from removing it.
    fn spin() -> ! {
        let mut turns = 0u64;
        loop {
            turns = core::hint::black_box(turns).wrapping_add(1);
        }
    }

    /// Allocates 1 MiB chunks, filled so the pages are really used, until
    /// memory runs out and the allocation failure aborts (a trap).
    fn bomb() -> ! {
        loop {
            let chunk = core::hint::black_box(vec![0xA5u8; CHUNK_BYTES]);
            BALLAST.with_borrow_mut(|ballast| ballast.push(chunk));
        }
    }

    /// Tries each way out of the sandbox; one `what: outcome` line each.
    fn escape(target: &str) -> String {
        fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
            match r {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("refused ({e})"),
            }
        }
        let tcp = outcome(std::net::TcpStream::connect(target));
        let udp =
            outcome(std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"out", target)));
        let dns = outcome(std::net::ToSocketAddrs::to_socket_addrs("localhost:80"));
        let file = outcome(std::fs::read("/etc/hostname"));
        let dir = outcome(std::fs::read_dir("/"));
        let env = std::env::vars().count();
        format!(
            "tcp: {tcp}\nudp: {udp}\ndns: {dns}\nfile: {file}\ndir: {dir}\nenv: {env} variables\n"
        )
    }

    /// Starts [`HOLD_PER_CALL`] GETs of `url` (`http://HOST:PORT/PATH`)
    /// and keeps every one, answered or not, with its body unread. Asked
    /// `exhaust` instead, makes header sets (host resources) and keeps
    /// them, without end: the host's cap on resources must trap it.
    fn hold_http(url: &str) -> String {
        use wasi::http::types::{Fields, OutgoingRequest, Scheme};
        if url == "exhaust" {
            loop {
                FIELDS.with_borrow_mut(|fields| fields.push(Fields::new()));
            }
        }
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        for _ in 0..HOLD_PER_CALL {
            if HELD.with_borrow(Vec::len) >= HOLD_MOST {
                break;
            }
            let request = OutgoingRequest::new(Fields::new());
            let _ = request.set_scheme(Some(&Scheme::Http));
            let _ = request.set_authority(Some(authority));
            let _ = request.set_path_with_query(Some(path));
            // A refusal arrives in the future, which is held all the same.
            if let Ok(future) = wasi::http::outgoing_handler::handle(request, None) {
                HELD.with_borrow_mut(|held| held.push(future));
            }
        }
        format!("held {}", HELD.with_borrow(Vec::len))
    }

    /// Asks to hand leadership to each peer in turn, [`TRANSFERS_PER_CALL`]
    /// times; answers how many the host accepted (it carries out only the
    /// last).
    fn transfer_loop() -> String {
        let peers = leader_api::peers();
        let mut accepted = 0u64;
        for i in 0..TRANSFERS_PER_CALL {
            let Some(peer) = peers.get(i % peers.len().max(1)) else {
                break;
            };
            if leader_api::transfer_leadership(peer).is_ok() {
                accepted += 1;
            }
        }
        format!("asked {accepted}")
    }

    struct Component;

    impl Guest for Component {
        fn init(config: Vec<(String, String)>) -> Result<(), String> {
            let config = Config::parse(&config)?;
            CONFIG.set(config);
            leader_api::log(
                LogLevel::Debug,
                &format!(
                    "misbehave plugin: mode {} on {}",
                    config.mode.name(),
                    config.on.name()
                ),
            );
            if config.mode == Mode::Everywhere {
                leader_api::schedule(EVERYWHERE_PERIOD_MS, "job");
            }
            enter(Callback::Init)
        }

        fn on_become_leader(_term: u64) -> Result<(), String> {
            enter(Callback::OnBecomeLeader)
        }

        fn on_become_follower(_leader: Option<String>, _term: u64) {
            let _ = enter(Callback::OnBecomeFollower);
        }

        fn on_peer_joined(_peer: String) {
            let _ = enter(Callback::OnPeerJoined);
        }

        fn on_peer_left(_peer: String) {
            let _ = enter(Callback::OnPeerLeft);
        }

        fn on_term_changed(_old: u64, _new: u64) {
            let _ = enter(Callback::OnTermChanged);
        }

        fn on_message(_sender: String, _payload: Vec<u8>) {
            let _ = enter(Callback::OnMessage);
        }

        fn on_call(request: Vec<u8>) -> Result<Vec<u8>, String> {
            enter(Callback::OnCall)?;
            match CONFIG.get().mode {
                Mode::Escape => {
                    return Ok(escape(&String::from_utf8_lossy(&request)).into_bytes());
                }
                Mode::HoldHttp => {
                    return Ok(hold_http(&String::from_utf8_lossy(&request)).into_bytes());
                }
                Mode::TransferLoop => return Ok(transfer_loop().into_bytes()),
                _ => {}
            }
            Ok(Vec::new())
        }

        fn on_scheduled(_id: u64, tag: String) {
            let _ = enter(Callback::OnScheduled);
            if CONFIG.get().mode == Mode::Everywhere && tag == "job" {
                // The bug: no `is_leader()` check.
                RUNS.set(RUNS.get() + 1);
                let line = format!(
                    "run {} of job by {} in term {}",
                    RUNS.get(),
                    leader_api::this_node(),
                    leader_api::current_term()
                );
                leader_api::log(LogLevel::Info, &line);
                leader_api::schedule(EVERYWHERE_PERIOD_MS, "job");
            }
        }

        fn inspect() -> Vec<(String, String)> {
            let _ = enter(Callback::Inspect);
            let config = CONFIG.get();
            if config.mode == Mode::HugeInspect {
                return (0..8)
                    .map(|i| (format!("ballast-{i}"), "i".repeat(CHUNK_BYTES)))
                    .collect();
            }
            let counts = COUNTS.with_borrow(|counts| *counts);
            [
                ("mode".to_string(), config.mode.name().to_string()),
                ("on".to_string(), config.on.name().to_string()),
            ]
            .into_iter()
            .chain(
                Callback::ALL
                    .into_iter()
                    .map(|c| (c.name().to_string(), counts[c.index()].to_string())),
            )
            .collect()
        }

        fn snapshot() -> Vec<u8> {
            let _ = enter(Callback::Snapshot);
            Vec::new()
        }

        fn restore(_snapshot: Vec<u8>) -> Result<(), String> {
            enter(Callback::Restore)
        }
    }

    export!(Component);
}
