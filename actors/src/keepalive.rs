//! Keep-alive, CONNECT-timeout and session-expiry checks for every
//! connection of one arbiter thread, from one timer.
//!
//! A connection whose keep alive is in force needs a check once per
//! timeout (1.5 × its keep alive), not a timer of its own: an idle
//! connection would hold a boxed interval with a timer entry (160 bytes)
//! for years. Instead each arbiter thread keeps a wheel of weak actor
//! addresses by due tick; one task per thread wakes every [`TICK`] and sends
//! [`KeepaliveCheck`] to the actors that are due. The actor compares its
//! last input with its timeout, and either closes the connection or puts
//! itself back on the wheel at the time its timeout would pass. So a
//! connection is checked once per timeout, at most one tick late.
//!
//! The CONNECT timeout (`mqtt.idle_timeout`) is checked the same way: a
//! connection goes on the wheel when it is accepted, and the check finds
//! whether CONNECT came; so is the expiry of a session kept after its
//! client left. Each check names the tick it was scheduled for, so
//! an actor that has rescheduled since ignores the checks it superseded.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::WeakAddr;

use crate::channel::ChannelActor;

/// The wheel's resolution: a silent client is closed at most this long
/// after its timeout.
pub const TICK: Duration = Duration::from_millis(250);

/// Sent by the wheel to an actor whose check is due.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct KeepaliveCheck {
    /// The tick [`schedule`] returned for this check.
    pub tick: u32,
}

/// Entries (this thread's actors) by the tick at which they are due.
struct Wheel<T> {
    origin: Instant,
    due: BTreeMap<u64, Vec<T>>,
}

thread_local! {
    static WHEEL: RefCell<Option<Wheel<WeakAddr<ChannelActor>>>> = const { RefCell::new(None) };
}

impl<T> Wheel<T> {
    /// The first tick at or after `at`.
    fn tick_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        let tick = TICK.as_nanos();
        u64::try_from(nanos.div_ceil(tick)).unwrap_or(u64::MAX)
    }

    /// Takes every entry due at or before `now`, with the tick it was due at
    /// (the ticks that have fully passed: an entry is never taken early).
    fn take_due(&mut self, now: Instant) -> Vec<(u64, T)> {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        let now = u64::try_from(nanos / TICK.as_nanos()).unwrap_or(u64::MAX);
        let later = self.due.split_off(&(now + 1));
        let due = std::mem::replace(&mut self.due, later);
        due.into_iter()
            .flat_map(|(tick, entries)| entries.into_iter().map(move |e| (tick, e)))
            .collect()
    }
}

/// Has `actor` sent [`KeepaliveCheck`] at `at` (rounded up to a tick), and
/// returns the tick the check will name (never 0, so 0 can mean "none").
/// Must run on an arbiter thread (the actor's): the first call on a thread
/// starts its ticking task.
pub fn schedule(actor: WeakAddr<ChannelActor>, at: Instant) -> u32 {
    WHEEL.with(|cell| {
        let mut wheel = cell.borrow_mut();
        let wheel = wheel.get_or_insert_with(|| {
            actix::spawn(tick());
            Wheel {
                origin: Instant::now(),
                due: BTreeMap::new(),
            }
        });
        let tick = wheel.tick_of(at).max(1);
        wheel.due.entry(tick).or_default().push(actor);
        token(tick)
    })
}

/// A tick as the check names it: never 0 (250 ms ticks wrap after 34 years).
fn token(tick: u64) -> u32 {
    u32::try_from(tick % u64::from(u32::MAX))
        .unwrap_or_default()
        .max(1)
}

/// This thread's ticking task: sends the checks that are due. Ends with the
/// arbiter.
async fn tick() {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let due = WHEEL.with(|cell| {
            cell.borrow_mut()
                .as_mut()
                .map(|w| w.take_due(Instant::now()))
                .unwrap_or_default()
        });
        for (tick, actor) in due {
            if let Some(addr) = actor.upgrade() {
                addr.do_send(KeepaliveCheck { tick: token(tick) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up_and_due_entries_are_taken_once() {
        let origin = Instant::now();
        let mut wheel = Wheel {
            origin,
            due: BTreeMap::new(),
        };
        assert_eq!(wheel.tick_of(origin), 0);
        assert_eq!(wheel.tick_of(origin + Duration::from_millis(1)), 1);
        assert_eq!(wheel.tick_of(origin + TICK), 1);
        assert_eq!(wheel.tick_of(origin + TICK * 3 / 2), 2);
        for ms in [100, 600, 2000] {
            let tick = wheel.tick_of(origin + Duration::from_millis(ms));
            wheel.due.entry(tick).or_default().push(ms);
        }
        assert_eq!(
            wheel.take_due(origin + Duration::from_millis(500)),
            [(1, 100)]
        );
        assert!(wheel
            .take_due(origin + Duration::from_millis(500))
            .is_empty());
        assert_eq!(
            wheel.take_due(origin + Duration::from_millis(750)),
            [(3, 600)]
        );
        assert!(wheel
            .take_due(origin + Duration::from_millis(1999))
            .is_empty());
        assert_eq!(wheel.take_due(origin + Duration::from_secs(5)), [(8, 2000)]);
        assert!(wheel.due.is_empty());
    }
}
