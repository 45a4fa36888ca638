//! Running the server for real: graceful shutdown on real signals sent with `kill`, SIGHUP,
//! `--passive-ports` and `--public-host`, the operator's log (refusals, no share codes), and
//! the systemd unit in `deploy/`.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::path::Path;

use anonshare::common::digest::Sha256Digest;
use anonshare::proto::{CreatedShare, parse_epsv_reply, parse_pasv_reply};
use anonshare::server::log::ShareTag;
use anonshare::server::{Config, Invocation, parse_args};

use crate::support::{
    Control, DEADLINE, Server, TempDir, client, code_of, data_connection, info_value, listing, make_share,
    random_bytes, site_info, store, upload, wait_until,
};

/// Larger than what loopback socket buffers hold, so a download that was read only a little
/// is still running on the server.
const BIG: usize = 32 << 20;
/// Bytes a test reads of a download before it signals the server.
const FIRST_BYTES: usize = 64 * 1024;

/// A sealed share holding `big.bin`; its code.
fn share_with(server: &Server, bytes: &[u8]) -> String {
    let mut control = Control::login(&server.addr);
    let share = make_share(&mut control, 3600);
    assert!(store(&mut control, "big.bin", bytes).starts_with("226 "));
    assert!(control.command("SITE SEAL").starts_with("200 "));
    assert!(control.command("QUIT").starts_with("221 "));
    share.code
}

/// Starts a download of `/code/big.bin` and reads its first bytes: the transfer is in flight.
fn download_in_flight(server: &Server, code: &str) -> (Control, TcpStream) {
    let mut control = Control::login(&server.addr);
    let mut data = data_connection(&mut control);
    let reply = control.command(&format!("RETR /{code}/big.bin"));
    assert!(reply.starts_with("150 "), "{reply}");
    data.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut first = vec![0u8; FIRST_BYTES];
    data.read_exact(&mut first).unwrap();
    (control, data)
}

fn wait_for_log(server: &Server, needle: &str) {
    wait_until(&format!("the log says {needle:?}"), || server.log().contains(needle));
}

#[test]
fn sigterm_tells_an_idle_client_421_and_exits_0() {
    let mut server = Server::start();
    let mut idle = Control::login(&server.addr);
    server.signal("TERM");
    let goodbye = idle.reply().remove(0);
    assert!(goodbye.starts_with("421 ") && goodbye.ends_with("[closing]"), "{goodbye}");
    assert!(idle.is_closed());
    assert_eq!(server.exit_code(), Some(0), "{}", server.log());
    let log = server.log();
    assert!(log.contains("event=shutdown phase=begin signal=SIGTERM sessions=1 "), "{log}");
    assert!(log.contains("event=disconnect reason=shutdown"), "{log}");
    assert!(log.contains("event=shutdown phase=done sessions_left=0"), "{log}");
}

#[test]
fn a_download_in_flight_at_sigterm_completes_with_226_and_its_bytes_verify() {
    let mut server = Server::start_with(&["--shutdown-grace", "10m"]);
    let big = random_bytes(BIG, 14);
    let code = share_with(&server, &big);
    let (mut control, mut data) = download_in_flight(&server, &code);
    server.signal("TERM");
    wait_for_log(&server, "event=shutdown phase=draining");
    assert!(!server.log().contains("event=retr "), "the download was still running at the signal");
    let mut rest = Vec::new();
    data.read_to_end(&mut rest).unwrap();
    assert_eq!(FIRST_BYTES + rest.len(), BIG);
    assert!(rest == big[FIRST_BYTES..], "the bytes after the signal are the file's");
    let done = control.reply().remove(0);
    assert!(done.starts_with("226 ") && done.contains(&Sha256Digest::of(&big).to_string()), "{done}");
    let closing = control.reply().remove(0);
    assert!(closing.starts_with("421 ") && closing.ends_with("[closing]"), "{closing}");
    assert_eq!(server.exit_code(), Some(0), "{}", server.log());
    assert!(server.log().contains("event=shutdown phase=done sessions_left=0"));
}

