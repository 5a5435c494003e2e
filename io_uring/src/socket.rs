//! Socket options on file descriptors that glommio owns.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

fn set_int_option(socket: &impl AsRawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    // SAFETY: `fd` is a live descriptor borrowed from `socket`; the option value points at an
    // i32 on the stack and its exact size is passed.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn get_int_option(socket: &impl AsRawFd, level: i32, name: i32) -> io::Result<i32> {
    let fd = socket.as_raw_fd();
    let mut value: i32 = 0;
    let mut size = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `fd` is live; `value` and `size` are valid for writes and `size` holds the
    // buffer's length.
    let result =
        unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut size) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sets `SO_RCVBUF`. Set on a listener, it is inherited by the connections it accepts.
///
/// # Errors
/// The kernel's refusal; the kernel caps the value at `net.core.rmem_max` without an error.
pub fn set_receive_buffer(socket: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes)
}

/// Reads `SO_RCVBUF` (the kernel reports twice the requested value, for bookkeeping).
///
/// # Errors
/// The kernel's refusal.
pub fn receive_buffer(socket: &impl AsRawFd) -> io::Result<usize> {
    get_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUF).map(|bytes| bytes as usize)
}

/// Turns TCP keepalive on with the given idle period, or off.
///
/// # Errors
/// The kernel's refusal.
pub fn set_keepalive(socket: &impl AsRawFd, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        None => set_int_option(socket, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0),
        Some(idle) => {
            set_int_option(socket, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
            let seconds = i32::try_from(idle.as_secs().max(1)).unwrap_or(i32::MAX);
            set_int_option(socket, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, seconds)
        }
    }
}

/// Whether the peer of a connected stream socket has closed or reset its end, checked without
/// blocking. A sender that never expects data uses it before writing, so that a batch is not
/// written into a connection the receiver has already closed.
pub fn peer_closed(socket: &impl AsRawFd) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `poll` is one valid pollfd and the count passed is 1; the timeout is zero, so the
    // call does not block.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    if ready <= 0 {
        return false;
    }
    poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Whether a connected stream socket has bytes to read (or an end or error to report), checked
/// without blocking. A sender that waits for acknowledgements uses it to take those already
/// there without arming a timer.
pub fn readable(socket: &impl AsRawFd) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `poll` is one valid pollfd and the count passed is 1; the timeout is zero, so the
    // call does not block.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents != 0
}

/// The listen backlog requested; the kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket handed to glommio, plus a second handle on the same socket to stop it.
pub struct Listener {
    /// The listener glommio accepts on.
    pub listener: glommio::net::TcpListener,
    control: socket2::Socket,
}

impl Listener {
    /// Stops listening now. Closing alone is not enough: while an io_uring accept still holds
    /// the socket, the kernel keeps it in the SO_REUSEPORT group after this process has gone,
    /// and connections a restarted gyges should get would land in a queue nobody reads.
    /// `shutdown` takes it out of the group at once, whatever still refers to it.
    pub fn stop(&self) {
        let _ = self.control.shutdown(std::net::Shutdown::Both);
    }
}

/// Binds a TCP listener for this core with `SO_REUSEPORT` (so every core can bind the same
/// address and the kernel spreads connections), the requested `SO_RCVBUF` set before
/// `listen` so accepted connections inherit it, and hands it to glommio.
///
/// # Errors
/// The socket cannot be created, configured, bound or put in the listening state.
///
/// # Panics
/// If called outside a glommio executor (glommio ties the listener to the current reactor).
pub fn tcp_listener(
    address: std::net::SocketAddr,
    receive_buffer: Option<usize>,
) -> io::Result<Listener> {
    use std::os::fd::{FromRawFd, IntoRawFd};

    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    let control = socket.try_clone()?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` was just released by `into_raw_fd`, so it is a live, bound, listening TCP
    // socket that nothing else owns; ownership passes to the glommio listener. `control` is a
    // separate descriptor (from `dup`) for the same socket.
    let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
    Ok(Listener { listener, control })
}

/// Connects a TCP stream to `remote` from the local address `local` (an address, a port, or
/// both: `0.0.0.0:0` leaves either to the kernel), within `timeout`, for an output's
/// `local_address`. The socket is bound before it connects, which glommio's own connect cannot
/// do, so the connect runs on the executor's blocking thread: a connection attempt, never
/// the data path.
///
/// # Errors
/// The bind (the address is not this host's, or the port is taken) or the connect failed, or
/// the timeout passed.
pub async fn connect_from(
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    timeout: Duration,
) -> io::Result<glommio::net::TcpStream> {
    let connect = move || -> io::Result<socket2::Socket> {
        let domain = socket2::Domain::for_address(remote);
        let socket =
            socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&local.into())?;
        socket.connect_timeout(&remote.into(), timeout)?;
        Ok(socket)
    };
    let socket = glommio::executor().spawn_blocking(connect).await?;
    let fd = std::os::fd::IntoRawFd::into_raw_fd(socket);
    // SAFETY: `fd` is a connected TCP socket that `into_raw_fd` released to us alone; the
    // stream takes sole ownership and closes it.
    Ok(unsafe { <glommio::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn receive_buffer_round_trips() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        super::set_receive_buffer(&listener, 256 * 1024).unwrap();
        assert!(super::receive_buffer(&listener).unwrap() >= 256 * 1024);
    }

    #[test]
    fn peer_closed_sees_a_closed_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert!(!super::peer_closed(&client));
        client.write_all(b"x").unwrap();
        drop(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !super::peer_closed(&client) {
            assert!(std::time::Instant::now() < deadline, "close was never seen");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn keepalive_can_be_set() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        super::set_keepalive(&client, Some(std::time::Duration::from_secs(30))).unwrap();
        super::set_keepalive(&client, None).unwrap();
    }
}
