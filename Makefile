# anonshare: build, run, test, lint.

CARGO ?= cargo
ARGS ?=

.PHONY: build run test lint fmt clean

build:
	$(CARGO) build --release

# The server with its defaults: 127.0.0.1:2121, shares under ./anonshare-data.
run:
	$(CARGO) run --release --bin anonshare-server -- $(ARGS)

# Every test: unit tests, and the integration tests that run the real binaries with curl and python3.
test:
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
