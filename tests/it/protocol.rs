//! The FTP conversation itself, over raw control connections: replies, refusals, limits, the
//! data-channel rules, and state that survives a crash.

use std::net::TcpStream;

use anonshare::proto::parse_epsv_reply;

use crate::support::{Control, Server, TempDir, client, code_of, files_under, python, upload, wait_until};

#[test]
fn greeting_feat_and_login_rules() {
    let server = Server::start();
    let mut control = Control::connect(&server.addr);
    assert!(control.reply()[0].starts_with("220 "));
    control.send(b"FEAT\r\n");
    let feat = control.reply();
    assert_eq!(feat.first().map(String::as_str), Some("211-Extensions supported:"));
    assert_eq!(feat.last().map(String::as_str), Some("211 End"));
    for feature in [" EPSV", " PASV", " SIZE", " MDTM", " REST STREAM", " UTF8", " HASH SHA-256*"] {
        assert!(feat.iter().any(|l| l == feature), "FEAT lists {feature:?}: {feat:?}");
    }
    assert!(control.command("RETR x").starts_with("530 "), "nothing before login");
    assert!(control.command("PASS early").starts_with("503 "));
    assert!(control.command("USER root").starts_with("530 "), "anonymous only");
    assert!(control.command("USER anonymous").starts_with("230 "), "no password is asked for");
    assert!(control.command("PASS whatever@").starts_with("230 "), "one sent anyway is fine");
    assert!(control.command("SYST").starts_with("215 "));
    assert!(control.command("OPTS UTF8 ON").starts_with("200 "));
    assert_eq!(control.command("PWD"), "257 \"/\" is the current folder");
    assert!(control.command("QUIT").starts_with("221 "));
    assert!(control.is_closed());
}

#[test]
fn pipelined_commands_are_answered_one_by_one_in_order() {
    let server = Server::start();
    let mut control = Control::connect(&server.addr);
    assert!(control.reply()[0].starts_with("220 "));
    // One write, as anonshare's client sends ALLO with EPSV; a refusal in the middle stops nothing.
    control.send(b"USER anonymous\r\nPASS x\r\nALLO 10\r\nCWD /abcdefghijklmnopqrstuvwxyz\r\nPWD\r\n");
    let codes: Vec<String> = (0..5).map(|_| control.reply().remove(0)[..3].to_owned()).collect();
    assert_eq!(codes, ["230", "230", "200", "550", "257"]);
    assert!(control.command("NOOP").starts_with("200 "), "and nothing is left over");
}

#[test]
fn bad_input_gets_clear_replies_and_the_server_keeps_serving() {
    let server = Server::start_with(&["--max-line", "100"]);
    let mut control = Control::login(&server.addr);
    assert!(control.command("PORT 127,0,0,1,4,1").starts_with("502 "), "no PORT: bounce attacks");
    assert!(control.command("EPRT |1|127.0.0.1|1025|").starts_with("502 "));
    assert!(control.command("FROB").starts_with("500 "));
    assert!(control.command("RETR").starts_with("501 "));
    assert!(control.command("REST abc").starts_with("501 "));
    assert!(control.command("TYPE E").starts_with("504 "));
    control.send(&[b'A'; 5000]);
    control.send(b"\r\n");
    assert!(control.reply()[0].starts_with("500 "), "an overlong line is refused");
    control.send(b"RETR \xff\xfe\r\n");
    assert!(control.reply()[0].starts_with("501 "), "non-UTF-8 is refused");
    assert!(control.command("CWD /../../..").starts_with("250 "), "'..' stops at the root");
    assert_eq!(control.command("PWD"), "257 \"/\" is the current folder");
    assert!(control.command("SIZE /../../etc/passwd").starts_with("550 "));
    assert!(control.command("CWD /abcdefghijklmnopqrstuvwxyz").starts_with("550 "));
    assert!(control.command("STOR /x").starts_with("553 "), "/ holds no files");
    assert!(control.command("NOOP").starts_with("200 "), "still serving after all that");
}