#[test]
fn a_second_signal_ends_the_server_at_once() {
    let mut server = Server::start_with(&["--shutdown-grace", "10m"]);
    let code = share_with(&server, &random_bytes(BIG, 15));
    // A download nobody reads would keep a graceful shutdown waiting for ten minutes.
    let (_control, _data) = download_in_flight(&server, &code);
    server.signal("TERM");
    wait_for_log(&server, "event=shutdown phase=draining");
    server.signal("INT");
    assert_eq!(server.exit_code(), Some(3), "{}", server.log());
    assert!(server.log().contains("event=shutdown phase=forced signal=SIGINT sessions=1"));
}

#[test]
fn a_transfer_past_the_grace_is_cut_with_a_reply() {
    let mut server = Server::start_with(&["--shutdown-grace", "0s"]);
    let code = share_with(&server, &random_bytes(BIG, 16));
    let (mut control, mut data) = download_in_flight(&server, &code);
    server.signal("TERM");
    let cut = control.reply().remove(0);
    assert!(cut.starts_with("426 ") && cut.ends_with("[transfer-cut]"), "{cut}");
    let closing = control.reply().remove(0);
    assert!(closing.starts_with("421 ") && closing.ends_with("[closing]"), "{closing}");
    let mut rest = Vec::new();
    match data.read_to_end(&mut rest) {
        Ok(_) => assert!(FIRST_BYTES + rest.len() < BIG, "the download was cut short"),
        Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}"),
    }
    assert_eq!(server.exit_code(), Some(0), "{}", server.log());
    let log = server.log();
    assert!(log.contains("event=transfer-aborted reason=\"shutdown grace over\""), "{log}");
    assert!(log.contains("event=refused code=426 reason=transfer-cut verb=RETR"), "{log}");
}

#[test]
fn a_retr_waiting_for_its_data_connection_at_sigterm_past_the_grace_is_refused() {
    // The data connection would be waited for ten minutes; the grace is none.
    let mut server = Server::start_with(&["--shutdown-grace", "0s", "--passive-timeout", "10m"]);
    let code = share_with(&server, b"small");
    let mut control = Control::login(&server.addr);
    assert!(control.command("EPSV").starts_with("229 "));
    assert!(control.command(&format!("RETR /{code}/big.bin")).starts_with("150 "));
    server.signal("TERM");
    let refused = control.reply().remove(0);
    assert!(refused.starts_with("425 ") && refused.ends_with("[no-data-connection]"), "{refused}");
    let closing = control.reply().remove(0);
    assert!(closing.starts_with("421 ") && closing.ends_with("[closing]"), "{closing}");
    assert_eq!(server.exit_code(), Some(0), "{}", server.log());
}

#[test]
fn sighup_reloads_the_public_address_and_the_server_serves_on() {
    let server = Server::start_with(&["--public-host", "192.0.2.7"]);
    server.signal("HUP");
    wait_for_log(&server, "event=reload signal=SIGHUP public_host=192.0.2.7 pasv_address=192.0.2.7");
    let mut control = Control::login(&server.addr);
    assert!(control.command("NOOP").starts_with("200 "));
}

/// A port range of `len` ports below the usual ephemeral range, different per test process and
/// per `salt`. A port in it that something else holds is skipped by the server.
fn port_range(salt: u32, len: u16) -> (u16, u16) {
    let base = 20_000 + ((std::process::id().wrapping_mul(7).wrapping_add(salt * 131)) % 12_000) as u16;
    (base, base + len - 1)
}

