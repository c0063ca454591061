//! What an operator does to a running node: join, transfer, leave, campaign,
//! step down, swap the protocol.

use super::*;

impl Simulation {
    /// Calls `join(peer)` on a running node.
    pub fn join(&mut self, node: NodeIndex, peer: &str) -> anyhow::Result<()> {
        self.call(node, |i| i.join(peer))
    }

    /// Calls `transfer-leadership(to)` on a running node; a refusal is an
    /// error with the protocol's reason (and changes nothing).
    pub fn transfer_leadership(&mut self, node: NodeIndex, to: &str) -> anyhow::Result<()> {
        let Some(instance) = self.nodes.get_mut(node).and_then(|n| n.instance.as_mut()) else {
            bail!("node {node} is not running");
        };
        let effects = instance.transfer_leadership(to)?;
        self.stats.calls += 1;
        self.apply(node, effects);
        Ok(())
    }

    /// Calls `leave(member)` on a running node; a refusal is an error with
    /// the protocol's reason (and changes nothing).
    pub fn leave(&mut self, node: NodeIndex, member: &str) -> anyhow::Result<()> {
        let Some(instance) = self.nodes.get_mut(node).and_then(|n| n.instance.as_mut()) else {
            bail!("node {node} is not running");
        };
        let effects = instance.leave(member)?;
        self.stats.calls += 1;
        self.note(node, &format!("removed {member}"));
        self.removed.insert(member.to_string());
        self.apply(node, effects);
        Ok(())
    }

    /// How many members a successful [`Simulation::leave`] removed so far.
    pub fn removals(&self) -> usize {
        self.removed.len()
    }

    /// Calls `campaign()` on a running node: `Ok(Err(refusal))` if it
    /// will not stand (it leads, or is loyal to a live leader, …).
    pub fn campaign(&mut self, node: NodeIndex) -> anyhow::Result<Result<(), CampaignRefusal>> {
        let mut answer = Ok(());
        self.call(node, |i| {
            let (effects, refused) = i.campaign()?;
            answer = refused;
            Ok(effects)
        })?;
        if let Err(refusal) = &answer {
            let why = crate::protocol::explain_campaign_refusal(refusal);
            self.note(node, &format!("campaign refused: {why}"));
        }
        Ok(answer)
    }

    /// Calls `step-down()` on a running node.
    pub fn step_down(&mut self, node: NodeIndex) -> anyhow::Result<()> {
        self.call(node, |i| i.step_down())
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
        let Some(old) = n.instance.as_mut() else {
            bail!("node {} is not running", n.spec.id);
        };
        let state = old.export_state().context("exporting the state")?;
        let env = SimEnvironment {
            shared: self.shared.clone(),
            rng: SimRng::derive(self.seed, (node as u64) << 32 | n.incarnation | 1 << 31),
            clock: n.clock.clone(),
        };
        let mut new = component.instantiate(&n.spec.id, Box::new(env))?;
        let effects = new.import_state(&n.spec.options(), &state)?;
        let version = new.version()?;
        n.instance = Some(new);
        self.note(node, &format!("protocol swapped to version {version}"));
        self.apply(node, effects);
        Ok(version)
    }
}
