//! Closing a socket so that the client reads what it was last sent.
//!
//! A socket closed while the client's data is still unread (the client
//! kept writing after the broker decided to close) makes the kernel send a
//! TCP reset, and a reset can destroy the DISCONNECT or refusing CONNACK
//! still in the client's receive buffer, or fail the client's next write
//! before it read them. So when the broker ends a connection whose client
//! has not closed its side, the socket leaves the actor for a small task
//! on the same thread that writes what is left of the output, shuts down
//! the write half (the client sees FIN after the last packet), then reads
//! and discards what the client still sends until it closes, for at most
//! [`LINGER`] and [`LINGER_BYTES`]. Only then is the socket closed.
//!
//! The connection is over for the node as soon as the task has the socket:
//! it is no longer counted, and the will, the session and the client id
//! registration were dealt with when the broker decided to close. The task holds
//! the socket and the unsent output, nothing else (reads go to one scratch
//! buffer per thread).

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Longest time a closed connection's socket is kept.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and discarded from a closed connection.
pub(super) const LINGER_BYTES: usize = 256 * 1024;

thread_local! {
    /// Where the lingering sockets of this thread read into.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; 8 * 1024].into_boxed_slice());
}

/// Hands `stream` to a task of this thread that sends `unsent`, shuts the
/// write half down and drains the read half before closing (see the module
/// documentation). Must run on an arbiter thread.
pub(super) fn close(stream: TcpStream, unsent: Option<BytesMut>) {
    actix::spawn(async move {
        let _ = tokio::time::timeout(LINGER, drain(stream, unsent)).await;
    });
}

async fn drain(mut stream: TcpStream, unsent: Option<BytesMut>) -> io::Result<()> {
    if let Some(mut unsent) = unsent {
        stream.write_all_buf(&mut unsent).await?;
    }
    stream.shutdown().await?;
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        stream.readable().await?;
        let read = SCRATCH.with(|scratch| stream.try_read(&mut scratch.borrow_mut()));
        match read {
            Ok(0) => break,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
