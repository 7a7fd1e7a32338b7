//! Restart intensity, as OTP's `add_restart/1`: a restart is allowed while at most
//! `intensity` restarts (this one included) fall within the last `period`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The restarts seen within the window.
#[derive(Debug, Clone)]
pub(crate) struct RestartIntensity {
    intensity: u32,
    period: Duration,
    restarts: VecDeque<Instant>,
}

impl RestartIntensity {
    pub(crate) fn new(intensity: u32, period: Duration) -> Self {
        RestartIntensity {
            intensity,
            period,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; false if it exceeds the intensity.
    pub(crate) fn add_restart(&mut self, now: Instant) -> bool {
        while let Some(first) = self.restarts.front() {
            if now.saturating_duration_since(*first) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.intensity as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_intensity_refuses_first_restart() {
        let mut r = RestartIntensity::new(0, Duration::from_secs(5));
        assert!(!r.add_restart(Instant::now()));
    }

    #[test]
    fn allows_intensity_restarts_within_period() {
        let t0 = Instant::now();
        let mut r = RestartIntensity::new(3, Duration::from_secs(5));
        assert!(r.add_restart(t0));
        assert!(r.add_restart(t0 + Duration::from_secs(1)));
        assert!(r.add_restart(t0 + Duration::from_secs(2)));
        assert!(!r.add_restart(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let t0 = Instant::now();
        let mut r = RestartIntensity::new(1, Duration::from_secs(5));
        assert!(r.add_restart(t0));
        assert!(!r.add_restart(t0 + Duration::from_secs(4)));
        // both earlier restarts are now older than the period
        assert!(r.add_restart(t0 + Duration::from_secs(10)));
    }
}
