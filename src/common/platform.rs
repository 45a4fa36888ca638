//! The one place for operating-system differences, each with a portable fallback.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;

/// Makes a directory's entries (a rename, a new file) durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; NTFS journals renames, so there is nothing to do.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Free bytes for unprivileged users on the disk that holds `path`.
#[cfg(unix)]
pub fn free_space(path: &Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// File descriptors this process may have open (its soft limit); `None` when unlimited or
/// unknown.
#[cfg(unix)]
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn open_files_limit() -> Option<u64> {
    None
}

/// Whether `err` says the process or the system has no file descriptor left to open.
#[cfg(unix)]
pub fn is_out_of_descriptors(err: &io::Error) -> bool {
    use rustix::io::Errno;
    err.raw_os_error()
        .is_some_and(|code| code == Errno::MFILE.raw_os_error() || code == Errno::NFILE.raw_os_error())
}

#[cfg(not(unix))]
pub fn is_out_of_descriptors(_err: &io::Error) -> bool {
    false
}

/// Without a portable way to ask, the free-space floor is not enforced.
#[cfg(not(unix))]
pub fn free_space(_path: &Path) -> Option<u64> {
    None
}

/// Keeps TCP urgent data in the byte stream. Clients send the Telnet Synch before ABOR as
/// urgent data (RFC 959 §4.1.3); without this the kernel takes that byte out of the stream.
#[cfg(unix)]
pub fn keep_urgent_data_inline(stream: &TcpStream) -> io::Result<()> {
    rustix::net::sockopt::set_socket_oobinline(stream, true).map_err(io::Error::from)
}

/// Elsewhere the Synch byte may be lost; ABOR itself still arrives.
#[cfg(not(unix))]
pub fn keep_urgent_data_inline(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}

/// Writes a new file that only its owner may read (mode 0600), and syncs it.
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Elsewhere the file gets the folder's permissions.
#[cfg(not(unix))]
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Sends up to `count` bytes of `file` from `*offset` to `socket`, advancing `*offset` by what
/// was sent and returning it. On Linux the kernel moves the bytes (sendfile, zero-copy).
#[cfg(target_os = "linux")]
pub fn send_file(
    file: &std::fs::File,
    offset: &mut u64,
    count: usize,
    socket: &TcpStream,
) -> io::Result<usize> {
    rustix::fs::sendfile(socket, file, Some(offset), count).map_err(io::Error::from)
}

/// Elsewhere, one buffered read and one write; only bytes the socket took count as sent.
#[cfg(not(target_os = "linux"))]
pub fn send_file(
    file: &std::fs::File,
    offset: &mut u64,
    count: usize,
    socket: &TcpStream,
) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut buffer = vec![0u8; count.min(256 * 1024)];
    let mut reader = file;
    reader.seek(SeekFrom::Start(*offset))?;
    let read = reader.read(&mut buffer)?;
    let sent = (&*socket).write(&buffer[..read])?;
    *offset += sent as u64;
    Ok(sent)
}

/// Reads what `socket` holds now, without waiting and without changing the socket: an error
/// of kind `WouldBlock` when nothing is there.
#[cfg(unix)]
pub fn read_nowait(socket: &TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    rustix::net::recv(socket, buffer, rustix::net::RecvFlags::DONTWAIT)
        .map(|(n, _)| n)
        .map_err(io::Error::from)
}

/// Elsewhere the socket is made non-blocking for the one read.
#[cfg(not(unix))]
pub fn read_nowait(socket: &TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    socket.set_nonblocking(true)?;
    let result = (&*socket).read(buffer);
    socket.set_nonblocking(false)?;
    result
}

/// Looks at the first byte `socket` holds, without taking it, without waiting and without
/// changing the socket: an error of kind `WouldBlock` when nothing is there.
#[cfg(unix)]
pub fn peek_nowait(socket: &TcpStream) -> io::Result<usize> {
    use rustix::net::RecvFlags;
    rustix::net::recv(socket, &mut [0u8; 1], RecvFlags::DONTWAIT | RecvFlags::PEEK)
        .map(|(n, _)| n)
        .map_err(io::Error::from)
}

/// Elsewhere the socket is made non-blocking for the one look.
#[cfg(not(unix))]
pub fn peek_nowait(socket: &TcpStream) -> io::Result<usize> {
    socket.set_nonblocking(true)?;
    let result = socket.peek(&mut [0u8; 1]);
    socket.set_nonblocking(false)?;
    result
}

