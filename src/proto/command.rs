//! Control lines as typed commands: [`parse_command`] turns a line into a [`Command`], or into
//! a [`ProtoError`] that knows its reply code, and every `Command` prints as a line that parses
//! back to it (RFC 959 §4.1, RFC 2428, RFC 3659, RFC 2389, the HASH draft, and anonshare's
//! `SITE` extensions). Pure: no sockets, no files, no clocks.

use std::fmt;
use std::str::FromStr;

use crate::common::digest::Sha256Digest;
use crate::proto::{Reason, Refusal};

/// Longest control line accepted, CRLF included (the server's `--max-line` default).
pub const MAX_LINE_LEN: usize = 4096;

/// A command from the client, one per control line (RFC 959 §4.1, RFC 2428, RFC 3659,
/// RFC 2389, draft-bryan-ftpext-hash, and anonshare's `SITE` extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Syst,
    Feat,
    Opts(String),
    Noop,
    Quit,
    Type(TransferType),
    Mode(String),
    Stru(String),
    Pwd,
    Cwd(String),
    Cdup,
    Pasv,
    Epsv(Option<String>),
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    Rest(u64),
    Retr(String),
    Stor(String),
    /// `APPE`: continue a cut upload from the bytes the server kept (RFC 959 §4.1.3).
    Appe(String),
    Mkd(String),
    Hash(String),
    Abor,
    /// `ALLO [SIZE [R RECORD]]`: the size of the next upload; a shorter one is a cut upload.
    Allo(Option<u64>),
    Help,
    Site(SiteCommand),
    /// `AUTH TLS` or `AUTH SSL`: turn the control connection into TLS (RFC 4217 §4).
    Auth(String),
    /// `PBSZ 0`: the protection buffer size, always 0 under TLS (RFC 4217 §8).
    Pbsz(String),
    /// `PROT P` or `PROT C`: whether data connections are TLS (RFC 4217 §9).
    Prot(String),
    /// `CCC`: back to a plaintext control connection (RFC 4217 §6); always refused.
    Ccc,
}

/// anonshare's share extensions, sent as `SITE <sub-command> ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteCommand {
    /// `SITE MKSHARE [SECONDS] [DOWNLOADS=N]`: create a share that expires after SECONDS (or
    /// the default), each of whose files may be downloaded completely N times (or without limit).
    Mkshare {
        seconds: Option<u64>,
        downloads: Option<u64>,
    },
    /// `SITE DIGEST <sha256> <path>`: the SHA-256 the next STOR of `path` must have.
    Digest(Sha256Digest, String),
    /// `SITE SEAL`: make the current share read-only for good.
    Seal,
    /// `SITE OWNER <code> <token>`: prove ownership of an unsealed share from this connection.
    Owner(String, String),
    /// `SITE INFO [path]`: expiry, state and totals of a share, or downloads left of a file.
    Info(Option<String>),
    /// `SITE DELETE <code> <token>`: delete a share at once, proving ownership.
    Delete(String, String),
    /// `SITE PARTIAL <path>`: bytes the server kept of a cut upload, where a resume starts.
    Partial(String),
    Help,
}

/// The representation type set by `TYPE` (RFC 959 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `TYPE A` or `TYPE A N`: accepted for listings; file transfers refuse it.
    Ascii,
    /// `TYPE I` or `TYPE L 8`: bytes as they are.
    Image,
}

/// Why a control line is not a command we run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The line is longer than the limit; the rest of it is discarded unread.
    LineTooLong(usize),
    /// The line is not UTF-8 (RFC 2640).
    NotUtf8,
    /// An empty line.
    Empty,
    /// A verb we have never heard of (500).
    UnknownVerb(String),
    /// A real FTP verb that anonshare refuses, such as PORT (502).
    NotImplemented(String),
    /// A verb that needs an argument and got none (501).
    MissingArgument(&'static str),
    /// An argument of the wrong shape (501), or a parameter we do not support (504).
    BadArgument { verb: &'static str, argument: String, expected: &'static str },
    /// A TYPE, MODE or STRU we do not support (504).
    UnsupportedParameter { verb: &'static str, argument: String },
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::LineTooLong(limit) => write!(f, "command line longer than {limit} bytes"),
            ProtoError::NotUtf8 => f.write_str("command line is not UTF-8"),
            ProtoError::Empty => f.write_str("empty command line"),
            ProtoError::UnknownVerb(verb) => write!(f, "unknown command '{verb}'"),
            ProtoError::NotImplemented(verb) => write!(f, "{verb} is not implemented"),
            ProtoError::MissingArgument(verb) => write!(f, "{verb} needs an argument"),
            ProtoError::BadArgument { verb, argument, expected } => {
                write!(f, "invalid {verb} argument '{argument}': expected {expected}")
            }
            ProtoError::UnsupportedParameter { verb, argument } => {
                write!(f, "{verb} {argument} is not supported")
            }
        }
    }
}

