//! The timed checks of every connection of one arbiter thread, from one
//! timer: the CONNECT timeout, the keep alive, the retry of unacknowledged
//! QoS 1/2 messages, the expiry of incoming QoS 2 packet ids awaiting
//! PUBREL, and the expiry of a session kept after its client left.
//!
//! A connection needs a check now and then, not a timer of its own: an idle
//! connection would hold a boxed interval with a timer entry (160 bytes)
//! for years. Instead each arbiter thread keeps a wheel of weak actor
//! addresses by due tick; one task per thread wakes every [`TICK`] and sends
//! [`KeepaliveCheck`] to the actors that are due, never before their time.
//!
//! An actor is on the wheel at most once, at the earliest of the times it
//! has work at: its [`Slot`] says where, so that moving it (to an earlier
//! tick, when a delivery puts a message in flight) takes the old entry out
//! in constant time. When its check comes, the actor does what is due
//! (closes a silent connection, resends, forgets PUBREL-less packet ids,
//! ends an expired session) and puts itself back at its next time. So a
//! keep alive is checked once per timeout, at most one tick late. Each check
//! names its tick, so a check already on its way when the actor moved is
//! ignored.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::WeakAddr;

use crate::channel::ChannelActor;

/// The wheel's resolution: a check comes at most this long after its time.
pub const TICK: Duration = Duration::from_millis(250);

/// Sent by the wheel to an actor whose check is due.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct KeepaliveCheck {
    /// The tick of the [`Slot`] this check was scheduled in.
    pub tick: u32,
}

/// Where an actor is on its thread's wheel: a tick and its index among
/// that tick's entries. Tick 0 is never used: [`Slot::NONE`] is "not on
/// the wheel". Ticks are 250 ms: a `u32` lasts 34 years.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    tick: u32,
    index: u32,
}

impl Slot {
    /// Not on the wheel.
    pub const NONE: Slot = Slot { tick: 0, index: 0 };

    /// Whether the actor is on the wheel.
    pub fn is_scheduled(&self) -> bool {
        self.tick != 0
    }

    /// Whether `check` is the one this slot awaits.
    pub fn is_for(&self, check: &KeepaliveCheck) -> bool {
        self.is_scheduled() && self.tick == check.tick
    }
}

/// A time at the wheel's resolution, in 4 bytes (an `Instant` takes 16):
/// the last input of every connection is kept as one. Taken rounded up to
/// a tick, so a silence measured from it is never longer than the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u32);

/// The origin of [`Stamp`]s: the first time one was taken in this process.
static STAMP_ORIGIN: OnceLock<Instant> = OnceLock::new();

impl Stamp {
    /// Now, rounded up to a tick.
    pub fn now() -> Self {
        Self::at(Instant::now())
    }

    /// `at`, rounded up to a tick (34 years after the first stamp at most).
    pub fn at(at: Instant) -> Self {
        let origin = *STAMP_ORIGIN.get_or_init(|| at);
        let nanos = at.saturating_duration_since(origin).as_nanos();
        Stamp(u32::try_from(nanos.div_ceil(TICK.as_nanos())).unwrap_or(u32::MAX))
    }

    /// The instant this stamp stands for.
    pub fn instant(self) -> Instant {
        let origin = *STAMP_ORIGIN.get_or_init(Instant::now);
        origin + TICK * self.0
    }
}

/// Entries (this thread's actors) by the tick at which they are due. A
/// moved entry leaves `None` behind, so that indices stay valid.
struct Wheel<T> {
    origin: Instant,
    /// The first tick not taken yet: ticks before it are never used again,
    /// so a slot of a taken tick names nothing.
    next: u32,
    due: BTreeMap<u32, Vec<Option<T>>>,
}

thread_local! {
    static WHEEL: RefCell<Option<Wheel<WeakAddr<ChannelActor>>>> = const { RefCell::new(None) };
}

impl<T> Wheel<T> {
    fn new(origin: Instant) -> Self {
        Wheel {
            origin,
            next: 1,
            due: BTreeMap::new(),
        }
    }