/// Connects to `address`, waiting at most `timeout`, and gives the connection `timeout` for
/// each read and write. On Linux a blocking connect waits no longer than the socket's send
/// timeout, so this takes four system calls where a non-blocking connect and a poll take eight.
#[cfg(target_os = "linux")]
pub fn connect_with_timeout(address: &SocketAddr, timeout: std::time::Duration) -> io::Result<TcpStream> {
    use rustix::net::sockopt::{Timeout, set_socket_timeout};
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    if timeout.is_zero() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a timeout of zero"));
    }
    let family = if address.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    set_socket_timeout(&socket, Timeout::Send, Some(timeout))?;
    set_socket_timeout(&socket, Timeout::Recv, Some(timeout))?;
    match rustix::net::connect(&socket, address) {
        Ok(()) => Ok(TcpStream::from(socket)),
        // What a blocking connect says when the send timeout ran out.
        Err(rustix::io::Errno::INPROGRESS) => Err(io::ErrorKind::TimedOut.into()),
        Err(err) => Err(err.into()),
    }
}

/// Elsewhere, the standard library's connect with a timeout.
#[cfg(not(target_os = "linux"))]
pub fn connect_with_timeout(address: &SocketAddr, timeout: std::time::Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Makes a socket that `accept` returned blocking. On Linux there is nothing to do: `accept4`
/// never passes the listener's non-blocking flag on, so this saves a system call per connection.
#[cfg(target_os = "linux")]
pub fn make_accepted_blocking(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}

/// Some systems (the BSDs, macOS) hand out accepted sockets as non-blocking as their listener.
#[cfg(not(target_os = "linux"))]
pub fn make_accepted_blocking(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)
}

/// Lets the kernel hold at most about `bytes` of a socket's data not yet sent
/// (`TCP_NOTSENT_LOWAT`): a send waits until what is queued went out, while the bytes in flight
/// stay bounded by the congestion window alone, as before.
#[cfg(target_os = "linux")]
pub fn limit_unsent(socket: &TcpStream, bytes: u32) -> io::Result<()> {
    socket2::SockRef::from(socket).set_tcp_notsent_lowat(bytes)
}

/// Elsewhere the kernel's own send buffer decides.
#[cfg(not(target_os = "linux"))]
pub fn limit_unsent(_socket: &TcpStream, _bytes: u32) -> io::Result<()> {
    Ok(())
}

/// Reads up to `buffer.len()` bytes of `file` from `offset`, in one call, leaving the file's
/// position alone.
#[cfg(unix)]
pub fn read_at(file: &std::fs::File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

/// Elsewhere a seek and a read.
#[cfg(not(unix))]
pub fn read_at(file: &std::fs::File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut reader = file;
    reader.seek(SeekFrom::Start(offset))?;
    reader.read(buffer)
}

/// Opens `path` for reading only if it is a plain file: a symbolic link is not followed and a
/// pipe's writer is not waited for (`O_NOFOLLOW`, `O_NONBLOCK`, cleared again once the file is
/// known to be plain); anything else is `None`. One open and one `fstat` with no lookup before;
/// an open that fails looks at the name, since systems differ in what a refused link is.
#[cfg(unix)]
pub fn open_plain_file(path: &Path) -> io::Result<Option<std::fs::File>> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32;
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(err),
        Err(err) => {
            return match std::fs::symlink_metadata(path) {
                Ok(meta) if !meta.is_file() => Ok(None),
                _ => Err(err),
            };
        }
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    rustix::fs::fcntl_setfl(&file, OFlags::empty())?;
    Ok(Some(file))
}

/// Elsewhere a look at the name first, then the open.
#[cfg(not(unix))]
pub fn open_plain_file(path: &Path) -> io::Result<Option<std::fs::File>> {
    match std::fs::symlink_metadata(path)?.is_file() {
        true => std::fs::File::open(path).map(Some),
        false => Ok(None),
    }
}

/// What a write that bypasses the page cache must be aligned to: the address of its bytes,
/// its place in the file and its length are multiples of this.
pub const DIRECT_ALIGN: usize = 4096;

/// Opens `path` again for writes that go from memory straight to the disk (`O_DIRECT`), with
/// no copy into the page cache; `None` where that is not supported.
#[cfg(target_os = "linux")]
pub fn open_direct(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let direct = rustix::fs::OFlags::DIRECT.bits() as i32;
    std::fs::OpenOptions::new().write(true).custom_flags(direct).open(path).ok()
}

/// Elsewhere every write goes through the page cache.
#[cfg(not(target_os = "linux"))]
pub fn open_direct(_path: &Path) -> Option<std::fs::File> {
    None
}

