//! FTPS on the client side (RFC 4217): whom the client trusts ([`Trust`]: the pin a share URL
//! carries, else the system's roots, else nothing with `--insecure`), the rustls configuration
//! of one control connection, and [`ClientStream`], a control or data connection that is plain
//! TCP or TLS. Data connections resume the control connection's session, as servers that
//! require it (ours, vsftpd) ask. It speaks no FTP.
//!
//! The client speaks TLS 1.2 to FTP servers: a TLS 1.2 session resumes any number of times,
//! while rustls hands out each TLS 1.3 ticket once, and a share has more data connections than
//! a server sends tickets.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(feature = "tls")]
use std::{
    net::IpAddr,
    sync::{Arc, Mutex, OnceLock},
};

#[cfg(feature = "tls")]
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
#[cfg(feature = "tls")]
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
#[cfg(feature = "tls")]
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
#[cfg(feature = "tls")]
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
#[cfg(feature = "tls")]
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned,
};

use crate::common::pin::Pin;

/// Whom the client believes is the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trust {
    /// The server's key must have this pin; a server without TLS is refused.
    pub pin: Option<Pin>,
    /// `--insecure`: any certificate.
    pub insecure: bool,
}

/// A control or data connection, plain or TLS.
pub enum ClientStream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<StreamOwned<ClientConnection, ReadAhead>>),
}

/// Bytes a TLS data connection reads from its socket at a time. rustls reads about one record
/// (16 KiB) per call; gathered here, a 1 GiB download takes 4,096 reads of the socket instead of
/// 65,536, for one copy of the bytes in memory.
#[cfg(feature = "tls")]
const READ_AHEAD_BYTES: usize = 256 * 1024;

/// Bytes a data connection reads straight through before it starts reading ahead: a small
/// file, or an upload's few reads, never make the buffer.
#[cfg(feature = "tls")]
const READ_AHEAD_AFTER: u64 = 64 * 1024;

/// The socket under a TLS stream, reading ahead of what rustls asks for once a data connection
/// has brought [`READ_AHEAD_AFTER`] bytes, straight through otherwise (control connections
/// never read ahead: a reply left in a buffer would hide from the look that tells whether the
/// server hung up). Writes go straight through.
#[cfg(feature = "tls")]
pub struct ReadAhead {
    socket: TcpStream,
    /// How many bytes the buffer holds once made; 0 for never.
    ahead: usize,
    buffer: Vec<u8>,
    /// Bytes of `buffer` from `start` to `end` are read and not yet taken.
    start: usize,
    end: usize,
    /// Bytes read from the socket so far.
    read: u64,
}

#[cfg(feature = "tls")]
impl ReadAhead {
    fn new(socket: TcpStream, ahead: usize) -> ReadAhead {
        ReadAhead { socket, ahead, buffer: Vec::new(), start: 0, end: 0, read: 0 }
    }
}

#[cfg(feature = "tls")]
impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.buffer.is_empty() && self.ahead > buf.len() && self.read >= READ_AHEAD_AFTER {
                self.buffer = vec![0; self.ahead];
            }
            if buf.len() >= self.buffer.len() {
                let n = self.socket.read(buf)?;
                self.read += n as u64;
                return Ok(n);
            }
            self.end = self.socket.read(&mut self.buffer)?;
            self.read += self.end as u64;
            self.start = 0;
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

