//! `tcp_options` at the socket: the listening socket's backlog, address
//! reuse and buffer sizes, and the options of every accepted socket.

use std::net::SocketAddr;

use girder_config::{TcpKeepalive, TcpOptions};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive as Keepalive, Type};

/// A listener's socket options, from its `tcp_options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// Listen backlog.
    pub backlog: i32,
    /// `SO_REUSEADDR` on the listening socket.
    pub reuseaddr: bool,
    /// `TCP_NODELAY` on accepted sockets.
    pub nodelay: bool,
    /// TCP keepalive probing of accepted sockets; `None`: off.
    pub keepalive: Option<TcpKeepalive>,
    /// `SO_RCVBUF`, when set.
    pub recbuf: Option<usize>,
    /// `SO_SNDBUF`, when set.
    pub sndbuf: Option<usize>,
}

impl SocketOptions {
    /// The options `tcp_options` asks for; the error says which key is
    /// wrong (validation at load refuses the same values).
    pub fn from_config(o: &TcpOptions) -> Result<Self, String> {
        let size = |key: &str, size: Option<girder_config::ByteSize>| {
            size.map(|s| usize::try_from(s.0).map_err(|_| format!("tcp_options.{key} too large")))
                .transpose()
        };
        Ok(Self {
            backlog: i32::try_from(o.backlog)
                .map_err(|_| "tcp_options.backlog too large".to_owned())?,
            reuseaddr: o.reuseaddr,
            nodelay: o.nodelay,
            keepalive: o
                .tcp_keepalive()
                .map_err(|e| format!("tcp_options.keepalive: {e}"))?,
            recbuf: size("recbuf", o.recbuf)?,
            sndbuf: size("sndbuf", o.sndbuf)?,
        })
    }

    /// A non-blocking listening socket on `addr` with these options.
    pub fn listen(&self, addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(self.reuseaddr)?;
        // Set on the listening socket so that accepted sockets start with
        // them (the receive window is agreed in the handshake).
        self.set_buffers(SockRef::from(&socket))?;
        socket.bind(&addr.into())?;
        socket.listen(self.backlog)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }

    /// Applies the per-connection options to an accepted socket.
    pub fn apply(&self, socket: SockRef<'_>) -> std::io::Result<()> {
        socket.set_tcp_nodelay(self.nodelay)?;
        match &self.keepalive {
            None => socket.set_keepalive(false)?,
            Some(k) => {
                let params = Keepalive::new()
                    .with_time(k.idle)
                    .with_interval(k.interval)
                    .with_retries(k.probes);
                socket.set_tcp_keepalive(&params)?;
            }
        }
        self.set_buffers(socket)
    }

    fn set_buffers(&self, socket: SockRef<'_>) -> std::io::Result<()> {
        if let Some(n) = self.recbuf {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(n) = self.sndbuf {
            socket.set_send_buffer_size(n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    fn options(text: &str) -> SocketOptions {
        let config = girder_config::Config::from_hocon(text).expect("test config");
        SocketOptions::from_config(&config.listeners.tcp["default"].tcp_options).expect("options")
    }

    /// A connected pair whose server side went through `apply`.
    fn accepted(o: &SocketOptions) -> (TcpStream, TcpStream) {
        let listener = o
            .listen("127.0.0.1:0".parse().expect("addr"))
            .expect("listen");
        listener.set_nonblocking(false).expect("blocking");
        let at: SocketAddr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(at).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        o.apply(SockRef::from(&server)).expect("apply");
        (client, server)
    }

    #[test]
    fn accepted_sockets_get_nodelay_keepalive_and_buffer_sizes() {
        let o = options(
            "listeners.tcp.default.tcp_options {\n  nodelay = true\n  keepalive = \"60,7,4\"\n  \
             recbuf = 96KB\n  sndbuf = 80KB\n}\n",
        );
        let (_client, server) = accepted(&o);
        let s = SockRef::from(&server);
        assert!(s.tcp_nodelay().expect("nodelay"));
        assert!(s.keepalive().expect("keepalive"));
        assert_eq!(
            s.tcp_keepalive_time().expect("idle"),
            Duration::from_secs(60)
        );
        assert_eq!(
            s.tcp_keepalive_interval().expect("interval"),
            Duration::from_secs(7)
        );
        assert_eq!(s.tcp_keepalive_retries().expect("probes"), 4);
        // Linux reports twice the size asked for (its bookkeeping share).
        assert!(s.recv_buffer_size().expect("rcvbuf") >= 96 * 1024);
        assert!(s.send_buffer_size().expect("sndbuf") >= 80 * 1024);
    }

    #[test]
    fn defaults_and_the_opposite_choices_take_effect_too() {
        let (_c, server) = accepted(&options(""));
        let s = SockRef::from(&server);
        assert!(
            s.tcp_nodelay().expect("nodelay"),
            "nodelay is on by default"
        );
        assert!(
            !s.keepalive().expect("keepalive"),
            "keepalive is none by default"
        );
        let o = options("listeners.tcp.default.tcp_options.nodelay = false\n");
        let (_c, server) = accepted(&o);
        assert!(!SockRef::from(&server).tcp_nodelay().expect("nodelay"));
        // Small buffers are honoured as well (not only raised).
        let small = options("listeners.tcp.default.tcp_options { recbuf = 4KB, sndbuf = 4KB }\n");
        let (_c, server) = accepted(&small);
        let s = SockRef::from(&server);
        assert!(s.recv_buffer_size().expect("rcvbuf") <= 16 * 1024);
        assert!(s.send_buffer_size().expect("sndbuf") <= 16 * 1024);
    }

    #[test]
    fn the_listening_socket_gets_reuseaddr_as_configured() {
        for (text, want) in [
            ("", true),
            (
                "listeners.tcp.default.tcp_options.reuseaddr = false\n",
                false,
            ),
        ] {
            let listener = options(text)
                .listen("127.0.0.1:0".parse().expect("addr"))
                .expect("listen");
            assert_eq!(SockRef::from(&listener).reuse_address().expect("get"), want);
        }
    }
}
