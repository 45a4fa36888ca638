//! The data connection and what runs on it: the passive listener (`PASV`, `EPSV`, RFC 2428) on
//! a port of `--passive-ports`, `PASV` naming the `--public-host` address, accepting the
//! client's connection and no other (RFC 2577), [`Session::with_data`] with its `150`, final
//! reply and [`ControlWatch`] for `ABOR` (and for a shutdown past its grace) during a transfer,
//! and the `RETR`, `STOR` and `APPE` transfers. It never opens a connection to the client (no `PORT`), and never
//! decides who may write: `Session::writable` does.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddrV4, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::chunks::chunk_size;
use crate::common::expiry::format_duration;
use crate::common::platform::{limit_unsent, make_accepted_blocking, wait_for_connection};
use crate::log_event;
use crate::proto::line::{Line, LineBuffer};
use crate::proto::{
    self, Command, Reason, Refusal, Reply, StoredReply, TransferType, epsv_reply_text, pasv_reply_text,
};
use crate::server::log::LoggedPath;
use crate::server::session::replies::{binary_only, store_refusal};
use crate::server::session::rules::{UploadVerb, Written};
use crate::server::session::{Next, Session};
use crate::server::shutdown::Shutdown as ServerShutdown;
use crate::server::store::{COUNTED_TAIL_BYTES, StoreError, Upload};
use crate::server::stream::{ControlStream, DataStream};

/// Bytes of an upload written, then handed to the hashing thread, at a time, filled by as many
/// reads as it takes (measured: with 64 KiB, or 1 MiB, the server takes more CPU when its
/// writes go through the page cache).
const RECEIVE_BYTES: usize = 256 * 1024;
/// The same for an upload whose whole buffers go straight to the disk: a write past the page
/// cache costs the kernel about as much whatever its size (measured: a 1 GiB upload's server
/// takes 0.97 CPU-s with 1 MiB buffers, 1.19 with 256 KiB, and 1.29 through the page cache).
const RECEIVE_DIRECT_BYTES: usize = 1 << 20;
/// Bytes of an upload received between two looks at the control connection (each look is a
/// few system calls), unless [`UPLOAD_WATCH_INTERVAL`] passes first.
const UPLOAD_WATCH_BYTES: usize = 1 << 20;
/// Longest time between two looks at the control connection while an upload's bytes arrive.
const UPLOAD_WATCH_INTERVAL: Duration = Duration::from_millis(20);
/// Longest wait for the client's data connection before a look at whether the server stops.
const ACCEPT_POLL_MAX: Duration = Duration::from_millis(20);
/// Bytes sent between two looks at the control connection during a download.
const RETR_SLICE_BYTES: usize = 1 << 20;
/// How long a transfer may block on its data connection before it looks at the control
/// connection again; `--data-timeout` counts how long it may go without progress.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);
/// Most bytes of a plain data connection the kernel holds not yet sent (`TCP_NOTSENT_LOWAT`;
/// the bytes in flight are not counted). Without it a download's `sendfile` queues up to the
/// autotuned send buffer (4 MiB here), and the client's acknowledgements then send it in small
/// pieces: measured with 64 clients at once, the clients' CPU fell by about a third.
const DATA_UNSENT_BYTES: u32 = 64 * 1024;

/// Why a transfer stopped before its end.
pub(super) enum Stop {
    /// The data connection failed or stalled.
    Data(io::Error),
    /// The store refused the bytes (a limit, the disk).
    Store(StoreError),
    /// The client sent ABOR.
    Abort,
    /// The control connection closed without QUIT: the client is gone.
    ClientGone,
    /// The server is stopping and the transfer's grace is over.
    Shutdown,
}

/// The control connection as a transfer sees it: between chunks it looks for ABOR and holds
/// any other command (QUIT included, as RFC 959 asks) until the transfer is over.
pub(super) struct ControlWatch<'s> {
    control: &'s mut ControlStream,
    lines: &'s mut LineBuffer,
    held: &'s mut VecDeque<Line>,
    /// QUIT arrived: the client meant to leave, so a close after it is not a crash.
    quit_seen: bool,
    /// How long the transfer may go without progress.
    data_timeout: Duration,
    /// Most commands held until the transfer ends; past that the control connection waits.
    max_held: usize,
    shutdown: &'s ServerShutdown,
}

