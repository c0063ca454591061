//! The state file: round trips, torn and corrupt slots, truncation, the
//! migration from `state.json`, and another node's file refused.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;

use super::super::state_slots::SLOT_BYTES;
use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenure-state-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn state(term: u64) -> PersistedState {
    PersistedState {
        term,
        voted_for: Some("n2".into()),
        members: vec!["n1".into(), "n2".into(), "n3".into()],
        removed: vec!["n9".into()],
        epoch: 3,
        epoch_term: 2,
        // Above 2^53, which a JSON number would round.
        data_id: 0xfedc_ba98_7654_3210,
        known_ids: vec![("n2".into(), u64::MAX)],
        confirmed_by: vec!["n2".into()],
        abstain: false,
    }
}

/// Overwrites `len` bytes of slot `slot` from `offset` within it with
/// `byte`: a write torn by a crash, or a flipped sector.
fn damage(dir: &std::path::Path, slot: usize, offset: usize, len: usize, byte: u8) {
    let file = OpenOptions::new()
        .write(true)
        .open(dir.join(SLOTS_FILE))
        .expect("opens");
    file.write_all_at(&vec![byte; len], (slot * SLOT_BYTES + offset) as u64)
        .expect("damages");
}

#[test]
fn saves_and_loads_and_replaces_in_one_preallocated_file() {
    let dir = temp_dir("roundtrip");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    assert_eq!(file.load().expect("loads"), None);
    file.save(&state(7)).expect("saves");
    let size = fs::metadata(dir.join(SLOTS_FILE)).expect("exists").len();
    assert_eq!(size, 2 * SLOT_BYTES as u64, "preallocated");
    assert_eq!(file.load().expect("loads"), Some(state(7)));
    for term in 8..12 {
        file.save(&state(term)).expect("saves");
        assert_eq!(
            fs::metadata(dir.join(SLOTS_FILE)).expect("exists").len(),
            size,
            "a save never changes the file's size"
        );
    }
    // A new process (a restart) reads the newest.
    let again = StateFile::open(&dir, "n1", "c").expect("opens");
    assert_eq!(again.load().expect("loads"), Some(state(11)));
    again.save(&state(12)).expect("saves after a load");
    assert_eq!(
        StateFile::open(&dir, "n1", "c")
            .expect("opens")
            .load()
            .expect("loads"),
        Some(state(12))
    );
    assert!(!dir.join(LEGACY_FILE).exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_or_corrupt_newest_slot_leaves_the_state_before_it() {
    // Saves of terms 1..=4 alternate: term 4 (sequence 4) is in slot 0,
    // term 3 in slot 1.
    for (what, offset, len, byte) in [
        ("a torn header", 0, 10, 0u8),
        ("a torn payload", 40, 200, 0u8),
        ("a flipped byte in the payload", 25, 1, 0x5a),
        ("garbage over the whole slot", 0, SLOT_BYTES, 0xff),
    ] {
        let dir = temp_dir("torn");
        let file = StateFile::open(&dir, "n1", "c").expect("opens");
        for term in 1..=4 {
            file.save(&state(term)).expect("saves");
        }
        damage(&dir, 0, offset, len, byte);
        let reopened = StateFile::open(&dir, "n1", "c").expect("opens");
        assert_eq!(reopened.load().expect(what), Some(state(3)), "{what}");
        // The next save goes over the damaged slot; the good one stays.
        reopened.save(&state(5)).expect("saves");
        assert_eq!(
            StateFile::open(&dir, "n1", "c")
                .expect("opens")
                .load()
                .expect("loads"),
            Some(state(5)),
            "{what}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_corrupt_older_slot_does_not_hide_the_newest() {
    let dir = temp_dir("older");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    for term in 1..=4 {
        file.save(&state(term)).expect("saves");
    }
    damage(&dir, 1, 30, 50, 0xee);
    let reopened = StateFile::open(&dir, "n1", "c").expect("opens");
    assert_eq!(reopened.load().expect("loads"), Some(state(4)));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn truncation_into_a_slot_keeps_the_other_and_truncation_of_both_is_an_error() {
    let dir = temp_dir("truncated");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    for term in 1..=3 {
        file.save(&state(term)).expect("saves");
    }
    // Term 3 (sequence 3) is in slot 1: cut the file inside it.
    let handle = OpenOptions::new()
        .write(true)
        .open(dir.join(SLOTS_FILE))
        .expect("opens");
    handle.set_len(SLOT_BYTES as u64 + 30).expect("truncates");
    let reopened = StateFile::open(&dir, "n1", "c").expect("opens");
    assert_eq!(reopened.load().expect("loads"), Some(state(2)));
    // Saving again restores the file's full size.
    reopened.save(&state(4)).expect("saves");
    assert_eq!(
        StateFile::open(&dir, "n1", "c")
            .expect("opens")
            .load()
            .expect("loads"),
        Some(state(4))
    );
    // Cut inside slot 0 as well: nothing valid is left, and that is an
    // error, never a fresh start.
    handle.set_len(30).expect("truncates");
    let err = format!(
        "{:#}",
        StateFile::open(&dir, "n1", "c")
            .expect("opens")
            .load()
            .expect_err("lost")
    );
    assert!(
        err.contains("is corrupt (neither slot passes its checksum)"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn both_slots_corrupt_is_an_error_and_a_blank_file_is_no_state() {
    let dir = temp_dir("corrupt");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    file.save(&state(1)).expect("saves");
    file.save(&state(2)).expect("saves");
    damage(&dir, 0, 5, 3, 0x11);
    damage(&dir, 1, 5, 3, 0x11);
    let err = format!(
        "{:#}",
        StateFile::open(&dir, "n1", "c")
            .expect("opens")
            .load()
            .expect_err("corrupt")
    );
    assert!(err.contains("corrupt"), "{err}");
    // A crash right after the file was created (zeros, never written):
    // nothing was saved, so nothing depended on it.
    damage(&dir, 0, 0, SLOT_BYTES, 0);
    damage(&dir, 1, 0, SLOT_BYTES, 0);
    assert_eq!(
        StateFile::open(&dir, "n1", "c")
            .expect("opens")
            .load()
            .expect("loads"),
        None
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_state_json_is_migrated_once_and_removed() {
    let dir = temp_dir("migrate");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    // A file of the version before leave, epochs and data ids.
    fs::write(
        dir.join(LEGACY_FILE),
        b"{\"version\":1,\"term\":3,\"voted-for\":\"n2\",\"members\":[\"n1\",\"n2\"]}",
    )
    .expect("writes");
    let loaded = file.load().expect("loads").expect("a state");
    assert_eq!(
        (
            loaded.term,
            loaded.voted_for.as_deref(),
            loaded.removed.len()
        ),
        (3, Some("n2"), 0)
    );
    // No data id yet: the protocol draws one and keeps the vote.
    assert_eq!((loaded.data_id, loaded.abstain), (0, false));
    assert!(!dir.join(LEGACY_FILE).exists(), "state.json is gone");
    assert!(dir.join(SLOTS_FILE).exists());
    let again = StateFile::open(&dir, "n1", "c")
        .expect("opens")
        .load()
        .expect("loads");
    assert_eq!(again, Some(loaded));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_migration_interrupted_after_saving_finishes_at_the_next_start() {
    let dir = temp_dir("migrate-crash");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    file.save(&state(5)).expect("saves");
    // The crash came before state.json was removed; the slots are newer.
    fs::write(
        dir.join(LEGACY_FILE),
        b"{\"version\":1,\"term\":4,\"voted-for\":null,\"members\":[\"n1\"]}",
    )
    .expect("writes");
    let loaded = StateFile::open(&dir, "n1", "c")
        .expect("opens")
        .load()
        .expect("loads");
    assert_eq!(loaded, Some(state(5)));
    assert!(!dir.join(LEGACY_FILE).exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_or_future_state_json_is_an_error_not_a_reset() {
    let dir = temp_dir("legacy-corrupt");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    fs::write(dir.join(LEGACY_FILE), b"{\"version\":1,\"term\":").expect("writes");
    let err = format!("{:#}", file.load().expect_err("corrupt"));
    assert!(err.contains("corrupt"), "{err}");
    fs::write(
        dir.join(LEGACY_FILE),
        b"{\"version\":9,\"term\":1,\"voted-for\":null,\"members\":[]}",
    )
    .expect("writes");
    let err = format!("{:#}", file.load().expect_err("future version"));
    assert!(err.contains("format version 9"), "{err}");
    assert!(
        dir.join(LEGACY_FILE).exists(),
        "a refused file is left for the operator"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn another_nodes_or_clusters_file_is_refused() {
    let dir = temp_dir("foreign");
    StateFile::open(&dir, "n1", "c")
        .expect("opens")
        .save(&state(4))
        .expect("saves");
    let other_node = StateFile::open(&dir, "n2", "c").expect("opens");
    let err = format!("{:#}", other_node.load().expect_err("another node's"));
    assert!(err.contains("belongs to node \"n1\""), "{err}");
    let other_cluster = StateFile::open(&dir, "n1", "d").expect("opens");
    let err = format!("{:#}", other_cluster.load().expect_err("another cluster's"));
    assert!(err.contains("belongs to cluster \"c\""), "{err}");
    let ours = StateFile::open(&dir, "n1", "c").expect("opens");
    assert_eq!(ours.load().expect("loads"), Some(state(4)));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_state_too_big_for_a_slot_is_refused_and_the_old_one_kept() {
    let dir = temp_dir("too-big");
    let file = StateFile::open(&dir, "n1", "c").expect("opens");
    file.save(&state(1)).expect("saves");
    let mut huge = state(2);
    huge.members = (0..10_000).map(|i| format!("member-{i}")).collect();
    let err = format!("{:#}", file.save(&huge).expect_err("too big"));
    assert!(err.contains("more than a slot's"), "{err}");
    assert_eq!(file.load().expect("loads"), Some(state(1)));
    let _ = fs::remove_dir_all(&dir);
}
