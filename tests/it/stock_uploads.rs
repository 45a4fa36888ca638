//! Stock FTP clients upload the documented ways: lftp `mirror -R` into a share made at login,
//! ftputil with a session factory that owns the share on every connection, curl into a share
//! it claims with `SITE OWNER`. A `QUIT` after a failed write or a path outside every share
//! publishes nothing; a share URL without its trailing slash and `MKD` at the root are answered
//! with words that say what to do.

use std::fs;

use anonshare::common::digest::Sha256Digest;
use anonshare::server::log::ShareTag;

use crate::stock_clients::run;
use crate::support::{
    Control, Server, TempDir, client, curl, make_share, python, random_bytes, store, upload,
};

/// A tree of seven files in `up/`, with folders after a nested folder (lftp must climb back).
fn tree(dir: &TempDir) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![
        ("a.txt", b"a\n".to_vec()),
        ("big.bin", random_bytes(300_000, 71)),
        ("e.txt", b"e\n".to_vec()),
        ("nested/n1.txt", b"n1\n".to_vec()),
        ("nested/deeper/d.txt", b"d\n".to_vec()),
        ("z/z.txt", b"z\n".to_vec()),
        ("z/y/y.txt", b"y\n".to_vec()),
    ];
    for (name, bytes) in &files {
        dir.file(&format!("up/{name}"), bytes);
    }
    files
}

/// The code in the first `257 "/CODE"` line of `text`.
fn code_in(text: &str) -> String {
    let line = text.lines().find(|line| line.starts_with("257 \"/")).unwrap_or_else(|| panic!("{text}"));
    line.split('"').nth(1).unwrap().trim_start_matches('/').to_owned()
}

/// Whether a connection that does not own share `code` can see it: only once it is sealed.
fn published(server: &Server, code: &str) -> bool {
    let mut control = Control::login(&server.addr);
    let reply = control.command(&format!("CWD /{code}"));
    assert!(reply.starts_with("250 ") || reply.starts_with("550 "), "{reply}");
    reply.starts_with("250 ")
}

