//! One log line for each connection the broker closes on its own account
//! (a protocol error, a refused CONNECT, a keep-alive or CONNECT timeout)
//! and for each connection whose deliveries are dropped for overload, with
//! the peer address, the client id when known and the reason code.
//!
//! Levels: `warn` for what the client did wrong (malformed packets and
//! other protocol errors: a broken or hostile client, which an operator
//! wants to see at the default level) and for lost deliveries (data is
//! lost); `info` for ordinary refusals and timeouts (a wrong password, an
//! unsupported protocol version, a client that went away without a word:
//! everyday events on a busy node that would drown the warnings).
//!
//! A flood of such connections must not flood the log: lines share one
//! token bucket per process ([`LINES_PER_SEC`], bursts of [`BURST`]); what
//! is over the rate is counted and reported by one summary line a second
//! later.

use std::fmt::Display;
use std::time::{Duration, Instant};

use girder_broker::codec::ReasonCode;
use parking_lot::Mutex;
use tracing::{info, warn, Level};

use super::ChannelActor;

/// Lines per second, on average, that the bucket lets through.
pub(super) const LINES_PER_SEC: u32 = 10;
/// Lines the bucket lets through at once after a quiet time.
pub(super) const BURST: u32 = 20;
/// How long after the first suppressed line the summary is written.
const SUMMARY_AFTER: Duration = Duration::from_secs(1);

/// How loud a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Severity {
    /// Ordinary refusals and timeouts.
    Info,
    /// Protocol errors, abuse, lost deliveries.
    Warn,
}

impl Severity {
    /// The severity of a close with `reason`: `Warn` when the client broke
    /// the protocol, `Info` otherwise.
    pub(super) fn of(reason: ReasonCode) -> Self {
        use ReasonCode as R;
        match reason {
            R::MalformedPacket
            | R::ProtocolError
            | R::ReceiveMaximumExceeded
            | R::TopicAliasInvalid
            | R::TopicNameInvalid
            | R::PacketTooLarge
            | R::MessageRateTooHigh
            | R::PayloadFormatInvalid
            | R::RetainNotSupported
            | R::QoSNotSupported => Severity::Warn,
            _ => Severity::Info,
        }
    }
}

/// What a closed connection's line says.
pub(super) struct Closed<'a> {
    /// The message.
    pub(super) what: &'static str,
    /// The client's address.
    pub(super) peer: &'a dyn Display,
    /// The client id, once CONNECT gave one.
    pub(super) client_id: Option<&'a str>,
    /// The reason code (sent to the client, or that a v5 client would
    /// have got); `None` when there is none (no CONNECT in time).
    pub(super) reason: Option<ReasonCode>,
    /// More detail (a decoding error), or empty.
    pub(super) detail: &'a dyn Display,
    /// How loud.
    pub(super) severity: Severity,
}

impl ChannelActor {
    /// Logs the close the channel decided, if it decided one (a protocol
    /// error, a refused CONNECT), once: before the socket goes.
    pub(super) fn log_channel_close(&self) {
        let Some(reason) = self.channel.server_close_reason() else {
            return;
        };
        if !self.life.has_socket() {
            return;
        }
        let info = self.channel.info();
        let what = if self.channel.session().is_some() {
            "protocol error, connection closed"
        } else {
            "connection refused"
        };
        log(&Closed {
            what,
            peer: &self.peer(),
            client_id: info.map(|i| i.client_id.as_str()),
            reason: Some(reason),
            detail: &"",
            severity: Severity::of(reason),
        });
    }
}

/// Writes the line for `closed`, unless the log would not show it or the
/// bucket is empty (then it is counted for the summary).
pub(super) fn log(closed: &Closed<'_>) {
    let shown = match closed.severity {
        Severity::Info => tracing::enabled!(Level::INFO),
        Severity::Warn => tracing::enabled!(Level::WARN),
    };
    if !shown {
        return;
    }
    match LIMITER.lock().admit(Instant::now(), closed.severity) {
        Admit::Yes => {}
        Admit::No { summarise } => {
            if summarise {
                actix::spawn(async {
                    tokio::time::sleep(SUMMARY_AFTER).await;
                    summarise_suppressed();
                });
            }
            return;
        }
    }
    let client_id = closed.client_id.unwrap_or("-");
    let code = closed
        .reason
        .map_or_else(|| "-".to_owned(), |r| format!("0x{:02x}", r.as_u8()));
    let reason = closed
        .reason
        .map_or_else(|| "-".to_owned(), |r| format!("{r:?}"));
    let (peer, detail, what) = (closed.peer, closed.detail, closed.what);
    match closed.severity {
        Severity::Info => info!(
            %peer,
            client_id,
            reason_code = %code,
            %reason,
            %detail,
            "{what}"
        ),
        Severity::Warn => warn!(
            %peer,
            client_id,
            reason_code = %code,
            %reason,
            %detail,
            "{what}"
        ),
    }
}

