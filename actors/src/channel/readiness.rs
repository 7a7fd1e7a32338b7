//! The actor's socket readiness as actix futures: they hold nothing and
//! poll the readiness kept in the socket's own registration.

use std::io;
use std::pin::Pin;
use std::task::Poll;

use actix::prelude::*;

use super::ChannelActor;

/// The read side of the actor's socket: reads whenever it is readable. It
/// holds nothing and polls the readiness kept in the socket's own
/// registration, so an idle connection's reader allocates nothing (a
/// `readable()` future would hold a waiter node and a shared handle to the
/// socket). Ends with the socket.
pub(super) struct Reader;

impl ActorFuture<ChannelActor> for Reader {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ChannelActor,
        ctx: &mut Context<ChannelActor>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        // As actix does for streams: yield after a number of rounds so that
        // a busy socket does not starve the actor's other work.
        for _ in 0..16 {
            let Some(stream) = act.life.stream() else {
                return Poll::Ready(());
            };
            match stream.poll_read_ready(task) {
                Poll::Pending => return Poll::Pending,
                // The read path sees the error (or the close) itself.
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => act.read_ready(ctx),
            }
            if ctx.waiting() {
                return Poll::Pending;
            }
        }
        task.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Resolves when the actor's socket is writable again (or is gone).
pub(super) struct Writable;

impl ActorFuture<ChannelActor> for Writable {
    type Output = io::Result<()>;

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ChannelActor,
        _ctx: &mut Context<ChannelActor>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        match act.life.stream() {
            Some(stream) => stream.poll_write_ready(task),
            None => Poll::Ready(Ok(())),
        }
    }
}