/// Writes up to `bytes.len()` bytes to `file` at `offset`, in one call, leaving the file's
/// position alone.
#[cfg(unix)]
pub fn write_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, bytes, offset)
}

/// Elsewhere a seek and a write.
#[cfg(not(unix))]
pub fn write_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<usize> {
    use std::io::{Seek, SeekFrom, Write};
    let mut writer = file;
    writer.seek(SeekFrom::Start(offset))?;
    writer.write(bytes)
}

/// Listens on `address` (`HOST:PORT`) with room for `backlog` connections not yet accepted, so a
/// burst of clients waits in the queue instead of retrying its handshake a second later.
pub fn listen(address: &str, backlog: u32) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in address.to_socket_addrs()? {
        match listen_on(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = err,
        }
    }
    Err(last)
}

#[cfg(unix)]
fn listen_on(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    // As the standard library does: a restarted server can bind while old connections linger.
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener::from(socket))
}

/// Elsewhere, the standard library's own backlog.
#[cfg(not(unix))]
fn listen_on(addr: SocketAddr, _backlog: u32) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Listens on `addr` (a port named, or 0) without blocking: `accept` says `WouldBlock` when no
/// connection waits. On Unix the socket is made so, saving the `ioctl` that would follow.
#[cfg(unix)]
pub fn listen_nonblocking(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let socket = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener::from(socket))
}

/// Elsewhere, a listener made non-blocking after it is bound.
#[cfg(not(unix))]
pub fn listen_nonblocking(addr: SocketAddr, _backlog: u32) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Waits up to `timeout` for a connection to accept on `listener`; `false` when none came.
#[cfg(unix)]
pub fn wait_for_connection(listener: &TcpListener, timeout: std::time::Duration) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = Timespec::try_from(timeout).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    match poll(&mut fds, Some(&timeout)) {
        Ok(ready) => Ok(ready > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Elsewhere the accept itself waits: a shutdown is noticed at the next connection.
#[cfg(not(unix))]
pub fn wait_for_connection(_listener: &TcpListener, _timeout: std::time::Duration) -> io::Result<bool> {
    Ok(true)
}

/// The signals that steer a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop (what systemd and `kill` send).
    Terminate,
    /// SIGINT: stop (Ctrl-C).
    Interrupt,
    /// SIGHUP: reload what can be reloaded.
    Hangup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
        }
    }
}

/// Calls `handler` on a thread of its own for every SIGTERM, SIGINT and SIGHUP from now on,
/// instead of the default action (which for all three ends the process at once).
#[cfg(unix)]
pub fn on_signals(mut handler: impl FnMut(Signal) + Send + 'static) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for number in signals.forever() {
            handler(match number {
                SIGTERM => Signal::Terminate,
                SIGINT => Signal::Interrupt,
                _ => Signal::Hangup,
            });
        }
    })?;
    Ok(())
}

/// Elsewhere the default actions stay: Ctrl-C ends the server at once.
#[cfg(not(unix))]
pub fn on_signals(_handler: impl FnMut(Signal) + Send + 'static) -> io::Result<()> {
    Ok(())
}

/// Deletes `len` bytes of `file` from `offset` on, leaving a hole that reads as zeros and frees
/// its disk space; the file keeps its size. Where holes are not supported, the bytes are
/// overwritten with zeros.
#[cfg(target_os = "linux")]
pub fn punch_hole(file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::FallocateFlags;
    if len == 0 {
        return Ok(());
    }
    match rustix::fs::fallocate(file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => write_zeros(file, offset, len),
        Err(err) => Err(err.into()),
    }
}

/// Elsewhere the bytes are overwritten with zeros.
#[cfg(not(target_os = "linux"))]
pub fn punch_hole(file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    write_zeros(file, offset, len)
}

#[cfg_attr(target_os = "linux", allow(dead_code))]
fn write_zeros(mut file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    io::copy(&mut io::repeat(0).take(len), &mut file).map(drop)
}

/// Creates `path` holding `payload`, exclusively (an existing name is `AlreadyExists`) and at
/// once: a symbolic link, whose target is its payload, so nobody sees it without it.
#[cfg(unix)]
pub fn create_marker(path: &Path, payload: &str) -> io::Result<()> {
    std::os::unix::fs::symlink(payload, path)
}

/// Elsewhere a file created exclusively, then written.
#[cfg(not(unix))]
pub fn create_marker(path: &Path, payload: &str) -> io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?.write_all(payload.as_bytes())
}