#[test]
fn ascii_transfers_are_refused_so_bytes_never_change() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("crlf.txt", b"a\nb\r\n");
    let url = upload(&server, dir.path(), &["crlf.txt"]);
    let mut control = Control::login(&server.addr);
    assert!(control.command("TYPE A").starts_with("200 "));
    assert!(control.command("EPSV").starts_with("229 "));
    let refused = control.command(&format!("RETR /{}/crlf.txt", code_of(&url)));
    assert!(refused.starts_with("550 ") && refused.contains("TYPE I"), "{refused}");
}

#[test]
fn only_the_creating_connection_may_write() {
    let server = Server::start();
    let mut owner = Control::login(&server.addr);
    let created = owner.command("SITE MKSHARE 600");
    assert!(created.starts_with("257 \"/"), "{created}");
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    let mut other = Control::login(&server.addr);
    assert!(other.command(&format!("MKD /{code}/d")).starts_with("550 "));
    assert!(owner.command(&format!("MKD /{code}/d")).starts_with("257 "));
    assert!(owner.command(&format!("CWD /{code}/d")).starts_with("250 "));
    assert!(other.command(&format!("CWD /{code}/d")).starts_with("550 "), "unsealed shares are unseen");
    assert!(owner.command("SITE SEAL").starts_with("200 "));
    assert!(other.command(&format!("CWD /{code}/d")).starts_with("250 "), "sealed shares are seen");
    assert!(owner.command(&format!("MKD /{code}/e")).starts_with("550 "), "sealed means read-only");
    assert!(owner.command("SITE MKSHARE 99999999").starts_with("504 "), "over the maximum expiry");
}

#[test]
fn over_max_clients_a_connection_gets_421_and_the_others_are_unaffected() {
    let server = Server::start_with(&["--workers", "2", "--max-clients", "2"]);
    let mut first = Control::login(&server.addr);
    let mut second = Control::login(&server.addr);
    let mut third = Control::connect(&server.addr);
    assert!(third.reply()[0].starts_with("421 "));
    assert!(third.is_closed());
    assert!(first.command("NOOP").starts_with("200 "));
    assert!(second.command("QUIT").starts_with("221 "));
    // Once a slot frees up, a new client gets in.
    wait_until("a freed slot admits a new client", || {
        let mut next = Control::connect(&server.addr);
        next.reply()[0].starts_with("220 ")
    });
}

#[test]
fn a_data_connection_from_another_address_gets_nothing() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("secret.bin", b"for the real client only");
    let url = upload(&server, dir.path(), &["secret.bin"]);
    let script = r#"
import socket, sys
host, port = sys.argv[1].rsplit(':', 1)
code = sys.argv[2]
c = socket.create_connection((host, int(port)), timeout=20)
f = c.makefile('rb')
def reply():
    line = f.readline().decode()
    return line
def cmd(text):
    c.sendall((text + '\r\n').encode())
    return reply()
assert reply().startswith('220')
assert cmd('USER anonymous').startswith('230')
assert cmd('PASS x').startswith('230')
assert cmd('TYPE I').startswith('200')
epsv = cmd('EPSV')
data_port = int(epsv.split('|||')[1].split('|')[0])
thief = socket.socket()
thief.bind(('127.0.0.2', 0))
thief.settimeout(20)
thief.connect((host, data_port))
real = socket.create_connection((host, data_port), timeout=20)
assert cmd('RETR /%s/secret.bin' % code).startswith('150')
got = b''
while True:
    chunk = real.recv(65536)
    if not chunk:
        break
    got += chunk