#[cfg(feature = "tls")]
impl Write for ReadAhead {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.socket.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

impl ClientStream {
    /// Ends an upload's connection: under TLS with a `close_notify`.
    pub fn finish(&mut self) {
        #[cfg(feature = "tls")]
        if let ClientStream::Tls(stream) = self {
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        let _ = self.socket().shutdown(Shutdown::Both);
    }

    /// Says the upload's last byte went: a `close_notify` under TLS, and the end of the
    /// stream.
    pub fn end_upload(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let ClientStream::Tls(stream) = self {
            stream.conn.send_close_notify();
            stream.flush()?;
        }
        self.socket().shutdown(Shutdown::Write)
    }

    /// The TCP socket under it.
    pub fn socket(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(socket) => socket,
            #[cfg(feature = "tls")]
            ClientStream::Tls(stream) => &stream.sock.socket,
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(stream) => stream.read(buf),
            #[cfg(feature = "tls")]
            ClientStream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(stream) => stream.write(buf),
            #[cfg(feature = "tls")]
            ClientStream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(stream) => stream.flush(),
            #[cfg(feature = "tls")]
            ClientStream::Tls(stream) => stream.flush(),
        }
    }
}

#[cfg(feature = "tls")]
/// The TLS of one control connection and its data connections: one configuration, whose
/// session store is theirs alone, and the pin of the key the server showed.
pub struct Session {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    seen: Arc<Mutex<Option<Pin>>>,
}

#[cfg(feature = "tls")]
impl Session {
    /// TLS to the server at `ip`, reached as `host`, trusting what `trust` says.
    pub fn new(host: &str, ip: IpAddr, trust: &Trust) -> Result<Session, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = Arc::new(Mutex::new(None));
        let roots = if trust.pin.is_none() && !trust.insecure && !ip.is_loopback() {
            Some(system_verifier(&provider)?)
        } else {
            None
        };
        let verifier = Arc::new(PinVerifier {
            pin: trust.pin,
            roots,
            provider: Arc::clone(&provider),
            seen: Arc::clone(&seen),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|err| err.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(4)));
        let name = ServerName::try_from(host.to_owned()).unwrap_or(ServerName::IpAddress(ip.into()));
        Ok(Session { config: Arc::new(config), name, seen })
    }

    /// Wraps `socket` in TLS and completes the handshake.
    pub fn connect(&self, mut socket: TcpStream) -> io::Result<ClientStream> {
        let mut connection =
            ClientConnection::new(Arc::clone(&self.config), self.name.clone()).map_err(io::Error::other)?;
        while connection.is_handshaking() {
            connection.complete_io(&mut socket)?;
        }
        Ok(ClientStream::Tls(Box::new(StreamOwned::new(connection, ReadAhead::new(socket, 0)))))
    }

    /// Wraps a data connection in TLS; its handshake runs with its first read or write, once
    /// the server has taken the connection.
    pub fn wrap_data(&self, socket: TcpStream) -> io::Result<ClientStream> {
        let connection =
            ClientConnection::new(Arc::clone(&self.config), self.name.clone()).map_err(io::Error::other)?;
        let socket = ReadAhead::new(socket, READ_AHEAD_BYTES);
        Ok(ClientStream::Tls(Box::new(StreamOwned::new(connection, socket))))
    }

    /// The pin of the key the server showed.
    pub fn server_pin(&self) -> Option<Pin> {
        *self.seen.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(feature = "tls")]
/// A verifier of the system's trusted roots, read once per process.
fn system_verifier(provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            let _ = store.add(certificate);
        }
        Arc::new(store)
    });
    if roots.is_empty() {
        return Err(
            "no trusted root certificates on this system; use a share URL with #pin= or --insecure".into()
        );
    }
    WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(provider))
        .build()
        .map_err(|err| err.to_string())
}

#[cfg(feature = "tls")]
/// Checks the server's certificate: against the pin, else the system's roots, else (loopback,
/// `--insecure`) not at all; and remembers its pin for the share URL.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<Pin>,
    roots: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Option<Pin>>>,
}

#[cfg(feature = "tls")]
impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let shown = Pin::of_certificate(end_entity)
            .ok_or(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        *self.seen.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(shown);
        match (&self.pin, &self.roots) {
            (Some(pin), _) if *pin == shown => Ok(ServerCertVerified::assertion()),
            (Some(_), _) => Err(rustls::Error::General(format!(
                "the server's key has pin {shown}, not the one in the share URL"
            ))),
            (None, Some(roots)) => {
                roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            (None, None) => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
