#!/usr/bin/env python3
"""Benchmarks anonshare against stock FTP servers, vsftpd, pyftpdlib and pure-ftpd, on loopback.

Installs what is missing (vsftpd, curl, lftp and openssl from Debian packages; pure-ftpd's Debian
package unpacked under target/bench/, since it conflicts with vsftpd's; pyftpdlib from PyPI into
a virtual environment under target/bench/), starts every server with a temporary root, runs each
workload several times with the servers in alternation, prints a table of medians and ratios
ours/peer, and writes it with the machine and the exact commands to docs/BENCHMARKS.md (between
two marker lines; the rest of that file is kept).

"Ours" is anonshare-server driven by our own client, target/release/anonshare, which verifies
every file with SHA-256; the server syncs every file it stores. The peers are driven by curl and
lftp. A peer's verified download is curl followed by the fastest SHA-256 tool on the machine
(timed at start: openssl or coreutils sha256sum), and curl alone is its own row. Uploads count
the `sync` that makes the peers' bytes as durable as ours. The many-clients and connect
workloads drive every server with the same client (curl, and a small loader here). Beside wall
time, every run's CPU seconds (user + system) of the server and of the client are recorded, and
the machine's own floors (a copy into tmpfs, a SHA-256, a loopback curl) are measured in the
same run.

Only the Python standard library is used. Every server started here is killed on the way out,
even on an error or Ctrl-C, and every file written lives in a temporary folder removed at the end.
"""

import argparse
import errno
import hashlib
import multiprocessing
import os
import platform
import resource
import selectors
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_BIN = REPO / "target" / "release" / "anonshare-server"
CLIENT_BIN = REPO / "target" / "release" / "anonshare"
VENV = REPO / "target" / "bench" / "venv"
# pure-ftpd's Debian package, unpacked here rather than installed: it conflicts with vsftpd's.
PURE_FTPD_DIR = REPO / "target" / "bench" / "pure-ftpd"
PURE_FTPD = PURE_FTPD_DIR / "usr" / "sbin" / "pure-ftpd"
PURE_PW = PURE_FTPD_DIR / "usr" / "bin" / "pure-pw"
# pure-ftpd is driven through a virtual user (its anonymous root is the system's `ftp` home).
PURE_USER, PURE_PASSWORD = "bench", "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PYFTPDLIB_VERSION = "2.2.0"
DOC = REPO / "docs" / "BENCHMARKS.md"
QUICK_DOC = REPO / "target" / "bench" / "BENCHMARKS-quick.md"
BEGIN_MARK = "<!-- bench.py: generated from here -->"
END_MARK = "<!-- bench.py: generated up to here -->"
# The TLS rows have a block of their own, so `--only tls` refreshes them alone.
TLS_BEGIN_MARK = "<!-- bench.py: TLS rows generated from here -->"
TLS_END_MARK = "<!-- bench.py: TLS rows generated up to here -->"
HOST = "127.0.0.1"

# Bounded waits: a server has this long to start listening, a client this long to finish.
START_DEADLINE = 20.0
RUN_DEADLINE = 600.0
# Clients at once in the paced connect workload, below every server's listen backlog.
PACED_CONNECTS = 16
# lftp: no TLS probe, no retry loops, and no per-file time setting after an upload, so the peer
# does the least a stock client must.
LFTP_SETTINGS = (
    "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 30; "
    "set ftp:use-site-utime no; set ftp:use-site-utime2 no"
)
# How curl speaks to a server that requires TLS: explicit FTPS on control and data
# connections, the run's self-signed certificate unchecked.
CURL_TLS = ["--ssl-reqd", "-k"]
# Lines added to vsftpd's TLS configuration beyond the ones the task names (none so far).
VSFTPD_TLS_EXTRA = []
# lftp against a server that requires TLS: the same, with TLS forced on the control and data
# connections and the run's self-signed certificate unchecked. The small-file TLS rows use lftp,
# as the plaintext ones do, rather than one curl for every file (a URL glob): against vsftpd
# with TLS, curl 7.88 stalls 0.2 s or 1 s on a control reply before most files, which would
# time the stalls.
LFTP_TLS_SETTINGS = LFTP_SETTINGS.replace(
    "set ftp:ssl-allow no", "set ftp:ssl-force yes; set ftp:ssl-protect-data yes; "
    "set ftp:ssl-allow-anonymous yes; set ssl:verify-certificate no")
# Each (preset, flags) pair: what --quick means.
QUICK = dict(big="64M", small_count=200, small_size="4K", clients=16, client_size="4M",
             connects=64, login_timeout=3.0, budget_files=200, budget_size="1K", command_files=2000,
             command_count=10000, rounds=3, warmup=1)
FULL = dict(big="1G", small_count=1000, small_size="4K", clients=64, client_size="16M",
            connects=300, login_timeout=30.0, budget_files=4000, budget_size="1K", command_files=9999,
            command_count=20000, rounds=5, warmup=1)
SIZE_FLAGS = ("big", "small_size", "client_size", "budget_size")


# ---------------------------------------------------------------------------------------------
# Small helpers


def parse_size(text):
    """'4K', '16M', '1G' or a plain number of bytes; powers of 1024."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size '{text}': expected bytes like 4096, 4K, 16M or 1G")


def show_size(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def log(text):
    print(text, file=sys.stderr, flush=True)


def free_port():
    """A port the OS just handed out on loopback, for servers that cannot report theirs."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port, process, deadline):
    """Polls until something accepts on the port, the process dies, or the deadline passes."""
    pause = 0.005
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on port {port}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
    raise RuntimeError(f"nothing listened on port {port} in {START_DEADLINE:.0f}s")


def run(argv, **kwargs):
    """Runs a client to completion; a hung client is killed at the deadline."""
    return subprocess.run(argv, timeout=RUN_DEADLINE, **kwargs)


def write_random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 << 20)
            f.write(os.urandom(n))
            left -= n
    os.chmod(path, 0o644)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def count_files(top):
    return sum(len(files) for _, _, files in os.walk(top))


def count_records(share_dir):
    """Files a share's manifest records (small ones live in its pack, not under blobs/)."""
    with open(share_dir / "manifest") as f:
        return sum(1 for line in f if line.startswith("F\t"))


def peak_rss_kib(pid):
    """VmHWM of a process: the most resident memory it ever had."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def session_cpu_seconds(sid):
    """User + system CPU seconds of every live process in session `sid`, with what their
    reaped children used: a server started in a session of its own, forks included."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(rest[3]) == sid:
            total += sum(int(x) for x in rest[11:15])  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def clients_cpu_seconds(in_harness=False):
    """CPU seconds of the clients this process ran and waited for; with `in_harness`, of its
    own too (the connect burst's clients run in the harness's own thread)."""
    total = 0.0
    for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF) if in_harness else (resource.RUSAGE_CHILDREN,):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_describe():
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" (src/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------------------------------------
# Installing the peers


def ensure_peers():
    """vsftpd, curl, lftp and openssl from Debian packages, pure-ftpd's package unpacked (as
    root only: it must start as root), pyftpdlib into a venv, and our binaries."""
    missing = [tool for tool in ("vsftpd", "curl", "lftp", "sha256sum", "openssl")
               if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    updated = False
    if missing:
        packages = ["coreutils" if tool == "sha256sum" else tool for tool in missing]
        log(f"installing {' '.join(packages)} with apt-get")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        updated = True
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    if os.geteuid() == 0 and not (PURE_FTPD.exists() and PURE_PW.exists()):
        log(f"unpacking pure-ftpd's Debian packages into {PURE_FTPD_DIR.relative_to(REPO)}")
        if not updated:
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        debs = PURE_FTPD_DIR.parent / "debs"
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        os.chmod(debs, 0o777)  # apt-get download runs as the _apt user where it can
        subprocess.run(["apt-get", "download", "-qq", "pure-ftpd", "pure-ftpd-common"], cwd=debs, check=True,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(PURE_FTPD_DIR)], check=True)
        shutil.rmtree(debs)
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import pyftpdlib, sys; sys.exit(pyftpdlib.__ver__ != sys.argv[1])",
             PYFTPDLIB_VERSION]
    if not python.exists() or subprocess.run(probe).returncode != 0:
        log(f"installing pyftpdlib {PYFTPDLIB_VERSION} into {VENV.relative_to(REPO)}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"pyftpdlib=={PYFTPDLIB_VERSION}"],
                       check=True)
    if not (SERVER_BIN.exists() and CLIENT_BIN.exists()):
        log("building anonshare (cargo build --release)")
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)


def vsftpd_path():
    return shutil.which("vsftpd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


# ---------------------------------------------------------------------------------------------
# Servers. Each has a temporary root; `public` is the folder a stock client reads and writes.


class Server:
    name = "?"
    is_ours = False
    # Who a stock client logs in as: anonymous unless a peer needs a user of its own.
    user, password = "anonymous", ""
    # Whether a stock client must speak TLS to it (curl --ssl-reqd -k).
    tls = False

    def __init__(self, base):
        self.base = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=base))
        self.root = self.base / "root"
        self.log_path = self.base / "server.log"
        self.process = None
        self.port = None
        self._log = None

    def stop(self):
        """Kills the server and every process it forked (its own process group)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.root.exists():
            os.chmod(self.root, 0o755)  # vsftpd's root is read-only; let the cleanup in

    def _spawn(self, argv, stdout=subprocess.DEVNULL):
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=self._log,
                                        start_new_session=True)

    def url(self, path=""):
        return f"ftp://{HOST}:{self.port}/{path}"

    def curl_auth(self):
        """curl's login flags, and its TLS flags for a server that requires TLS."""
        auth = [] if self.user == "anonymous" else ["-u", f"{self.user}:{self.password}"]
        return auth + (CURL_TLS if self.tls else [])

    def cpu_seconds(self):
        """CPU the server used so far, every process it forked included."""
        return session_cpu_seconds(self.process.pid)


