//! FTPS (RFC 4217) against the real server: curl, lftp and python3's ftplib over TLS, the
//! data connection that must resume its control connection's session (522), plaintext sent
//! after `AUTH TLS` that is never run, and share URLs whose pin refuses another server.

use std::fs;

use crate::support::{Server, TempDir, client, code_of, curl, python, random_bytes, upload};

/// The `sha256//...` pin the server printed at start-up.
fn pin_of(server: &Server) -> String {
    let pem = fs::read_to_string(server.root.join("tls/cert.pem")).expect("the server made its certificate");
    let run = python(PIN_OF_PEM, &[&pem]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.trim().to_owned()
}

/// The SPKI pin of a PEM certificate, computed by OpenSSL through python3's ssl (the way curl
/// checks --pinnedpubkey), not by our code.
const PIN_OF_PEM: &str = r#"
import base64, hashlib, subprocess, sys
der = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=sys.argv[1].encode(), capture_output=True, check=True).stdout
spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der, capture_output=True, check=True).stdout
print("sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode())
"#;

/// ftplib over TLS with a subclass that resumes the control session on every data
/// connection: lists, downloads, resumes, uploads with the SITE verbs; argv: port, code.
const FTPLIB_TLS: &str = r#"
import ftplib, io, ssl, sys
port, code = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
class Resuming(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = Resuming(context=ctx); f.connect("127.0.0.1", port); f.login(); f.prot_p()
for _ in range(3):
    print("list", f.nlst("/" + code))
got = []; f.retrbinary("RETR /%s/big.bin" % code, got.append); print("got", len(b"".join(got)))
tail = []; f.retrbinary("RETR /%s/big.bin" % code, tail.append, rest=1000); print("tail", len(b"".join(tail)))
f.sendcmd("SITE MKSHARE 600")
print(f.storbinary("STOR up.bin", io.BytesIO(b"u" * 200000)))
f.sendcmd("SITE SEAL"); f.quit()
"#;

#[test]
fn curl_and_ftplib_list_download_resume_and_upload_over_tls() {
    let server = Server::start_with(&["--tls", "required"]);
    let dir = TempDir::new();
    let big = random_bytes(700_000, 21);
    dir.file("s/big.bin", &big);
    let url = upload(&server, dir.path(), &["s/big.bin"]);
    let pin = pin_of(&server);
    assert!(server.log().contains("event=tls"), "our client spoke TLS");

    let (plain, _) = curl(&[&url]);
    assert_ne!(plain.code, 0, "a required-TLS server lists nothing in the clear");
    let (listing, _) = curl(&["--ssl-reqd", "-k", &url]);
    assert_eq!(listing.code, 0, "{}", listing.stderr);
    assert!(listing.stdout.contains("big.bin"), "{}", listing.stdout);
    let (pinned, bytes) = curl(&["--ssl-reqd", "-k", "--pinnedpubkey", &pin, &format!("{url}big.bin")]);
    assert_eq!(pinned.code, 0, "{}", pinned.stderr);
    assert!(bytes == big, "curl's download is byte-exact");
    let (resumed, tail) = curl(&["--ssl-reqd", "-k", "-C", "1000", &format!("{url}big.bin")]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(tail == big[1000..], "curl resumes at byte 1000");
    let wrong = format!("sha256//{}", "A".repeat(43) + "=");
    let (refused, _) = curl(&["--ssl-reqd", "-k", "--pinnedpubkey", &wrong, &format!("{url}big.bin")]);
    assert_eq!(refused.code, 90, "curl refuses another key: {}", refused.stderr);
    let upload_dir = TempDir::new();
    upload_dir.file("c.bin", b"from curl");
    let (put, _) = curl(&[
        "--ssl-reqd",
        "-k",
        "-Q",
        "SITE MKSHARE 600",
        "-Q",
        "-SITE SEAL",
        "-T",
        &upload_dir.path().join("c.bin").to_string_lossy(),
        &format!("ftp://{}/", server.addr),
    ]);
    assert_eq!(put.code, 0, "{}", put.stderr);

    let port = server.addr.rsplit(':').next().unwrap();
    let run = python(FTPLIB_TLS, &[port, &code_of(&url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.matches("list ['big.bin']").count(), 3, "{}", run.stdout);
    assert!(run.stdout.contains("got 700000") && run.stdout.contains("tail 699000"), "{}", run.stdout);
    assert!(run.stdout.contains("226 Stored"), "{}", run.stdout);
    assert!(!server.log().contains("data-refused"), "every data connection resumed: {}", server.log());
}

#[test]
fn lftp_lists_downloads_and_uploads_over_tls() {
    let server = Server::start_with(&["--tls", "required"]);
    let dir = TempDir::new();
    let bytes = random_bytes(300_000, 22);
    dir.file("up/one.bin", &bytes);
    let url = upload(&server, dir.path(), &["up/one.bin"]);
    let settings = "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; \
                    set ftp:ssl-force yes; set ftp:ssl-allow-anonymous yes; set ftp:ssl-protect-data yes; \
                    set ssl:verify-certificate no";
    let script = format!(
        "{settings}; open '{url}'; cls; get one.bin -o got.bin; get -c one.bin -o got.bin; \
         quote SITE MKSHARE 600; put got.bin -o again.bin; quote SITE SEAL; bye"
    );
    let output =
        std::process::Command::new("lftp").args(["-c", &script]).current_dir(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(fs::read(dir.path().join("got.bin")).unwrap(), bytes);
    assert!(!server.log().contains("data-refused"), "lftp resumes the session: {}", server.log());
    assert!(server.log().contains("bytes=300000 sha256="), "lftp's upload was stored");
}

/// ftplib's FTP_TLS does not resume the session on data connections (cpython #63699).
const FTPLIB_NO_RESUME: &str = r#"
import ftplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx); f.connect("127.0.0.1", int(sys.argv[1])); f.login(); f.prot_p()
try:
    print("listed", f.nlst("/" + sys.argv[2]))
except ssl.SSLError:
    try:
        f.voidresp()
    except ftplib.error_perm as refusal:
        print("refused", refusal)
"#;

#[test]
fn a_data_connection_that_does_not_resume_its_control_session_gets_522() {
    let dir = TempDir::new();
    dir.file("a.txt", b"a");
    for (extra, expected) in
        [(&[][..], "refused 522"), (&["--tls-reuse", "optional"][..], "listed ['a.txt']")]
    {
        let server = Server::start_with(extra);
        let url = upload(&server, dir.path(), &["a.txt"]);
        let port = server.addr.rsplit(':').next().unwrap();
        let run = python(FTPLIB_NO_RESUME, &[port, &code_of(&url)]);
        assert!(run.stdout.contains(expected), "{extra:?}: {} {}", run.stdout, run.stderr);
    }
}

/// Sends `AUTH TLS` and a second command in one plaintext write, then speaks TLS.
const PIPELINED: &str = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
r = s.makefile("rb")
r.readline()
s.sendall(b"AUTH TLS\r\nSITE MKSHARE 600\r\n")
print("auth", r.readline().decode().strip())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"USER anonymous\r\nPASS x\r\nNOOP\r\n")
lines = t.makefile("rb")
for _ in range(3):
    print("reply", lines.readline().decode().strip())
"#;

#[test]
fn plaintext_pipelined_after_auth_tls_is_never_run() {
    let server = Server::start();
    let port = server.addr.rsplit(':').next().unwrap();
    let run = python(PIPELINED, &[port]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let replies: Vec<&str> = run.stdout.lines().collect();
    assert!(replies[0].starts_with("auth 234"), "{replies:?}");
    let codes: Vec<&str> =
        replies[1..].iter().map(|line| &line["reply ".len().."reply ".len() + 3]).collect();
    assert_eq!(codes, ["230", "230", "200"], "the pipelined SITE MKSHARE got no reply: {replies:?}");
    let shares = fs::read_dir(server.root.join("shares")).map(|dir| dir.count()).unwrap_or(0);
    assert_eq!(shares, 0, "and made no share");
}

/// Uploads `a.txt` (bytes `pinned`) to `server` with our client: the folder it came from, the
/// share URL printed, and that URL's `pin=` fragment.
fn pinned_upload(server: &Server) -> (TempDir, String, String) {
    let dir = TempDir::new();
    dir.file("a.txt", b"pinned");
    let run = client(&server.addr, dir.path(), &["upload", "a.txt"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pinned = run.stdout.trim().to_owned();
    let fragment = pinned.split_once('#').expect("the URL carries a pin").1.to_owned();
    (dir, pinned, fragment)
}

#[test]
fn a_pinned_url_refuses_another_key_and_a_server_without_tls() {
    let server = Server::start();
    let (dir, pinned, fragment) = pinned_upload(&server);
    assert_eq!(fragment, format!("pin={}", pin_of(&server)), "the pin is the certificate's SPKI pin");
    let got = client(&server.addr, dir.path(), &["download", &pinned, "--dir", "got"], b"");
    assert_eq!(got.code, 0, "the right pin downloads: {}", got.stderr);
    assert_eq!(fs::read(dir.path().join("got/a.txt")).unwrap(), b"pinned");

    let code = code_of(&pinned);
    for other in [Server::start(), Server::start_with(&["--tls", "off"])] {
        let url = format!("ftp://{}/{code}/#{fragment}", other.addr);
        let refused = client(&other.addr, dir.path(), &["download", &url, "--dir", "other"], b"");
        assert_eq!(refused.code, 4, "{}", refused.stderr);
        assert!(!other.log().contains("event=retr"), "nothing was asked of the other server");
    }
}

#[test]
fn the_shell_holds_a_share_url_to_its_pin() {
    let server = Server::start();
    let (dir, pinned, fragment) = pinned_upload(&server);
    let listed =
        client(&server.addr, dir.path(), &["shell", &server.addr], format!("list {pinned}\n").as_bytes());
    assert_eq!(listed.code, 0, "the right pin lists: {}", listed.stderr);
    assert!(listed.stdout.contains("a.txt"), "{}", listed.stdout);

    // The shell starts connected to another server (another key): the pinned URL is not opened
    // on that unchecked connection (the share would just be missing there, exit 3), but on a
    // new one, which the key refuses (exit 4).
    let other = Server::start();
    let url = format!("ftp://{}/{}/#{fragment}", other.addr, code_of(&pinned));
    let refused =
        client(&other.addr, dir.path(), &["shell", &other.addr], format!("list {url}\n").as_bytes());
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
}

/// ABOR over TLS, while the server is blocked sending: argv: port, code. ftplib's own `abort`
/// sends urgent data, which an SSL socket refuses, so the command goes as a plain line.
const FTPLIB_TLS_ABORT: &str = r#"
import ftplib, ssl, sys
port, code = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
class Resuming(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = Resuming(context=ctx, timeout=20); f.connect("127.0.0.1", port); f.login(); f.prot_p()
conn = f.transfercmd("RETR /%s/large.bin" % code)
conn.recv(65536)
f.putcmd("ABOR")
print(f.getmultiline()[:3]); print(f.getmultiline()[:3])
print(f.sendcmd("NOOP")[:3])
f.quit()
"#;

#[test]
fn abor_over_tls_stops_a_download_and_the_connection_goes_on() {
    let server = Server::start_with(&["--tls", "required"]);
    let dir = TempDir::new();
    dir.file("large.bin", &random_bytes(32 << 20, 22));
    let url = upload(&server, dir.path(), &["large.bin"]);
    let port = server.addr.rsplit(':').next().unwrap();
    let run = python(FTPLIB_TLS_ABORT, &[port, &code_of(&url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // RFC 959: the aborted transfer gets 426, then ABOR itself gets 226.
    assert_eq!(run.stdout.split_whitespace().collect::<Vec<_>>(), ["426", "226", "200"]);
}