#[test]
fn passive_ports_stay_in_their_range_over_several_data_connections() {
    let (min, max) = port_range(1, 16);
    let server = Server::start_with(&["--passive-ports", &format!("{min}-{max}")]);
    let mut control = Control::login(&server.addr);
    for _ in 0..6 {
        let reply = control.command("EPSV");
        let port = parse_epsv_reply(&reply[4..]).unwrap_or_else(|| panic!("{reply}"));
        assert!((min..=max).contains(&port), "port {port} outside {min}-{max}");
        let _data = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert!(control.command("NLST /").starts_with("150 "));
        assert!(control.reply()[0].starts_with("226 "));
    }
    assert!(server.log().contains(&format!("passive_ports={min}-{max}")));
}

#[test]
fn when_every_passive_port_is_busy_epsv_gets_425() {
    // A port some other program holds is a port the server cannot have: try another one.
    for attempt in 0..20 {
        let (port, _) = port_range(100 + attempt, 1);
        let server = Server::start_with(&["--passive-ports", &format!("{port}-{port}")]);
        let mut first = Control::login(&server.addr);
        let reply = first.command("EPSV");
        if reply.starts_with("425 ") {
            continue;
        }
        assert_eq!(parse_epsv_reply(&reply[4..]), Some(port), "{reply}");
        let mut second = Control::login(&server.addr);
        let busy = second.command("EPSV");
        assert!(busy.starts_with("425 ") && busy.ends_with("[no-data-connection]"), "{busy}");
        assert!(server.log().contains("event=refused code=425 reason=no-data-connection verb=EPSV"));
        // Once the first client's data connection is made, the port is free again.
        let _data = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert!(first.command("NLST /").starts_with("150 "));
        assert!(first.reply()[0].starts_with("226 "));
        assert_eq!(listing(&mut second, "NLST /"), Ok(Vec::new()));
        return;
    }
    panic!("no free port found for the test in 20 tries");
}

#[test]
fn pasv_names_the_public_address_and_its_data_connection_works() {
    let server = Server::start_with(&["--public-host", "192.0.2.7"]);
    let mut control = Control::login(&server.addr);
    let reply = control.command("PASV");
    assert!(reply.starts_with("227 "), "{reply}");
    let address = parse_pasv_reply(&reply[4..]).unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(address.ip().octets(), [192, 0, 2, 7], "{reply}");
    // Here on loopback, the port is reached on the address the control connection uses.
    let mut data = TcpStream::connect(("127.0.0.1", address.port())).unwrap();
    assert!(control.command("NLST /").starts_with("150 "));
    let mut names = Vec::new();
    data.read_to_end(&mut names).unwrap();
    assert!(control.reply()[0].starts_with("226 "));
    assert!(names.is_empty());
    let epsv = control.command("EPSV");
    // `(|||port|)`: the port alone, whose digits may be anything (49192 holds "192").
    let inside = epsv.split_once("(|||").and_then(|(_, rest)| rest.split_once("|)")).map(|(port, _)| port);
    assert!(inside.is_some_and(|port| port.parse::<u16>().is_ok()), "EPSV carries no address: {epsv}");
    assert!(!epsv.contains("192.0.2.7"), "EPSV carries no address: {epsv}");
}

#[test]
fn the_printed_share_url_uses_the_public_host() {
    let server = Server::start_with(&["--public-host", "192.0.2.7:2121"]);
    let dir = TempDir::new();
    dir.file("a.txt", b"shared from behind NAT");
    let url = upload(&server, dir.path(), &["a.txt"]);
    let code = code_of(&url);
    assert_eq!(url, format!("ftp://192.0.2.7:2121/{code}/"));
    let mut control = Control::login(&server.addr);
    let info = site_info(&mut control, &code).unwrap();
    assert_eq!(info_value(&info, "url"), url);
    let created = control.command("SITE MKSHARE 60");
    let created = CreatedShare::parse(&created[4..]).unwrap();
    assert_eq!(created.url, Some(format!("ftp://192.0.2.7:2121/{}/", created.code)));
}