#[test]
fn lftp_mirror_r_fills_a_share_made_at_login() {
    let server = Server::start();
    let dir = TempDir::new();
    let files = tree(&dir);
    // ftp:site is sent right after login, before lftp asks PWD: its home is the new share, and
    // the absolute paths it builds are inside it.
    let script = "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; set ssl:verify-certificate no; \
                  set ftp:site 'MKSHARE 600'; quote PWD; mirror -R up; bye";
    let lftp = run("lftp", dir.path(), &["-e", script, &format!("ftp://anonymous:x@{}", server.addr)], "");
    assert_eq!(lftp.code, 0, "{}{}", lftp.stdout, lftp.stderr);
    let code = code_in(&lftp.stdout);
    assert!(server.log().contains(&format!("event=sealed share={} by=quit", ShareTag::of(&code))));

    let get = client(&server.addr, dir.path(), &["download", &server.url(&code), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    for (name, bytes) in &files {
        assert!(fs::read(dir.path().join("out/up").join(name)).unwrap() == *bytes, "{name}");
    }
}

#[test]
fn lftp_mirror_r_that_loses_its_way_publishes_nothing() {
    let server = Server::start();
    let dir = TempDir::new();
    tree(&dir);
    // lftp keeps `/` as its folder after `quote SITE MKSHARE` and sends `CWD /nested`, which
    // names no share: the mirror fails, and its QUIT leaves the share with 3 of 7 files unseen.
    let script = "set net:max-retries 1; set net:timeout 20; set ssl:verify-certificate no; \
                  quote SITE MKSHARE 600; mirror -R up .; bye";
    let lftp = run("lftp", dir.path(), &["-e", script, &format!("ftp://anonymous:x@{}", server.addr)], "");
    let code = code_in(&lftp.stdout);
    assert!(lftp.stderr.contains("mirror: Access failed: 550"), "{}", lftp.stderr);
    let log = server.log();
    let tag = ShareTag::of(&code);
    assert!(log.contains(&format!("event=left-unsealed share={tag} by=quit")), "{log}");
    assert!(log.contains(&format!("event=stor share={tag} path=\"/a.txt\"")), "some files did arrive");
    assert!(!published(&server, &code), "a share lacking files is not published");

    // The uploader can still finish it with its owner token, then publish it.
    let token = lftp.stdout.split("owner token ").nth(1).unwrap().split_whitespace().next().unwrap();
    let mut control = Control::login(&server.addr);
    assert!(control.command(&format!("SITE OWNER {code} {token}")).starts_with("200 "));
    assert!(control.command("SITE SEAL").starts_with("200 "));
    assert!(published(&server, &code));
}

/// A QUIT after a failed STOR, and one after a failed STOR made good.
const FTPLIB_QUIT_AFTER_FAILURE: &str = r#"
import ftplib, io, sys
host, port = sys.argv[1].rsplit(':', 1)
def session():
    ftp = ftplib.FTP(); ftp.connect(host, int(port), timeout=20); ftp.login()
    made = ftp.sendcmd('SITE MKSHARE 600')
    return ftp, made.split('"')[1].strip('/')
def refused_stor(ftp, name):
    ftp.sendcmd('SITE DIGEST %s %s' % ('0' * 64, name))
    try:
        ftp.storbinary('STOR ' + name, io.BytesIO(b'not what was declared'))
        raise SystemExit('a mismatching file was stored')
    except ftplib.error_perm as err:
        assert '[digest-mismatch]' in str(err), err

ftp, lacking = session()
ftp.storbinary('STOR a.txt', io.BytesIO(b'a'))
refused_stor(ftp, 'b.txt')
try:
    ftp.quit()
    raise SystemExit('QUIT published a share lacking b.txt')
except ftplib.error_perm as err:
    assert str(err).startswith('550 Share /%s left unsealed' % lacking), err
    assert str(err).endswith('[unfinished]'), err

ftp, whole = session()
refused_stor(ftp, 'b.txt')
ftp.storbinary('STOR b.txt', io.BytesIO(b'b'))
assert ftp.quit().startswith('221'), 'made good: sealed'
print(lacking, whole)
"#;

#[test]
fn ftplib_quit_after_a_failed_stor_says_the_share_stays_unsealed() {
    let server = Server::start();
    let run = python(FTPLIB_QUIT_AFTER_FAILURE, &[&server.addr]);
    assert_eq!(run.code, 0, "ftplib: {}", run.stderr);
    let codes: Vec<&str> = run.stdout.split_whitespace().collect();
    assert!(!published(&server, codes[0]), "the share that lacks b.txt stays unseen");
    assert!(published(&server, codes[1]), "the share whose failure was made good is sealed");
}

/// Uploads a folder with ftputil, whose session factory makes the share on the first
/// connection and claims it with SITE OWNER on every other one (ftputil uploads on extra
/// connections); then seals it, and reads it back as a stranger would.
const FTPUTIL: &str = r#"
import ftplib, hashlib, os, sys, warnings
warnings.simplefilter('ignore')
import ftputil, ftputil.session
host, port = sys.argv[1].rsplit(':', 1); port = int(port)
source = sys.argv[2]

class ShareSession(ftplib.FTP):
    """Every ftputil session owns the share: the first makes it, the others claim it."""
    share = {}
    def __init__(self, host, port):
        super().__init__()
        self.connect(host, port, timeout=20)
        self.login()
        if not self.share:
            made = self.sendcmd('SITE MKSHARE 3600')
            self.share['code'] = made.split('"')[1].strip('/')
            self.share['token'] = made.split('owner token ')[1].split()[0]
        else:
            self.sendcmd('SITE OWNER %(code)s %(token)s' % self.share)

def tree(ftp, top):
    return sorted((d[len(top):], sorted(ds), sorted(fs)) for d, ds, fs in ftp.walk(top))

expected = sorted((d[len(source):], sorted(ds), sorted(fs)) for d, ds, fs in os.walk(source))
with ftputil.FTPHost(host, port, session_factory=ShareSession) as ftp:
    top = '/' + ShareSession.share['code']
    for folder, _, names in os.walk(source):
        target = top + folder[len(source):]
        ftp.makedirs(target, exist_ok=True)
        for name in names:
            ftp.upload(os.path.join(folder, name), target + '/' + name)
    assert ftp.path.isdir(top) and ftp.stat(top).st_mode, top
    assert tree(ftp, top) == expected, (tree(ftp, top), expected)

seal = ftplib.FTP(); seal.connect(host, port, timeout=20); seal.login()
seal.sendcmd('SITE OWNER %(code)s %(token)s' % ShareSession.share)
assert seal.sendcmd('SITE SEAL').startswith('200')
seal.quit()

reader = ftputil.session.session_factory(port=port)
with ftputil.FTPHost(host, 'anonymous', '', session_factory=reader) as ftp:
    assert ftp.listdir('/') == [], 'a fresh connection sees no share at /'
    assert not ftp.path.exists(top), 'nor can it stat one it did not name'
    ftp.chdir(top)
    ftp.chdir('/')
    assert ftp.listdir('/') == [top[1:]], 'the share it entered, and only it'
    assert ftp.path.isdir(top) and ftp.listdir(top) == sorted(os.listdir(source))
    assert tree(ftp, top) == expected
    for folder, _, names in ftp.walk(top):
        for name in names:
            remote = folder + '/' + name
            local = os.path.join(source, remote[len(top) + 1:])
            with ftp.open(remote, 'rb') as got, open(local, 'rb') as want:
                assert got.read() == want.read(), remote
print(top[1:])
"#;

#[test]
fn ftputil_uploads_walks_and_reads_a_share() {
    let server = Server::start();
    let dir = TempDir::new();
    let files = tree(&dir);
    let run = python(FTPUTIL, &[&server.addr, dir.path().join("up").to_str().unwrap()]);
    assert_eq!(run.code, 0, "ftputil: {}", run.stderr);
    let code = run.stdout.trim();
    let get = client(&server.addr, dir.path(), &["download", &server.url(code), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    for (name, bytes) in &files {
        assert!(fs::read(dir.path().join("out").join(name)).unwrap() == *bytes, "{name}");
    }
}

#[test]
fn curl_uploads_into_a_share_it_claims() {
    let server = Server::start();
    let dir = TempDir::new();
    // A share made on a connection that then drops: unsealed, unseen, its token in hand.
    let mut maker = Control::login(&server.addr);
    let share = make_share(&mut maker, 600);
    assert!(store(&mut maker, "first.txt", b"first").starts_with("226 "));
    drop(maker);
    let owner = format!("SITE OWNER {} {}", share.code, share.token);

    // After SITE OWNER the connection is in the share, so the URL's path is inside it; curl
    // makes the folders it lacks with --ftp-create-dirs.
    let sub = dir.file("sub.bin", &random_bytes(100_000, 72));
    let (into_sub, _) = curl(&[
        "-Q",
        &owner,
        "--ftp-create-dirs",
        "-T",
        sub.to_str().unwrap(),
        &format!("ftp://{}/sub/deeper/", server.addr),
    ]);
    assert_eq!(into_sub.code, 0, "{}", into_sub.stderr);
    assert!(!published(&server, &share.code), "a connection that only joined does not seal on QUIT");
    // An absolute path (%2F) names the share itself; -Q '-SITE SEAL' publishes it after the upload.
    let last = dir.file("last.txt", b"last");
    let absolute = format!("ftp://{}/%2F{}/", server.addr, share.code);
    let (sealed, _) = curl(&["-Q", &owner, "-Q", "-SITE SEAL", "-T", last.to_str().unwrap(), &absolute]);
    assert_eq!(sealed.code, 0, "{}", sealed.stderr);

    let get = client(&server.addr, dir.path(), &["download", &server.url(&share.code), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(fs::read(dir.path().join("out/first.txt")).unwrap(), b"first");
    assert!(fs::read(dir.path().join("out/sub/deeper/sub.bin")).unwrap() == fs::read(&sub).unwrap());
    assert_eq!(fs::read(dir.path().join("out/last.txt")).unwrap(), b"last");
}

#[test]
fn a_share_url_without_its_slash_and_mkd_at_the_root_say_what_to_do() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("d/f.txt", b"f");
    let url = upload(&server, dir.path(), &["d"]);
    let code = crate::support::code_of(&url);

    // curl takes a URL without the trailing slash for a file: SIZE, then RETR.
    let (run, bytes) = curl(&["-v", url.trim_end_matches('/')]);
    assert_ne!(run.code, 0);
    assert!(bytes.is_empty());
    let told = format!("< 550 /{code} is a share, a folder: add the trailing slash to list it, as {url}");
    assert!(run.stderr.contains(&told), "{}", run.stderr);
    let mut control = Control::login(&server.addr);
    let reply = control.command(&format!("RETR /{code}/d"));
    assert_eq!(reply, format!("550 /{code}/d is a folder: add a trailing slash to list it [is-a-folder]"));
    assert!(control.command(&format!("SIZE /{code}")).ends_with("[is-a-folder]"));

    // rclone makes a share's folder with MKD at the root: 553, which it shows its user.
    let reply = control.command("MKD photos");
    assert!(reply.starts_with("553 ") && reply.ends_with("[outside-share]"), "{reply}");
    assert!(reply.contains("shares are made with SITE MKSHARE"), "{reply}");
    let digest = Sha256Digest::of(b"f").to_string();
    assert!(control.command(&format!("HASH /{code}/d/f.txt")).contains(&digest), "files still answer");
}
