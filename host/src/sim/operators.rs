//! What an operator does to a running node: join, transfer, leave, campaign,
//! step down, swap the protocol.

use super::*;

impl Simulation {
    /// Calls `join(peer)` on a running node.
    pub fn join(&mut self, node: NodeIndex, peer: &str) -> anyhow::Result<()> {
        self.call(node, |c| c.join(peer))
    }

    /// Calls `transfer-leadership(to)` on a running node; a refusal is a
    /// [`crate::protocol::Refused`] error (and changes nothing).
    pub fn transfer_leadership(&mut self, node: NodeIndex, to: &str) -> anyhow::Result<()> {
        self.refusable(node, |c| c.transfer_leadership(to), |_| {})
    }

    /// Calls `leave(member)` on a running node; a refusal is a
    /// [`crate::protocol::Refused`] error (and changes nothing).
    pub fn leave(&mut self, node: NodeIndex, member: &str) -> anyhow::Result<()> {
        self.refusable(
            node,
            |c| c.leave(member),
            |sim| {
                sim.note(node, &format!("removed {member}"));
                sim.removed.insert(member.to_string());
            },
        )
    }

    /// A request the protocol may refuse: if it did not, `accepted` runs
    /// and then its outputs are carried out; a refusal is the error, and
    /// a trap crashes the node.
    fn refusable(
        &mut self,
        node: NodeIndex,
        f: impl FnOnce(&mut NodeCore) -> anyhow::Result<Result<Vec<Output>, ChangeRefusal>>,
        accepted: impl FnOnce(&mut Simulation),
    ) -> anyhow::Result<()> {
        let Some(core) = self.nodes.get_mut(node).and_then(|n| n.core.as_mut()) else {
            bail!("node {node} is not running");
        };
        match f(core) {
            Ok(Ok(outputs)) => {
                self.stats.calls += 1;
                accepted(self);
                self.perform(node, outputs);
                Ok(())
            }
            Ok(Err(refusal)) => Err(crate::protocol::Refused(refusal).into()),
            Err(trap) => {
                self.trapped(node, &trap);
                Err(trap)
            }
        }
    }

    /// How many members a successful [`Simulation::leave`] removed so far.
    pub fn removals(&self) -> usize {
        self.removed.len()
    }

    /// Calls `campaign()` on a running node: `Ok(Err(refusal))` if it
    /// will not stand (it leads, or is loyal to a live leader, …).
    pub fn campaign(&mut self, node: NodeIndex) -> anyhow::Result<Result<(), CampaignRefusal>> {
        let mut answer = Ok(());
        self.call(node, |c| {
            let (outputs, refused) = c.campaign()?;
            answer = refused;
            Ok(outputs)
        })?;
        if let Err(refusal) = &answer {
            let why = crate::protocol::explain_campaign_refusal(refusal);
            self.note(node, &format!("campaign refused: {why}"));
        }
        Ok(answer)
    }

    /// Calls `step-down()` on a running node.
    pub fn step_down(&mut self, node: NodeIndex) -> anyhow::Result<()> {
        self.call(node, |c| c.step_down())
    }

    /// Swaps a running node's protocol for another build (`component`):
    /// the old instance exports its whole state, a fresh instance of the new
    /// build imports it, and only then replaces the old one. Armed timers
    /// stay armed. On failure the old instance keeps running and the
    /// reason comes back. Returns the new build's version.
    pub fn swap_protocol(
        &mut self,
        node: NodeIndex,
        component: &ElectionComponent,
    ) -> anyhow::Result<String> {
        let Some(n) = self.nodes.get_mut(node) else {
            bail!("no node {node}");
        };
        let Some(core) = n.core.as_mut() else {
            bail!("node {} is not running", n.spec.id);
        };
        let env = SimEnvironment {
            shared: self.shared.clone(),
            rng: SimRng::derive(self.seed, (node as u64) << 32 | n.incarnation | 1 << 31),
            clock: n.clock.clone(),
        };
        let next = component.instantiate(&n.spec.id, Box::new(env))?;
        let (version, outputs) = core.swap_protocol(next)?;
        self.note(node, &format!("protocol swapped to version {version}"));
        self.perform(node, outputs);
        Ok(version)
    }
}