impl std::error::Error for ProtoError {}

impl ProtoError {
    /// The reply code RFC 959 gives this error.
    pub fn reply_code(&self) -> u16 {
        match self {
            ProtoError::LineTooLong(_) | ProtoError::Empty | ProtoError::UnknownVerb(_) => 500,
            ProtoError::NotUtf8 | ProtoError::MissingArgument(_) | ProtoError::BadArgument { .. } => 501,
            ProtoError::NotImplemented(_) => 502,
            ProtoError::UnsupportedParameter { .. } => 504,
        }
    }

    /// The refusal that answers this line.
    pub fn refusal(&self) -> Refusal {
        let code = self.reply_code();
        let text = self.to_string();
        let mut chars = text.chars();
        let text: String =
            chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default();
        Refusal { code, reason: Reason::of_code(code), text }
    }
}

/// Bytes from here up are Telnet commands (RFC 854) when they lead a line; no verb starts so.
const TELNET_COMMANDS: u8 = 0xF0;

/// Verbs of RFC 959 and its extensions that anonshare deliberately does not run.
/// PORT and EPRT are among them: they let a client aim the server at any host (RFC 2577).
const REFUSED_VERBS: &[&str] = &[
    "ACCT", "DELE", "EPRT", "LPRT", "LPSV", "PORT", "REIN", "RMD", "RNFR", "RNTO", "SMNT", "STAT", "STOU",
    "XRMD",
];

/// Parses one control line, without its CRLF. Telnet commands in front of it (IAC IP, IAC DM,
/// the Synch that clients send before ABOR, RFC 959 §4.1.3) are skipped.
pub fn parse_command(line: &[u8]) -> Result<Command, ProtoError> {
    let start = line.iter().position(|&b| b < TELNET_COMMANDS).unwrap_or(line.len());
    let line = std::str::from_utf8(&line[start..]).map_err(|_| ProtoError::NotUtf8)?;
    let (verb, argument) = match line.split_once(' ') {
        Some((verb, argument)) => (verb, Some(argument)),
        None => (line, None),
    };
    if verb.is_empty() {
        return Err(ProtoError::Empty);
    }
    let upper = verb.to_ascii_uppercase();
    let arg = argument.filter(|a| !a.is_empty()).map(str::to_owned);
    let required = |name: &'static str| arg.clone().ok_or(ProtoError::MissingArgument(name));
    let command = match upper.as_str() {
        "USER" => Command::User(required("USER")?),
        "PASS" => Command::Pass(arg.unwrap_or_default()),
        "SYST" => Command::Syst,
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(required("OPTS")?),
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "TYPE" => Command::Type(parse_type(&required("TYPE")?)?),
        "MODE" => Command::Mode(parse_single_letter("MODE", &required("MODE")?, "S")?),
        "STRU" => Command::Stru(parse_single_letter("STRU", &required("STRU")?, "F")?),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => Command::Cwd(required("CWD")?),
        "CDUP" | "XCUP" => Command::Cdup,
        "PASV" => Command::Pasv,
        "EPSV" => Command::Epsv(arg),
        "LIST" => Command::List(arg),
        "NLST" => Command::Nlst(arg),
        "MLSD" => Command::Mlsd(arg),
        "MLST" => Command::Mlst(arg),
        "SIZE" => Command::Size(required("SIZE")?),
        "MDTM" => Command::Mdtm(required("MDTM")?),
        "REST" => {
            let text = required("REST")?;
            let offset = text.parse().map_err(|_| ProtoError::BadArgument {
                verb: "REST",
                argument: clip(&text),
                expected: "a byte offset",
            })?;
            Command::Rest(offset)
        }
        "RETR" => Command::Retr(required("RETR")?),
        "STOR" => Command::Stor(required("STOR")?),
        "APPE" => Command::Appe(required("APPE")?),
        "MKD" | "XMKD" => Command::Mkd(required("MKD")?),
        "HASH" => Command::Hash(required("HASH")?),
        "ABOR" => Command::Abor,
        "ALLO" => Command::Allo(parse_allo(arg.as_deref())?),
        "HELP" => Command::Help,
        "SITE" => Command::Site(parse_site(&required("SITE")?)?),
        "AUTH" => Command::Auth(required("AUTH")?),
        "PBSZ" => Command::Pbsz(required("PBSZ")?),
        "PROT" => Command::Prot(required("PROT")?),
        "CCC" => Command::Ccc,
        _ if REFUSED_VERBS.contains(&upper.as_str()) => {
            return Err(ProtoError::NotImplemented(upper));
        }
        _ => return Err(ProtoError::UnknownVerb(clip(verb))),
    };
    Ok(command)
}

