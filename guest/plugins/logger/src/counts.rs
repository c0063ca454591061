//! Per-callback counters and their snapshot format.
//!
//! The snapshot is UTF-8 text: a header line, then one `NAME COUNT` line
//! per callback that was called, e.g.
//!
//! ```text
//! tenure-plugin-logger 1
//! init 1
//! on-become-leader 3
//! ```

/// The first line of every snapshot: format name and version.
const HEADER: &str = "tenure-plugin-logger 1";

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
    /// `inspect`
    Inspect,
    /// `snapshot`
    Snapshot,
    /// `restore`
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

    /// The callback with WIT name `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Callback> {
        Callback::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The callback's position in [`Callback::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

/// How many times each callback has been called.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts([u64; Callback::ALL.len()]);

impl Counts {
    /// Counts one call of `callback`.
    pub fn record(&mut self, callback: Callback) {
        let count = &mut self.0[callback.index()];
        *count = count.saturating_add(1);
    }

    /// How many times `callback` was called.
    pub fn get(&self, callback: Callback) -> u64 {
        self.0[callback.index()]
    }

    /// Adds `other`'s counts to these (a restored snapshot's counts to the
    /// new instance's own, so the totals cover every version).
    pub fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// Every callback's count, then the `total`, for `inspect`.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let total = self.0.iter().fold(0u64, |sum, n| sum.saturating_add(*n));
        Callback::ALL
            .into_iter()
            .map(|c| (c.name().to_string(), self.get(c).to_string()))
            .chain([("total".to_string(), total.to_string())])
            .collect()
    }

    /// The snapshot text (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{HEADER}\n");
        for callback in Callback::ALL {
            let count = self.get(callback);
            if count > 0 {
                text.push_str(&format!("{} {count}\n", callback.name()));
            }
        }
        text.into_bytes()
    }

    /// Reads a snapshot written by [`Counts::encode`]. An empty snapshot
    /// means no state (all zero); anything else that is not a well-formed
    /// snapshot is refused with the reason.
    pub fn decode(snapshot: &[u8]) -> Result<Counts, String> {
        if snapshot.is_empty() {
            return Ok(Counts::default());
        }
        let text =
            std::str::from_utf8(snapshot).map_err(|_| "snapshot is not UTF-8 text".to_string())?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!(
                "snapshot is not a logger snapshot (expected first line `{HEADER}`)"
            ));
        }
        let mut counts = Counts::default();
        let mut seen = [false; Callback::ALL.len()];
        for (number, line) in lines.enumerate().map(|(i, l)| (i + 2, l)) {
            let (name, count) = line
                .split_once(' ')
                .ok_or_else(|| format!("snapshot line {number}: expected `NAME COUNT`"))?;
            let callback = Callback::from_name(name)
                .ok_or_else(|| format!("snapshot line {number}: unknown callback `{name}`"))?;
            let count = count
                .parse::<u64>()
                .map_err(|_| format!("snapshot line {number}: `{count}` is not a count"))?;
            if std::mem::replace(&mut seen[callback.index()], true) {
                return Err(format!("snapshot line {number}: `{name}` given twice"));
            }
            counts.0[callback.index()] = count;
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_indices() {
        for (i, callback) in Callback::ALL.into_iter().enumerate() {
            assert_eq!(callback.index(), i);
            assert_eq!(Callback::from_name(callback.name()), Some(callback));
        }
        assert_eq!(Callback::from_name("on_call"), None);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut counts = Counts::default();
        counts.record(Callback::Init);
        counts.record(Callback::OnBecomeLeader);
        counts.record(Callback::OnBecomeLeader);
        let text = counts.encode();
        assert_eq!(
            String::from_utf8_lossy(&text),
            "tenure-plugin-logger 1\ninit 1\non-become-leader 2\n"
        );
        assert_eq!(Counts::decode(&text), Ok(counts));
    }

    #[test]
    fn restore_adds_to_the_new_instance_counts() {
        let mut old = Counts::default();
        old.record(Callback::OnCall);
        old.record(Callback::Init);
        let mut new = Counts::default();
        new.record(Callback::Init);
        new.add(&Counts::decode(&old.encode()).expect("decodes"));
        assert_eq!(new.get(Callback::Init), 2);
        assert_eq!(new.get(Callback::OnCall), 1);
        let pairs = new.pairs();
        assert_eq!(pairs.len(), 13);
        assert_eq!(pairs[12], ("total".to_string(), "3".to_string()));
    }

    #[test]
    fn empty_snapshot_is_no_state() {
        assert_eq!(Counts::decode(b""), Ok(Counts::default()));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (garbage, reason) in [
            (&b"\xff\xfe"[..], "not UTF-8"),
            (b"hello", "not a logger snapshot"),
            (b"tenure-plugin-logger 1\ninit", "line 2: expected"),
            (b"tenure-plugin-logger 1\nfoo 1", "unknown callback `foo`"),
            (b"tenure-plugin-logger 1\ninit -1", "`-1` is not a count"),
            (
                b"tenure-plugin-logger 1\ninit 1\ninit 2",
                "`init` given twice",
            ),
        ] {
            let error = Counts::decode(garbage).expect_err("garbage");
            assert!(error.contains(reason), "{error:?} lacks {reason:?}");
        }
    }
}
