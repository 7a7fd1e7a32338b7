//! A linearizability checker for one register (one key of a table), after
//! Wing & Gong with Lowe's memoization (the algorithm of Porcupine and
//! Knossos' WGL search).
//!
//! An operation has an invocation time and, if its outcome is known, a
//! return time; one whose outcome is unknown (the client timed out, its node
//! was killed, or the write failed in a way that may still commit) has no
//! return time: it may take effect at any point after its invocation, or
//! never. The history is linearizable if every operation can be given one
//! instant inside its interval such that, in that order, each one is valid
//! for a register: a read returns the value of the last write before it.
//!
//! Values are small integers (the caller interns its strings); `None` is the
//! absent row.

use std::collections::HashSet;

/// A register operation as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Set the value.
    Put(u32),
    /// Set `new` if the value is `old`; whether it did is not known to the
    /// client (only later reads tell), so any outcome is accepted.
    Cas {
        /// The expected value (`None`: absent).
        old: Option<u32>,
        /// The value set on a match.
        new: u32,
    },
    /// A read that returned this value.
    Read(Option<u32>),
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// When it was invoked (any monotonic unit, e.g. µs since the start).
    pub call: u64,
    /// When its result came back; `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// What it did.
    pub kind: Kind,
}

/// The checker's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A valid order exists.
    Linearizable,
    /// No valid order exists. `stuck_at` is the operation (index into the
    /// history) whose return came before the search could place it, in the
    /// deepest attempt; `placed` is how many operations that attempt placed.
    Violation {
        /// Index of the operation that could not be placed.
        stuck_at: usize,
        /// Operations placed in the deepest attempt.
        placed: usize,
    },
    /// The search went past its step budget without an answer.
    GaveUp,
}

/// The register step: the new state, or `None` if `kind` cannot happen in
/// `state`.
fn step(state: Option<u32>, kind: &Kind) -> Option<Option<u32>> {
    match kind {
        Kind::Put(v) => Some(Some(*v)),
        Kind::Cas { old, new } => Some(if state == *old { Some(*new) } else { state }),
        Kind::Read(v) => (state == *v).then_some(state),
    }
}

#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
    /// For a call, the list node of its return.
    ret_node: usize,
}