/// Shortens peer-controlled text before it goes into an error message.
pub(crate) fn clip(text: &str) -> String {
    const SHOWN: usize = 64;
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(SHOWN).collect();
    if text.chars().count() > SHOWN {
        out.push_str("...");
    }
    out
}

fn parse_type(argument: &str) -> Result<TransferType, ProtoError> {
    match argument.to_ascii_uppercase().as_str() {
        "A" | "A N" => Ok(TransferType::Ascii),
        "I" | "L 8" => Ok(TransferType::Image),
        _ => Err(ProtoError::UnsupportedParameter { verb: "TYPE", argument: clip(argument) }),
    }
}

fn parse_single_letter(verb: &'static str, argument: &str, only: &str) -> Result<String, ProtoError> {
    if argument.eq_ignore_ascii_case(only) {
        Ok(only.to_owned())
    } else {
        Err(ProtoError::UnsupportedParameter { verb, argument: clip(argument) })
    }
}

fn parse_site(argument: &str) -> Result<SiteCommand, ProtoError> {
    let (sub, rest) = match argument.split_once(' ') {
        Some((sub, rest)) => (sub, Some(rest).filter(|r| !r.is_empty())),
        None => (argument, None),
    };
    match sub.to_ascii_uppercase().as_str() {
        "MKSHARE" => parse_mkshare(rest.unwrap_or_default()),
        "DIGEST" => {
            let bad = |text: &str| ProtoError::BadArgument {
                verb: "SITE DIGEST",
                argument: clip(text),
                expected: "a SHA-256 in hex, a space, and a path",
            };
            let text = rest.ok_or(ProtoError::MissingArgument("SITE DIGEST"))?;
            let (hex, path) = text.split_once(' ').ok_or_else(|| bad(text))?;
            let digest = hex.parse().map_err(|_| bad(text))?;
            if path.is_empty() {
                return Err(bad(text));
            }
            Ok(SiteCommand::Digest(digest, path.to_owned()))
        }
        "SEAL" => Ok(SiteCommand::Seal),
        "OWNER" => {
            parse_code_and_token("SITE OWNER", rest).map(|(code, token)| SiteCommand::Owner(code, token))
        }
        "DELETE" => {
            parse_code_and_token("SITE DELETE", rest).map(|(code, token)| SiteCommand::Delete(code, token))
        }
        "INFO" => Ok(SiteCommand::Info(rest.map(str::to_owned))),
        "PARTIAL" => {
            Ok(SiteCommand::Partial(rest.ok_or(ProtoError::MissingArgument("SITE PARTIAL"))?.to_owned()))
        }
        "HELP" => Ok(SiteCommand::Help),
        _ => Err(ProtoError::NotImplemented(format!("SITE {}", clip(sub).to_ascii_uppercase()))),
    }
}

/// `SIZE [R RECORD]` (RFC 959 §4.1.3); the record size means nothing in stream mode.
fn parse_allo(argument: Option<&str>) -> Result<Option<u64>, ProtoError> {
    let Some(text) = argument else {
        return Ok(None);
    };
    let bad = || ProtoError::BadArgument { verb: "ALLO", argument: clip(text), expected: "a size in bytes" };
    let words: Vec<&str> = text.split_whitespace().collect();
    let size = match words.as_slice() {
        [size] => size,
        [size, r, record] if r.eq_ignore_ascii_case("R") && record.parse::<u64>().is_ok() => size,
        _ => return Err(bad()),
    };
    size.parse().map(Some).map_err(|_| bad())
}

