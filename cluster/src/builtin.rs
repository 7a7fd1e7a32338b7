//! Names every node registers at start, like Erlang's `rex`.
//!
//! - [`ECHO`]: a call is answered with its own payload; a cast that names a
//!   `reply_to` is sent back to that name on the sender. Used by `ping`-style
//!   checks, tests and the benchmark.
//! - [`DEBUG_SLEEP`] (only with `fault_injection`): a call whose payload is a
//!   big-endian `u64` of milliseconds is answered after that long.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::handle::ClusterHandle;
use crate::process::RemoteMessage;
use crate::ClusterError;

/// The echo service's name.
pub const ECHO: &str = "girder.echo";
/// The slow service's name (fault injection only).
pub const DEBUG_SLEEP: &str = "girder.debug.sleep";

pub(crate) fn register(handle: &ClusterHandle) -> Result<(), ClusterError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<RemoteMessage>();
    handle.register(ECHO, tx)?;
    let echo = handle.clone();
    let stop = echo.shutdown_token();
    handle.spawn(async move {
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => return },
                () = stop.cancelled() => return,
            };
            match (msg.reply, msg.reply_to_name) {
                (Some(reply), _) => reply.reply(Ok(msg.payload)),
                (None, Some(name)) => {
                    let _ = echo.send(&msg.from, &name, msg.payload);
                }
                (None, None) => {}
            }
        }
    });
    if handle.fault_injection() {
        let (tx, mut rx) = mpsc::unbounded_channel::<RemoteMessage>();
        handle.register(DEBUG_SLEEP, tx)?;
        let stop = handle.shutdown_token();
        handle.spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = rx.recv() => match m { Some(m) => m, None => return },
                    () = stop.cancelled() => return,
                };
                let Some(reply) = msg.reply else { continue };
                let ms = <[u8; 8]>::try_from(&msg.payload.data[..]).map_or(0, u64::from_be_bytes);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    reply.reply(Ok(msg.payload));
                });
            }
        });
    }
    Ok(())
}
