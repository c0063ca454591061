//! Quorum arithmetic, on its own so it can be tested exhaustively.
//!
//! A quorum is a strict majority of the voting membership, self included:
//! any two majorities of one membership share a member, and a member votes
//! once per term, so two candidates cannot both win one term.

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted its vote.
    Won,
    /// Too many refused: even if every undecided voter granted, the
    /// candidate would fall short of a majority.
    Lost,
    /// Neither yet.
    Pending,
}

/// Votes needed to win among `voters` voting members (self included).
///
/// `majority(4) == 3`: four members need three votes. Zero voters cannot
/// elect anyone, so `majority(0)` is 1, which no tally reaches.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// Decides an election among `voters` members, `granted` of whom voted yes
/// and `rejected` of whom voted no. Votes beyond the membership are a
/// caller's bug; they are clamped, never counted twice.
pub fn tally(voters: usize, granted: usize, rejected: usize) -> VoteResult {
    let need = majority(voters);
    let granted = granted.min(voters);
    let rejected = rejected.min(voters - granted);
    if granted >= need {
        VoteResult::Won
    } else if voters - rejected < need {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_one_to_nine() {
        let expected = [1, 2, 2, 3, 3, 4, 4, 5, 5];
        for (n, want) in (1..=9).zip(expected) {
            assert_eq!(majority(n), want, "cluster of {n}");
        }
    }

    #[test]
    fn any_two_majorities_intersect() {
        for n in 1..=9 {
            assert!(
                2 * majority(n) > n,
                "two majorities of {n} could be disjoint"
            );
            // ... and a majority is the smallest such size.
            assert!(2 * (majority(n) - 1) <= n, "majority of {n} is not minimal");
        }
    }

    #[test]
    fn tally_is_exhaustively_right_for_one_to_nine_members() {
        for n in 1..=9 {
            for granted in 0..=n {
                for rejected in 0..=(n - granted) {
                    let undecided = n - granted - rejected;
                    let want = if 2 * granted > n {
                        VoteResult::Won
                    } else if 2 * (granted + undecided) <= n {
                        VoteResult::Lost
                    } else {
                        VoteResult::Pending
                    };
                    assert_eq!(
                        tally(n, granted, rejected),
                        want,
                        "n={n} granted={granted} rejected={rejected}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_two_disjoint_voter_sets_both_win() {
        // Every way of splitting up to nine voters into two camps.
        for n in 1..=9usize {
            for camp in 0u32..(1 << n) {
                let a = camp.count_ones() as usize;
                let b = n - a;
                let both = tally(n, a, 0) == VoteResult::Won && tally(n, b, 0) == VoteResult::Won;
                assert!(!both, "n={n}: camps of {a} and {b} both won");
            }
        }
    }

    #[test]
    fn single_node_wins_with_its_own_vote() {
        assert_eq!(tally(1, 1, 0), VoteResult::Won);
        assert_eq!(tally(1, 0, 0), VoteResult::Pending);
    }

    #[test]
    fn a_node_that_knows_three_members_cannot_win_alone() {
        assert_eq!(tally(3, 1, 0), VoteResult::Pending);
        assert_eq!(tally(3, 1, 2), VoteResult::Lost);
    }

    #[test]
    fn zero_voters_never_win_and_extra_votes_are_clamped() {
        assert_eq!(tally(0, 0, 0), VoteResult::Lost);
        assert_eq!(tally(2, 5, 5), VoteResult::Won);
    }
}