/// `[SECONDS] [DOWNLOADS=N]`, in either order.
fn parse_mkshare(text: &str) -> Result<SiteCommand, ProtoError> {
    let bad = || ProtoError::BadArgument {
        verb: "SITE MKSHARE",
        argument: clip(text),
        expected: "a number of seconds and/or DOWNLOADS=N",
    };
    let (mut seconds, mut downloads) = (None, None);
    for word in text.split_whitespace() {
        let upper = word.to_ascii_uppercase();
        match upper.strip_prefix("DOWNLOADS=") {
            Some(count) if downloads.is_none() => {
                downloads = Some(count.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?)
            }
            None if seconds.is_none() => seconds = Some(word.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        }
    }
    Ok(SiteCommand::Mkshare { seconds, downloads })
}

/// `<code> <token>`; the token never appears in an error.
fn parse_code_and_token(verb: &'static str, rest: Option<&str>) -> Result<(String, String), ProtoError> {
    let text = rest.ok_or(ProtoError::MissingArgument(verb))?;
    match text.split_once(' ') {
        Some((code, token)) if !code.is_empty() && !token.is_empty() && !token.contains(' ') => {
            Ok((code.to_owned(), token.to_owned()))
        }
        _ => Err(ProtoError::BadArgument {
            verb,
            argument: "(hidden)".into(),
            expected: "a share code and its owner token",
        }),
    }
}

impl FromStr for Command {
    type Err = ProtoError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        parse_command(line.as_bytes())
    }
}

impl fmt::Display for Command {
    /// The command as a control line, without CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, verb: &str, arg: &Option<String>| match arg {
            Some(arg) => write!(f, "{verb} {arg}"),
            None => f.write_str(verb),
        };
        match self {
            Command::User(name) => write!(f, "USER {name}"),
            Command::Pass(word) => write!(f, "PASS {word}"),
            Command::Syst => f.write_str("SYST"),
            Command::Feat => f.write_str("FEAT"),
            Command::Opts(option) => write!(f, "OPTS {option}"),
            Command::Noop => f.write_str("NOOP"),
            Command::Quit => f.write_str("QUIT"),
            Command::Type(TransferType::Ascii) => f.write_str("TYPE A"),
            Command::Type(TransferType::Image) => f.write_str("TYPE I"),
            Command::Mode(mode) => write!(f, "MODE {mode}"),
            Command::Stru(stru) => write!(f, "STRU {stru}"),
            Command::Pwd => f.write_str("PWD"),
            Command::Cwd(path) => write!(f, "CWD {path}"),
            Command::Cdup => f.write_str("CDUP"),
            Command::Pasv => f.write_str("PASV"),
            Command::Epsv(arg) => with(f, "EPSV", arg),
            Command::List(arg) => with(f, "LIST", arg),
            Command::Nlst(arg) => with(f, "NLST", arg),
            Command::Mlsd(arg) => with(f, "MLSD", arg),
            Command::Mlst(arg) => with(f, "MLST", arg),
            Command::Size(path) => write!(f, "SIZE {path}"),
            Command::Mdtm(path) => write!(f, "MDTM {path}"),
            Command::Rest(offset) => write!(f, "REST {offset}"),
            Command::Retr(path) => write!(f, "RETR {path}"),
            Command::Stor(path) => write!(f, "STOR {path}"),
            Command::Appe(path) => write!(f, "APPE {path}"),
            Command::Mkd(path) => write!(f, "MKD {path}"),
            Command::Hash(path) => write!(f, "HASH {path}"),
            Command::Abor => f.write_str("ABOR"),
            Command::Allo(None) => f.write_str("ALLO"),
            Command::Allo(Some(size)) => write!(f, "ALLO {size}"),
            Command::Help => f.write_str("HELP"),
            Command::Site(site) => write!(f, "SITE {site}"),
            Command::Auth(mechanism) => write!(f, "AUTH {mechanism}"),
            Command::Pbsz(size) => write!(f, "PBSZ {size}"),
            Command::Prot(level) => write!(f, "PROT {level}"),
            Command::Ccc => f.write_str("CCC"),
        }
    }
}