class Anonshare(Server):
    name = "anonshare"
    is_ours = True

    def __init__(self, base, connections, tls=False):
        super().__init__(base)
        self.connections = connections
        self.tls = tls

    @staticmethod
    def argv(root="ROOT", connections="N", tls=False):
        n = str(connections)
        # The defaults refuse a load test from one address: lift them.
        limits = ["--workers", n, "--max-clients", n, "--max-per-ip", n,
                  "--max-shares-per-hour", "1000000", "--max-share-misses", "1000000",
                  "--min-free-disk", "0"]
        # Plaintext rows compare like with like (a loopback server offers TLS by default and our
        # client takes it); TLS rows require it, so every byte of ours is encrypted.
        return [str(SERVER_BIN), "--listen", f"{HOST}:0", "--root", str(root), *limits,
                "--tls", "required" if tls else "off"]

    def start(self):
        self._spawn(self.argv(self.root, self.connections, self.tls), stdout=subprocess.PIPE)
        line = self._first_line()
        self.port = int(line.rsplit(":", 1)[1])

    def _first_line(self):
        """The first stdout line, `... listening on HOST:PORT`, read with a deadline."""
        deadline = time.monotonic() + START_DEADLINE
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError("anonshare-server printed no address in time")
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"anonshare-server exited: see {self.log_path}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode().strip()

    def peak_rss_kib(self):
        return peak_rss_kib(self.process.pid)

    def share_dir(self, url):
        code = share_base(url).rstrip("/").rsplit("/", 1)[1]
        return self.root / "shares" / code


class Vsftpd(Server):
    name = "vsftpd"

    def argv(self, config="CONFIG"):
        return [vsftpd_path(), str(config)]

    def start(self):
        # vsftpd wants a root it cannot write, with a writable folder inside.
        self.root.mkdir(mode=0o755)
        (self.root / "pub").mkdir()
        os.chmod(self.root / "pub", 0o777)
        empty = self.base / "empty"
        empty.mkdir()
        self.port = free_port()
        config = self.base / "vsftpd.conf"
        config.write_text("\n".join([
            "listen=YES", "listen_ipv6=NO", f"listen_address={HOST}", f"listen_port={self.port}",
            "background=NO", "anonymous_enable=YES", "local_enable=NO", f"anon_root={self.root}",
            "write_enable=YES", "anon_upload_enable=YES", "anon_mkdir_write_enable=YES",
            "no_anon_password=YES", "run_as_launching_user=YES", "seccomp_sandbox=NO",
            f"secure_chroot_dir={empty}", "max_clients=4000", "max_per_ip=4000",
            "xferlog_enable=NO", "dirmessage_enable=NO", *self.extra_config(), "",
        ]))
        os.chmod(self.root, 0o555)
        self._spawn(self.argv(config))
        wait_for_port(self.port, self.process, time.monotonic() + START_DEADLINE)

    def config_lines(self):
        text = (self.base / "vsftpd.conf").read_text().replace(str(self.base), "BASE")
        return text.replace(f"listen_port={self.port}", "listen_port=PORT").strip().splitlines()

    def extra_config(self):
        return []


class VsftpdTls(Vsftpd):
    """vsftpd with explicit FTPS required of anonymous users too, on a self-signed certificate
    made for the run; curl resumes the control session on every data connection, so vsftpd's
    default require_ssl_reuse=YES stays."""
    tls = True

    def extra_config(self):
        cert, key = self.base / "cert.pem", self.base / "key.pem"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
             "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        return ["ssl_enable=YES", "allow_anon_ssl=YES", "force_anon_data_ssl=YES", "force_anon_logins_ssl=YES",
                f"rsa_cert_file={cert}", f"rsa_private_key_file={key}", *VSFTPD_TLS_EXTRA]


# pyftpdlib as `python -m pyftpdlib -i HOST -p PORT -d ROOT -w` starts it (anonymous, with
# write rights), but with a listen queue of 1024, as anonshare has: with its default of 100 a
# burst of 300 connections overflows it, and the dropped connections wait for the kernel to
# try again.
PYFTPDLIB_MAIN = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
authorizer = DummyAuthorizer()
authorizer.add_anonymous(root, perm="elradfmwMT")
FTPHandler.authorizer = authorizer
FTPServer((host, port), FTPHandler, backlog=1024).serve_forever()
"""


class Pyftpdlib(Server):
    name = "pyftpdlib"

    @staticmethod
    def argv(root="ROOT", port="PORT"):
        return [str(VENV / "bin" / "python"), "-c", PYFTPDLIB_MAIN, HOST, str(port), str(root)]

    def start(self):
        self.root.mkdir()
        (self.root / "pub").mkdir()
        self.port = free_port()
        self._spawn(self.argv(self.root, self.port))
        wait_for_port(self.port, self.process, time.monotonic() + START_DEADLINE)


class PureFtpd(Server):
    """pure-ftpd as Debian builds it, started as root (it must be), with a virtual user whose
    home is the temporary root: its anonymous login would serve the system's `ftp` home."""
    name = "pure-ftpd"
    user, password = PURE_USER, PURE_PASSWORD

    @staticmethod
    def argv(db="BASE/pureftpd.pdb", port="PORT", pidfile="BASE/pid"):
        # -E no anonymous login, -A chroot, -H no DNS, -j make the home, -c/-C clients in all and
        # per address (the default 50 would refuse the 64 clients).
        return [str(PURE_FTPD), "-S", f"{HOST},{port}", "-l", f"puredb:{db}", "-E", "-A", "-H", "-j",
                "-c", "4000", "-C", "4000", "-g", str(pidfile)]

    def start(self):
        os.chmod(self.base, 0o755)  # the virtual user (nobody) must reach its home
        self.root.mkdir(mode=0o755)
        (self.root / "pub").mkdir()
        os.chmod(self.root / "pub", 0o777)
        db = self.base / "pureftpd.pdb"
        passwd = self.base / "pureftpd.passwd"
        # pure-pw's own hash (argon2id, 255 passes) costs about 2 s per login here: a crypt(3)
        # SHA-512 hash from openssl keeps the login as cheap as the other peers' anonymous one.
        hashed = run(["openssl", "passwd", "-6", PURE_PASSWORD], capture_output=True, text=True,
                     check=True).stdout.strip()
        passwd.write_text(f"{PURE_USER}:{hashed}:65534:65534::{self.root}/./::::::::::::\n")
        subprocess.run([str(PURE_PW), "mkdb", str(db), "-f", str(passwd)], check=True)
        self.port = free_port()
        self._spawn(self.argv(db, self.port, self.base / "pid"))
        wait_for_port(self.port, self.process, time.monotonic() + START_DEADLINE)

    @staticmethod
    def available():
        return os.geteuid() == 0 and PURE_FTPD.exists()


# ---------------------------------------------------------------------------------------------
# Ours: the anonshare client.


# Connections our client uses at once, as many as lftp's mirror --parallel=8 here.
OURS_PARALLEL = "8"


def share_base(url):
    """A share URL without its `#pin=` fragment (printed when the server speaks TLS)."""
    return url.split("#", 1)[0]