impl ControlWatch<'_> {
    pub(super) fn check(&mut self) -> Result<(), Stop> {
        if self.shutdown.past_grace() {
            return Err(Stop::Shutdown);
        }
        while self.held.len() < self.max_held {
            let line = match self.control.poll_line(self.lines) {
                Ok(None) => return Ok(()),
                Err(_) | Ok(Some(Line::Closed)) if self.quit_seen => return Ok(()),
                Err(_) | Ok(Some(Line::Closed)) => return Err(Stop::ClientGone),
                Ok(Some(line)) => line,
            };
            match &line {
                Line::Closed => unreachable!("handled above"),
                Line::Text(bytes) => match proto::parse_command(bytes) {
                    Ok(Command::Abor) => return Err(Stop::Abort),
                    Ok(Command::Quit) => self.quit_seen = true,
                    _ => {}
                },
                Line::TooLong => {}
            }
            self.held.push_back(line);
        }
        Ok(())
    }

    /// The data connection blocked: looks at the control connection, and gives up once
    /// nothing has moved for the data timeout.
    fn stalled(&mut self, last_progress: Instant) -> Result<(), Stop> {
        self.check()?;
        if last_progress.elapsed() >= self.data_timeout {
            return Err(Stop::Data(io::ErrorKind::TimedOut.into()));
        }
        Ok(())
    }

    /// Writes all of `bytes`, patiently: a slow reader is waited for, ABOR is heard.
    pub(super) fn write_all(&mut self, data: &mut DataStream, mut bytes: &[u8]) -> Result<(), Stop> {
        let mut last_progress = Instant::now();
        while !bytes.is_empty() {
            match data.write(bytes) {
                Ok(0) => return Err(Stop::Data(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    bytes = &bytes[n..];
                    last_progress = Instant::now();
                }
                Err(err) if is_timeout(&err) => self.stalled(last_progress)?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Stop::Data(err)),
            }
        }
        Ok(())
    }
}

/// Where a download's bytes are read from.
enum Source {
    /// The stored file, at its own positions.
    File(Rc<std::fs::File>),
    /// A copy of the stored bytes from position `first` on, read before the download's claim.
    Held { bytes: Vec<u8>, first: u64 },
}

impl Source {
    /// Sends up to `count` bytes from `*position`, advancing it by what was sent.
    fn send(&self, data: &mut DataStream, position: &mut u64, count: usize) -> io::Result<usize> {
        match self {
            Source::File(file) => data.send_file(file, position, count),
            Source::Held { bytes, first } => {
                let from = usize::try_from(*position - first).unwrap_or(usize::MAX).min(bytes.len());
                let sent = data.write(&bytes[from..bytes.len().min(from + count)])?;
                *position += sent as u64;
                Ok(sent)
            }
        }
    }
}

/// Sends `source` from `position` to `end` on the data connection, moving `position` past
/// every byte handed to the network, also when the transfer stops early.
fn send_range(
    source: &Source,
    position: &mut u64,
    end: u64,
    data: &mut DataStream,
    watch: &mut ControlWatch<'_>,
) -> Result<(), Stop> {
    let mut last_progress = Instant::now();
    // A transfer of one slice (most small files) is sent without a look at the control
    // connection: an `ABOR` that came with it is answered as the next command.
    let one_slice = end - *position <= RETR_SLICE_BYTES as u64;
    while *position < end {
        if !one_slice {
            watch.check()?;
        }
        let slice = RETR_SLICE_BYTES.min((end - *position) as usize);
        match source.send(data, position, slice) {
            Ok(0) => {
                let short = io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its record");
                return Err(Stop::Data(short));
            }
            Ok(_) => last_progress = Instant::now(),
            Err(err) if is_timeout(&err) => watch.stalled(last_progress)?,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(Stop::Data(err)),
        }
    }
    Ok(())
}

