//! Stock FTP clients as peers: curl lists and downloads shares; python3's ftplib uploads
//! through the documented SITE verbs, lists, downloads and asks for HASH.

use std::fs;

use anonshare::common::digest::Sha256Digest;
use anonshare::server::log::ShareTag;

use crate::support::{Server, TempDir, client, code_of, curl, python, random_bytes, upload};

#[test]
fn curl_lists_and_downloads_a_share() {
    let server = Server::start();
    let dir = TempDir::new();
    let big = random_bytes(3 * 1024 * 1024, 3);
    dir.file("d/big.bin", &big);
    dir.file("d/a b.txt", b"spaced");
    dir.file("d/\u{e9}.txt", b"accent");
    let url = upload(&server, dir.path(), &["d"]);

    let (listing, _) = curl(&[&format!("{url}d/")]);
    assert_eq!(listing.code, 0, "{}", listing.stderr);
    for name in ["a b.txt", "big.bin", "\u{e9}.txt"] {
        assert!(
            listing.stdout.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "{name} in {}",
            listing.stdout
        );
    }
    let (names, _) = curl(&["--list-only", &format!("{url}d/")]);
    assert_eq!(names.stdout.lines().collect::<Vec<_>>(), ["a b.txt", "big.bin", "\u{e9}.txt"]);

    let (got, bytes) = curl(&[&format!("{url}d/big.bin")]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(Sha256Digest::of(&bytes), Sha256Digest::of(&big));
    let (got, bytes) = curl(&[&format!("{url}d/a%20b.txt")]);
    assert_eq!((got.code, bytes.as_slice()), (0, &b"spaced"[..]));
    let (got, bytes) = curl(&[&format!("{url}d/%C3%A9.txt")]);
    assert_eq!((got.code, bytes.as_slice()), (0, &b"accent"[..]));
    let (ranged, bytes) = curl(&["--range", "10-19", &format!("{url}d/big.bin")]);
    assert_eq!((ranged.code, bytes.as_slice()), (0, &big[10..20]), "a range starts with REST");
    let (pasv, bytes) = curl(&["--disable-epsv", &format!("{url}d/a%20b.txt")]);
    assert_eq!((pasv.code, bytes.as_slice()), (0, &b"spaced"[..]), "PASV works too");
}

#[test]
fn curl_sees_nothing_at_the_root_and_fails_on_missing_shares() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("secret.txt", b"s");
    upload(&server, dir.path(), &["secret.txt"]);
    let (root, bytes) = curl(&[&format!("ftp://{}/", server.addr)]);
    assert_eq!(root.code, 0, "{}", root.stderr);
    assert!(bytes.is_empty(), "listing / never reveals a share: {:?}", root.stdout);
    let (missing, _) = curl(&[&(server.url("abcdefghijklmnopqrstuvwxyz") + "secret.txt")]);
    assert_ne!(missing.code, 0);
}

/// Upload through the documented verbs, as any ftplib user would.
const FTPLIB_UPLOAD: &str = r#"
import ftplib, hashlib, io, sys
host, port = sys.argv[1].rsplit(':', 1)
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=20)
ftp.login()
reply = ftp.sendcmd('SITE MKSHARE 3600')
assert reply.startswith('257 "/'), reply
code = reply.split('"')[1].strip('/')
files = {'hello.txt': b'hello from ftplib\n', 'sub/data.bin': bytes(range(256)) * 1000}
ftp.mkd('sub')
for name, data in files.items():
    ftp.sendcmd('SITE DIGEST %s %s' % (hashlib.sha256(data).hexdigest(), name))
    done = ftp.storbinary('STOR ' + name, io.BytesIO(data))
    assert done.startswith('226'), done
try:
    ftp.sendcmd('SITE DIGEST %s bad.txt' % ('0' * 64))
    ftp.storbinary('STOR bad.txt', io.BytesIO(b'not what was declared'))
    raise SystemExit('a mismatching file was accepted')
except ftplib.error_perm as err:
    assert str(err).startswith('550 SHA-256 mismatch'), err
assert ftp.sendcmd('SITE SEAL').startswith('200')
try:
    ftp.storbinary('STOR late.txt', io.BytesIO(b'late'))
    raise SystemExit('a sealed share took a file')
except ftplib.error_perm as err:
    assert str(err).startswith('550'), err
names = sorted(name for name, facts in ftp.mlsd())
assert names == ['hello.txt', 'sub'], names
got = io.BytesIO()
ftp.retrbinary('RETR sub/data.bin', got.write)
assert got.getvalue() == files['sub/data.bin']
hash_reply = ftp.sendcmd('HASH hello.txt')
want = '213 SHA-256 0-%d %s hello.txt' % (len(files['hello.txt']) - 1, hashlib.sha256(files['hello.txt']).hexdigest())
assert hash_reply == want, (hash_reply, want)
assert ftp.size('sub/data.bin') == 256000
ftp.quit()
print(code)
"#;

