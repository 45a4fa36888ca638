//! `anonshare shell`: the interactive client of the original design. A person picks from a
//! menu (or types a command with its arguments), with a line editor at a terminal; a script
//! can pipe the same lines in. Prompts and the menu appear only when a person is there; results
//! go to stdout, messages (each error once) to the messages stream. It works with the command
//! line's client settings (`--server`, `--timeout`, `--retries`, `--parallel`), and its output
//! and progress, and calls nothing of `cli/mod.rs`.

use std::io::Write;
use std::path::PathBuf;

use time::OffsetDateTime;

use crate::cli::line_editor::LineInput;
use crate::cli::output::{list_lines, saved_lines};
use crate::cli::progress::Console;
use crate::client::link::Link;
use crate::client::settings::{ClientSettings, SERVER_ENV, parse_server};
use crate::client::transfer::{self, Existing, ShareOptions};
use crate::client::words::count;
use crate::client::{ClientError, Result, ShareUrl, join_host_port};
use crate::common::expiry::parse_expiry;

/// The menu: every line starts with the same indent, so the columns line up.
const MENU: &str = concat!(
    "  1) upload    PATH[, PATH...]   (add --expires SPEC to choose the expiry)\n",
    "  2) list      URL\n",
    "  3) download  URL [NAME...]     (add --dir DIR; --overwrite or --skip-existing)\n",
    "  4) connect   HOST:PORT\n",
    "  5) quit\n",
);

/// Runs the shell until `quit` or the end of input, on the server `address` names, else the
/// one `settings` names (`--server`, else [`SERVER_ENV`]); only when neither does and a
/// person is there (`interactive`) does it ask. Each failed command's error is told once, on
/// `messages`; a session whose last command failed ends with that command's exit code, so a
/// piped session tells whether it worked.
pub fn run(
    address: Option<&str>,
    settings: &ClientSettings,
    input: &mut dyn LineInput,
    interactive: bool,
    out: &mut dyn Write,
    messages: &mut dyn Write,
) -> Result<()> {
    let mut shell = Shell {
        input,
        out,
        messages,
        interactive,
        settings: settings.clone(),
        console: Console::without_progress(),
        host: String::new(),
        port: 0,
        link: Link::new("", settings),
    };
    if let Err(err) = shell.connect(address) {
        shell.say(&format!("error: {err}"));
        return Err(ClientError::Told(err.exit_code()));
    }
    if interactive {
        let address = shell.address();
        shell
            .say(&format!("Connected to {address}. Choose a number or type a command:\n{}", MENU.trim_end()));
    }
    let mut last = Ok(());
    while let Some(line) = shell.ask("anonshare> ")? {
        let line = line.trim().to_owned();
        let (command, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let rest = rest.trim();
        last = match command.to_ascii_lowercase().as_str() {
            "" => continue,
            "1" | "upload" | "u" => shell.upload(rest),
            "2" | "list" | "ls" | "l" => shell.list(rest),
            "3" | "download" | "get" | "d" => shell.download(rest),
            "4" | "connect" | "open" | "c" => shell.reconnect(rest),
            "5" | "quit" | "exit" | "q" | "bye" => break,
            "help" | "?" | "menu" => {
                shell.say(MENU.trim_end());
                Ok(())
            }
            other => Err(ClientError::Usage(format!("unknown choice '{other}': pick 1-5 or help"))),
        };
        if let Err(err) = &last {
            shell.say(&format!("error: {err}"));
        }
    }
    shell.link.quit();
    last.map_err(|err| ClientError::Told(err.exit_code()))
}

struct Shell<'a> {
    input: &'a mut dyn LineInput,
    out: &'a mut dyn Write,
    /// Prompts, the menu and errors.
    messages: &'a mut dyn Write,
    interactive: bool,
    /// What every link the shell opens is made with.
    settings: ClientSettings,
    /// Tells of retries and resumes on stderr.
    console: Console,
    host: String,
    port: u16,
    /// The connection to `host:port`, opened again when it drops.
    link: Link,
}

