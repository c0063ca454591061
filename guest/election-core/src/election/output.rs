//! What leaves the state machine: messages, timers, events and log lines,
//! queued as [`Action`]s in the order the host must carry them out.

use super::*;

impl Election {
    pub(crate) fn member_list(&self) -> Vec<NodeId> {
        self.members.iter().cloned().collect()
    }

    pub(crate) fn removed_list(&self) -> Vec<NodeId> {
        self.removed.iter().cloned().collect()
    }

    pub(crate) fn send(&mut self, to: &str, body: Body) {
        self.flush();
        let payload = self.encode(&body, to);
        self.actions.push(Action::Send {
            to: to.into(),
            payload,
        });
    }

    /// Sends one message to every member but self (encoded for each: the
    /// header names the recipient).
    pub(crate) fn send_to_all(&mut self, body: Body) {
        let peers: Vec<NodeId> = self
            .members
            .iter()
            .filter(|m| **m != self.id)
            .cloned()
            .collect();
        self.send_to_each(&peers, body);
    }

    pub(crate) fn send_to_each(&mut self, peers: &[NodeId], body: Body) {
        self.flush();
        let body = body.encoded();
        for peer in peers {
            let payload = self.encode_for(&body, peer);
            self.actions.push(Action::Send {
                to: peer.clone(),
                payload,
            });
        }
    }

    /// Encodes `body` for `to`, naming it by the data id recorded for it.
    pub(crate) fn encode(&self, body: &Body, to: &str) -> Vec<u8> {
        self.encode_for(&body.encoded(), to)
    }

    /// Encodes a body encoded once ([`Body::encoded`]) for `to`: how a
    /// message to many recipients is encoded, the header alone per
    /// recipient.
    pub(crate) fn encode_for(&self, body: &crate::wire::EncodedBody, to: &str) -> Vec<u8> {
        // A node that abstains (it lost its state) will never stand: it
        // claims no priority, so no leader hands over to it in vain.
        let mut sender = self.standing;
        if self.identity.abstaining() {
            sender.priority = 0;
        }
        crate::wire::Header {
            cluster_id: &self.cluster_id,
            sender,
            sender_data_id: self.identity.data_id(),
            recipient_data_id: self.identity.recorded(to),
        }
        .encode_with(body)
    }

    /// Hands unsaved durable state to the host. Called before every send,
    /// so nothing that depends on a vote or term leaves before it is saved.
    pub(crate) fn flush(&mut self) {
        if self.unsaved {
            self.unsaved = false;
            let state = self.persisted_state();
            self.actions.push(Action::Persist(state));
        }
    }

    pub(crate) fn next_timer(&mut self) -> TimerId {
        let id = self.next_timer_id;
        self.next_timer_id += 1;
        id
    }

    /// Arms the election timer with a timeout drawn uniformly, to the
    /// nanosecond, from [min, max], plus `hold_off_ns`.
    pub(crate) fn arm_election_timer(&mut self, env: &mut impl Environment, hold_off_ns: u64) {
        let min = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let span = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS - min;
        let after_ns = min + env.random_u64() % (span + 1) + hold_off_ns;
        self.rearm_election_timer(after_ns);
    }

    /// Replaces the election timer (if armed) with one due in `after_ns`.
    pub(crate) fn rearm_election_timer(&mut self, after_ns: u64) {
        if let Some(id) = self.election_timer.take() {
            self.actions.push(Action::CancelTimer { id });
        }
        let id = self.next_timer();
        self.election_timer = Some(id);
        self.actions.push(Action::SetTimer { id, after_ns });
    }

    pub(crate) fn arm_heartbeat_timer(&mut self) {
        self.cancel_heartbeat_timer();
        let id = self.next_timer();
        self.heartbeat_timer = Some(id);
        self.actions.push(Action::SetTimer {
            id,
            after_ns: u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS,
        });
    }

    pub(crate) fn cancel_heartbeat_timer(&mut self) {
        if let Some(id) = self.heartbeat_timer.take() {
            self.actions.push(Action::CancelTimer { id });
        }
    }

    /// Reports an event, after handing over any unsaved durable state: an
    /// event never announces a term or vote that a crash could take back.
    pub(crate) fn emit(&mut self, event: Event) {
        self.flush();
        self.actions.push(Action::Emit(event));
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        self.actions.push(Action::Log { level, message });
    }

    pub(crate) fn ignore(&mut self, what: String) {
        self.ignored_messages = self.ignored_messages.saturating_add(1);
        self.log(LogLevel::Debug, format!("{} ignored {what}", self.id));
    }
}