/// Checks `history` from the initial value `init` (`None`: absent), with at
/// most `budget` search steps.
///
/// Reads with an unknown outcome say nothing and are ignored; so are
/// writes with an unknown outcome whose value no read returned and no
/// compare-and-set expects (placing them after everything else is always
/// valid, and they can help no other operation).
pub fn check(history: &[Operation], init: Option<u32>, budget: u64) -> Verdict {
    // Values a read returned or a compare-and-set expects: a write of one
    // of them matters wherever it is placed.
    let observed: HashSet<u32> = history
        .iter()
        .filter_map(|o| match o.kind {
            Kind::Read(Some(v)) if o.ret.is_some() => Some(v),
            Kind::Cas { old: Some(v), .. } => Some(v),
            _ => None,
        })
        .collect();
    let keep: Vec<usize> = (0..history.len())
        .filter(|&i| {
            let o = &history[i];
            match (&o.kind, o.ret) {
                (_, Some(_)) => true,
                (Kind::Read(_), None) => false,
                (Kind::Put(v), None) | (Kind::Cas { new: v, .. }, None) => observed.contains(v),
            }
        })
        .collect();
    // Events sorted by time; at equal times calls come first (the two
    // operations then overlap, the lenient reading).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(keep.len() * 2);
    for (k, &i) in keep.iter().enumerate() {
        events.push((history[i].call, false, k));
        events.push((history[i].ret.unwrap_or(u64::MAX), true, k));
    }
    events.sort_by_key(|&(t, is_ret, k)| (t, is_ret, k));
    // A doubly linked list over the events; node 0 is the head.
    let n = events.len();
    let mut ev = vec![
        Event {
            op: usize::MAX,
            is_call: false,
            ret_node: 0,
        };
        n + 1
    ];
    let mut ret_of = vec![0usize; keep.len()];
    for (pos, &(_, is_ret, k)) in events.iter().enumerate() {
        if is_ret {
            ret_of[k] = pos + 1;
        }
    }
    for (pos, &(_, is_ret, k)) in events.iter().enumerate() {
        ev[pos + 1] = Event {
            op: k,
            is_call: !is_ret,
            ret_node: if is_ret { 0 } else { ret_of[k] },
        };
    }
    let mut next: Vec<usize> = (1..=n + 1).collect();
    next[n] = usize::MAX;
    let mut prev: Vec<usize> = (0..=n).map(|i| i.wrapping_sub(1)).collect();
    let lift = |node: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, x) = (prev[node], next[node]);
        next[p] = x;
        if x != usize::MAX {
            prev[x] = p;
        }
    };
    let unlift = |node: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, x) = (prev[node], next[node]);
        next[p] = node;
        if x != usize::MAX {
            prev[x] = node;
        }
    };

    let words = keep.len().div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, Option<u32>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u32>)> = Vec::new();
    let mut state = init;
    let mut entry = next[0];
    let mut steps = 0u64;
    let mut deepest = (0usize, usize::MAX);
    while next[0] != usize::MAX {
        steps += 1;
        if steps > budget {
            return Verdict::GaveUp;
        }
        let e = ev[entry];
        if e.is_call {
            let op = &history[keep[e.op]];
            if let Some(new_state) = step(state, &op.kind) {
                let mut lin = linearized.clone();
                lin[e.op / 64] |= 1 << (e.op % 64);
                if cache.insert((lin.clone(), new_state)) {
                    stack.push((entry, state));
                    state = new_state;
                    linearized = lin;
                    // Lift the call and its return out of the list.
                    lift(entry, &mut next, &mut prev);
                    lift(e.ret_node, &mut next, &mut prev);
                    entry = next[0];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), keep[e.op]);
            }
            let Some((call, old_state)) = stack.pop() else {
                return Verdict::Violation {
                    stuck_at: deepest.1,
                    placed: deepest.0,
                };
            };
            let op = ev[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            state = old_state;
            // Put the return back first, then the call (reverse order).
            unlift(ev[call].ret_node, &mut next, &mut prev);
            unlift(call, &mut next, &mut prev);
            entry = next[call];
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: u64, kind: Kind) -> Operation {
        Operation {
            call,
            ret: Some(ret),
            kind,
        }
    }

    fn lost(call: u64, kind: Kind) -> Operation {
        Operation {
            call,
            ret: None,
            kind,
        }
    }

    const B: u64 = 1_000_000;

    #[test]
    fn a_sequential_history_is_linearizable() {
        let h = vec![
            op(0, 1, Kind::Read(None)),
            op(2, 3, Kind::Put(1)),
            op(4, 5, Kind::Read(Some(1))),
            op(6, 7, Kind::Put(2)),
            op(8, 9, Kind::Read(Some(2))),
        ];
        assert_eq!(check(&h, None, B), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let h = vec![
            op(0, 1, Kind::Put(1)),
            op(2, 3, Kind::Put(2)),
            op(4, 5, Kind::Read(Some(1))),
        ];
        assert!(matches!(
            check(&h, None, B),
            Verdict::Violation { stuck_at: 2, .. }
        ));
    }

    #[test]
    fn overlapping_operations_may_take_effect_in_either_order() {
        // The read overlaps both writes: it may see either, or nothing.
        for seen in [None, Some(1), Some(2)] {
            let h = vec![
                op(0, 10, Kind::Put(1)),
                op(1, 11, Kind::Put(2)),
                op(2, 12, Kind::Read(seen)),
            ];
            assert_eq!(check(&h, None, B), Verdict::Linearizable, "{seen:?}");
        }
        // Two reads after both writes must agree on the one that won.
        let h = vec![
            op(0, 10, Kind::Put(1)),
            op(1, 11, Kind::Put(2)),
            op(20, 21, Kind::Read(Some(1))),
            op(22, 23, Kind::Read(Some(2))),
        ];
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
    }

    #[test]
    fn a_read_of_a_value_never_written_is_a_violation() {
        let h = vec![op(0, 1, Kind::Put(1)), op(2, 3, Kind::Read(Some(7)))];
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
    }

    #[test]
    fn a_read_cannot_see_a_write_invoked_after_it_returned() {
        let h = vec![op(0, 1, Kind::Read(Some(1))), op(2, 3, Kind::Put(1))];
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
    }

    #[test]
    fn a_write_with_unknown_outcome_may_happen_late_or_never() {
        // Seen long after the client gave up on it: fine.
        let h = vec![
            lost(0, Kind::Put(1)),
            op(5, 6, Kind::Read(None)),
            op(100, 101, Kind::Read(Some(1))),
        ];
        assert_eq!(check(&h, None, B), Verdict::Linearizable);
        // Never seen: fine.
        let h = vec![lost(0, Kind::Put(1)), op(5, 6, Kind::Read(None))];
        assert_eq!(check(&h, None, B), Verdict::Linearizable);
        // Seen, then gone again without another write: not a register.
        let h = vec![
            lost(0, Kind::Put(1)),
            op(5, 6, Kind::Read(Some(1))),
            op(7, 8, Kind::Read(None)),
        ];
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
    }

    #[test]
    fn compare_and_set_takes_effect_only_on_a_match() {
        // cas(None→2) after put(1) completed cannot succeed.
        let h = vec![
            op(0, 1, Kind::Put(1)),
            op(2, 3, Kind::Cas { old: None, new: 2 }),
            op(4, 5, Kind::Read(Some(2))),
        ];
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
        // cas(1→2) after put(1) must succeed.
        let h = vec![
            op(0, 1, Kind::Put(1)),
            op(
                2,
                3,
                Kind::Cas {
                    old: Some(1),
                    new: 2,
                },
            ),
            op(4, 5, Kind::Read(Some(1))),
        ];
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
        let h = vec![
            op(0, 1, Kind::Put(1)),
            op(
                2,
                3,
                Kind::Cas {
                    old: Some(1),
                    new: 2,
                },
            ),
            op(4, 5, Kind::Read(Some(2))),
        ];
        assert_eq!(check(&h, None, B), Verdict::Linearizable);
    }

    #[test]
    fn the_initial_value_counts() {
        let h = vec![op(0, 1, Kind::Read(Some(9)))];
        assert_eq!(check(&h, Some(9), B), Verdict::Linearizable);
        assert!(matches!(check(&h, None, B), Verdict::Violation { .. }));
    }

    #[test]
    fn a_long_concurrent_history_is_checked_within_budget() {
        // Eight clients, each writing its own values and reading back what
        // it wrote, in overlapping rounds: linearizable by construction.
        let mut h = Vec::new();
        let mut t = 0;
        for round in 0..60u32 {
            for c in 0..8u32 {
                let v = round * 8 + c + 1;
                h.push(op(t + u64::from(c), t + 20 + u64::from(c), Kind::Put(v)));
            }
            t += 30;
            // After every write of the round: a read sees the last of them
            // in some order; take the one with the latest return, which is
            // a valid order as they all overlap.
            h.push(op(t, t + 1, Kind::Read(Some(round * 8 + 8))));
            t += 2;
        }
        assert_eq!(check(&h, None, 10_000_000), Verdict::Linearizable);
    }

    #[test]
    fn the_budget_bounds_the_search() {
        let h = vec![
            op(0, 10, Kind::Put(1)),
            op(1, 11, Kind::Put(2)),
            op(2, 12, Kind::Read(Some(1))),
        ];
        assert_eq!(check(&h, None, 1), Verdict::GaveUp);
    }

    /// Every order of `ops` that respects real time, tried one by one.
    fn brute_force(ops: &[Operation], init: Option<u32>) -> bool {
        fn go(ops: &[Operation], done: &mut Vec<bool>, state: Option<u32>) -> bool {
            if done.iter().all(|d| *d) {
                return true;
            }
            for i in 0..ops.len() {
                if done[i] {
                    continue;
                }
                // `i` may go next only if no pending operation returned
                // before `i` was invoked.
                let blocked = (0..ops.len())
                    .any(|j| !done[j] && j != i && ops[j].ret.is_some_and(|r| r < ops[i].call));
                if blocked {
                    continue;
                }
                if let Some(next) = step(state, &ops[i].kind) {
                    done[i] = true;
                    if go(ops, done, next) {
                        return true;
                    }
                    done[i] = false;
                }
                // An operation with an unknown outcome may also never
                // happen.
                if ops[i].ret.is_none() {
                    done[i] = true;
                    if go(ops, done, state) {
                        return true;
                    }
                    done[i] = false;
                }
            }
            false
        }
        go(ops, &mut vec![false; ops.len()], init)
    }

    #[test]
    fn the_search_agrees_with_trying_every_order() {
        let mut seed = 0x1234_5678_u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let (mut yes, mut no) = (0, 0);
        for _ in 0..20_000 {
            let n = 1 + next(6) as usize;
            let mut ops = Vec::new();
            for _ in 0..n {
                let call = next(20);
                let ret = (next(8) != 0).then(|| call + 1 + next(10));
                let v = |x: u64| (x != 0).then_some(x as u32);
                let kind = match next(3) {
                    0 => Kind::Put(1 + next(3) as u32),
                    1 => Kind::Cas {
                        old: v(next(4)),
                        new: 1 + next(3) as u32,
                    },
                    _ => Kind::Read(v(next(4))),
                };
                ops.push(Operation { call, ret, kind });
            }
            let want = brute_force(&ops, None);
            let got = check(&ops, None, 1_000_000);
            assert_eq!(got == Verdict::Linearizable, want, "{ops:?}: {got:?}");
            if want {
                yes += 1;
            } else {
                no += 1;
            }
        }
        // Both answers were exercised.
        assert!(yes > 300 && no > 300, "{yes} linearizable, {no} not");
    }
}