impl Shell<'_> {
    /// Prompts (when interactive) and reads one trimmed line; `None` at the end of input.
    fn ask(&mut self, prompt: &str) -> Result<Option<String>> {
        match self.input.read_line(prompt, self.messages) {
            Ok(line) => Ok(line.map(|line| line.trim().to_owned())),
            Err(err) => Err(ClientError::Usage(format!("cannot read input: {err}"))),
        }
    }

    /// One line on the messages stream.
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.messages, "{text}");
    }

    fn ask_or(&mut self, prompt: &str, default: &str) -> Result<String> {
        Ok(self.ask(prompt)?.filter(|s| !s.is_empty()).unwrap_or_else(|| default.to_owned()))
    }

    fn address(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    /// The server `address` names, else `--server`, else [`SERVER_ENV`]; a person is asked
    /// when none does (offering the default), a script gets the default. Then connects.
    fn connect(&mut self, address: Option<&str>) -> Result<()> {
        let from_env = std::env::var(SERVER_ENV).is_ok_and(|value| !value.is_empty());
        let (host, port) = match address {
            Some(text) => parse_server(text)?,
            None if self.settings.server.is_some() || from_env || !self.interactive => {
                self.settings.server_address()?
            }
            None => {
                let (host, port) = self.settings.server_address()?;
                let host = self.ask_or(&format!("Server address [{host}]: "), &host)?;
                let port_text = self.ask_or(&format!("Port [{port}]: "), &port.to_string())?;
                let port = port_text.parse().map_err(|_| {
                    ClientError::Usage(format!("invalid port '{port_text}': expected 1-65535"))
                })?;
                (host, port)
            }
        };
        self.switch_to(host, port);
        self.link.run(&self.console, |_, _| Ok(()))
    }

    /// `connect HOST:PORT`: another server from now on; asks for it when not given.
    fn reconnect(&mut self, rest: &str) -> Result<()> {
        let text = match rest.is_empty() {
            true => self.ask("Server (HOST:PORT): ")?.unwrap_or_default(),
            false => rest.to_owned(),
        };
        if text.is_empty() {
            return Err(ClientError::Usage("connect needs a server: connect HOST:PORT".into()));
        }
        let (host, port) = parse_server(&text)?;
        self.switch_to(host, port);
        self.link.run(&self.console, |_, _| Ok(()))?;
        let address = self.address();
        self.say(&format!("Connected to {address}."));
        Ok(())
    }

    /// Points the shell at another server; the old connection says goodbye.
    fn switch_to(&mut self, host: String, port: u16) {
        self.link.quit();
        self.host = host;
        self.port = port;
        self.link = Link::new(self.address(), &self.settings);
    }

    fn print(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|err| ClientError::Usage(format!("cannot write to stdout: {err}")))
    }

    fn upload(&mut self, rest: &str) -> Result<()> {
        let (rest, expires) = take_flag(rest, "--expires");
        let rest = match rest.is_empty() {
            true => self.ask("Files or folders (comma-separated): ")?.unwrap_or_default(),
            false => rest,
        };
        let expires = match expires {
            Some(spec) => Some(spec),
            None if self.interactive => {
                self.ask("Expires (e.g. 12h, 7d; empty for the server default): ")?.filter(|s| !s.is_empty())
            }
            None => None,
        };
        let paths: Vec<PathBuf> = split_list(&rest).into_iter().map(PathBuf::from).collect();
        if paths.is_empty() {
            return Err(ClientError::Usage("nothing to upload: give files or folders".into()));
        }
        let lifetime = expires
            .map(|spec| {
                parse_expiry(&spec, OffsetDateTime::now_utc())
                    .map_err(|err| ClientError::Usage(err.to_string()))
            })
            .transpose()?;
        // An upload owns its share on every connection it opens: it gets a link of its own.
        let link = Link::new(self.address(), &self.settings);
        let options = ShareOptions { lifetime, downloads: None };
        let console = Console::without_progress().uploading_to(&self.host, self.port);
        let report = transfer::publish(link, &paths, options, &console)?;
        let url = ShareUrl::of_created(&report.share, &self.host, self.port, report.pin);
        let files = count(report.files.len() as u64, "file", "files");
        self.say(&format!("uploaded {files}; expires {}", report.share.expires));
        self.print(&format!("{url}\n"))
    }

    fn share(&mut self, text: &str) -> Result<ShareUrl> {
        let text = match text.is_empty() {
            true => self.ask("Share URL: ")?.unwrap_or_default(),
            false => text.to_owned(),
        };
        if text.starts_with("ftp://") {
            let (url, _) = ShareUrl::parse_file(&text)?;
            if (url.host.as_str(), url.port) != (self.host.as_str(), self.port) {
                // The share lives elsewhere: follow it there.
                self.switch_to(url.host.clone(), url.port);
            }
            if url.pin.is_some() && self.link.pin() != url.pin {
                // A pinned URL is opened only on a connection that checked that key.
                self.link.quit();
                self.link = Link::new(self.address(), &self.settings).pinned(url.pin);
            }
            return Ok(url);
        }
        if text.is_empty() {
            return Err(ClientError::Usage("a share URL is needed".into()));
        }
        Ok(ShareUrl { host: self.host.clone(), port: self.port, code: text, pin: None })
    }

    fn list(&mut self, rest: &str) -> Result<()> {
        let url = self.share(rest)?;
        let listing = transfer::list_share(&mut self.link, &url.code, &self.console)?;
        let info = &listing.info;
        let (files, bytes) = (count(info.files, "file", "files"), count(info.bytes, "byte", "bytes"));
        self.say(&format!("{files}, {bytes}; available until {}", info.expires));
        self.print(&list_lines(&listing.files, &listing.folders))
    }

    fn download(&mut self, rest: &str) -> Result<()> {
        let (rest, dir) = take_flag(rest, "--dir");
        let (rest, overwrite) = take_switch(&rest, "--overwrite");
        let (rest, skip) = take_switch(&rest, "--skip-existing");
        let existing = match (overwrite, skip) {
            (true, true) => {
                return Err(ClientError::Usage(
                    "--overwrite and --skip-existing cannot be used together".into(),
                ));
            }
            (true, false) => Existing::Overwrite,
            (false, true) => Existing::Skip,
            (false, false) => Existing::Refuse,
        };
        let (url_text, names) = match rest.split_once(' ') {
            Some((url, names)) => (url.to_owned(), split_list(names)),
            None => (rest, Vec::new()),
        };
        let url = self.share(&url_text)?;
        let mut names = names;
        if url_text.starts_with("ftp://") {
            names.extend(ShareUrl::parse_file(&url_text)?.1);
        }
        let listing = transfer::list_share(&mut self.link, &url.code, &self.console)?;
        let files = &listing.files;
        if names.is_empty() && self.interactive {
            self.say(&format!("Files in this share (available until {}):", listing.info.expires));
            for (number, file) in files.iter().enumerate() {
                let size = count(file.size, "byte", "bytes");
                self.say(&format!("  {:>3}) {}  ({size})", number + 1, file.path));
            }
            let answer = self
                .ask("Numbers or names to download (comma-separated; empty for all): ")?
                .unwrap_or_default();
            names = split_list(&answer)
                .into_iter()
                .map(|n| match n.parse::<usize>() {
                    Ok(number) if (1..=files.len()).contains(&number) => files[number - 1].path.clone(),
                    _ => n,
                })
                .collect();
        }
        let dir = match dir {
            Some(dir) => dir,
            None if self.interactive => self.ask_or("Save into folder [.]: ", ".")?,
            None => ".".to_owned(),
        };
        let chosen = transfer::select(&listing, &names)?;
        let saved =
            transfer::download(&mut self.link, &url.code, &chosen, dir.as_ref(), existing, &self.console)
                .map_err(|err| match err {
                    ClientError::WouldReplace { .. } => ClientError::Usage(format!(
                        "{err}: add --overwrite to replace, or --skip-existing to keep what is there"
                    )),
                    other => other,
                })?;
        self.print(&saved_lines(&saved))
    }
}

