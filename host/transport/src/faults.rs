//! A **test-only** fault layer: delay and loss injected into what a node
//! receives, for fault tests on kernels without `tc netem` (see
//! `tests/netns.rs`). Nothing uses it unless a caller wraps its inbound
//! receiver with [`wrap`]; the `tenure` binary does so only when the
//! environment variable [`ENV_VAR`] names a control file, and then warns
//! loudly at start and on every change of the faults in force.
//!
//! The control file holds one line of `key=value` words (an empty or
//! missing file means no faults):
//!
//! ```text
//! delay-ms=30 jitter-ms=20 loss=0.2 from=n1,n2
//! ```
//!
//! - `delay-ms`: every message is held this long before the node sees it;
//! - `jitter-ms`: plus a uniform extra of up to this much, never
//!   reordering (a message is never delivered before the one received
//!   before it, as on one TCP connection);
//! - `loss`: the probability (0 to 1) that a message is dropped instead;
//! - `from`: only messages from these peers suffer (all when absent).
//!
//! The file is read again every [`RELOAD_EVERY`], so a test applies and
//! heals faults while the node runs by rewriting it.
//!
//! ```
//! use tenure_transport::faults::FaultSpec;
//! let spec: FaultSpec = "delay-ms=30 jitter-ms=20 loss=0.25 from=n1".parse()?;
//! assert_eq!(spec.loss, 0.25);
//! assert!(spec.applies_to("n1") && !spec.applies_to("n2"));
//! assert!("".parse::<FaultSpec>()?.is_none());
//! assert!("loss=2".parse::<FaultSpec>().is_err());
//! # Ok::<(), String>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::event::Inbound;
use crate::transport::INBOUND_CAPACITY;

/// The environment variable that turns the layer on in `tenure run`: the
/// path of the control file. Never set it outside a test.
pub const ENV_VAR: &str = "TENURE_TEST_ONLY_NET_FAULTS";

/// How often the control file is read again.
pub const RELOAD_EVERY: Duration = Duration::from_millis(50);

/// The faults in force: see the module docs for the file's syntax.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// How long every affected message is held.
    pub delay: Duration,
    /// Up to how much longer, drawn uniformly per message.
    pub jitter: Duration,
    /// The probability that an affected message is dropped.
    pub loss: f64,
    /// The senders affected; all when `None`.
    pub from: Option<BTreeSet<String>>,
}

impl FaultSpec {
    /// Whether this spec changes nothing.
    pub fn is_none(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.loss == 0.0
    }

    /// Whether messages from `peer` suffer these faults.
    pub fn applies_to(&self, peer: &str) -> bool {
        self.from.as_ref().is_none_or(|from| from.contains(peer))
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultSpec, String> {
        let mut spec = FaultSpec::default();
        let ms = |v: &str| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{v:?}: {e}"))
        };
        for word in text.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?} is not key=value"))?;
            match key {
                "delay-ms" => spec.delay = ms(value)?,
                "jitter-ms" => spec.jitter = ms(value)?,
                "loss" => {
                    let loss: f64 = value.parse().map_err(|e| format!("{value:?}: {e}"))?;
                    if !(0.0..=1.0).contains(&loss) {
                        return Err(format!("loss={value} is not between 0 and 1"));
                    }
                    spec.loss = loss;
                }
                "from" => spec.from = Some(value.split(',').map(str::to_owned).collect()),
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        Ok(spec)
    }
}

/// Reads the control file: no file or a bad one means no faults (a bad
/// one is reported).
fn read(path: &PathBuf) -> FaultSpec {
    let Ok(text) = std::fs::read_to_string(path) else {
        return FaultSpec::default();
    };
    text.parse().unwrap_or_else(|e| {
        tracing::error!(file = %path.display(), error = %e, "TEST FAULT LAYER: bad control file ignored");
        FaultSpec::default()
    })
}

