//! Tombstones from other nodes: when a removal another node reports is
//! taken, and when one this node holds is undone. The rules and why they
//! are safe are in [`crate::membership`] ("Tombstones, settled and not").

use alloc::format;

use crate::election::Election;
use crate::options::valid_node_id;
use crate::types::{Environment, LogLevel, NodeId, Role, Term};
use crate::wire::{Body, Message};

impl Election {
    /// Adopts tombstones another node sent with its view `(epoch_term,
    /// epoch)`, if the message says. A leader turns a tombstone of one of
    /// its members into a removal of its own (a new epoch), once its
    /// previous change settled; until then it ignores it (the next ack
    /// repeats it).
    ///
    /// A tombstone of this very node counts only from a view at least as
    /// recent as its own: one from an older view may come from a removal
    /// that never settled and that a later leader's view undid (chaos seed
    /// 54943: a restarted node still holding its old leader's unsettled
    /// removal of the new leader told the new leader it was removed, and
    /// it quit — then, removals on two sides, no majority was left).
    pub(crate) fn merge_removed(
        &mut self,
        removed: &[NodeId],
        view: Option<(Term, u64)>,
        env: &mut impl Environment,
    ) {
        for node in removed {
            if !valid_node_id(node) || self.removed.contains(node.as_str()) {
                continue;
            }
            if *node == self.id && !view.is_some_and(|(t, e)| self.view_current(t, e)) {
                self.log(
                    LogLevel::Debug,
                    format!(
                        "{} ignored its removal from an older view (or from an ack)",
                        self.id
                    ),
                );
                continue;
            }
            if self.role == Role::Leader
                && self.members.contains(node.as_str())
                && *node != self.id
                && self.change_pending()
            {
                continue;
            }
            self.remove(node, env);
        }
    }

    /// A tombstoned `from` speaks from a view newer than this node's that
    /// lists it (it stands for election, or leads, in it): the removal
    /// this node holds never settled — a settled one is in every later
    /// view — so it is undone (chaos seed 54943: the only view that could
    /// still elect was that of a leader its neighbour had removed, and the
    /// neighbour ignored it for good). Returns whether it restored `from`.
    pub(crate) fn restore_if_vouched(&mut self, from: &str, message: &Message) -> bool {
        let newer = |(t, e): (Term, u64)| (t, e) > (self.epoch_term, self.epoch);
        let vouched = match &message.body {
            Body::RequestVote {
                epoch, epoch_term, ..
            }
            | Body::RequestPreVote {
                epoch, epoch_term, ..
            } => newer((*epoch_term, *epoch)),
            Body::Heartbeat {
                term,
                epoch,
                members,
                full,
                ..
            } => {
                // Without its lists, the ones this node kept of that
                // generation (see crate::lists), if any.
                let kept = crate::lists::Received::of(from, message)
                    .and_then(|received| self.lists_kept.named_by(&received));
                let members = match kept {
                    Some(kept) if !*full => &kept.members,
                    _ => members,
                };
                newer((*term, *epoch)) && members.iter().any(|m| m == from)
            }
            _ => false,
        };
        if vouched {
            self.removed.remove(from);
            self.unsaved = true;
            self.log(
                LogLevel::Info,
                format!(
                    "{} restored {from}: it speaks from a later view that lists it, so its removal never settled",
                    self.id
                ),
            );
        }
        vouched
    }
}