/// Writes the summary of the lines suppressed since the last one.
fn summarise_suppressed() {
    let (count, loudest) = LIMITER.lock().take_suppressed();
    if count == 0 {
        return;
    }
    match loudest {
        Severity::Info => info!(
            suppressed = count,
            "connection log: suppressed {count} similar lines"
        ),
        Severity::Warn => warn!(
            suppressed = count,
            "connection log: suppressed {count} similar lines"
        ),
    }
}

/// The bucket's verdict on one line.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Yes,
    /// Suppressed; `summarise`: the first since the last summary, so the
    /// caller arranges the next one.
    No {
        summarise: bool,
    },
}

/// A token bucket, and the lines it refused since the last summary.
#[derive(Debug)]
struct Limiter {
    /// Tokens, in thousandths of a line.
    millitokens: u64,
    refilled: Option<Instant>,
    suppressed: u64,
    loudest: Severity,
}

static LIMITER: Mutex<Limiter> = Mutex::new(Limiter {
    millitokens: BURST as u64 * 1000,
    refilled: None,
    suppressed: 0,
    loudest: Severity::Info,
});

impl Limiter {
    fn admit(&mut self, now: Instant, severity: Severity) -> Admit {
        if let Some(last) = self.refilled {
            let elapsed = now.saturating_duration_since(last).as_millis();
            let gained = u64::try_from(elapsed * u128::from(LINES_PER_SEC)).unwrap_or(u64::MAX);
            self.millitokens = self
                .millitokens
                .saturating_add(gained)
                .min(u64::from(BURST) * 1000);
        }
        self.refilled = Some(now);
        if self.millitokens >= 1000 {
            self.millitokens -= 1000;
            return Admit::Yes;
        }
        self.suppressed += 1;
        if severity == Severity::Warn {
            self.loudest = Severity::Warn;
        }
        Admit::No {
            summarise: self.suppressed == 1,
        }
    }

    fn take_suppressed(&mut self) -> (u64, Severity) {
        let taken = (self.suppressed, self.loudest);
        self.suppressed = 0;
        self.loudest = Severity::Info;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> Limiter {
        Limiter {
            millitokens: u64::from(BURST) * 1000,
            refilled: None,
            suppressed: 0,
            loudest: Severity::Info,
        }
    }

    #[test]
    fn a_burst_passes_then_lines_are_counted_until_tokens_come_back() {
        let mut l = limiter();
        let t0 = Instant::now();
        for _ in 0..BURST {
            assert_eq!(l.admit(t0, Severity::Info), Admit::Yes);
        }
        assert_eq!(l.admit(t0, Severity::Info), Admit::No { summarise: true });
        assert_eq!(l.admit(t0, Severity::Warn), Admit::No { summarise: false });
        // One line's worth of time later, one more line passes.
        let later = t0 + Duration::from_millis(1000 / u64::from(LINES_PER_SEC));
        assert_eq!(l.admit(later, Severity::Info), Admit::Yes);
        assert_eq!(
            l.admit(later, Severity::Info),
            Admit::No { summarise: false }
        );
        assert_eq!(l.take_suppressed(), (3, Severity::Warn));
        assert_eq!(l.take_suppressed(), (0, Severity::Info));
        // The next suppressed line starts a new summary.
        assert_eq!(
            l.admit(later, Severity::Info),
            Admit::No { summarise: true }
        );
    }

    #[test]
    fn protocol_errors_warn_and_refusals_inform() {
        assert_eq!(Severity::of(ReasonCode::MalformedPacket), Severity::Warn);
        assert_eq!(
            Severity::of(ReasonCode::ReceiveMaximumExceeded),
            Severity::Warn
        );
        assert_eq!(
            Severity::of(ReasonCode::BadUserNameOrPassword),
            Severity::Info
        );
        assert_eq!(Severity::of(ReasonCode::KeepAliveTimeout), Severity::Info);
    }
}