def ours_upload(server, paths, flags=()):
    """Uploads with our client; returns the share URL. Raises on failure."""
    done = run([str(CLIENT_BIN), "--parallel", OURS_PARALLEL, "--server", f"{HOST}:{server.port}", "upload",
                *flags, *map(str, paths)],
               capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"anonshare upload failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def ours_download(url, target):
    done = run([str(CLIENT_BIN), "--parallel", OURS_PARALLEL, "download", url, "--dir", str(target)],
               capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"anonshare download failed ({done.returncode}): {done.stderr.strip()}")


def lftp_settings(tls):
    return LFTP_TLS_SETTINGS if tls else LFTP_SETTINGS


def lftp(server, script):
    argv = ["lftp", "-u", f"{server.user},{server.password}", "-p", str(server.port), HOST, "-e",
            f"{lftp_settings(server.tls)}; {script}; bye"]
    done = run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"lftp failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def timed(action):
    """Seconds that `action()` took."""
    return timed_value(action)[0]


def timed_value(action):
    """Seconds that `action()` took, and what it returned."""
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def synced_seconds():
    """Flushes every dirty page; returns how long that took. Runs between rounds so that no
    round pays for the write-back of another, and tells what a peer's upload left unsynced."""
    start = time.perf_counter()
    os.sync()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Workloads. Each prepares every server, then `run(server, round)` returns a Sample.


@dataclass
class Sample:
    seconds: float
    sync: float = 0.0  # write-back left behind by the run (uploads)
    failures: int = 0
    transfer: float = None  # a peer's verified download: the curl part alone
    server_cpu: float = 0.0  # user + system seconds of the server during the run
    client_cpu: float = 0.0  # the same of the clients


@dataclass
class Workload:
    key: str
    title: str
    goal: str
    # Whether ours meets the goal given the ratio of medians ours/peer (time).
    met: object
    servers: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    commands: list = field(default_factory=list)
    throughput_bytes: int = 0  # set for workloads reported as aggregate throughput
    reports_sync: bool = False
    tls: bool = False  # ours with --tls required against vsftpd with TLS, both sides encrypted
    runner: object = None  # the workload's object, for rows of their own


class BigDownload:
    """One big file, downloaded into tmpfs and verified: ours checks SHA-256 as it receives;
    a peer's download is curl, then the fastest SHA-256 tool on the machine."""

    def __init__(self, ctx, tls=False):
        self.ctx = ctx
        self.w = Workload("tls-big-down" if tls else "big-down", f"{show_size(ctx.big)} download into tmpfs, verified",
                          "≤ 1.0" if tls else "≤ 0.75", (lambda r: r <= 1.0) if tls else (lambda r: r <= 0.75),
                          tls=tls)

    def prepare(self, server):
        if server.is_ours:
            server.share_url = ours_upload(server, [self.ctx.big_file])
        else:
            os.link(self.ctx.big_file, server.root / "pub" / self.ctx.big_file.name)

    def run(self, server, round_no):
        target = self.ctx.tmpfs / f"{server.name}-{round_no}"
        target.mkdir()
        try:
            if server.is_ours:
                seconds = timed(lambda: ours_download(server.share_url, target))
                got = target / self.ctx.big_file.name
                failures = int(got.stat().st_size != self.ctx.big)
            else:
                got = target / self.ctx.big_file.name
                url = server.url(f"pub/{self.ctx.big_file.name}")
                fetch = timed(lambda: run(["curl", "-sS", *server.curl_auth(), "-o", str(got), url], check=True))
                check, out = timed_value(lambda: run([*self.ctx.sha_tool, str(got)], check=True,
                                                     capture_output=True, text=True).stdout)
                seconds = fetch + check
                failures = int(out.split()[0] != self.ctx.big_sha256)
                return Sample(seconds, failures=failures, transfer=fetch)
        finally:
            shutil.rmtree(target)
        return Sample(seconds, failures=failures)

    def commands(self):
        return [
            f"ours: anonshare --parallel 8 download ftp://127.0.0.1:PORT/CODE/{pin(self.w)} --dir TMPFS/DIR",
            f"peer: curl -sS {tls_flags(self.w)}-o TMPFS/DIR/big.bin ftp://127.0.0.1:PORT/pub/big.bin"
            f" && {' '.join(self.ctx.sha_tool)} TMPFS/DIR/big.bin",
        ]


class BigUpload:
    """One big file uploaded. Ours hashes as it sends and checks the SHA-256 in the server's 226,
    and the server syncs before that 226; a peer is curl -T. The sync that follows each run is timed and reported beside the peer."""

    def __init__(self, ctx, tls=False):
        self.ctx = ctx
        self.w = Workload("tls-big-up" if tls else "big-up", f"{show_size(ctx.big)} upload, verified, synced",
                          "≤ 1.0 (peer + sync)", lambda r: r <= 1.0, reports_sync=True, tls=tls)

    def prepare(self, server):
        pass

    def run(self, server, round_no):
        name = self.ctx.big_file.name
        if server.is_ours:
            seconds, url = timed_value(lambda: ours_upload(server, [self.ctx.big_file]))
            sync = synced_seconds()
            stored = server.share_dir(url)
            failures = 0
            shutil.rmtree(stored)
        else:
            folder = f"pub/up/{round_no}"
            argv = ["curl", "-sS", *server.curl_auth(), "--ftp-create-dirs", "-T", str(self.ctx.big_file),
                    server.url(folder + "/")]
            seconds = timed(lambda: run(argv, check=True))
            sync = synced_seconds()
            stored = server.root / folder / name
            failures = int(stored.stat().st_size != self.ctx.big)
            shutil.rmtree(stored.parent)
        return Sample(seconds, sync=sync, failures=failures)

    def commands(self):
        return [
            "ours: anonshare --parallel 8 --server 127.0.0.1:PORT upload DATA/big.bin",
            f"peer: curl -sS {tls_flags(self.w)}--ftp-create-dirs -T DATA/big.bin ftp://127.0.0.1:PORT/pub/up/ROUND/",
        ]


class SmallDownload:
    """Many small files in one folder. Ours: anonshare download (one connection, every file
    verified); a peer: lftp mirror --parallel=8, unverified."""

    def __init__(self, ctx, tls=False):
        self.ctx = ctx
        self.w = Workload("tls-small-down" if tls else "small-down",
                          f"{ctx.small_count} files of {show_size(ctx.small_size)}, download",
                          "≤ 1.0" if tls else "≤ 0.5", (lambda r: r <= 1.0) if tls else (lambda r: r <= 0.5),
                          tls=tls)

    def prepare(self, server):
        if server.is_ours:
            server.share_url = ours_upload(server, [self.ctx.small_dir])
        else:
            shutil.copytree(self.ctx.small_dir, server.root / "pub" / self.ctx.small_dir.name)

    def run(self, server, round_no):
        target = self.ctx.tmpfs / f"{server.name}-{round_no}"
        target.mkdir()
        name = self.ctx.small_dir.name
        try:
            if server.is_ours:
                seconds = timed(lambda: ours_download(server.share_url, target))
            else:
                script = f"mirror --parallel=8 pub/{name} {target / name}"
                seconds = timed(lambda: lftp(server, script))
            failures = self.ctx.small_count - count_files(target / name)
        finally:
            shutil.rmtree(target)
        return Sample(seconds, failures=failures)

    def commands(self):
        return [
            f"ours: anonshare --parallel 8 download ftp://127.0.0.1:PORT/CODE/{pin(self.w)} --dir TMPFS/DIR",
            f"peer: lftp -u anonymous, -p PORT 127.0.0.1 -e '{lftp_settings(self.w.tls)}; "
            "mirror --parallel=8 pub/small TMPFS/DIR/small; bye'",
        ]


class SmallUpload:
    """Many small files uploaded. Ours: anonshare upload of the folder (each file declared,
    stored, synced); a peer: lftp mirror -R --parallel=8."""

    def __init__(self, ctx, tls=False):
        self.ctx = ctx
        self.w = Workload("tls-small-up" if tls else "small-up",
                          f"{ctx.small_count} files of {show_size(ctx.small_size)}, upload, synced",
                          "≤ 1.0 (peer + sync)", lambda r: r <= 1.0, reports_sync=True, tls=tls)

    def prepare(self, server):
        pass

    def run(self, server, round_no):
        if server.is_ours:
            seconds, url = timed_value(lambda: ours_upload(server, [self.ctx.small_dir]))
            sync = synced_seconds()
            stored = server.share_dir(url)
            failures = self.ctx.small_count - count_records(stored)
            shutil.rmtree(stored)
        else:
            folder = server.root / "pub" / "up" / str(round_no)
            script = f"mirror -R --parallel=8 --no-perms {self.ctx.small_dir} pub/up/{round_no}"
            seconds = timed(lambda: lftp(server, script))
            sync = synced_seconds()
            failures = self.ctx.small_count - count_files(folder)
            shutil.rmtree(folder)
        return Sample(seconds, sync=sync, failures=failures)

    def commands(self):
        return [
            "ours: anonshare --parallel 8 --server 127.0.0.1:PORT upload DATA/small",
            f"peer: lftp -u anonymous, -p PORT 127.0.0.1 -e '{lftp_settings(self.w.tls)}; "
            "mirror -R --parallel=8 --no-perms DATA/small pub/up/ROUND; bye'",
        ]


def tls_flags(w):
    return " ".join(CURL_TLS) + " " if w.tls else ""


def pin(w):
    """What a share URL carries after its code when the server speaks TLS."""
    return "#pin=PIN" if w.tls else ""


def all_at_once(argvs):
    """Starts every command at once and waits for all: the seconds from the first start to the
    last exit, and each one's (stdout, exit code). Any left running past the deadline is killed."""
    processes = []
    start = time.perf_counter()
    try:
        for argv in argvs:
            processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                              stdin=subprocess.DEVNULL))
        outputs = [(p.communicate(timeout=RUN_DEADLINE)[0], p.returncode) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    return time.perf_counter() - start, outputs


class ManyClients:
    """N curl processes started at once, each downloading the same file to /dev/null. Timed
    from the first start to the last exit; a client that fails or gets short bytes counts."""

    def __init__(self, ctx, size, key=None):
        self.ctx = ctx
        self.size = size
        self.file = ctx.data / f"client-{size}.bin"
        if not self.file.exists():
            write_random_file(self.file, size)
        self.w = Workload(key or "clients", f"{ctx.clients} clients each downloading {show_size(size)} at once",
                          "throughput ≥ 1.0, 0 failures", lambda r: r <= 1.0)
        self.w.throughput_bytes = ctx.clients * size

    def prepare(self, server):
        if server.is_ours:
            share = ours_upload(server, [self.file])
            server.client_url = share_base(share) + self.file.name
        else:
            os.link(self.file, server.root / "pub" / self.file.name)
            server.client_url = server.url(f"pub/{self.file.name}")

    def run(self, server, round_no):
        argv = ["curl", "-sS", *server.curl_auth(), "-o", "/dev/null", "-w", "%{size_download}", server.client_url]
        seconds, outputs = all_at_once([argv] * self.ctx.clients)
        failures = sum(1 for out, code in outputs if code != 0 or out.strip() != str(self.size).encode())
        return Sample(seconds, failures=failures)

    def commands(self):
        return [f"each of {self.ctx.clients} at once: curl -sS -o /dev/null -w '%{{size_download}}' "
                "ftp://127.0.0.1:PORT/PATH/client.bin"]


class VerifiedClients(ManyClients):
    """The same crowd, each client saving the file into tmpfs and checking its SHA-256: ours is
    our client (which verifies as the bytes arrive), a peer's is curl and then the fastest
    SHA-256 tool, as in the big download. Timed from the first start to the last exit."""

    def __init__(self, ctx, size):
        super().__init__(ctx, size, key="clients-verified")
        self.w.title = f"{ctx.clients} clients each downloading {show_size(size)} at once, verified"
        self.sha256 = sha256_of(self.file)

    def prepare(self, server):
        super().prepare(server)
        if server.is_ours:
            server.share_url = server.client_url[:-len(self.file.name)]

    def run(self, server, round_no):
        top = self.ctx.tmpfs / f"{server.name}-{round_no}"
        top.mkdir()
        tool = " ".join(map(shlex.quote, self.ctx.sha_tool))
        argvs = []
        for i in range(self.ctx.clients):
            target = top / str(i)
            target.mkdir()
            if server.is_ours:
                argvs.append([str(CLIENT_BIN), "download", server.share_url, "--dir", str(target)])
            else:
                got = shlex.quote(str(target / self.file.name))
                auth = " ".join(map(shlex.quote, server.curl_auth()))
                argvs.append(["sh", "-c", f"curl -sS {auth} -o {got} {shlex.quote(server.client_url)} && {tool} {got}"])
        seconds, outputs = all_at_once(argvs)
        try:
            if server.is_ours:
                # Our client puts a file in place only once its SHA-256 matched.
                failures = sum(1 for i, (_, code) in enumerate(outputs)
                               if code != 0 or not (top / str(i) / self.file.name).is_file())
            else:
                failures = sum(1 for out, code in outputs
                               if code != 0 or out.split()[:1] != [self.sha256.encode()])
        finally:
            shutil.rmtree(top)
        return Sample(seconds, failures=failures)

    def commands(self):
        tool = " ".join(self.ctx.sha_tool)
        return [f"ours, each of {self.ctx.clients} at once: anonshare download ftp://127.0.0.1:PORT/CODE/ --dir TMPFS/DIR/N",
                f"peer, each of {self.ctx.clients} at once: curl -sS -o TMPFS/DIR/N/client.bin "
                f"ftp://127.0.0.1:PORT/PATH/client.bin && {tool} TMPFS/DIR/N/client.bin"]


def ftp_reply(reader):
    """Reads one reply (multi-line aware) and returns its code."""
    line = reader.readline()
    if len(line) < 4:
        raise ConnectionError(f"bad reply {line!r}")
    code = line[:3]
    if line[3:4] == b"-":
        while True:
            line = reader.readline()
            if not line:
                raise ConnectionError("connection closed inside a reply")
            if line[:3] == code and line[3:4] == b" ":
                break
    return int(code)


def login_and_quit(server, timeout):
    """One client: connect, read the greeting, log in (as anonymous where the server allows),
    QUIT, read the goodbye."""
    with socket.create_connection((HOST, server.port), timeout=timeout) as s:
        reader = s.makefile("rb")
        if ftp_reply(reader) != 220:
            raise ConnectionError("no 220 greeting")
        s.sendall(f"USER {server.user}\r\n".encode())
        code = ftp_reply(reader)
        if code == 331:
            s.sendall(f"PASS {server.password or 'bench@example.org'}\r\n".encode())
            code = ftp_reply(reader)
        if code != 230:
            raise ConnectionError(f"login got {code}")
        s.sendall(b"QUIT\r\n")
        if ftp_reply(reader) != 221:
            raise ConnectionError("no 221 goodbye")


def login_burst(server, n, timeout):
    """`n` clients at once, driven by this one thread over a selector: each connects, reads the
    220, logs in, QUITs and reads the 221 as the server's replies come. One thread adds no
    switches between the harness's threads to what is timed (with a thread per client, the
    interpreter's lock made the harness the slowest party against a server that answers in
    microseconds). Gives up on the clients left when no reply comes for `timeout` seconds.
    Returns how many failed."""
    user = f"USER {server.user}\r\n".encode()
    password = f"PASS {server.password or 'bench@example.org'}\r\n".encode()
    selector = selectors.DefaultSelector()
    failures = 0
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if sock.connect_ex((HOST, server.port)) not in (0, errno.EINPROGRESS):
            failures += 1
            sock.close()
            continue
        # The greeting is the first thing read: a refused connection reads as an error.
        selector.register(sock, selectors.EVENT_READ, {"buffer": b"", "open": None, "want": (220,)})

    def finish(sock, failed):
        nonlocal failures
        failures += failed
        selector.unregister(sock)
        sock.close()

    def answer(sock, state, code):
        """The next step after a whole reply with `code`; False when the client is done."""
        if code not in state["want"]:
            finish(sock, 1)
            return False
        reply = {220: (user, (230, 331)), 331: (password, (230,)), 230: (b"QUIT\r\n", (221,))}
        if code == 221:
            finish(sock, 0)
            return False
        line, state["want"] = reply[code]
        if sock.send(line) != len(line):
            finish(sock, 1)
            return False
        return True

    while selector.get_map():
        events = selector.select(timeout)
        if not events:
            for key in list(selector.get_map().values()):
                finish(key.fileobj, 1)
            break
        for key, _ in events:
            sock, state = key.fileobj, key.data
            try:
                data = sock.recv(4096)
            except OSError:
                finish(sock, 1)
                continue
            if not data:
                finish(sock, 1)
                continue
            state["buffer"] += data
            while b"\n" in state["buffer"]:
                line, state["buffer"] = state["buffer"].split(b"\n", 1)
                # A multi-line reply ends at the line with its code and a space.
                if state["open"] is None and line[3:4] == b"-":
                    state["open"] = line[:3]
                    continue
                if state["open"] is not None and not (line[:3] == state["open"] and line[3:4] == b" "):
                    continue
                state["open"] = None
                if not answer(sock, state, int(line[:3]) if line[:3].isdigit() else -1):
                    break
    selector.close()
    return failures


class Connects:
    """N clients: connect, log in, QUIT. With no `at_once` they all start together (a burst),
    driven by one thread over a selector (`login_burst`); with `at_once` that many processes
    take the N clients in turn. Timed from the release until the last one is done. A client
    waits at most --login-timeout for the connection and for each reply.

    The paced clients are processes, not threads: 16 threads of one Python process share its
    lock on the interpreter, and against a server that answers within microseconds they spent
    their time handing it to each other (the harness's voluntary context switches rose from
    about 4 to 15-23 per login, its CPU doubled), so the row measured the harness."""

    def __init__(self, ctx, at_once=None):
        self.ctx = ctx
        self.at_once = at_once
        key, how = ("connect", "") if at_once is None else ("connect-paced", f", {at_once} at a time")
        self.w = Workload(key, f"{ctx.connects} clients connect + log in + quit{how}", "≤ 1.0",
                          lambda r: r <= 1.0)

    def prepare(self, server):
        pass

    def run(self, server, round_no):
        if self.at_once is not None:
            return self.run_paced(server)
        start = time.perf_counter()
        failures = login_burst(server, self.ctx.connects, self.ctx.args.login_timeout)
        return Sample(time.perf_counter() - start, failures=failures)

    def run_paced(self, server):
        """`at_once` processes, forked before the release, take the N clients in turn."""
        forked = multiprocessing.get_context("fork")
        left, failed = forked.Value("i", self.ctx.connects), forked.Value("i", 0)
        gate = forked.Barrier(self.at_once + 1)
        timeout = self.ctx.args.login_timeout

        def worker():
            gate.wait()
            while True:
                with left.get_lock():
                    if left.value == 0:
                        return
                    left.value -= 1
                try:
                    login_and_quit(server, timeout)
                except (OSError, ConnectionError):
                    with failed.get_lock():
                        failed.value += 1

        processes = [forked.Process(target=worker, daemon=True) for _ in range(self.at_once)]
        for p in processes:
            p.start()
        gate.wait()
        start = time.perf_counter()
        for p in processes:
            p.join(RUN_DEADLINE)
        seconds = time.perf_counter() - start
        stuck = 0
        for p in processes:
            if p.is_alive():
                stuck += 1
                p.kill()
                p.join()
        return Sample(seconds, failures=failed.value + stuck)

    def commands(self):
        how = ("all at once, from one thread over a selector" if self.at_once is None
               else f"{self.at_once} processes taking them in turn")
        return [f"{self.ctx.connects} clients of bench.py, {how}, each: connect, read 220, "
                f"USER anonymous, (PASS if 331), QUIT, read 221; {self.ctx.args.login_timeout:g} s socket timeout"]


class Budgeted:
    """Many small files downloaded with our client from a share with a download budget, and
    from the same files in a share without one, on one server, in alternation."""

    KINDS = ["budgeted", "unbudgeted"]

    # Most downloads a share may allow by the server's default --max-download-budget.
    BUDGET = "10000"

    def __init__(self, ctx):
        self.ctx = ctx
        self.folder = ctx.data / "budgeted"
        self.folder.mkdir()
        for i in range(ctx.args.budget_files):
            write_random_file(self.folder / f"b{i:05}.bin", ctx.args.budget_size)
        self.w = Workload("budget", f"{ctx.args.budget_files} files of {show_size(ctx.args.budget_size)} "
                          "downloaded from a budgeted share", "≤ 1.2 × unbudgeted", lambda r: r <= 1.2)

    def prepare(self, server):
        server.urls = {"budgeted": ours_upload(server, [self.folder], ["--max-downloads", self.BUDGET]),
                       "unbudgeted": ours_upload(server, [self.folder])}

    def run(self, server, round_no, kind):
        target = self.ctx.tmpfs / f"{kind}-{round_no}"
        target.mkdir()
        try:
            seconds = timed(lambda: ours_download(server.urls[kind], target))
            failures = self.ctx.args.budget_files - count_files(target / self.folder.name)
        finally:
            shutil.rmtree(target)
        return Sample(seconds, failures=failures)

    def commands(self):
        return [
            f"ours: anonshare --parallel 8 --server 127.0.0.1:PORT upload --max-downloads {self.BUDGET} "
            "DATA/budgeted (and again without --max-downloads), outside the timing",
            "ours: anonshare --parallel 8 download ftp://127.0.0.1:PORT/CODE/ --dir TMPFS/DIR, "
            "budgeted and unbudgeted share in turn",
        ]


class CommandCost:
    """Commands on the control connection against a budgeted share of a few files and one of
    many, on one server, in alternation: what one command costs the server must not grow with
    the share. One connection per run logs in and sends the commands one after another, each
    waiting for its reply, cycling through SIZE, MDTM, SITE INFO and MLST of files spread over
    the share."""

    KINDS = ["few", "many"]
    FEW = 10
    VERBS = ["SIZE", "MDTM", "SITE INFO", "MLST"]

    def __init__(self, ctx):
        self.ctx = ctx
        self.count = ctx.args.command_count
        self.files = {"few": self.FEW, "many": ctx.args.command_files}
        self.folders = {}
        for kind, n in self.files.items():
            folder = ctx.data / f"commands-{kind}"
            folder.mkdir()
            for i in range(n):
                (folder / f"c{i:05}.bin").write_bytes(i.to_bytes(4, "big"))
            self.folders[kind] = folder
        self.w = Workload("commands", f"{self.count} commands (SIZE, MDTM, SITE INFO, MLST in turn) on a budgeted "
                          f"share of {ctx.args.command_files} files against one of {self.FEW}",
                          "server CPU per command ≤ 1.2 × on the small share", lambda r: r <= 1.2)

    def prepare(self, server):
        server.urls = {kind: ours_upload(server, [folder], ["--max-downloads", Budgeted.BUDGET])
                       for kind, folder in self.folders.items()}

    def run(self, server, round_no, kind):
        code = share_base(server.urls[kind]).rstrip("/").rsplit("/", 1)[1]
        n = self.files[kind]
        # Files spread over the share, the same number of distinct ones for both shares.
        paths = [f"/{code}/commands-{kind}/c{(i * n) // self.FEW:05}.bin" for i in range(self.FEW)]
        failures = 0
        with socket.create_connection((HOST, server.port), timeout=RUN_DEADLINE) as s:
            reader = s.makefile("rb")
            if ftp_reply(reader) != 220:
                raise ConnectionError("no 220 greeting")
            s.sendall(b"USER anonymous\r\n")
            if ftp_reply(reader) == 331:
                s.sendall(b"PASS bench@example.org\r\n")
                ftp_reply(reader)
            start = time.perf_counter()
            for i in range(self.count):
                verb = self.VERBS[i % len(self.VERBS)]
                s.sendall(f"{verb} {paths[i % len(paths)]}\r\n".encode())
                if ftp_reply(reader) // 100 != 2:
                    failures += 1
            seconds = time.perf_counter() - start
            s.sendall(b"QUIT\r\n")
            ftp_reply(reader)
        return Sample(seconds, failures=failures)

    def cpu_per_thousand(self, kind):
        """Median server CPU seconds per 1000 commands."""
        return median([s.server_cpu for s in self.w.samples[kind]]) * 1000 / self.count

    def commands(self):
        return [
            f"ours: anonshare --parallel 8 --server 127.0.0.1:PORT upload --max-downloads {Budgeted.BUDGET} "
            f"DATA/commands-few ({self.FEW} files of 4 bytes), and DATA/commands-many "
            f"({self.ctx.args.command_files} files), outside the timing",
            f"bench.py, one control connection per run: USER anonymous, then {self.count} commands, each "
            f"after the reply to the one before: SIZE, MDTM, SITE INFO, MLST in turn, of {self.FEW} files spread "
            "over the share (/CODE/commands-KIND/cNNNNN.bin), then QUIT",
        ]


def run_kinds(ctx, workload, started):
    """One server holding a share per kind; the kinds take turns, the first rotating."""
    w = workload.w
    server = Anonshare(ctx.base, 64)
    started.append(server)
    server.start()
    workload.prepare(server)
    kinds = workload.KINDS
    w.samples = {kind: [] for kind in kinds}
    w.servers = kinds
    w.commands = workload.commands()
    for r in range(ctx.args.warmup + ctx.args.rounds):
        for kind in kinds[r % 2:] + kinds[:r % 2]:
            synced_seconds()
            sample = measured(server, lambda: workload.run(server, r, kind))
            if r >= ctx.args.warmup:
                w.samples[kind].append(sample)
            tag = "warm-up" if r < ctx.args.warmup else f"round {r - ctx.args.warmup + 1}"
            fail = f" FAILURES={sample.failures}" if sample.failures else ""
            log(f"  {w.key:10} {tag:8} {kind:10} {sample.seconds:8.3f}s  server {sample.server_cpu:.2f} CPU-s{fail}")
    workload.peak_rss_kib = server.peak_rss_kib()
    server.stop()


def pick_sha_tool(ctx):
    """Times every SHA-256 the machine has over the big file (in the page cache after a first,
    untimed pass); the fastest of the stock tools verifies the peers' downloads."""
    tools = {"openssl": ["openssl", "dgst", "-sha256", "-r"], "sha256sum": ["sha256sum"]}
    subprocess.run(["cat", str(ctx.big_file)], stdout=subprocess.DEVNULL, check=True)
    results = {}
    for name, argv in tools.items():
        def check():
            out = run([*argv, str(ctx.big_file)], capture_output=True, text=True, check=True).stdout
            if out.split()[0] != ctx.big_sha256:
                raise RuntimeError(f"{name} gave another SHA-256 than Python's hashlib")
        results[name] = median([timed(check) for _ in range(ctx.args.rounds)])
    # anonshare's own (Rust's sha2): the client hashes a local file to see whether a download is
    # already in place, and then moves nothing.
    server = Anonshare(ctx.base, 64)
    try:
        server.start()
        url = ours_upload(server, [ctx.big_file])
        place = ctx.tmpfs / "in-place"
        place.mkdir()
        ours_download(url, place)
        results["sha2 (anonshare)"] = median([timed(lambda: ours_download(url, place)) for _ in range(ctx.args.rounds)])
        shutil.rmtree(place)
    finally:
        server.stop()
    fastest = min(tools, key=lambda name: results[name])
    ctx.sha_tool = tools[fastest]
    ctx.sha_times = results
    ctx.sha_fastest = fastest
    log(f"SHA-256 of {show_size(ctx.big)}: " + ", ".join(f"{k} {v:.3f}s" for k, v in results.items())
        + f"; peers are verified with {fastest}")


def measure_floors(ctx, started):
    """The machine's own limits for the big file: a copy into tmpfs, openssl's SHA-256 of it,
    and curl from vsftpd (sendfile) into /dev/null over loopback."""
    floors = {}
    target = ctx.tmpfs / "copy.bin"

    def copy():
        shutil.copyfile(ctx.big_file, target)

    copies = []
    for _ in range(ctx.args.rounds):
        synced_seconds()
        copies.append(timed(copy))
        target.unlink()
    floors[f"copy of the {show_size(ctx.big)} file into tmpfs (Python shutil.copyfile)"] = median(copies)
    floors[f"`openssl dgst -sha256` of it"] = ctx.sha_times["openssl"]
    floors[f"`sha256sum` of it"] = ctx.sha_times["sha256sum"]
    floors[f"anonshare's own SHA-256 of it (sha2, through the client)"] = ctx.sha_times["sha2 (anonshare)"]
    server = Vsftpd(ctx.base)
    started.append(server)
    server.start()
    os.link(ctx.big_file, server.root / "pub" / ctx.big_file.name)
    argv = ["curl", "-sS", "-o", "/dev/null", server.url(f"pub/{ctx.big_file.name}")]
    floors[f"loopback `curl` from vsftpd to /dev/null"] = median([timed(lambda: run(argv, check=True))
                                                                for _ in range(ctx.args.rounds)])
    server.stop()
    ctx.floors = floors
    for what, seconds in floors.items():
        log(f"  floor: {what}: {seconds:.3f}s")


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class Context:
    args: object
    base: Path
    tmpfs: Path
    data: Path
    big: int = 0
    big_file: Path = None
    big_sha256: str = ""
    small_count: int = 0
    small_size: int = 0
    small_dir: Path = None
    clients: int = 0
    connects: int = 0
    load_at_start: str = ""
    vsftpd_config: list = field(default_factory=list)
    vsftpd_tls_config: list = field(default_factory=list)
    sha_tool: list = field(default_factory=lambda: ["openssl", "dgst", "-sha256", "-r"])
    sha_times: dict = field(default_factory=dict)
    sha_fastest: str = ""
    floors: dict = field(default_factory=dict)


def peer_names():
    return ["vsftpd", "pyftpdlib"] + (["pure-ftpd"] if PureFtpd.available() else [])


def make_servers(ctx, connections, tls=False):
    if tls:
        return [Anonshare(ctx.base, connections, tls=True), VsftpdTls(ctx.base)]
    servers = [Anonshare(ctx.base, connections), Vsftpd(ctx.base), Pyftpdlib(ctx.base)]
    if PureFtpd.available():
        servers.append(PureFtpd(ctx.base))
    return servers


def measured(server, action, in_harness=False):
    """Runs `action` and adds the CPU seconds the server and the clients used meanwhile."""
    server_before, client_before = server.cpu_seconds(), clients_cpu_seconds(in_harness)
    sample = action()
    sample.server_cpu = server.cpu_seconds() - server_before
    sample.client_cpu = clients_cpu_seconds(in_harness) - client_before
    return sample


def run_workload(ctx, workload, connections, started):
    """Starts fresh servers, prepares them, runs warm-ups and rounds in alternation."""
    w = workload.w
    servers = make_servers(ctx, connections, w.tls)
    started.extend(servers)
    for s in servers:
        s.start()
        workload.prepare(s)
        w.samples[s.name] = []
    w.servers = [s.name for s in servers]
    w.commands = workload.commands()
    rounds = ctx.args.warmup + ctx.args.rounds
    for r in range(rounds):
        # Rotate who goes first, so no server always runs right after the same other one.
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for s in order:
            synced_seconds()
            sample = measured(s, lambda: workload.run(s, r), isinstance(workload, Connects))
            if r >= ctx.args.warmup:
                w.samples[s.name].append(sample)
            tag = "warm-up" if r < ctx.args.warmup else f"round {r - ctx.args.warmup + 1}"
            extra = f" (+{sample.sync:.3f}s sync)" if w.reports_sync else ""
            fail = f" FAILURES={sample.failures}" if sample.failures else ""
            log(f"  {w.key:10} {tag:8} {s.name:10} {sample.seconds:8.3f}s{extra}{fail}")
    rss = {s.name: s.peak_rss_kib() for s in servers if s.is_ours}
    for s in servers:
        s.stop()
    return rss


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(samples):
    values = [s.seconds for s in samples]
    return f"{min(values):.3f}–{max(values):.3f}" if values else ""


def total(sample, reports_sync):
    """A run's seconds, with the sync after it for uploads (what makes a peer's bytes durable)."""
    return sample.seconds + (sample.sync if reports_sync else 0.0)


def median_time(w, name):
    return median([total(s, w.reports_sync) for s in w.samples[name]])


def result_rows(workloads, peers):
    """Rows of the main table: workload, ours, each peer with its ratio, goal, met against the
    best peer. Uploads count the sync after each run, ours included."""
    rows = []
    for w in workloads:
        if w.key in ("budget", "commands"):
            continue
        ours = median_time(w, "anonshare")
        ours_fail = sum(s.failures for s in w.samples["anonshare"])

        def show(name):
            seconds = median_time(w, name)
            if w.throughput_bytes:
                return f"{w.throughput_bytes / seconds / (1 << 20):,.0f} MiB/s ({seconds:.3f} s)"
            if w.reports_sync:
                plain = median([s.seconds for s in w.samples[name]])
                return f"{seconds:.3f} s ({plain:.3f} s + sync)"
            return f"{seconds:.3f} s"

        cells = [w.title, show("anonshare")]
        for peer in peers:
            theirs = median_time(w, peer)
            shown_ratio = f"{theirs / ours:.2f}× thr." if w.throughput_bytes else f"{ours / theirs:.2f}"
            cells += [show(peer), shown_ratio]
        best = min(median_time(w, peer) for peer in peers)
        met = w.met(ours / best) and ours_fail == 0
        cells += [w.goal, "yes" if met else "**no**"]
        rows.append(cells)
        if w.key.endswith("big-down"):
            # curl alone: the floor a verified download can aim for.
            cells = [w.title.replace(", verified", "") + ": peers' curl alone, unverified", f"{ours:.3f} s"]
            for peer in peers:
                theirs = median([s.transfer for s in w.samples[peer]])
                cells += [f"{theirs:.3f} s", f"{ours / theirs:.2f}"]
            vsftpd = median([s.transfer for s in w.samples["vsftpd"]])
            cells += ["≤ 1.0 × vsftpd's curl", "yes" if ours <= vsftpd and ours_fail == 0 else "**no**"]
            rows.append(cells)
    return rows


def cpu_rows(workloads):
    """Median CPU seconds (user + system) of server and clients per run."""
    rows = []
    for w in workloads:
        row = [w.title]
        for name in w.servers:
            server = median([s.server_cpu for s in w.samples[name]])
            client = median([s.client_cpu for s in w.samples[name]])
            row.append(f"{server:.2f} + {client:.2f}")
        rows.append(row)
    return rows


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_facts(ctx):
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout \
                .splitlines()[0].strip()
        except (OSError, IndexError):
            return "unknown"

    cpu = "unknown"
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    disk = " ".join(first_line(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", str(ctx.base)]).split())
    device = disk.split()[0] if disk != "unknown" else ""
    rotational = ""
    if device.startswith("/dev/"):
        try:
            rotational = Path(f"/sys/block/{Path(device).name}/queue/rotational").read_text().strip()
        except OSError:
            pass
    tmpfs = " ".join(first_line(["findmnt", "-n", "-o", "FSTYPE", "-T", str(ctx.tmpfs)]).split())
    vsftpd = first_line(["dpkg-query", "-W", "-f", "${Version}\n", "vsftpd"])
    return [
        ("CPU", f"{os.cpu_count()} cores, {cpu}" + (", SHA-NI" if " sha_ni" in flags else "")),
        ("memory", f"{mem_kib / (1 << 20):.1f} GiB"),
        ("kernel", f"Linux {platform.release()}"),
        ("disk (server roots, upload sources)", f"{disk}" + (f", rotational={rotational} as the kernel reports it" if rotational else "")),
        ("tmpfs (download targets)", f"{ctx.tmpfs.parent} ({tmpfs})"),
        ("load average (1, 5, 15 min) at start and end", f"{ctx.load_at_start}; {load_average()}"),
        ("anonshare", f"commit {git_describe()}, {first_line(['rustc', '--version'])}, release profile"),
        ("vsftpd", f"{vsftpd} (Debian)"),
        ("pyftpdlib", f"{PYFTPDLIB_VERSION} (PyPI), Python {first_line([str(VENV / 'bin' / 'python'), '--version']).split()[-1]}"),
        ("pure-ftpd", first_line([str(PURE_FTPD), "--help"]).split("[")[0].strip() + " (Debian package, unpacked)"
         if PureFtpd.available() else "not run (needs root)"),
        ("SHA-256 for the peers' verified downloads", f"{' '.join(ctx.sha_tool)} (fastest of: "
         + ", ".join(f"{k} {v:.3f} s" for k, v in ctx.sha_times.items()) + f" for {show_size(ctx.big)})"
         if ctx.sha_times else "not measured"),
        ("openssl", first_line(["openssl", "version"])),
        ("curl", " ".join(first_line(["curl", "--version"]).split()[:2])),
        ("lftp", " ".join(first_line(["lftp", "--version"]).replace("|", "").split()[:3])),
    ]


def workload_tables(ctx, main, peers):
    """The result, no-sync, CPU and range tables of some workloads against some peers."""
    out = []
    if main:
        header = ["workload", "anonshare"]
        for peer in peers:
            header += [peer, "ratio"]
        header += ["goal", "met (vs best peer)"]
        out.append(table(header, result_rows(main, peers)))
        out.append("")
        if any(w.key.endswith("big-down") for w in main):
            out.append(f"A peer's verified download is `curl` and then `{' '.join(ctx.sha_tool)}`, the fastest "
                       "SHA-256 tool measured on this machine (see the floors below); anonshare's client "
                       "hashes as the bytes arrive, so its time includes the check.")
            out.append("")
        if any(w.reports_sync for w in main):
            out.append("Uploads: anonshare syncs every file before its `226`; the peers sync nothing. "
                       "Each upload is followed by a timed `sync`, counted above for everyone. "
                       "The same uploads without it:")
            out.append("")
            rows = []
            for w in main:
                if not w.reports_sync:
                    continue
                ours = median([s.seconds for s in w.samples["anonshare"]])
                row = [w.title, f"{ours:.3f} s"]
                for peer in peers:
                    theirs = median([s.seconds for s in w.samples[peer]])
                    row += [f"{theirs:.3f} s", f"{ours / theirs:.2f}"]
                rows.append(row)
            header = ["upload, without the sync", "anonshare"]
            for peer in peers:
                header += [peer, "ratio"]
            out.append(table(header, rows))
            out.append("")
        out.append("CPU seconds (user + system) per run, median, as **server + clients**: on two cores "
                   "what one side burns the other cannot use. A server's figure counts every process "
                   "in its session (forks included, from `/proc/PID/stat`), the clients' what the "
                   "harness waited for (`getrusage(RUSAGE_CHILDREN)`; the connect burst's clients run in "
                   "the harness's own thread, so theirs is the harness's, and the paced connects' "
                   "are processes it forked).")
        out.append("")
        out.append(table(["workload", "anonshare", *peers], cpu_rows(main)))
        out.append("")
        out.append("Range of the rounds (min–max seconds, without the sync) and failures:")
        out.append("")
        rows = []
        for w in main:
            row = [w.title]
            for name in w.servers:
                fails = sum(s.failures for s in w.samples[name])
                row.append(spread(w.samples[name]) + (f", **{fails} failed**" if fails else ", 0 failed"))
            rows.append(row)
        out.append(table(["workload", "anonshare", *peers], rows))
        out.append("")
    return out


def render(ctx, workloads, rss, invocation):
    a = ctx.args
    peers = peer_names()
    main = [w for w in workloads if w.key not in ("budget", "commands") and not w.tls]
    out = [BEGIN_MARK, ""]
    out.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{invocation}`. "
               f"Every number is the **median of {plural(a.rounds, 'round')}** (after "
               f"{plural(a.warmup, 'warm-up round')}), the servers taking turns within each round "
               f"(anonshare, {', '.join(peers)}, with the first rotating every round). Load average "
               f"(1, 5, 15 min) at start {ctx.load_at_start}, at the end {load_average()}: on a "
               "machine busy with other work the times are noise, the CPU seconds less so. "
               "Ratios are ours/peer on medians of time: below 1 anonshare is faster. "
               "For the many-clients rows the ratio is aggregate throughput ours/peer: above 1 is better. "
               "Goals are judged against the best peer.")
    out.append("")
    out += workload_tables(ctx, main, peers)
    for w in workloads:
        if w.key != "budget":
            continue
        budgeted, free = median_time(w, "budgeted"), median_time(w, "unbudgeted")
        fails = sum(s.failures for kind in w.servers for s in w.samples[kind])
        out.append("A download budget's cost: the same files downloaded with our client from a share "
                   f"made with `--max-downloads {Budgeted.BUDGET}` and from one without a budget, on one "
                   "server, in turns:")
        out.append("")
        out.append(table(["workload", "budgeted", "unbudgeted", "ratio", "CPU server + client (budgeted; unbudgeted)",
                          "goal", "met"],
                         [[w.title, f"{budgeted:.3f} s", f"{free:.3f} s", f"{budgeted / free:.2f}",
                           "; ".join(f"{median([s.server_cpu for s in w.samples[k]]):.2f} + "
                                     f"{median([s.client_cpu for s in w.samples[k]]):.2f}" for k in w.servers),
                           w.goal, "yes" if budgeted / free <= 1.2 and fails == 0 else "**no**"]]))
        out.append("")
    for w in workloads:
        if w.key != "commands":
            continue
        cost = w.runner
        few, many = cost.cpu_per_thousand("few"), cost.cpu_per_thousand("many")
        fails = sum(s.failures for kind in w.servers for s in w.samples[kind])
        out.append("A command's cost against the size of the share: the same commands on a budgeted share "
                   f"of {cost.FEW} files and on one of {a.command_files}, on one server, in turns. CPU "
                   "seconds of the server per 1000 commands (median; `/proc` counts in ticks of "
                   f"{1000 // CLOCK_TICKS} ms, so the run is long enough to hold many), and wall time per command:")
        out.append("")
        out.append(table(["workload", f"{cost.FEW} files", f"{a.command_files} files", "ratio", "goal", "met",
                          "server's peak RSS"],
                         [[w.title] + [f"{cost.cpu_per_thousand(k):.3f} CPU-s "
                                       f"({median_time(w, k) * 1e6 / cost.count:.0f} µs/command)" for k in w.servers]
                          + [f"{many / few:.2f}" if few else "n/a", w.goal,
                             "yes" if few and many / few <= 1.2 and fails == 0 else "**no**",
                             f"{cost.peak_rss_kib / 1024:.1f} MiB"]]))
        out.append("")
    if ctx.floors:
        out.append("The machine's own floors, measured in the same run (medians):")
        out.append("")
        out.append(table(["what", "seconds"], [[k, f"{v:.3f}"] for k, v in ctx.floors.items()]))
        out.append("")
    if rss:
        out.append("Peak resident memory of anonshare-server (VmHWM from /proc/PID/status, over the "
                   "server's whole life; one fresh server per line; goal ≤ 32 MiB):")
        out.append("")
        out.append(table(["server's work", "peak RSS"], [[k, f"{v / 1024:.1f} MiB"] for k, v in rss]))
        out.append("")
    out.append("### Machine")
    out.append("")
    out.append(table(["what", "fact"], machine_facts(ctx)))
    out.append("")
    out.append("### Exact commands")
    out.append("")
    out.append("```sh")
    out.append(f"make bench ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else "make bench")
    out.append(f"# which runs: python3 bench/bench.py {' '.join(sys.argv[1:])}".rstrip())
    out.append("```")
    out.append("")
    out.append("Servers, each started fresh for every workload with an empty root in a temporary "
               "folder on the disk above (PORT is the bound port; ROOT, BASE the temporary folders):")
    out.append("")
    out.append("```sh")
    ours_flags = " ".join(Anonshare.argv())
    out.append(f"{ours_flags.replace(str(REPO) + '/', '')}")
    out.append("# N = the most connections the workload opens at once, at least 64 (the default "
               "--workers); the other flags lift the per-address and free-disk limits")
    out.append(f"vsftpd BASE/vsftpd.conf        # {'; '.join(ctx.vsftpd_config)}")
    venv_python = str(VENV / "bin" / "python").replace(str(REPO) + "/", "")
    out.append(f"{venv_python} -c \"$PYFTPDLIB_MAIN\" {HOST} PORT ROOT   # bench.py's PYFTPDLIB_MAIN: what "
               "`-m pyftpdlib -i HOST -p PORT -d ROOT -w` starts, with a listen queue of 1024")
    if "pure-ftpd" in peers:
        out.append(f"echo \"{PURE_USER}:$(openssl passwd -6 {PURE_PASSWORD}):65534:65534::ROOT/./::::::::::::\" "
                   "> BASE/pureftpd.passwd && pure-pw mkdb BASE/pureftpd.pdb -f BASE/pureftpd.passwd   # as root")
        out.append(" ".join(PureFtpd.argv()).replace(str(REPO) + "/", ""))
    out.append("```")
    out.append("")
    out.append("Clients, per workload (DATA holds the generated random files, TMPFS a folder in tmpfs; "
               "ours means target/release/anonshare; pure-ftpd's clients log in as its virtual user, "
               "`curl -u bench:bench`, `lftp -u bench,bench`):")
    out.append("")
    for w in workloads:
        if w.tls:
            continue
        out.append(f"- **{w.title}**")
        for c in w.commands:
            out.append(f"  - `{c}`")
    out.append("")
    out.append("Before every run the harness calls `sync`, so no run pays for write-back left by "
               "the one before. Downloads are removed after each run; uploads are removed from the "
               "server's root after each run (outside the timing).")
    out.append("")
    out.append(END_MARK)
    return "\n".join(out)


def render_tls(ctx, workloads, invocation):
    """The TLS block: ours with --tls required against vsftpd with TLS, both driven as the
    plaintext rows are, with curl --ssl-reqd for the peer."""
    out = [TLS_BEGIN_MARK, ""]
    out.append("### Both sides encrypted (FTPS)")
    out.append("")
    out.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{invocation}`, "
               f"median of {plural(ctx.args.rounds, 'round')} after {plural(ctx.args.warmup, 'warm-up round')}, "
               f"the two servers taking turns; load average (1, 5, 15 min) at start {ctx.load_at_start}, at "
               f"the end {load_average()}; anonshare commit {git_describe()}. "
               "anonshare-server runs with `--tls required` and our client speaks TLS 1.2 on every "
               "connection (data connections resume the control session); vsftpd runs with "
               "`ssl_enable=YES` and its anonymous logins and data forced onto TLS, driven by "
               f"`curl {' '.join(CURL_TLS)}`. Read the ratios as the plaintext ones (ours/vsftpd on "
               "medians of time, below 1 anonshare is faster): they compare the two servers when both "
               "pay for encryption, and TLS costs ours its zero-copy `sendfile` path, so compare each "
               "TLS row with its plaintext row above to see what encryption costs each server. "
               "The small-file rows drive vsftpd with lftp, as the plaintext rows do, TLS forced: one "
               "curl for all the files (a URL glob) stalls 0.2 s or 1 s on a control reply before most "
               "files against vsftpd with TLS here (40 files of 4 KiB took 3 to 32 s), and a 0.2 s "
               "stall before the first transfer is in vsftpd's big-file times. lftp's TLS (GnuTLS) "
               "costs it CPU on every data connection: see the clients' CPU seconds below.")
    out.append("")
    out += workload_tables(ctx, workloads, ["vsftpd"])
    out.append("Servers and clients (as in the plaintext rows, unless named here):")
    out.append("")
    out.append("```sh")
    out.append(" ".join(Anonshare.argv(tls=True)).replace(str(REPO) + "/", ""))
    out.append(f"vsftpd BASE/vsftpd.conf        # {'; '.join(ctx.vsftpd_tls_config)}")
    out.append("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 "
               "-keyout BASE/key.pem -out BASE/cert.pem   # vsftpd's certificate, made per server")
    out.append("```")
    out.append("")
    for w in workloads:
        out.append(f"- **{w.title}**")
        for c in w.commands:
            out.append(f"  - `{c}`")
    out.append("")
    out.append(TLS_END_MARK)
    return "\n".join(out)


def write_doc(path, blocks):
    """Replaces each generated block of the doc (begin mark, end mark, text), keeping whatever
    was written around them; a block the doc lacks goes after the ones it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else (
        "# Benchmarks\n\nanonshare against vsftpd and pyftpdlib on loopback; `make bench` "
        "reproduces everything below.\n\n## Results\n\n")
    for begin, end, generated in blocks:
        if begin in text and end in text:
            head = text.split(begin, 1)[0]
            tail = text.split(end, 1)[1]
            text = head + generated + tail
        elif END_MARK in text:
            head, tail = text.split(END_MARK, 1)
            text = head + END_MARK + "\n\n" + generated + tail
        else:
            text = text.rstrip("\n") + "\n\n" + generated + "\n"
    path.write_text(text)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark anonshare against vsftpd, pyftpdlib and pure-ftpd on loopback.",
        epilog="Sizes take K, M, G (powers of 1024). A full run takes about 20 minutes; "
               "--quick under two.")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and 3 rounds; writes target/bench/BENCHMARKS-quick.md, not docs/")
    p.add_argument("--big", type=parse_size, help="size of the big file (default 1G; quick 64M)")
    p.add_argument("--small-count", type=int, help="number of small files (default 1000; quick 200)")
    p.add_argument("--small-size", type=parse_size, help="size of each small file (default 4K)")
    p.add_argument("--clients", type=int, help="clients downloading at once (default 64; quick 16)")
    p.add_argument("--client-size", type=parse_size, help="file each of them downloads (default 16M; quick 4M)")
    p.add_argument("--connects", type=int, help="clients connecting at once (default 300; quick 64)")
    p.add_argument("--login-timeout", type=float,
                   help="seconds a connect-workload client waits on its socket (default 30; quick 3)")
    p.add_argument("--budget-files", type=int,
                   help="files downloaded from a budgeted share and an unbudgeted one (default 4000; quick 200)")
    p.add_argument("--budget-size", type=parse_size, help="size of each of them (default 1K)")
    p.add_argument("--command-files", type=int,
                   help="files of the big budgeted share the commands workload asks about (default 9999: "
                        "with its folder, the most a share holds by default; quick 2000)")
    p.add_argument("--command-count", type=int,
                   help="commands per run of the commands workload (default 20000; quick 10000)")
    p.add_argument("--rounds", type=int, help="measured rounds per workload (default 5; quick 3)")
    p.add_argument("--warmup", type=int, help="unmeasured rounds first (default 1)")
    p.add_argument("--only", help="comma-separated workloads: floors,big-down,big-up,small-down,small-up,"
                                  "clients,clients-verified,connect,connect-paced,budget,commands,tls-big-down,"
                                  "tls-big-up,"
                                  "tls-small-down,tls-small-up; `tls` means the four tls-* ones")
    p.add_argument("--tmp", default=tempfile.gettempdir(),
                   help="where server roots and generated files go: a real disk (default %(default)s)")
    p.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs for download targets (default %(default)s)")
    p.add_argument("--doc", help="markdown file to write (default docs/BENCHMARKS.md; quick: target/bench/)")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, parse_size(value) if key in SIZE_FLAGS else value)
    if args.rounds < 1 or args.warmup < 0:
        p.error("--rounds must be at least 1 and --warmup at least 0")
    args.doc = Path(args.doc) if args.doc else (QUICK_DOC if args.quick else DOC)
    tls_keys = ["tls-big-down", "tls-big-up", "tls-small-down", "tls-small-up"]
    all_keys = ["floors", "big-down", "big-up", "small-down", "small-up", "clients", "clients-verified", "connect",
                "connect-paced", "budget", "commands", *tls_keys]
    args.only = args.only.split(",") if args.only else all_keys
    if "tls" in args.only:
        at = args.only.index("tls")
        args.only[at:at + 1] = [k for k in tls_keys if k not in args.only]
    unknown = set(args.only) - set(all_keys)
    if unknown:
        p.error(f"unknown workload {', '.join(sorted(unknown))}: expected some of {','.join(all_keys)}")
    return args


def main(argv):
    args = parse_args(argv)
    ensure_peers()
    started = []
    base = Path(tempfile.mkdtemp(prefix="anonshare-bench-", dir=args.tmp))
    os.chmod(base, 0o755)  # pure-ftpd's virtual user (nobody) reaches its root through it
    tmpfs = Path(tempfile.mkdtemp(prefix="anonshare-bench-", dir=args.tmpfs))
    # SIGTERM (from make or a shell) unwinds like Ctrl-C, through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        ctx = Context(args=args, base=base, tmpfs=tmpfs, data=base / "data")
        ctx.load_at_start = load_average()
        ctx.data.mkdir()
        ctx.big, ctx.small_count, ctx.small_size = args.big, args.small_count, args.small_size
        ctx.clients, ctx.connects = args.clients, args.connects
        log(f"generating data in {ctx.data}")
        if {"floors", "big-down", "big-up", "tls-big-down", "tls-big-up"} & set(args.only):
            ctx.big_file = ctx.data / "big.bin"
            write_random_file(ctx.big_file, ctx.big)
            ctx.big_sha256 = sha256_of(ctx.big_file)
            pick_sha_tool(ctx)
        if "floors" in args.only:
            log("floors: the machine's own limits")
            measure_floors(ctx, started)
        ctx.small_dir = ctx.data / "small"
        ctx.small_dir.mkdir()
        for i in range(ctx.small_count):
            write_random_file(ctx.small_dir / f"f{i:05}.bin", ctx.small_size)

        # Each workload: its runner and the most connections it opens at once (ours needs the
        # worker pool and the per-address limit at least that large).
        plan = {
            "big-down": (BigDownload, 64),
            "big-up": (BigUpload, 64),
            "small-down": (SmallDownload, 64),
            "small-up": (SmallUpload, 64),
            "clients": (lambda c: ManyClients(c, c.args.client_size), max(64, args.clients + 8)),
            "clients-verified": (lambda c: VerifiedClients(c, c.args.client_size), max(64, args.clients + 8)),
            "connect": (Connects, max(64, args.connects + 8)),
            "connect-paced": (lambda c: Connects(c, PACED_CONNECTS), 64),
            "tls-big-down": (lambda c: BigDownload(c, tls=True), 64),
            "tls-big-up": (lambda c: BigUpload(c, tls=True), 64),
            "tls-small-down": (lambda c: SmallDownload(c, tls=True), 64),
            "tls-small-up": (lambda c: SmallUpload(c, tls=True), 64),
        }
        workloads, rss = [], []
        for key in args.only:
            if key == "floors":
                continue
            if key in ("budget", "commands"):
                workload = Budgeted(ctx) if key == "budget" else CommandCost(ctx)
                log(f"{key}: {workload.w.title}")
                run_kinds(ctx, workload, started)
                workload.w.runner = workload
                workloads.append(workload.w)
                continue
            make, connections = plan[key]
            workload = make(ctx)
            log(f"{key}: {workload.w.title}")
            peaks = run_workload(ctx, workload, connections, started)
            workloads.append(workload.w)
            if key == "big-down":
                rss.append((f"upload 1 × {show_size(ctx.big)}, then {plural(args.warmup + args.rounds, 'download')} of it",
                            peaks["anonshare"]))
            if key == "big-up":
                rss.append((f"{plural(args.warmup + args.rounds, 'upload')} of {show_size(ctx.big)}", peaks["anonshare"]))
            if key == "clients":
                rss.append((f"{args.clients} clients × {show_size(args.client_size)} at once, "
                            f"{plural(args.warmup + args.rounds, 'round')}", peaks["anonshare"]))
        if "clients" in args.only:
            # The same crowd with a file 16 times smaller: peak memory must not follow file size.
            small = max(args.client_size // 16, 1 << 20)
            workload = ManyClients(ctx, small, key="clients-small")
            log(f"clients-small: {workload.w.title}")
            peaks = run_workload(ctx, workload, max(64, args.clients + 8), started)
            rss.append((f"{args.clients} clients × {show_size(small)} at once, "
                        f"{plural(args.warmup + args.rounds, 'round')}", peaks["anonshare"]))
            workloads.append(workload.w)
        vsftpd = [s for s in started if type(s) is Vsftpd]
        ctx.vsftpd_config = vsftpd[0].config_lines() if vsftpd else []
        vsftpd = [s for s in started if isinstance(s, VsftpdTls)]
        ctx.vsftpd_tls_config = vsftpd[0].config_lines() if vsftpd else []

        invocation = "python3 bench/bench.py " + " ".join(argv)
        blocks = []
        plain = [w for w in workloads if not w.tls]
        if plain or "floors" in args.only:
            generated = render(ctx, plain, rss, invocation.strip())
            print()
            print(generated.split("### Machine")[0].replace(BEGIN_MARK, "").strip())
            blocks.append((BEGIN_MARK, END_MARK, generated))
        tls = [w for w in workloads if w.tls]
        if tls:
            generated = render_tls(ctx, tls, invocation.strip())
            print()
            print(generated.split("Servers and clients")[0].replace(TLS_BEGIN_MARK, "").strip())
            blocks.append((TLS_BEGIN_MARK, TLS_END_MARK, generated))
        write_doc(args.doc, blocks)
        log(f"\nwrote {args.doc}")
        return 0
    finally:
        for s in started:
            s.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(tmpfs, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
