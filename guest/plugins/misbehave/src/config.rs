//! The misbehave plugin's configuration: what goes wrong (`mode`) and in
//! which callback (`on`).

/// What the plugin does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Spin forever: the host's deadline must interrupt it.
    Loop,
    /// Allocate without bound: the host's memory cap must stop it.
    Bomb,
    /// Panic, which traps the component.
    Trap,
    /// Return an error from a callback that returns a result.
    Refuse,
    /// Call `send` to every peer in a loop, until the deadline.
    FloodSend,
    /// Call `broadcast` in a loop, until the deadline.
    FloodBroadcast,
    /// Log 1 MiB lines in a loop, until the deadline.
    FloodLog,
    /// Call `schedule` in a loop, until the deadline.
    FloodSchedule,
    /// Write 1 MiB lines to stderr (and stdout) in a loop.
    Stderr,
    /// Sleep for an hour: blocked in a host call (a WASI clock wait).
    Sleep,
    /// Answer `inspect` with 8 MiB of pairs, however it was asked.
    HugeInspect,
    /// In `on-call`, try every way out of the sandbox but HTTP — a TCP
    /// connection and a UDP datagram to the `HOST:PORT` in the request, a
    /// name lookup, the environment, a file — and answer what came of
    /// each.
    Escape,
    /// Run a "leader-only" job on every node, leader or not — the bug a
    /// scenario's `one-node-per-term` must catch: from `init` on, a wake-up
    /// every 100 ms logs `run N of job by NODE in term T` (`on` is
    /// ignored).
    Everywhere,
    /// In `on-call`, start 16 HTTP GETs of the URL in the request and
    /// never let go of one: every answer is kept (its body unread) for as
    /// long as the instance lives. Answers `held N`. Asked `exhaust`,
    /// it makes header sets without end instead (the host's resource cap
    /// must trap it).
    HoldHttp,
    /// In `on-call`, ask `transfer-leadership` 1,000 times (to each peer
    /// in turn) and return: the host carries out one.
    TransferLoop,
    /// Nothing: a quiet no-op plugin.
    None,
}

impl Mode {
    /// Every mode, for messages.
    const ALL: [Mode; 16] = [
        Mode::Loop,
        Mode::Bomb,
        Mode::Trap,
        Mode::Refuse,
        Mode::FloodSend,
        Mode::FloodBroadcast,
        Mode::FloodLog,
        Mode::FloodSchedule,
        Mode::Stderr,
        Mode::Sleep,
        Mode::HugeInspect,
        Mode::Escape,
        Mode::Everywhere,
        Mode::HoldHttp,
        Mode::TransferLoop,
        Mode::None,
    ];

    /// The mode's config name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Loop => "loop",
            Mode::Bomb => "bomb",
            Mode::Trap => "trap",
            Mode::Refuse => "refuse",
            Mode::FloodSend => "flood-send",
            Mode::FloodBroadcast => "flood-broadcast",
            Mode::FloodLog => "flood-log",
            Mode::FloodSchedule => "flood-schedule",
            Mode::Stderr => "stderr",
            Mode::Sleep => "sleep",
            Mode::HugeInspect => "huge-inspect",
            Mode::Escape => "escape",
            Mode::Everywhere => "everywhere",
            Mode::HoldHttp => "hold-http",
            Mode::TransferLoop => "transfer-loop",
            Mode::None => "none",
        }
    }
}

/// A callback of the WIT `behaviour` interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `init`
    Init,
    /// `on-become-leader`
    OnBecomeLeader,
    /// `on-become-follower`
    OnBecomeFollower,
    /// `on-peer-joined`
    OnPeerJoined,
    /// `on-peer-left`
    OnPeerLeft,
    /// `on-term-changed`
    OnTermChanged,
    /// `on-message`
    OnMessage,
    /// `on-call`
    OnCall,
    /// `on-scheduled`
    OnScheduled,
    /// `inspect` (counted, but never misbehaves)
    Inspect,
    /// `snapshot` (counted, but never misbehaves)
    Snapshot,
    /// `restore` (counted, but never misbehaves)
    Restore,
}

impl Callback {
    /// Every callback, in the order the WIT declares them.
    pub const ALL: [Callback; 12] = [
        Callback::Init,
        Callback::OnBecomeLeader,
        Callback::OnBecomeFollower,
        Callback::OnPeerJoined,
        Callback::OnPeerLeft,
        Callback::OnTermChanged,
        Callback::OnMessage,
        Callback::OnCall,
        Callback::OnScheduled,
        Callback::Inspect,
        Callback::Snapshot,
        Callback::Restore,
    ];

    /// The callbacks `on` may name: those the host calls on events, which
    /// the misbehaviour is meant to test.
    const TARGETS: [Callback; 9] = [
        Callback::Init,
        Callback::OnBecomeLeader,
        Callback::OnBecomeFollower,
        Callback::OnPeerJoined,
        Callback::OnPeerLeft,
        Callback::OnTermChanged,
        Callback::OnMessage,
        Callback::OnCall,
        Callback::OnScheduled,
    ];

