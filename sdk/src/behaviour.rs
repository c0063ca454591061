//! The `Behaviour` trait: one method per callback of the WIT `behaviour`
//! interface, each with a default, so a plugin overrides only what it
//! needs.

use crate::{Config, Error, Term, WakeupId};

/// A behaviour plugin's leader logic.
///
/// The node creates your type with [`Default`] and calls [`init`] with its
/// config; after that it calls the other methods one at a time, in the
/// order the events happened, each under a deadline (`deadline-ms`,
/// 100 ms by default) and with the plugin's memory capped (`memory-mib`,
/// 64 MiB). A panic (a trap), an overrun deadline or the memory cap
/// replaces the instance with a fresh one: `Default`, `init` again,
/// wake-ups lost, and, if the node leads, [`on_become_leader`] with the
/// current term. Keep callbacks short and schedule longer work in steps.
///
/// Export your type with [`crate::export!`]. A behaviour that only acts
/// while leading:
///
/// ```
/// use tenure_sdk::{Behaviour, Error, Term, info, node};
///
/// #[derive(Default)]
/// struct Hello {
///     terms_led: u64,
/// }
///
/// impl Behaviour for Hello {
///     fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
///         self.terms_led += 1;
///         info!("{} leads term {term}", node::this_node());
///         Ok(())
///     }
///
///     fn on_become_follower(&mut self, leader: Option<&str>, term: Term) {
///         info!("following {leader:?} in term {term}");
///     }
/// }
///
/// tenure_sdk::export!(Hello);
/// ```
///
/// [`init`]: Behaviour::init
/// [`on_become_leader`]: Behaviour::on_become_leader
pub trait Behaviour: Default + 'static {
    /// Called once, right after the instance is created, with the plugin's
    /// config. An error refuses the plugin: at start-up the node does not
    /// start; on a hot swap the old version keeps running. On a node that
    /// already leads (a swap, or a replaced instance), [`crate::node::is_leader`]
    /// is already true here.
    ///
    /// Default: accepts any config.
    ///
    /// ```
    /// use tenure_sdk::{Behaviour, Config, Error};
    ///
    /// #[derive(Default)]
    /// struct Job { period_ms: u64 }
    ///
    /// impl Behaviour for Job {
    ///     fn init(&mut self, config: &Config) -> Result<(), Error> {
    ///         config.allow_only(&["period-ms"])?;
    ///         self.period_ms = config.parse_or("period-ms", 1000)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut job = Job::default();
    /// assert!(job.init(&Config::from_pairs([("period_ms", "5")])).is_err());
    /// ```
    fn init(&mut self, config: &Config) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// This node won the election for `term`: start leader duties here.
    /// An error (or a trap, or an overrun deadline) refuses leadership: the
    /// node steps down and stays out of elections for a back-off (1 s,
    /// doubling with each refusal in a row up to 30 s), so a node that
    /// cannot lead does not.
    ///
    /// Default: accepts.
    ///
    /// ```
    /// use tenure_sdk::{Behaviour, Error, Term};
    ///
    /// #[derive(Default)]
    /// struct NeedsDisk { disk_ok: bool }
    ///
    /// impl Behaviour for NeedsDisk {
    ///     fn on_become_leader(&mut self, _term: Term) -> Result<(), Error> {
    ///         if !self.disk_ok {
    ///             return Err("no disk: let another node lead".into());
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// assert!(NeedsDisk::default().on_become_leader(1).is_err());
    /// ```
    fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
        let _ = term;
        Ok(())
    }

    /// This node follows `leader` (none while an election is under way) in
    /// `term`: stop leader duties here.
    ///
    /// Default: nothing.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, Term};
    /// #[derive(Default)]
    /// struct Worker { leading: bool }
    /// impl Behaviour for Worker {
    ///     fn on_become_follower(&mut self, _leader: Option<&str>, _term: Term) {
    ///         self.leading = false;
    ///     }
    /// }
    /// ```
    fn on_become_follower(&mut self, leader: Option<&str>, term: Term) {
        let _ = (leader, term);
    }

    /// A peer was heard from for the first time, or again after leaving.
    ///
    /// Default: nothing.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, info};
    /// #[derive(Default)]
    /// struct Watch;
    /// impl Behaviour for Watch {
    ///     fn on_peer_joined(&mut self, peer: &str) { info!("{peer} is up"); }
    /// }
    /// ```
    fn on_peer_joined(&mut self, peer: &str) {
        let _ = peer;
    }

    /// Nothing was heard of `peer` for a while (`peer-timeout-heartbeats`
    /// heartbeat intervals); it may be down. It still counts for quorum.
    ///
    /// Default: nothing.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, warn};
    /// #[derive(Default)]
    /// struct Watch;
    /// impl Behaviour for Watch {
    ///     fn on_peer_left(&mut self, peer: &str) { warn!("{peer} is silent"); }
    /// }
    /// ```
    fn on_peer_left(&mut self, peer: &str) {
        let _ = peer;
    }

    /// The node's term moved from `old` to `new` (own candidacies
    /// included). Comes before the `on_become_*` of the new term.
    ///
    /// Default: nothing.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, Term};
    /// #[derive(Default)]
    /// struct Terms { seen: Term }
    /// impl Behaviour for Terms {
    ///     fn on_term_changed(&mut self, _old: Term, new: Term) { self.seen = new; }
    /// }
    /// ```
    fn on_term_changed(&mut self, old: Term, new: Term) {
        let _ = (old, new);
    }

    /// Bytes the behaviour plugin on `sender` sent with
    /// [`crate::node::send`] or [`crate::node::broadcast`].
    ///
    /// Default: ignores them.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, node};
    /// #[derive(Default)]
    /// struct Echo;
    /// impl Behaviour for Echo {
    ///     fn on_message(&mut self, sender: &str, payload: &[u8]) {
    ///         node::send(sender, payload);
    ///     }
    /// }
    /// ```
    fn on_message(&mut self, sender: &str, payload: &[u8]) {
        let _ = (sender, payload);
    }

    /// A request from an operator or client, through the node's admin
    /// endpoint (`POST /call`, which a follower forwards to its leader
    /// unless `?local=true`). The reply, or the error, goes back to the
    /// caller.
    ///
    /// Default: refuses every request.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, Error};
    /// #[derive(Default)]
    /// struct Counter { hits: u64 }
    /// impl Behaviour for Counter {
    ///     fn on_call(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
    ///         match request {
    ///             b"hit" => { self.hits += 1; Ok(self.hits.to_string().into_bytes()) }
    ///             _ => Err("say `hit`".into()),
    ///         }
    ///     }
    /// }
    /// assert_eq!(Counter::default().on_call(b"hit"), Ok(b"1".to_vec()));
    /// ```
    fn on_call(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = request;
        Err("this plugin answers no calls".into())
    }

    /// A wake-up asked for with [`crate::node::schedule`] is due. Wake-ups
    /// handed over by a previous version (hot swap) arrive here too, with
    /// the ids that version was given.
    ///
    /// Default: ignores it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tenure_sdk::{Behaviour, WakeupId, info, node};
    /// #[derive(Default)]
    /// struct Ticker;
    /// impl Behaviour for Ticker {
    ///     fn on_scheduled(&mut self, _id: WakeupId, tag: &str) {
    ///         if tag == "tick" && node::is_leader() {
    ///             info!("tick");
    ///             node::schedule(Duration::from_secs(1), "tick");
    ///         }
    ///     }
    /// }
    /// ```
    fn on_scheduled(&mut self, id: WakeupId, tag: &str) {
        let _ = (id, tag);
    }

    /// Human-readable state for operators, as key/value pairs. The
    /// simulator's harness reads it (`tenure_host::testing::Cluster::inspect`);
    /// a running node does not show it yet.
    ///
    /// Default: none.
    ///
    /// ```
    /// # use tenure_sdk::Behaviour;
    /// #[derive(Default)]
    /// struct Counter { hits: u64 }
    /// impl Behaviour for Counter {
    ///     fn inspect(&mut self) -> Vec<(String, String)> {
    ///         vec![("hits".into(), self.hits.to_string())]
    ///     }
    /// }
    /// ```
    fn inspect(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The state to hand to the next version on a hot swap. Version it
    /// (a header line, say): the next version may be a different build.
    ///
    /// Default: empty (nothing carried over).
    ///
    /// ```
    /// # use tenure_sdk::Behaviour;
    /// #[derive(Default)]
    /// struct Counter { hits: u64 }
    /// impl Behaviour for Counter {
    ///     fn snapshot(&mut self) -> Vec<u8> {
    ///         format!("counter 1\n{}\n", self.hits).into_bytes()
    ///     }
    /// }
    /// ```
    fn snapshot(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Takes over what the previous version's [`Behaviour::snapshot`]
    /// returned (empty if it had trapped or kept no state). Called after
    /// [`Behaviour::init`], before anything else. An error (or trap) aborts
    /// the swap and keeps the previous version running.
    ///
    /// On a leader, [`crate::node::is_leader`] is already true here and no
    /// `on_become_leader` follows (the node won no new election): resume
    /// leader duties here.
    ///
    /// Default: accepts anything and keeps nothing.
    ///
    /// ```
    /// # use tenure_sdk::{Behaviour, Error};
    /// #[derive(Default)]
    /// struct Counter { hits: u64 }
    /// impl Behaviour for Counter {
    ///     fn restore(&mut self, snapshot: &[u8]) -> Result<(), Error> {
    ///         if snapshot.is_empty() {
    ///             return Ok(());
    ///         }
    ///         let text = std::str::from_utf8(snapshot).map_err(Error::new)?;
    ///         let hits = text.strip_prefix("counter 1\n").ok_or("not a counter snapshot")?;
    ///         self.hits = hits.trim().parse().map_err(Error::new)?;
    ///         Ok(())
    ///     }
    /// }
    /// let mut counter = Counter::default();
    /// assert!(counter.restore(b"counter 1\n41\n").is_ok());
    /// assert_eq!(counter.hits, 41);
    /// ```
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Error> {
        let _ = snapshot;
        Ok(())
    }
}
