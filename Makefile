# snapdrill — the two commands of the README are `make demo` and `make test`.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: demo test bench fuzz tools build lint fmt doc install deb check-deb

## Build, create a key and two local stores under ./demo, back up fixtures/exports,
## list the snapshot, restore it into a temporary folder and verify it.
demo: tools build
	scripts/demo.sh

## Everything CI runs: format check, clippy (warnings denied), every test, docs build,
## and a check that the tests left the working tree untouched.
test:
	scripts/test.sh

## Throughput and peak memory on a ~300 MB generated export (release build), then the
## multi-store benchmarks (three local stores vs one; S3 vs a plain object_store upload),
## a long history, the drill clock (RTO vs a stopwatch, sample estimate vs full drill), and
## many small files side by side with restic (FILES=200000 for the large size).
bench: tools
	scripts/bench.sh
	scripts/bench-stores.sh
	scripts/bench-history.sh
	scripts/bench-drill.sh
	scripts/bench-scale.sh

## The property tests of hostile input for longer than `make test` runs them
## (SNAPDRILL_FUZZ_CASES=5000 hostile manifests through every reader).
fuzz: tools
	SNAPDRILL_FUZZ_CASES=$${SNAPDRILL_FUZZ_CASES:-5000} $(CARGO) test --release --test hostile_manifests --test parsers

tools:
	scripts/ensure-tools.sh --minimal

build:
	$(CARGO) build --quiet

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings

fmt:
	$(CARGO) fmt --all

## The release binary, a man page per command, bash/zsh/fish completions, the systemd units
## and example configs under PREFIX (DESTDIR= to stage): `sudo make install PREFIX=/usr/local`.
install:
	scripts/install.sh "$(PREFIX)" "$(DESTDIR)"

## A Debian package in dist/ (cargo-deb, installed when missing): `sudo apt install ./dist/snapdrill_*.deb`.
deb:
	scripts/deb.sh

## The package's acceptance: build it, `apt install` it, open a man page, verify every
## systemd unit, find the completions, remove it again (root or sudo; not in `make test`).
check-deb:
	scripts/check-deb.sh