/// Splits a list of paths: by commas when there are any (so names may hold spaces), else by
/// whitespace.
fn split_list(text: &str) -> Vec<String> {
    let parts: Vec<&str> =
        if text.contains(',') { text.split(',').collect() } else { text.split_whitespace().collect() };
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// Removes the switch `flag` from a command's arguments, returning the rest and whether it was there.
fn take_switch(text: &str, flag: &str) -> (String, bool) {
    let words: Vec<&str> = text.split(' ').collect();
    let rest: Vec<&str> = words.iter().copied().filter(|word| *word != flag).collect();
    (rest.join(" ").trim().to_owned(), rest.len() < words.len())
}

/// Removes `flag VALUE` from a command's arguments, returning the rest and the value.
fn take_flag(text: &str, flag: &str) -> (String, Option<String>) {
    let words: Vec<&str> = text.split(' ').collect();
    match words.iter().position(|w| *w == flag) {
        Some(at) if at + 1 < words.len() => {
            let value = words[at + 1].to_owned();
            let rest: Vec<&str> = words[..at].iter().chain(&words[at + 2..]).copied().collect();
            (rest.join(" ").trim().to_owned(), Some(value))
        }
        _ => (text.trim().to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_or_spaces() {
        assert_eq!(split_list("a.txt, my file.txt,b"), ["a.txt", "my file.txt", "b"]);
        assert_eq!(split_list("a.txt b.txt"), ["a.txt", "b.txt"]);
        assert!(split_list("  ").is_empty());
    }

    #[test]
    fn the_menus_lines_line_up() {
        for line in MENU.lines() {
            assert!(line.starts_with("  ") && !line.starts_with("   "), "{line:?}");
            assert_eq!(line.find(')'), Some(3), "{line:?}");
        }
    }

    #[test]
    fn flags_are_taken_out() {
        assert_eq!(take_switch("u --overwrite x", "--overwrite"), ("u x".to_owned(), true));
        assert_eq!(take_switch("u x", "--overwrite"), ("u x".to_owned(), false));
        assert_eq!(take_flag("a, b --expires 2h", "--expires"), ("a, b".to_owned(), Some("2h".to_owned())));
        assert_eq!(take_flag("url --dir out x", "--dir"), ("url x".to_owned(), Some("out".to_owned())));
        assert_eq!(take_flag("a b", "--dir"), ("a b".to_owned(), None));
    }
}