assert got == b'for the real client only', got
assert reply().startswith('226')
stolen = thief.recv(65536)
assert stolen == b'', stolen
print('ok')
"#;
    let run = python(script, &[&server.addr, &code_of(&url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(server.log().contains("event=data-refused from=127.0.0.2:"), "{}", server.log());
}

#[test]
fn waiting_too_long_for_the_data_connection_gets_425() {
    let server = Server::start_with(&["--passive-timeout", "1s"]);
    let mut control = Control::login(&server.addr);
    let epsv = control.command("EPSV");
    assert!(parse_epsv_reply(&epsv[4..]).is_some(), "{epsv}");
    assert!(control.command("LIST").starts_with("150 "));
    assert!(control.reply()[0].starts_with("425 "));
    assert!(control.command("NOOP").starts_with("200 "));
}

#[test]
fn an_idle_connection_gets_421_and_is_closed() {
    let server = Server::start_with(&["--idle-timeout", "1s"]);
    let mut control = Control::login_at_once(&server.addr);
    let goodbye = control.reply();
    assert!(goodbye[0].starts_with("421 "), "{goodbye:?}");
    assert!(control.is_closed());
}

#[test]
fn sealed_shares_survive_a_kill_9_and_leftovers_are_cleaned() {
    let server = Server::start();
    let dir = TempDir::new();
    dir.file("keep.txt", b"kept across a crash");
    let url = upload(&server, dir.path(), &["keep.txt"]);
    // Leave an upload half-done when the server dies.
    let mut control = Control::login(&server.addr);
    assert!(control.command("SITE MKSHARE 600").starts_with("257 "));
    assert!(control.command("TYPE I").starts_with("200 "));
    let epsv = control.command("EPSV");
    let port = parse_epsv_reply(&epsv[4..]).unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(control.command("STOR half.bin").starts_with("150 "));
    std::io::Write::write_all(&mut data, &[7u8; 100_000]).unwrap();
    let tmp = server.root.join("tmp");
    wait_until("the partial upload is on disk", || std::fs::read_dir(&tmp).unwrap().count() > 0);
    let folder = server.kill();

    let server = Server::start_in(folder, &[]);
    assert_eq!(files_under(&server.root.join("tmp")), ["lock"], "temporary files are cleaned on start");
    let url = server.url(&code_of(&url));
    let list = client(&server.addr, dir.path(), &["list", &url], b"");
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.ends_with("\tkeep.txt\n"), "{}", list.stdout);
    let mut control = Control::login(&server.addr);
    assert!(control.command(&format!("SITE INFO /{}", code_of(&url))).starts_with("211-"));
}

#[test]
fn the_owner_token_lets_another_connection_add_files_until_the_seal() {
    let server = Server::start();
    let mut creator = Control::login(&server.addr);
    let created = creator.command("SITE MKSHARE 600");
    let code = created.split('"').nth(1).unwrap().trim_start_matches('/').to_owned();
    let token = created.rsplit(' ').next().unwrap().to_owned();
    let mut helper = Control::login(&server.addr);
    assert!(
        helper.command(&format!("SITE OWNER {code} {}", "a".repeat(26))).starts_with("550 "),
        "wrong token"
    );
    assert!(helper.command(&format!("SITE OWNER {code} {token}")).starts_with("200 "));
    assert!(helper.command("MKD from-helper").starts_with("257 "));
    assert!(helper.command("QUIT").starts_with("221 "), "a helper's goodbye does not seal");
    let mut outsider = Control::login(&server.addr);
    assert!(outsider.command(&format!("CWD /{code}/from-helper")).starts_with("550 "));
    assert!(creator.command("MKD from-creator").starts_with("257 "), "the creator goes on");
    assert!(creator.command("QUIT").starts_with("221 "), "the creator's goodbye seals");
    assert!(outsider.command(&format!("CWD /{code}/from-helper")).starts_with("250 "));
    let mut late = Control::login(&server.addr);
    assert!(late.command(&format!("SITE OWNER {code} {token}")).starts_with("550 "), "sealed for good");
}

#[test]
fn a_retr_sent_in_one_write_with_its_epsv_waits_for_the_data_connection() {
    let server = Server::start();
    let dir = TempDir::new();
    let bytes = crate::support::random_bytes(10_000, 16);
    dir.file("one.bin", &bytes);
    let code = code_of(&upload(&server, dir.path(), &["one.bin"]));
    let mut control = Control::login(&server.addr);
    // As anonshare's client sends a download: the RETR does not wait for the 229.
    control.send(format!("EPSV\r\nRETR /{code}/one.bin\r\n").as_bytes());
    let entered = control.reply().remove(0);
    assert!(entered.starts_with("229 "), "{entered}");
    let port = parse_epsv_reply(&entered[4..]).unwrap();
    let sending = control.reply().remove(0);
    assert!(sending.starts_with("150 "), "the server said 150 before the client connected: {sending}");
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut data, &mut got).unwrap();
    assert_eq!(got, bytes);
    assert!(control.reply().remove(0).starts_with("226 "));
    assert!(control.command("NOOP").starts_with("200 "), "and nothing is left over");
}