#[test]
fn every_refusal_is_logged_once_with_its_code_and_reason() {
    let server = Server::start();
    let mut control = Control::login(&server.addr);
    let missing = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert!(control.command(&format!("SIZE /{missing}/x")).starts_with("550 "));
    assert!(control.command("PORT 127,0,0,1,4,1").starts_with("502 "));
    assert!(control.command("BOGUS").starts_with("500 "));
    assert!(control.command("SITE INFO").starts_with("550 "));
    let log = server.log();
    for line in [
        "event=refused code=550 reason=not-found verb=SIZE",
        "event=refused code=502 reason=not-implemented verb=PORT",
        "event=refused code=500 reason=bad-command verb=BOGUS",
        "event=refused code=550 reason=outside-share verb=SITE-INFO",
    ] {
        assert_eq!(log.matches(line).count(), 1, "{line}: {log}");
    }
    assert_eq!(log.matches("event=refused ").count(), 4, "{log}");
}

#[test]
fn the_log_never_holds_a_share_code_or_an_owner_token() {
    let server = Server::start_with(&["--max-share-misses", "1000"]);
    let dir = TempDir::new();
    dir.file("a.txt", b"a capability in a log is a leak");
    let url = upload(&server, dir.path(), &["a.txt"]);
    let code = code_of(&url);
    for args in
        [vec!["list", url.as_str()], vec!["info", url.as_str()], vec!["download", &url, "--dir", "out"]]
    {
        let run = client(&server.addr, dir.path(), &args, b"");
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    let mut control = Control::login(&server.addr);
    let share = make_share(&mut control, 3600);
    assert!(store(&mut control, "b.txt", b"bytes").starts_with("226 "));
    assert!(control.command(&format!("SITE OWNER {} wrongtoken", share.code)).starts_with("550 "));
    assert!(control.command(&format!("RETR /{}/B.TXT", code.to_ascii_uppercase())).starts_with("550 "));
    assert!(control.command(&format!("SITE DELETE {} {}", share.code, share.token)).starts_with("250 "));
    assert!(control.command("QUIT").starts_with("221 "));
    wait_for_log(&server, "event=disconnect reason=quit");
    let log = server.log().to_ascii_lowercase();
    for secret in [&code, &share.code, &share.token] {
        assert!(!log.contains(&secret.to_ascii_lowercase()), "{secret} is in the log: {log}");
    }
    for tag in [ShareTag::of(&code), ShareTag::of(&share.code)] {
        assert!(log.contains(&format!("share={tag}")), "lines about the share name it by {tag}: {log}");
    }
}

/// The arguments of the unit's `ExecStart=`, without the program.
fn exec_start(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart= line");
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

fn unit_setting<'u>(unit: &'u str, key: &str) -> Option<&'u str> {
    unit.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_systemd_unit_runs_the_server_with_flags_it_accepts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/anonshare-server.service");
    let unit = fs::read_to_string(&path).unwrap();
    let args = exec_start(&unit);
    let config: Config = match parse_args(args.iter().map(OsString::from)) {
        Ok(Invocation::Serve(config)) => *config,
        other => panic!("ExecStart {args:?}: {other:?}"),
    };
    assert_eq!(unit_setting(&unit, "KillSignal"), Some("SIGTERM"));
    let stop: u64 = unit_setting(&unit, "TimeoutStopSec").expect("TimeoutStopSec").parse().unwrap();
    let grace = config.shutdown_grace.as_secs();
    assert!(stop > grace + 5, "TimeoutStopSec={stop} leaves no time past --shutdown-grace {grace}s");
    for setting in ["DynamicUser", "NoNewPrivileges", "PrivateTmp", "ProtectHome"] {
        assert_eq!(unit_setting(&unit, setting), Some("yes"), "{setting}");
    }
    assert_eq!(unit_setting(&unit, "ProtectSystem"), Some("strict"));
    assert_eq!(unit_setting(&unit, "CapabilityBoundingSet"), Some(""));
    let state = unit_setting(&unit, "StateDirectory").expect("StateDirectory");
    assert_eq!(config.root, Path::new("/var/lib").join(state), "--root is the state directory");
}