impl fmt::Display for SiteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteCommand::Mkshare { seconds, downloads } => {
                f.write_str("MKSHARE")?;
                if let Some(seconds) = seconds {
                    write!(f, " {seconds}")?;
                }
                if let Some(downloads) = downloads {
                    write!(f, " DOWNLOADS={downloads}")?;
                }
                Ok(())
            }
            SiteCommand::Digest(digest, path) => write!(f, "DIGEST {digest} {path}"),
            SiteCommand::Seal => f.write_str("SEAL"),
            SiteCommand::Owner(code, token) => write!(f, "OWNER {code} {token}"),
            SiteCommand::Info(None) => f.write_str("INFO"),
            SiteCommand::Info(Some(path)) => write!(f, "INFO {path}"),
            SiteCommand::Delete(code, token) => write!(f, "DELETE {code} {token}"),
            SiteCommand::Partial(path) => write!(f, "PARTIAL {path}"),
            SiteCommand::Help => f.write_str("HELP"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Reply;

    fn check(line: &str, expected: Result<Command, ProtoError>) {
        assert_eq!(parse_command(line.as_bytes()), expected, "{line:?}");
    }

    #[test]
    fn verbs_are_case_insensitive_rfc959_5_3() {
        check("user anonymous", Ok(Command::User("anonymous".into())));
        check("Retr a b.txt", Ok(Command::Retr("a b.txt".into())));
        check("xpwd", Ok(Command::Pwd));
    }

    #[test]
    fn arguments_keep_their_spaces() {
        check("STOR  leading space", Ok(Command::Stor(" leading space".into())));
        check("CWD /a b/c ", Ok(Command::Cwd("/a b/c ".into())));
    }

    #[test]
    fn pass_may_be_empty() {
        check("PASS", Ok(Command::Pass(String::new())));
    }

    #[test]
    fn missing_and_bad_arguments_are_501() {
        check("RETR", Err(ProtoError::MissingArgument("RETR")));
        let err = parse_command(b"REST x1").unwrap_err();
        assert_eq!(err.reply_code(), 501);
        assert_eq!(err.to_string(), "invalid REST argument 'x1': expected a byte offset");
    }

    #[test]
    fn port_and_eprt_are_refused_rfc2577() {
        check("PORT 127,0,0,1,4,1", Err(ProtoError::NotImplemented("PORT".into())));
        check("EPRT |1|127.0.0.1|1025|", Err(ProtoError::NotImplemented("EPRT".into())));
        assert_eq!(parse_command(b"PORT 1").unwrap_err().reply_code(), 502);
    }

    #[test]
    fn unknown_verbs_are_500_and_clipped() {
        let long = "X".repeat(500);
        let err = parse_command(long.as_bytes()).unwrap_err();
        assert_eq!(err.reply_code(), 500);
        assert!(err.to_string().len() < 100);
    }

    #[test]
    fn telnet_synch_before_abor_is_skipped_rfc959_4_1_3() {
        check("\u{0}", Err(ProtoError::UnknownVerb("".into())));
        assert_eq!(parse_command(b"\xff\xf4\xff\xf2ABOR"), Ok(Command::Abor));
        assert_eq!(parse_command(b"\xf2ABOR"), Ok(Command::Abor));
    }

    #[test]
    fn non_utf8_is_501_rfc2640() {
        check("RETR \u{e9}", Ok(Command::Retr("\u{e9}".into())));
        assert_eq!(parse_command(b"RETR \xff"), Err(ProtoError::NotUtf8));
    }

    #[test]
    fn type_mode_stru_rfc959_3_1() {
        check("TYPE I", Ok(Command::Type(TransferType::Image)));
        check("TYPE L 8", Ok(Command::Type(TransferType::Image)));
        check("TYPE a", Ok(Command::Type(TransferType::Ascii)));
        assert_eq!(parse_command(b"TYPE E").unwrap_err().reply_code(), 504);
        check("MODE s", Ok(Command::Mode("S".into())));
        assert_eq!(parse_command(b"MODE B").unwrap_err().reply_code(), 504);
        assert_eq!(parse_command(b"STRU R").unwrap_err().reply_code(), 504);
    }

    #[test]
    fn site_extensions() {
        let mkshare = |seconds, downloads| Ok(Command::Site(SiteCommand::Mkshare { seconds, downloads }));
        check("SITE MKSHARE", mkshare(None, None));
        check("site mkshare 60", mkshare(Some(60), None));
        check("SITE MKSHARE downloads=1 60", mkshare(Some(60), Some(1)));
        check("SITE MKSHARE DOWNLOADS=3", mkshare(None, Some(3)));
        for bad in ["SITE MKSHARE DOWNLOADS=0", "SITE MKSHARE 1 2", "SITE MKSHARE DOWNLOADS=x"] {
            assert_eq!(parse_command(bad.as_bytes()).unwrap_err().reply_code(), 501, "{bad}");
        }
        check("SITE DELETE abc tok", Ok(Command::Site(SiteCommand::Delete("abc".into(), "tok".into()))));
        check("SITE PARTIAL /c/a b", Ok(Command::Site(SiteCommand::Partial("/c/a b".into()))));
        check("APPE a", Ok(Command::Appe("a".into())));
        check("ALLO", Ok(Command::Allo(None)));
        check("ALLO 5 R 512", Ok(Command::Allo(Some(5))));
        assert_eq!(parse_command(b"ALLO -1").unwrap_err().reply_code(), 501);
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        check(
            &format!("SITE DIGEST {hex} dir/a b"),
            Ok(Command::Site(SiteCommand::Digest(hex.parse().unwrap(), "dir/a b".into()))),
        );
        assert_eq!(parse_command(b"SITE DIGEST abc x").unwrap_err().reply_code(), 501);
        assert_eq!(parse_command(b"SITE MKSHARE soon").unwrap_err().reply_code(), 501);
        assert_eq!(parse_command(b"SITE CHMOD 777 x").unwrap_err().reply_code(), 502);
        check("SITE OWNER abc tok", Ok(Command::Site(SiteCommand::Owner("abc".into(), "tok".into()))));
        let err = parse_command(b"SITE OWNER abcsecret").unwrap_err();
        assert!(!err.to_string().contains("abcsecret"), "tokens stay out of errors: {err}");
    }

    #[test]
    fn commands_round_trip_through_their_text() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for line in [
            "USER anonymous",
            "PASS x",
            "SYST",
            "FEAT",
            "OPTS UTF8 ON",
            "NOOP",
            "QUIT",
            "TYPE A",
            "TYPE I",
            "MODE S",
            "STRU F",
            "PWD",
            "CWD /x",
            "CDUP",
            "PASV",
            "EPSV",
            "EPSV ALL",
            "LIST",
            "LIST -la /x",
            "NLST",
            "MLSD /x",
            "MLST",
            "SIZE a",
            "MDTM a",
            "REST 10",
            "RETR a",
            "STOR a",
            "MKD d",
            "HASH a",
            "ABOR",
            "ALLO",
            "ALLO 12",
            "HELP",
            "SITE MKSHARE 5",
            "SITE MKSHARE 5 DOWNLOADS=2",
            "SITE MKSHARE DOWNLOADS=1",
            "SITE DELETE c t",
            "SITE PARTIAL /c/a",
            "APPE a",
            "SITE SEAL",
            "SITE INFO",
            "SITE INFO /x",
            "SITE HELP",
            "AUTH TLS",
            "AUTH SSL",
            "PBSZ 0",
            "PROT P",
            "PROT C",
            "CCC",
            &format!("SITE DIGEST {hex} a"),
        ] {
            let command: Command = line.parse().unwrap();
            assert_eq!(command.to_string().parse::<Command>().unwrap(), command, "{line}");
        }
    }

    /// Arbitrary bytes never panic the parser, and every refusal maps to a real reply code.
    #[test]
    fn random_lines_parse_or_fail_cleanly() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let verbs: &[&[u8]] =
            &[b"RETR ", b"SITE ", b"SITE DIGEST ", b"REST ", b"TYPE ", b"EPSV ", b"", b"\xff\xf4"];
        for round in 0..20_000 {
            let mut line = verbs[round % verbs.len()].to_vec();
            let len = (state % 48) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line.push((state >> 32) as u8);
            }
            match parse_command(&line) {
                // What parsed renders to a line that parses to the same command.
                Ok(command) => assert_eq!(command.to_string().parse::<Command>().as_ref(), Ok(&command)),
                Err(err) => assert!([500, 501, 502, 504].contains(&err.reply_code()), "{err:?}"),
            }
            // Whatever a reply echoes, it stays one line on the wire.
            let reply = Reply::new(500, String::from_utf8_lossy(&line)).to_string();
            assert!(reply.ends_with("\r\n") && !reply[..reply.len() - 2].contains(['\r', '\n']), "{reply:?}");
        }
    }
}