    /// The callback's WIT name, e.g. `on-become-leader`.
    pub fn name(self) -> &'static str {
        match self {
            Callback::Init => "init",
            Callback::OnBecomeLeader => "on-become-leader",
            Callback::OnBecomeFollower => "on-become-follower",
            Callback::OnPeerJoined => "on-peer-joined",
            Callback::OnPeerLeft => "on-peer-left",
            Callback::OnTermChanged => "on-term-changed",
            Callback::OnMessage => "on-message",
            Callback::OnCall => "on-call",
            Callback::OnScheduled => "on-scheduled",
            Callback::Inspect => "inspect",
            Callback::Snapshot => "snapshot",
            Callback::Restore => "restore",
        }
    }

    /// The callback's position in [`Callback::ALL`], to index counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// What `mode = "refuse"` returns from this callback, if it returns a
    /// result at all.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Callback::Init => Some("refusing to start (misbehave plugin)"),
            Callback::OnBecomeLeader => Some("refusing leadership (misbehave plugin)"),
            Callback::OnCall => Some("refusing the call (misbehave plugin)"),
            _ => None,
        }
    }
}

/// A validated configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// What goes wrong. Default [`Mode::None`].
    pub mode: Mode,
    /// Where it goes wrong. Default [`Callback::OnBecomeLeader`].
    pub on: Callback,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::None,
            on: Callback::OnBecomeLeader,
        }
    }
}

impl Config {
    /// Validates the key/value pairs handed to `init`. Unknown keys, keys
    /// given twice and bad values are refused with the key named, and so is
    /// `refuse` on a callback that cannot return an error.
    pub fn parse(pairs: &[(String, String)]) -> Result<Config, String> {
        let mut config = Config::default();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key.as_str()) {
                return Err(format!("`{key}`: given twice"));
            }
            seen.push(key);
            let value = value.trim();
            match key.as_str() {
                "mode" => {
                    config.mode = Mode::ALL
                        .into_iter()
                        .find(|m| m.name() == value)
                        .ok_or_else(|| {
                            format!(
                                "`mode`: must be one of {}, got {value:?}",
                                names(Mode::ALL.map(Mode::name))
                            )
                        })?;
                }
                "on" => {
                    config.on = Callback::TARGETS
                        .into_iter()
                        .find(|c| c.name() == value)
                        .ok_or_else(|| {
                            format!(
                                "`on`: must be one of {}, got {value:?}",
                                names(Callback::TARGETS.map(Callback::name))
                            )
                        })?;
                }
                _ => {
                    return Err(format!(
                        "`{key}`: unknown key (the misbehave plugin takes `mode` and `on`)"
                    ));
                }
            }
        }
        if config.mode == Mode::Refuse && config.on.refusal().is_none() {
            return Err(format!(
                "`mode`: `refuse` needs `on` to be init, on-become-leader or on-call, not {}",
                config.on.name()
            ));
        }
        Ok(config)
    }
}

/// `a, b, c` for error messages.
fn names<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[(&str, &str)]) -> Result<Config, String> {
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(&pairs)
    }

    #[test]
    fn defaults_do_nothing_on_become_leader() {
        assert_eq!(parse(&[]), Ok(Config::default()));
        assert_eq!(Config::default().mode, Mode::None);
        assert_eq!(Config::default().on, Callback::OnBecomeLeader);
    }

    #[test]
    fn every_mode_and_target_parses() {
        for mode in Mode::ALL.into_iter().filter(|m| *m != Mode::Refuse) {
            for on in Callback::TARGETS {
                assert_eq!(
                    parse(&[("mode", mode.name()), ("on", on.name())]),
                    Ok(Config { mode, on })
                );
            }
        }
        for on in [Callback::Init, Callback::OnBecomeLeader, Callback::OnCall] {
            assert_eq!(
                parse(&[("on", on.name()), ("mode", "refuse")]),
                Ok(Config {
                    mode: Mode::Refuse,
                    on
                })
            );
        }
    }

    #[test]
    fn names_and_indices_agree() {
        for (i, callback) in Callback::ALL.into_iter().enumerate() {
            assert_eq!(callback.index(), i);
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        for (items, expected) in [
            (
                vec![("mode", "explode")],
                "`mode`: must be one of loop, bomb, trap, refuse, flood-send, flood-broadcast, \
                 flood-log, flood-schedule, stderr, sleep, huge-inspect, escape, everywhere, \
                 hold-http, transfer-loop, none",
            ),
            (
                vec![("on", "inspect")],
                "`on`: must be one of init, on-become-leader",
            ),
            (
                vec![("mode", "refuse"), ("on", "on-peer-left")],
                "`refuse` needs `on`",
            ),
            (vec![("when", "now")], "`when`: unknown key"),
            (vec![("on", "init"), ("on", "init")], "`on`: given twice"),
        ] {
            let error = parse(&items).expect_err("refused");
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
