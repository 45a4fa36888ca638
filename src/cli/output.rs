//! What the command line and the shell write to stdout: lines (`SIZE<TAB>SHA256<TAB>PATH`, saved
//! paths, a share's facts) and the `--json` objects. Pure text; the caller writes it.

use std::io::Write;

use crate::cli::json;
use crate::client::transfer::{Listing, SavedFile, UploadReport};
use crate::client::{ClientError, RemoteFile, Result, ShareInfo, ShareUrl};

/// Writes `text` to stdout (or what stands for it) and flushes it.
pub fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|err| ClientError::Usage(format!("cannot write to stdout: {err}")))
}

/// `SIZE<TAB>SHA256<TAB>PATH` lines, then `-<TAB>-<TAB>PATH/` for each empty folder.
pub fn list_lines(files: &[RemoteFile], folders: &[String]) -> String {
    let files = files.iter().map(|f| format!("{}\t{}\t{}\n", f.size, f.sha256, f.path));
    files.chain(folders.iter().map(|folder| format!("-\t-\t{folder}/\n"))).collect()
}

/// Local paths of saved files, one per line.
pub fn saved_lines(saved: &[SavedFile]) -> String {
    saved.iter().map(|s| format!("{}\n", s.local.display())).collect()
}

/// The files as a JSON array of `path`, `size` and `sha256`.
fn files_json(files: &[RemoteFile]) -> String {
    let items: Vec<String> = files
        .iter()
        .map(|f| {
            format!("{{\"path\":{},\"size\":{},\"sha256\":\"{}\"}}", json::string(&f.path), f.size, f.sha256)
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// `upload --json`: the share URL, its code, owner token and expiry, and its files.
pub fn upload_json(url: &ShareUrl, report: &UploadReport) -> String {
    let files: Vec<RemoteFile> = report
        .files
        .iter()
        .map(|f| RemoteFile { path: f.path.clone(), size: f.size, sha256: f.sha256 })
        .collect();
    format!(
        "{{\"url\":{},\"code\":{},\"owner_token\":{},\"expires\":{},\"files\":{}}}\n",
        json::string(&url.to_string()),
        json::string(&url.code),
        json::string(&report.share.owner_token),
        json::string(&report.share.expires),
        files_json(&files)
    )
}

/// A download budget, or `unlimited`.
fn downloads_text(count: Option<u64>) -> String {
    count.map_or("unlimited".into(), |n| n.to_string())
}

/// The share's facts as `key: value` lines, then `SIZE<TAB>SHA256<TAB>DOWNLOADS-LEFT<TAB>PATH`.
pub fn info_lines(url: &ShareUrl, info: &ShareInfo, files: &[(RemoteFile, Option<u64>)]) -> String {
    let mut text = format!(
        "url: {url}\nexpires: {}\nfiles: {}\nbytes: {}\ndownloads per file: {}\n",
        info.expires,
        info.files,
        info.bytes,
        downloads_text(info.downloads)
    );
    for (file, left) in files {
        text.push_str(&format!("{}\t{}\t{}\t{}\n", file.size, file.sha256, downloads_text(*left), file.path));
    }
    text
}

/// `info --json`: the share's facts, and each file with its downloads left.
pub fn info_json(url: &ShareUrl, info: &ShareInfo, files: &[(RemoteFile, Option<u64>)]) -> String {
    let number = |count: Option<u64>| count.map_or("null".into(), |n| n.to_string());
    let items: Vec<String> = files
        .iter()
        .map(|(f, left)| {
            format!(
                "{{\"path\":{},\"size\":{},\"sha256\":\"{}\",\"downloads_left\":{}}}",
                json::string(&f.path),
                f.size,
                f.sha256,
                number(*left)
            )
        })
        .collect();
    format!(
        "{{\"url\":{},\"expires\":{},\"bytes\":{},\"downloads\":{},\"files\":[{}]}}\n",
        json::string(&url.to_string()),
        json::string(&info.expires),
        info.bytes,
        number(info.downloads),
        items.join(",")
    )
}

/// `list --json`: the share URL, its expiry, its files and its empty folders.
pub fn list_json(url: &ShareUrl, listing: &Listing) -> String {
    let folders: Vec<String> = listing.folders.iter().map(|folder| json::string(folder)).collect();
    format!(
        "{{\"url\":{},\"expires\":{},\"files\":{},\"folders\":[{}]}}\n",
        json::string(&url.to_string()),
        json::string(&listing.info.expires),
        files_json(&listing.files),
        folders.join(",")
    )
}

/// `download --json`: each saved file and where it went.
pub fn download_json(url: &ShareUrl, saved: &[SavedFile]) -> String {
    let items: Vec<String> = saved
        .iter()
        .map(|s| {
            format!(
                "{{\"path\":{},\"size\":{},\"sha256\":\"{}\",\"saved_to\":{}}}",
                json::string(&s.file.path),
                s.file.size,
                s.file.sha256,
                json::string(&s.local.to_string_lossy())
            )
        })
        .collect();
    format!("{{\"url\":{},\"files\":[{}]}}\n", json::string(&url.to_string()), items.join(","))
}