/// Reads an upload's bytes from the data connection to its end, into the store.
fn receive(data: &mut DataStream, watch: &mut ControlWatch<'_>, upload: &mut Upload) -> Result<(), Stop> {
    let most = if upload.writes_direct() { RECEIVE_DIRECT_BYTES } else { RECEIVE_BYTES };
    let size = chunk_size(upload.to_come().unwrap_or(u64::MAX), most);
    // The upload's own buffer, filled before it is written and then hashed without a copy:
    // a TLS read gives one record (16 KiB) at a time, and a hand-over each would cost more.
    let mut buffer = Filling::lent(upload, size);
    let mut last_progress = Instant::now();
    let (mut last_look, mut unwatched) = (last_progress, 0);
    let end = loop {
        match data.read(buffer.room()) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                buffer.filled += n;
                last_progress = Instant::now();
                unwatched += n;
                if unwatched >= UPLOAD_WATCH_BYTES || last_progress - last_look >= UPLOAD_WATCH_INTERVAL {
                    if let Err(stop) = watch.check() {
                        break Err(stop);
                    }
                    (last_look, unwatched) = (last_progress, 0);
                }
                if buffer.filled == buffer.size {
                    buffer.write(upload)?;
                }
            }
            Err(err) if is_timeout(&err) => {
                // The bytes paused: those that came go to the file, where a resume finds them.
                buffer.write(upload)?;
                if let Err(stop) = watch.stalled(last_progress) {
                    break Err(stop);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => break Err(Stop::Data(err)),
        }
    };
    // What arrived is kept also when the transfer stopped: a cut upload resumes after it.
    let written = buffer.write(upload);
    end.and(written)?;
    // End of data in stream mode can also mean the client died: a gone control connection
    // says so, and then nothing is stored.
    watch.check()
}

/// An upload's buffer, where in it the file's bytes start, and how many of its `size` the
/// data connection filled.
struct Filling {
    bytes: Vec<u8>,
    start: usize,
    size: usize,
    filled: usize,
}

impl Filling {
    /// The upload's next buffer, with room for `size` bytes.
    fn lent(upload: &mut Upload, size: usize) -> Filling {
        let (bytes, start) = upload.buffer(size);
        Filling { bytes, start, size, filled: 0 }
    }

    /// Where the next bytes go.
    fn room(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start + self.filled..self.start + self.size]
    }

    /// Hands the filled bytes, if any, to the upload, and takes its next buffer.
    fn write(&mut self, upload: &mut Upload) -> Result<(), Stop> {
        if self.filled == 0 {
            return Ok(());
        }
        let full = std::mem::take(&mut self.bytes);
        let part = self.start..self.start + self.filled;
        upload.write_buffer(full, part).map_err(Stop::Store)?;
        *self = Filling::lent(upload, self.size);
        Ok(())
    }
}