#[test]
fn ftplib_uploads_lists_downloads_and_hashes() {
    let server = Server::start();
    let run = python(FTPLIB_UPLOAD, &[&server.addr]);
    assert_eq!(run.code, 0, "ftplib: {}", run.stderr);
    let code = run.stdout.trim();
    let log = server.log();
    let tag = ShareTag::of(code);
    assert!(log.contains(&format!("event=stor-rejected share={tag} path=\"/bad.txt\"")), "{log}");
    assert!(
        !log.contains(&format!("event=stor share={tag} path=\"/bad.txt\"")),
        "the mismatching file was not stored"
    );
    let stored = server.root.join("shares").join(code).join("files");
    assert!(!stored.join("bad.txt").exists(), "nothing of it is on disk");

    // Our client sees exactly what ftplib stored, verified.
    let dir = TempDir::new();
    let list = client(&server.addr, dir.path(), &["list", &server.url(code)], b"");
    assert_eq!(list.code, 0, "{}", list.stderr);
    let paths: Vec<&str> = list.stdout.lines().map(|l| l.rsplit('\t').next().unwrap()).collect();
    assert_eq!(paths, ["hello.txt", "sub/data.bin"]);
    let get = client(&server.addr, dir.path(), &["download", &server.url(code), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(fs::read(dir.path().join("out/hello.txt")).unwrap(), b"hello from ftplib\n");
}

#[test]
fn ftplib_reads_a_share_made_by_our_client() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(1_000_000, 4);
    dir.file("blob.bin", &bytes);
    let url = upload(&server, dir.path(), &["blob.bin"]);
    let script = r#"
import ftplib, hashlib, io, sys
host, port = sys.argv[1].rsplit(':', 1)
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=20)
ftp.login()
ftp.cwd('/' + sys.argv[2])
assert ftp.nlst() == ['blob.bin'], ftp.nlst()
lines = []
ftp.retrlines('LIST', lines.append)
assert len(lines) == 1 and lines[0].endswith(' blob.bin') and ' 1000000 ' in lines[0], lines
got = io.BytesIO()
ftp.retrbinary('RETR blob.bin', got.write)
print(hashlib.sha256(got.getvalue()).hexdigest())
ftp.quit()
"#;
    let run = python(script, &[&server.addr, &code_of(&url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), Sha256Digest::of(&bytes).to_string());
}

#[test]
fn curl_uploads_through_the_site_verbs() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(2_000_000, 9);
    let file = dir.file("from curl.bin", &bytes);
    let (run, _) = curl(&[
        "-v",
        "-Q",
        "SITE MKSHARE 3600",
        "-Q",
        "-SITE SEAL",
        "-T",
        file.to_str().unwrap(),
        &format!("ftp://{}/", server.addr),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let created =
        run.stderr.lines().find(|l| l.starts_with("< 257 \"/") && l.contains("share created")).unwrap();
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/');
    assert!(run.stderr.contains("< 200 Share"), "sealed after the upload: {}", run.stderr);
    let get = client(&server.addr, dir.path(), &["download", &server.url(code), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(fs::read(dir.path().join("out/from curl.bin")).unwrap(), bytes);
}

/// Runs lftp with `script` against `url`.
fn lftp(cwd: &std::path::Path, url: &str, script: &str) -> crate::support::Run {
    let child = std::process::Command::new("lftp")
        .args([
            "-c",
            &format!(
                "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; \
                 set ssl:verify-certificate no; open '{url}'; {script}; bye"
            ),
        ])
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lftp is installed (.ci/run and make test install it)");
    crate::support::Run::from(child.wait_with_output().unwrap())
}

#[test]
fn lftp_mirrors_a_share_and_uploads_through_quote() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = random_bytes(1_500_000, 10);
    dir.file("up/big.bin", &bytes);
    dir.file("up/nested/small file.txt", b"small");
    let url = upload(&server, dir.path(), &["up"]);
    let mirrored =
        lftp(dir.path(), &url.replace("ftp://", "ftp://anonymous:x@"), "mirror --parallel=4 . got");
    assert_eq!(mirrored.code, 0, "{}", mirrored.stderr);
    assert_eq!(fs::read(dir.path().join("got/up/big.bin")).unwrap(), bytes);
    assert_eq!(fs::read(dir.path().join("got/up/nested/small file.txt")).unwrap(), b"small");

    let hashed = lftp(dir.path(), &url.replace("ftp://", "ftp://anonymous:x@"), "quote HASH up/big.bin");
    assert!(hashed.stdout.contains(&Sha256Digest::of(&bytes).to_string()), "{}", hashed.stdout);

    let root = format!("ftp://anonymous:x@{}/", server.addr);
    let put = lftp(&dir.path().join("up"), &root, "quote SITE MKSHARE 600; put big.bin; quote SITE SEAL");
    assert_eq!(put.code, 0, "{}", put.stderr);
    let code = put.stdout.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    let list = client(&server.addr, dir.path(), &["list", &server.url(&code)], b"");
    assert_eq!(list.stdout, format!("{}\t{}\tbig.bin\n", bytes.len(), Sha256Digest::of(&bytes)));
}

#[test]
fn curl_resumes_a_download_and_meets_budgets_and_deletion() {
    let server = Server::start();
    let dir = TempDir::new();
    let big = random_bytes((2 << 20) + 11, 51);
    dir.file("big.bin", &big);
    // curl -C - continues a partial local file with REST + RETR.
    let url = upload(&server, dir.path(), &["big.bin"]);
    let local = dir.file("resumed.bin", &big[..1 << 20]);
    let local_text = local.to_str().unwrap();
    let (resumed, _) = curl(&["-C", "-", "-o", local_text, &format!("{url}big.bin")]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(fs::read(&local).unwrap() == big, "the resumed file is whole");
    assert!(server.log().contains("event=retr share=") && server.log().contains(" offset=1048576 "));

    // A budget of one holds for curl: the second download finds nothing.
    let once = upload(&server, dir.path(), &["--once", "big.bin"]);
    let (first, bytes) = curl(&[&format!("{once}big.bin")]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(bytes == big);
    let (second, bytes) = curl(&[&format!("{once}big.bin")]);
    assert_ne!(second.code, 0, "spent: {} bytes", bytes.len());
    assert!(bytes.is_empty());

    // SITE DELETE with the owner token, from curl.
    let run = client(&server.addr, dir.path(), &["upload", "--json", "big.bin"], b"");
    let token = run.stdout.split("\"owner_token\":\"").nth(1).unwrap().split('"').next().unwrap();
    let code = run.stdout.split("\"code\":\"").nth(1).unwrap().split('"').next().unwrap();
    let root = format!("ftp://{}/", server.addr);
    let (deleted, _) = curl(&["-Q", &format!("SITE DELETE {code} {token}"), &root]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let (gone, _) = curl(&[&server.url(code)]);
    assert_ne!(gone.code, 0, "a deleted share is gone for curl too");
}

/// Cuts an upload half way, then resumes it on a new connection with the owner token and
/// `REST` + `STOR`, the way ftplib's `storbinary(..., rest=n)` does.
const FTPLIB_RESUME: &str = r#"
import ftplib, hashlib, io, sys
host, port = sys.argv[1].rsplit(':', 1)
data = bytes(range(256)) * 8192
digest = hashlib.sha256(data).hexdigest()
ftp = ftplib.FTP(); ftp.connect(host, int(port), timeout=20); ftp.login()
made = ftp.sendcmd("SITE MKSHARE 600")
code = made.split('"')[1].strip('/')
token = made.rsplit(' ', 1)[1]
ftp.voidcmd("TYPE I")
ftp.sendcmd("SITE DIGEST %s big.bin" % digest)
ftp.sendcmd("ALLO %d" % len(data))
conn = ftp.transfercmd("STOR big.bin")
conn.sendall(data[:700000])
conn.close()
try:
    ftp.voidresp()
    raise SystemExit("a cut upload must not be stored")
except ftplib.error_temp as err:
    assert str(err).startswith("426"), err
ftp.close()

ftp = ftplib.FTP(); ftp.connect(host, int(port), timeout=20); ftp.login()
ftp.sendcmd("SITE OWNER %s %s" % (code, token))
kept = int(ftp.sendcmd("SITE PARTIAL big.bin").split()[1])
assert kept == 700000, kept
ftp.sendcmd("SITE DIGEST %s big.bin" % digest)
reply = ftp.storbinary("STOR big.bin", io.BytesIO(data[kept:]), rest=kept)
assert reply.startswith("226"), reply
ftp.sendcmd("SITE SEAL")
print(code)
"#;

#[test]
fn ftplib_resumes_a_cut_upload() {
    let server = Server::start();
    let run = python(FTPLIB_RESUME, &[&server.addr]);
    assert_eq!(run.code, 0, "ftplib: {}", run.stderr);
    let code = run.stdout.trim();
    let dir = TempDir::new();
    let get = client(&server.addr, dir.path(), &["download", &server.url(code), "--dir", "out"], b"");
    assert_eq!(get.code, 0, "{}", get.stderr);
    let expected: Vec<u8> = (0..8192).flat_map(|_| 0..=255u8).collect();
    assert!(fs::read(dir.path().join("out/big.bin")).unwrap() == expected);
}
