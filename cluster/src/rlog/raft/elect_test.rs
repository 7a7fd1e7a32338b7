//! Who leaves an early election to whom, and the reports it is decided on.

use super::*;

fn n(s: &str) -> NodeName {
    NodeName::parse(s).expect("a node name")
}

fn log(term: u64, index: u64) -> Option<LastLog> {
    Some(LastLog { term, index })
}

const NOW: Duration = Duration::from_millis(300);

#[test]
fn a_core_behind_a_reachable_voter_leaves_the_election_to_it() {
    let b = n("b@h");
    assert_eq!(defer_to(log(3, 10), &[(&b, log(3, 11), NOW)]), Some(&b));
    // A later term wins over a longer log of an earlier term.
    assert_eq!(defer_to(log(2, 50), &[(&b, log(3, 11), NOW)]), Some(&b));
    // An empty log is behind any log.
    assert_eq!(defer_to(None, &[(&b, log(0, 0), NOW)]), Some(&b));
}

#[test]
fn a_core_level_with_or_ahead_of_every_report_may_try() {
    let b = n("b@h");
    let c = n("c@h");
    // Ties: both may try.
    assert_eq!(defer_to(log(3, 10), &[(&b, log(3, 10), NOW)]), None);
    assert_eq!(
        defer_to(log(3, 10), &[(&b, log(3, 9), NOW), (&c, log(2, 40), NOW)]),
        None
    );
    assert_eq!(defer_to(log(0, 0), &[(&b, None, NOW)]), None);
    // No report: as before, it tries.
    assert_eq!(defer_to(log(3, 10), &[]), None);
}

#[test]
fn an_old_report_does_not_count() {
    let b = n("b@h");
    let old = REPORT_FRESH + Duration::from_millis(1);
    assert_eq!(defer_to(log(3, 10), &[(&b, log(3, 11), old)]), None);
    assert_eq!(
        defer_to(log(3, 10), &[(&b, log(3, 11), REPORT_FRESH)]),
        Some(&b)
    );
}

#[test]
fn of_several_voters_ahead_the_most_up_to_date_is_named() {
    let b = n("b@h");
    let c = n("c@h");
    let d = n("d@h");
    let reports = [
        (&b, log(3, 11), NOW),
        (&c, log(4, 2), NOW),
        (&d, log(3, 9), NOW),
    ];
    assert_eq!(defer_to(log(3, 10), &reports), Some(&c));
}

#[test]
fn the_newest_report_is_kept_and_a_dropped_link_forgets_it() {
    let b = n("b@h");
    let c = n("c@h");
    let t0 = Instant::now();
    let later = t0 + Duration::from_millis(400);
    let reports = LogReports::default();
    reports.note(&b, "auth", later, log(3, 11));
    // An older reply (a slow probe) does not replace a newer one.
    reports.note(&b, "auth", t0, log(3, 9));
    reports.note(&c, "users", t0, log(3, 50));
    let peers = [b.clone(), c.clone()];
    let now = later + Duration::from_millis(100);
    assert_eq!(
        reports.of("auth", &peers, now),
        vec![(&b, log(3, 11), Duration::from_millis(100))]
    );
    assert_eq!(
        defer_to(log(3, 10), &reports.of("auth", &peers, now)),
        Some(&b)
    );
    // Only the given peers count.
    assert_eq!(reports.of("auth", &peers[1..], now), vec![]);
    reports.forget(&b);
    assert_eq!(reports.of("auth", &peers, now), vec![]);
    assert_eq!(reports.of("users", &peers, now).len(), 1);
}