/// A transfer command with no passive listener waiting for it.
fn no_passive() -> Refusal {
    Refusal::new(Reason::NoDataConnection, "Use PASV or EPSV first")
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl Session<'_> {
    pub(super) fn pasv(&mut self) -> io::Result<Next> {
        if self.epsv_all {
            return self
                .refuse(Refusal::new(Reason::Unsupported, "EPSV ALL was sent; use EPSV").with_code(503));
        }
        let IpAddr::V4(local) = self.local.ip() else {
            return self.refuse(Refusal::new(Reason::NoDataConnection, "PASV needs IPv4; use EPSV"));
        };
        // Behind NAT the client must be told the public address, not the one we listen on.
        let ip = self.shared.public.passive_ipv4().unwrap_or(local);
        match self.open_passive() {
            Ok(port) => self.say(227, pasv_reply_text(SocketAddrV4::new(ip, port))),
            Err(err) => self
                .refuse(Refusal::new(Reason::NoDataConnection, format!("Cannot open a passive port: {err}"))),
        }
    }

    pub(super) fn epsv(&mut self, argument: Option<&str>) -> io::Result<Next> {
        match argument.map(str::to_ascii_uppercase).as_deref() {
            None => {}
            Some("ALL") => {
                self.epsv_all = true;
                return self.say(200, "EPSV ALL ok");
            }
            Some("1") if self.local.is_ipv4() => {}
            Some("2") if self.local.is_ipv6() => {}
            Some(number) if number.bytes().all(|b| b.is_ascii_digit()) => {
                let protocol = if self.local.is_ipv4() { 1 } else { 2 };
                let text = format!("Network protocol not supported, use ({protocol})");
                return self.refuse(Refusal::new(Reason::Unsupported, text).with_code(522));
            }
            Some(_) => {
                return self.refuse(Refusal::new(Reason::BadArgument, "EPSV takes no argument, 1, 2 or ALL"));
            }
        }
        match self.open_passive() {
            Ok(port) => self.say(229, epsv_reply_text(port)),
            Err(err) => self
                .refuse(Refusal::new(Reason::NoDataConnection, format!("Cannot open a passive port: {err}"))),
        }
    }

    /// Listens on a free passive port (of `--passive-ports`, or any), on the address the client
    /// reached us on.
    fn open_passive(&mut self) -> io::Result<u16> {
        self.passive = None;
        let (listener, port) = self.shared.passive_ports.bind(self.local.ip())?;
        self.passive = Some(listener);
        Ok(port)
    }

    /// Takes the client's data connection on the passive port. Connections from any other
    /// address are dropped unanswered and the wait goes on (RFC 2577 port stealing).
    fn accept_data(&mut self) -> Result<TcpStream, Refusal> {
        let refused = |text: String| Refusal::new(Reason::NoDataConnection, text);
        let listener = self.passive.take().ok_or_else(|| refused("Use PASV or EPSV first".into()))?;
        let limit = self.shared.config.passive_timeout;
        let deadline = Instant::now() + limit;
        let fail = |err: io::Error| refused(format!("Cannot open data connection: {err}"));
        loop {
            match listener.accept() {
                Ok((stream, from)) if from.ip() == self.peer.ip() => {
                    make_accepted_blocking(&stream).map_err(fail)?;
                    stream.set_read_timeout(Some(WATCH_INTERVAL)).map_err(fail)?;
                    stream.set_write_timeout(Some(WATCH_INTERVAL)).map_err(fail)?;
                    return Ok(stream);
                }
                Ok((stream, from)) => {
                    log_event!("conn={} peer={} event=data-refused from={from}", self.id, self.peer);
                    drop(stream);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.shared.shutdown.past_grace() {
                        return Err(refused("Server shutting down; no more transfers".into()));
                    }
                    if Instant::now() >= deadline {
                        let waited = format_duration(limit);
                        return Err(refused(format!("No data connection within {waited}")));
                    }
                    // Woken by the connection at once; a look at the shutdown in between.
                    let left = deadline.saturating_duration_since(Instant::now());
                    wait_for_connection(&listener, left.min(ACCEPT_POLL_MAX)).map_err(fail)?;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(fail(err)),
            }
        }
    }

    /// Sends `preliminary`, opens the data connection and hands it, with a watch on the
    /// control connection, to `transfer`; then sends the final reply `transfer` chose, or the
    /// replies for however it was stopped.
    pub(super) fn with_data(
        &mut self,
        preliminary: String,
        transfer: impl FnOnce(&mut DataStream, &mut ControlWatch<'_>) -> Result<Reply, Stop>,
    ) -> io::Result<Next> {
        if self.passive.is_none() {
            return self.refuse(no_passive());
        }
        if let Err(refusal) = self.check_data_protection() {
            return self.refuse(refusal);
        }
        self.reply(Reply::new(150, preliminary))?;
        let mut data = match self.accept_data().and_then(|socket| self.protect(socket)) {
            Ok(data) => data,
            Err(refusal) => return self.refuse(refusal),
        };
        // Plain only: after an ABOR a TLS connection still writes its close_notify behind the
        // unsent bytes, which needs room in the socket. A kernel without the option sends as before.
        if !data.is_tls() {
            let _ = limit_unsent(data.socket(), DATA_UNSENT_BYTES);
        }
        let mut watch = ControlWatch {
            control: &mut self.control,
            lines: &mut self.lines,
            held: &mut self.held,
            quit_seen: false,
            data_timeout: self.shared.config.data_timeout,
            max_held: self.shared.config.max_held_commands,
            shutdown: &self.shared.shutdown,
        };
        let outcome = transfer(&mut data, &mut watch);
        data.close(self.shared.config.data_timeout);
        let (id, peer) = (self.id, self.peer);
        match outcome {
            Ok(reply) => self.answer(reply),
            Err(Stop::Store(err)) => {
                log_event!("conn={id} peer={peer} event=transfer-refused reason={:?}", err.to_string());
                self.store_error(err)
            }
            Err(Stop::Data(err)) => {
                let reason = match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        format!("no progress for {}", format_duration(self.shared.config.data_timeout))
                    }
                    _ => err.to_string(),
                };
                log_event!("conn={id} peer={peer} event=transfer-aborted reason={reason:?}");
                let text = format!("Data connection failed: {reason}; transfer aborted");
                self.refuse(Refusal::new(Reason::TransferCut, text))
            }
            Err(Stop::Abort) => {
                log_event!("conn={id} peer={peer} event=transfer-aborted reason=\"ABOR\"");
                self.reply(
                    Refusal::new(Reason::TransferCut, "Transfer aborted; an upload is not stored").to_reply(),
                )?;
                self.say(226, "ABOR successful")
            }
            Err(Stop::Shutdown) => {
                log_event!("conn={id} peer={peer} event=transfer-aborted reason=\"shutdown grace over\"");
                let grace = format_duration(self.shared.shutdown.grace());
                let text = format!("Server shutting down; transfer cut after the grace of {grace}");
                self.refuse(Refusal::new(Reason::TransferCut, text))
            }
            Err(Stop::ClientGone) => {
                log_event!(
                    "conn={id} peer={peer} event=transfer-aborted reason=\"control connection closed\""
                );
                Ok(Next::Close("closed-by-peer"))
            }
        }
    }

    pub(super) fn retr(&mut self, argument: &str) -> io::Result<Next> {
        let offset = self.pending.take_download_offset();
        let path = self.resolve(argument);
        let found = self.lookup_file_to_download(&path).and_then(|(share, entry)| {
            let file = share.open_file_keeping(&entry, &mut self.kept_pack.borrow_mut())?;
            Ok((file, share, entry))
        });
        let (file, share, entry) = match found {
            Ok(found) => found,
            Err(err) => return self.file_error(&path, err),
        };
        // A RETR that will be refused for want of a data connection claims no place of a
        // budget (a client whose EPSV was refused sent its RETR in the same write).
        let refusal = if self.transfer_type == TransferType::Ascii {
            Some(binary_only())
        } else if offset > entry.size {
            let text = format!("REST {offset} is past the end of the file ({} bytes)", entry.size);
            Some(Refusal::new(Reason::BadOffset, text))
        } else if self.passive.is_none() {
            Some(no_passive())
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // Only the claim asks whether a file is spent: a refusal before it must not tell
            // that a spent file is there.
            if let Ok(Some(0)) = share.downloads_left(&entry) {
                return self.file_error(&path, StoreError::NotFound);
            }
            return self.refuse(refusal);
        }
        // A budgeted file in a pack is read, and checked against its SHA-256, before its claim:
        // the count that uses its budget up punches its bytes out of the pack.
        let held = match share.read_if_punchable(&entry, &file.0, file.1, offset) {
            Ok(held) => held,
            Err(err) => return self.file_error(&path, err),
        };
        // REST <size> sends nothing, so it claims nothing either; a spent file is not there.
        let claim = match offset == entry.size && entry.size > 0 {
            true => match share.downloads_left(&entry) {
                Ok(Some(0)) => Err(StoreError::NotFound),
                other => other.map(|_| None),
            },
            false => share.claim_download(&entry, &self.peer.ip().to_string(), offset),
        };
        let claim = match claim {
            Ok(claim) => claim,
            Err(err) => return self.store_error(err),
        };
        let remaining = entry.size - offset;
        let (id, peer) = (self.id, self.peer);
        let (file, start) = file;
        let source = match held {
            Some(bytes) => Source::Held { bytes, first: start + offset },
            None => Source::File(file),
        };
        self.with_data(format!("Sending {path} ({remaining} bytes)"), move |data, watch| {
            let end = start + entry.size;
            let mut position = start + offset;
            // A budgeted file's last bytes leave only once the download counted, so a crash
            // never lets a client have every byte uncounted: before the count its claim keeps
            // its place, after it a resume for the last bytes joins the counted claim (one
            // counted at its end has none: its resume needs a place of its own).
            let held_back = match &claim {
                Some(_) => end - (end - position).min(COUNTED_TAIL_BYTES),
                None => end,
            };
            let mut sent = send_range(&source, &mut position, held_back, data, watch);
            // The bytes handed to the network count towards the client's claim however the
            // transfer ended: a client could otherwise read them all and then reset.
            let counted = match &claim {
                Some(claim) if sent.is_ok() && held_back < end => {
                    let counted = claim.credit(offset, entry.size);
                    if counted.is_ok() {
                        sent = send_range(&source, &mut position, end, data, watch);
                    }
                    counted
                }
                Some(claim) => claim.credit(offset, position - start),
                None => Ok(false),
            };
            // A count is told on the `retr` line; one whose send then failed on a line of its own.
            if let (Ok(true), Err(_)) = (&counted, &sent) {
                log_event!("conn={id} peer={peer} event=download-counted {}", LoggedPath(&path));
            }
            // Counted at its end with no place left: the budget went to other downloads meanwhile.
            if let (Ok(()), Err(StoreError::NotFound)) = (&sent, &counted) {
                log_event!("conn={id} peer={peer} event=download-refused-at-end {}", LoggedPath(&path));
                let text =
                    format!("{path}: its downloads were used up while it was sent; its last bytes were kept");
                return Ok(Refusal::new(Reason::NotFound, text).to_reply());
            }
            sent?;
            let counted = if counted.map_err(Stop::Store)? { " counted=yes" } else { "" };
            let sent = position - start - offset;
            log_event!(
                "conn={id} peer={peer} event=retr {} offset={offset} bytes={sent}{counted}",
                LoggedPath(&path)
            );
            Ok(Reply::new(226, format!("Transfer complete, {sent} bytes, SHA-256 {}", entry.sha256)))
        })
    }

    /// STOR and APPE: receives a file, from its first byte or resuming a cut upload.
    pub(super) fn stor(&mut self, argument: &str, verb: UploadVerb) -> io::Result<Next> {
        let path = self.resolve(argument);
        let (start, allocated) = self.pending.take_upload(verb);
        let (share, rel) = match self.writable(&path, Written::File) {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        if self.transfer_type == TransferType::Ascii {
            return self.refuse(binary_only());
        }
        let expected = self.pending.expected(&path, allocated);
        let upload = match share.begin_upload(&rel, expected, start) {
            Ok(upload) => upload,
            Err(err) => return self.store_error(err),
        };
        let offset = upload.offset();
        let (id, peer) = (self.id, self.peer);
        let preliminary = match offset {
            0 => format!("Receiving {path}"),
            _ => format!("Receiving {path} from byte {offset}"),
        };
        self.with_data(preliminary, move |data, watch| {
            let mut upload = upload;
            match receive(data, watch, &mut upload) {
                Ok(()) => {}
                // A refused or aborted upload leaves nothing; a cut one keeps its bytes for a resume.
                Err(stop @ (Stop::Store(_) | Stop::Abort)) => {
                    upload.discard();
                    return Err(stop);
                }
                Err(stop) => return Err(stop),
            }
            if upload.is_short() {
                let cut = format!("connection closed after {} of the announced bytes", upload.received());
                return Err(Stop::Data(io::Error::new(io::ErrorKind::UnexpectedEof, cut)));
            }
            let received = upload.received();
            match upload.commit() {
                Ok(entry) => {
                    log_event!(
                        "conn={id} peer={peer} event=stor {} offset={offset} bytes={} sha256={}",
                        LoggedPath(&path),
                        entry.size,
                        entry.sha256
                    );
                    let stored =
                        StoredReply { path: path.to_string(), size: entry.size, digest: entry.sha256 };
                    Ok(Reply::new(226, stored.to_string()))
                }
                Err(err) => {
                    log_event!(
                        "conn={id} peer={peer} event=stor-rejected {} bytes={received} reason={:?}",
                        LoggedPath(&path),
                        err.to_string()
                    );
                    Ok(store_refusal(&err).to_reply())
                }
            }
        })
    }
}
