# anonshare: build, run, test, lint.

CARGO ?= cargo
ARGS ?=

.PHONY: build build-gui run gui gui-screenshot test test-core test-minimal test-gui test-cluster test-deps lint lint-gui fmt clean bench bench-loss

build:
	$(CARGO) build --release

# The desktop client too (cargo feature gui).
build-gui:
	$(CARGO) build --release --features gui --bins

# The server with its defaults: 127.0.0.1:2121, shares under ./anonshare-data.
run:
	$(CARGO) run --release --bin anonshare-server -- $(ARGS)

# The desktop client; ARGS may name the server (HOST:PORT) or a share URL to open.
gui:
	$(CARGO) run --release --features gui --bin anonshare-gui -- $(ARGS)

# docs/gui.png: the real window under Xvfb, listing a share (installs xvfb and imagemagick if missing).
gui-screenshot: build-gui
	scripts/gui-screenshot.sh

# The whole suite, as CI runs it: formatting and clippy, the unit and integration tests, the
# build without TLS (linted and tested), the desktop client's tests, and the cluster tests on GlusterFS (those need root and /dev/fuse: as
# another user they are skipped, and say so).
test: test-deps lint test-core test-minimal lint-gui test-gui
	@if [ "$$(id -u)" = 0 ] && [ -e /dev/fuse ]; then $(MAKE) --no-print-directory test-cluster; \
	 else echo "make test: SKIPPED the cluster tests: they need root and /dev/fuse (make test-cluster)" >&2; fi

# The unit tests, and the integration tests that run the real binaries against curl, wget,
# rclone, lftp, tnftp, ncftp and python3's ftplib as peers: the quick loop while working.
test-core: test-deps
	$(CARGO) test --all-targets

# The cluster tests on GlusterFS: two FUSE mounts of one replicated volume with default options,
# one server on each (root and /dev/fuse; installs glusterfs-server and glusterfs-client if
# missing, and tears everything down after itself). See scripts/cluster-test.sh.
test-cluster: test-deps
	scripts/cluster-test.sh
# The build without TLS (no cargo feature tls): it lints, and every test that needs no TLS
# passes (the FTPS tests are left out of this build).
test-minimal: test-deps
	$(CARGO) clippy --all-targets --no-default-features -- -D warnings
	$(CARGO) test --all-targets --no-default-features

# The desktop client's tests: its unit tests, and tests/gui.rs, which drives the window with
# egui_kittest against the real server. Headless: no display and no system packages needed.
test-gui:
	$(CARGO) test --features gui --lib gui::
	$(CARGO) test --features gui --test gui

# The stock FTP clients the tests use as peers; lftp, tnftp, ncftp, wget and rclone come from
# Debian packages when missing, Python's ftputil from PyPI (or Debian's python3-ftputil when pip
# is missing).
test-deps:
	@command -v curl >/dev/null && command -v python3 >/dev/null || { echo "the tests need curl and python3" >&2; exit 1; }
	@missing=""; for tool in lftp:lftp tnftp:tnftp ncftpget:ncftp wget:wget rclone:rclone; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; done; \
	  [ -z "$$missing" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }
	@python3 -c 'import ftputil' >/dev/null 2>&1 \
	  || python3 -m pip install --user --quiet ftputil \
	  || python3 -m pip install --user --quiet --break-system-packages ftputil \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-ftputil >/dev/null; }

# Transfer times under packet loss, anonshare beside vsftpd + curl (root; not part of test).
# Options through ARGS, for example make bench-loss ARGS="--rounds 20 --size 16M". See docs/LOSS.md.
bench-loss: build
	bench/loss $(ARGS)

# Benchmarks against vsftpd and pyftpdlib on loopback (not part of test or CI). Installs the
# peers if missing, prints a table of medians and writes docs/BENCHMARKS.md.
# `make bench ARGS=--quick` finishes in under two minutes; `ARGS="--only tls"` runs the FTPS rows
# alone; `ARGS=--help` lists the sizes.
bench: build
	python3 bench/bench.py $(ARGS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Clippy on the desktop client and its tests too (builds egui).
lint-gui:
	$(CARGO) clippy --all-targets --features gui -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