/// What [`create_marker`] put in `path`.
#[cfg(unix)]
pub fn read_marker(path: &Path) -> io::Result<String> {
    Ok(std::fs::read_link(path)?.to_string_lossy().into_owned())
}

#[cfg(not(unix))]
pub fn read_marker(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then), as one step: a file that
/// appeared at `to` meanwhile is never replaced. Where the filesystem cannot rename so, a hard
/// link (which never replaces a name) and an unlink do the same.
#[cfg(target_os = "linux")]
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => link_then_unlink(from, to),
        other => other.map_err(io::Error::from),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    link_then_unlink(from, to)
}

fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// The terminal on stdin in raw mode (keys arrive one by one, unechoed) until this is dropped.
#[cfg(unix)]
pub struct RawTerminal(rustix::termios::Termios);

#[cfg(unix)]
impl RawTerminal {
    /// Raw mode on stdin, or `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawTerminal> {
        let stdin = io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        // Output stays as it was: a newline still returns the carriage.
        raw.output_modes = saved.output_modes;
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

#[cfg(unix)]
impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(io::stdin(), rustix::termios::OptionalActions::Now, &self.0);
    }
}

/// Without raw mode, lines are read as the terminal gives them.
#[cfg(not(unix))]
pub struct RawTerminal;

#[cfg(not(unix))]
impl RawTerminal {
    pub fn enter() -> Option<RawTerminal> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn a_rename_that_would_replace_a_file_is_refused_and_keeps_both() {
        let dir = std::env::temp_dir().join(format!("anonshare-rename-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (from, to) = (dir.join("download.part"), dir.join("mine.txt"));
        std::fs::write(&from, b"downloaded").unwrap();
        std::fs::write(&to, b"the user's").unwrap();
        let refused = rename_no_replace(&from, &to).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&to).unwrap(), b"the user's");
        assert_eq!(std::fs::read(&from).unwrap(), b"downloaded");
        std::fs::remove_file(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"downloaded");
        assert!(!from.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_connection_with_a_timeout_has_it_for_reads_and_writes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let timeout = std::time::Duration::from_secs(7);
        let stream = connect_with_timeout(&address, timeout).unwrap();
        assert_eq!(stream.read_timeout().unwrap(), Some(timeout));
        assert_eq!(stream.write_timeout().unwrap(), Some(timeout));
        assert_eq!(stream.peer_addr().unwrap(), address);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_socket_with_an_unsent_limit_keeps_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        limit_unsent(&stream, 48 * 1024).unwrap();
        assert_eq!(socket2::SockRef::from(&stream).tcp_notsent_lowat().unwrap(), 48 * 1024);
    }

    #[cfg(unix)]
    #[test]
    fn an_accepted_socket_blocks_and_a_read_that_does_not_wait_leaves_it_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    wait_for_connection(&listener, std::time::Duration::from_secs(5)).unwrap();
                }
                Err(err) => panic!("{err}"),
            }
        };
        make_accepted_blocking(&accepted).unwrap();
        let blocking =
            |s: &TcpStream| !rustix::fs::fcntl_getfl(s).unwrap().contains(rustix::fs::OFlags::NONBLOCK);
        assert!(blocking(&accepted));
        let mut buffer = [0u8; 8];
        assert_eq!(read_nowait(&accepted, &mut buffer).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        client.write_all(b"NOOP\r\n").unwrap();
        client.flush().unwrap();
        let mut got = 0;
        while got == 0 {
            match read_nowait(&accepted, &mut buffer) {
                Ok(n) => got = n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let mut fds = [rustix::event::PollFd::new(&accepted, rustix::event::PollFlags::IN)];
                    rustix::event::poll(&mut fds, None).unwrap();
                }
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(&buffer[..got], b"NOOP\r\n");
        assert!(blocking(&accepted), "the look that did not wait left the socket blocking");
    }

    #[test]
    fn a_punched_hole_reads_as_zeros_and_an_empty_one_is_nothing() {
        let path = std::env::temp_dir().join(format!("anonshare-hole-{}", std::process::id()));
        let mut file =
            std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        file.write_all(&[7u8; 10_000]).unwrap();
        punch_hole(&file, 100, 5000).unwrap();
        punch_hole(&file, 100, 0).unwrap();
        let mut bytes = Vec::new();
        std::fs::File::open(&path).unwrap().read_to_end(&mut bytes).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(bytes.len(), 10_000, "the file keeps its size");
        assert!(bytes[..100].iter().chain(&bytes[5100..]).all(|&b| b == 7));
        assert!(bytes[100..5100].iter().all(|&b| b == 0));
    }
}