    /// The first tick at or after `at` that is still to come.
    fn tick_of(&self, at: Instant) -> u32 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        let tick = u32::try_from(nanos.div_ceil(TICK.as_nanos())).unwrap_or(u32::MAX);
        tick.max(self.next)
    }

    fn insert(&mut self, tick: u32, entry: T) -> Slot {
        let entries = self.due.entry(tick).or_default();
        entries.push(Some(entry));
        Slot {
            tick,
            index: u32::try_from(entries.len() - 1).unwrap_or(u32::MAX),
        }
    }

    /// Takes the entry at `slot` out, if it is still on the wheel.
    fn remove(&mut self, slot: Slot) {
        if slot.tick < self.next {
            return;
        }
        if let Some(entry) = self
            .due
            .get_mut(&slot.tick)
            .and_then(|entries| entries.get_mut(slot.index as usize))
        {
            *entry = None;
        }
    }

    /// Takes every entry due at or before `now`, with the tick it was due at
    /// (the ticks that have fully passed: an entry is never taken early).
    fn take_due(&mut self, now: Instant) -> Vec<(u32, T)> {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        let now = u32::try_from(nanos / TICK.as_nanos()).unwrap_or(u32::MAX - 1);
        if now < self.next {
            return Vec::new();
        }
        self.next = now + 1;
        let later = self.due.split_off(&self.next);
        let due = std::mem::replace(&mut self.due, later);
        due.into_iter()
            .flat_map(|(tick, entries)| entries.into_iter().flatten().map(move |e| (tick, e)))
            .collect()
    }
}

/// Runs `f` on this thread's wheel, creating it (and starting its ticking
/// task) on first use. Must run on an arbiter thread.
fn with_wheel<R>(f: impl FnOnce(&mut Wheel<WeakAddr<ChannelActor>>) -> R) -> R {
    WHEEL.with(|cell| {
        let mut wheel = cell.borrow_mut();
        let wheel = wheel.get_or_insert_with(|| {
            actix::spawn(tick());
            Wheel::new(Instant::now())
        });
        f(wheel)
    })
}

/// Puts the actor on this thread's wheel at `at` (rounded up to a tick),
/// taking it out of where `slot` says it was.
pub fn schedule(slot: &mut Slot, actor: impl FnOnce() -> WeakAddr<ChannelActor>, at: Instant) {
    with_wheel(|wheel| {
        wheel.remove(*slot);
        let tick = wheel.tick_of(at);
        *slot = wheel.insert(tick, actor());
    });
}

/// Makes sure the actor is checked at `at` or before: moves it there unless
/// it is already due no later than that tick.
pub fn schedule_by(slot: &mut Slot, actor: impl FnOnce() -> WeakAddr<ChannelActor>, at: Instant) {
    with_wheel(|wheel| {
        let tick = wheel.tick_of(at);
        if slot.is_scheduled() && slot.tick >= wheel.next && slot.tick <= tick {
            return;
        }
        wheel.remove(*slot);
        *slot = wheel.insert(tick, actor());
    });
}

/// Takes the actor off the wheel.
pub fn cancel(slot: &mut Slot) {
    if slot.is_scheduled() {
        WHEEL.with(|cell| {
            if let Some(wheel) = cell.borrow_mut().as_mut() {
                wheel.remove(*slot);
            }
        });
    }
    *slot = Slot::NONE;
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
                addr.do_send(KeepaliveCheck { tick });
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
        let mut wheel = Wheel::new(origin);
        assert_eq!(wheel.tick_of(origin), 1);
        assert_eq!(wheel.tick_of(origin + Duration::from_millis(1)), 1);
        assert_eq!(wheel.tick_of(origin + TICK), 1);
        assert_eq!(wheel.tick_of(origin + TICK * 3 / 2), 2);
        for ms in [100, 600, 2000] {
            let tick = wheel.tick_of(origin + Duration::from_millis(ms));
            wheel.insert(tick, ms);
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

    #[test]
    fn a_moved_entry_is_taken_at_its_new_tick_only() {
        let origin = Instant::now();
        let mut wheel = Wheel::new(origin);
        let at = |ms| origin + Duration::from_millis(ms);
        let late = wheel.insert(wheel.tick_of(at(2000)), "a");
        let other = wheel.insert(wheel.tick_of(at(2000)), "b");
        // "a" moves earlier: its old entry goes, "b" keeps its place.
        wheel.remove(late);
        wheel.insert(wheel.tick_of(at(300)), "a");
        assert_eq!(wheel.take_due(at(600)), [(2, "a")]);
        assert_eq!(wheel.take_due(at(2500)), [(8, "b")]);
        // A slot of a tick already taken names nothing, even when a new
        // entry is scheduled in the past: it goes to the next tick.
        wheel.remove(other);
        let past = wheel.insert(wheel.tick_of(at(100)), "c");
        assert_eq!(past.tick, 11);
        wheel.remove(other);
        assert_eq!(wheel.take_due(at(3000)), [(11, "c")]);
    }

    #[test]
    fn stamps_round_up_to_a_tick() {
        let t = Instant::now();
        let stamp = Stamp::at(t);
        assert!(stamp.instant() >= t);
        assert!(stamp.instant() < t + TICK);
        let later = Stamp::at(t + TICK * 3);
        assert_eq!(later.0, stamp.0 + 3);
        assert!(Stamp::at(t + Duration::from_millis(1)) >= stamp);
    }
}