/// Puts the fault layer between `inbound` and the receiver returned, the
/// faults read from `control` (see the module docs). Logs a warning now
/// and on every change: this layer loses messages on purpose. Must be
/// called within a Tokio runtime.
pub fn wrap(mut inbound: mpsc::Receiver<Inbound>, control: PathBuf) -> mpsc::Receiver<Inbound> {
    tracing::warn!(
        file = %control.display(),
        "TEST FAULT LAYER ON ({ENV_VAR}): received messages may be delayed or dropped on purpose; \
         never use this outside a fault test"
    );
    let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
    tokio::spawn(async move {
        let mut spec = read(&control);
        // Held messages by (when due, arrival number); per sender, never
        // due before the one it sent before.
        let mut held: BTreeMap<(Instant, u64), Inbound> = BTreeMap::new();
        let mut last_due: HashMap<String, Instant> = HashMap::new();
        let mut arrivals: u64 = 0;
        let mut reload = tokio::time::interval(RELOAD_EVERY);
        let mut dropped: u64 = 0;
        loop {
            let due = held.keys().next().map(|(at, _)| *at);
            tokio::select! {
                message = inbound.recv() => {
                    let Some(message) = message else { break };
                    let mut at = Instant::now();
                    if spec.applies_to(&message.from) && !spec.is_none() {
                        if rand::random::<f64>() < spec.loss {
                            dropped += 1;
                            continue;
                        }
                        at += spec.delay + spec.jitter.mul_f64(rand::random::<f64>());
                    }
                    let last = last_due.entry(message.from.clone()).or_insert(at);
                    at = at.max(*last);
                    *last = at;
                    arrivals += 1;
                    held.insert((at, arrivals), message);
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    let now = Instant::now();
                    while let Some(entry) = held.first_entry() {
                        if entry.key().0 > now {
                            break;
                        }
                        if tx.send(entry.remove()).await.is_err() {
                            return;
                        }
                    }
                }
                _ = reload.tick() => {
                    let next = read(&control);
                    if next != spec {
                        tracing::warn!(
                            faults = ?next, dropped_so_far = dropped,
                            "TEST FAULT LAYER: faults changed"
                        );
                        spec = next;
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(from: &str, n: u8) -> Inbound {
        Inbound {
            from: from.into(),
            channel: crate::Channel::Protocol,
            payload: vec![n],
        }
    }

    #[test]
    fn specs_parse_and_refuse_nonsense() {
        let spec: FaultSpec = "delay-ms=5 jitter-ms=3 loss=0.5 from=a,b".parse().unwrap();
        assert_eq!(spec.delay, Duration::from_millis(5));
        assert_eq!(spec.jitter, Duration::from_millis(3));
        assert!(spec.applies_to("b") && !spec.applies_to("c"));
        for bad in ["loss=-1", "delay-ms=x", "speed=3", "delay-ms"] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn messages_are_held_in_order_and_lost_as_told() {
        let dir = std::env::temp_dir().join(format!("tenure-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let control = dir.join("faults");
        std::fs::write(&control, "delay-ms=100 jitter-ms=50 from=a").unwrap();
        let (tx, rx) = mpsc::channel(16);
        let mut out = wrap(rx, control.clone());
        tokio::task::yield_now().await;
        let start = Instant::now();
        for n in 0..5 {
            tx.send(message("a", n)).await.unwrap();
        }
        tx.send(message("b", 9)).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(out.recv().await.unwrap().payload[0]);
        }
        // b's message passes at once; a's are held 100 to 150 ms, in order.
        assert_eq!(got, [9, 0, 1, 2, 3, 4]);
        // Real time: at least the delay (a busy machine may add more).
        assert!(start.elapsed() >= Duration::from_millis(100));
        // Total loss, once the layer has read it: messages sent while
        // the old spec still holds arrive (the reload is a poll, and a
        // loaded machine may run it late), so wait until one is lost,
        // then every later one is too.
        std::fs::write(&control, "loss=1").unwrap();
        let wait = RELOAD_EVERY * 4;
        let mut lost = false;
        for _ in 0..100 {
            tx.send(message("a", 1)).await.unwrap();
            if tokio::time::timeout(wait, out.recv()).await.is_err() {
                lost = true;
                break;
            }
        }
        assert!(lost, "loss=1 was never applied");
        for _ in 0..5 {
            tx.send(message("a", 1)).await.unwrap();
        }
        assert!(
            tokio::time::timeout(wait, out.recv()).await.is_err(),
            "all are lost"
        );
        // No faults again: the next message that arrives is the first one
        // sent after the layer read the empty file, none of the lost ones.
        std::fs::write(&control, "").unwrap();
        let mut arrived = None;
        for _ in 0..100 {
            tx.send(message("a", 2)).await.unwrap();
            if let Ok(got) = tokio::time::timeout(wait, out.recv()).await {
                arrived = got.map(|m| m.payload);
                break;
            }
        }
        assert_eq!(arrived, Some(vec![2]), "the lost ones stay lost");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
