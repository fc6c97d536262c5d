# rivr — `make demo` shows rivr's whole job in one command (a campaign
# through a simulated carrier and SMSC, a call through the menu; docs/demo.md);
# `make run` starts the server on the example config; `make test` runs
# every test. Each first installs what is missing (Debian packages).

SHELL := /bin/bash
APT_PKGS := pkg-config libopus-dev libspandsp-dev sip-tester espeak-ng sox libsox-fmt-all sipvicious baresip-core libpri-dev prometheus chromium nodejs openssl postgresql tcpdump kamailio systemd
CARGO ?= cargo

.PHONY: demo run test deps build check-fmt clippy bench load fuzz prompts

deps:
	@missing=""; \
	for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(CARGO) build --release --bin rivr

run: build
	./target/release/rivr serve --config rivr.toml

demo: build
	./target/release/rivr demo

# The dev profile builds dependencies optimised (see Cargo.toml), so the
# DSP tests run fast without a second, release build of everything.
test: deps smpp-venv dashboard-deps
	$(CARGO) build --bin rivr
	RIVR_BIN=$(CURDIR)/target/debug/rivr $(CARGO) test --workspace -- --test-threads=2

check-fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps
	$(CARGO) bench -p codecs-bench

load: build
	tests/load/inbound.sh 100 60
	tests/load/inbound.sh 500 60
	PROBE=1 tests/load/inbound.sh 1000 60
	PROBE=1 SIPP_PROCS=4 tests/load/inbound.sh 2000 80
	tests/load/short.sh 200 20
	tests/load/short.sh 400 20
	tests/load/short.sh 800 20
	tests/load/short.sh 1200 20
	tests/load/short.sh 1260 20
	CODEC=opus tests/load/inbound.sh 100 60
	tests/load/outbound.sh 500 50 20
	tests/load/campaign.sh 10000 100 300
	RIVR_BIN=$(CURDIR)/target/release/rivr PRI_LOAD_CALLS=30 $(CARGO) test --release --test pri_load -- --ignored --nocapture
	RIVR_BIN=$(CURDIR)/target/release/rivr PRI_LOAD_CALLS=60 $(CARGO) test --release --test pri_load -- --ignored --nocapture

# Regenerates the committed example prompts with espeak-ng and sox.
prompts: deps
	scripts/make-prompts.sh

# Python SMPP peers for tests/smpp_interop.rs (smpp34 SMSC, smpplib client).
.PHONY: smpp-venv smpp-bench
smpp-venv:
	tests/smpp/setup-venv.sh

# puppeteer-core for tests/dashboard.rs (drives Debian's chromium), pinned
# by tests/dashboard/package-lock.json.
.PHONY: dashboard-deps screenshots
dashboard-deps: deps
	tests/dashboard/setup.sh

# Regenerates docs/img/dashboard-*.png with the browser test.
screenshots: dashboard-deps
	$(CARGO) build --bin rivr
	RIVR_BIN=$(CURDIR)/target/debug/rivr RIVR_SCREENSHOTS_DIR=$(CURDIR)/docs/img $(CARGO) test --test dashboard

# Messages per second over one bind against rivr smsc-sim, windows 1/10/50.
smpp-bench:
	$(CARGO) build --release --bin rivr
	RIVR_BIN=$(CURDIR)/target/release/rivr $(CARGO) test --release --test smpp_bench -- --ignored --nocapture

# Coverage-guided fuzzing of every target (needs a nightly toolchain and
# cargo-fuzz; see fuzz/README.md), FUZZ_SECONDS each, one after another on
# one core. New inputs go to fuzz/corpus/<target> (not committed), crashes to
# fuzz/artifacts/<target>. The seeds are rewritten first from the code that
# builds them (rivr::fuzzing), so a changed input format never starts cold.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := sip_wire sdp smpp_pdu rtp rtcp rfc4733 smpp_session q921 q931 q931_calls server
.PHONY: fuzz fuzz-seeds fuzz-smoke
fuzz: fuzz-seeds
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  seeds=seeds/$$t; [ $$t = sip_wire ] && seeds=../tests/conformance/rfc4475; \
	  mkdir -p corpus/$$t && \
	  cargo +nightly fuzz run -s none -a $$t corpus/$$t $$seeds -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; done

fuzz-seeds:
	$(CARGO) test --lib fuzzing::harness::tests::write_seed_files -- --ignored

# The same target bodies on stable Rust, without libFuzzer: seeds plus random
# mutations, FUZZ_SMOKE_SECONDS per target (`make test` runs them for 3 s).
FUZZ_SMOKE_SECONDS ?= 60
fuzz-smoke:
	RIVR_FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) $(CARGO) test --lib fuzzing -- --test-threads=1 --nocapture

# ---- codecs-bench: criterion benches, the report binary (rivr beside
# spandsp), and the PESQ voice-quality table (docs/quality.md) ----------------
# codecs-bench is a workspace member whose build.rs compiles a C shim against
# libspandsp-dev, so every workspace build needs it (spandsp-deps); the bench
# and PESQ targets also need espeak-ng, sox and a Python venv (bench-deps).
SPANDSP_APT_PKGS := pkg-config libspandsp-dev
BENCH_APT_PKGS := $(SPANDSP_APT_PKGS) espeak-ng sox python3-venv python3-dev
VENV ?= .venv

.PHONY: spandsp-deps bench-deps bench-report pesq pesq-venv

define apt_install
	@missing=""; \
	for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

spandsp-deps:
	$(call apt_install,$(SPANDSP_APT_PKGS))

bench-deps:
	$(call apt_install,$(BENCH_APT_PKGS))

# Extra prerequisites for the targets above that build the whole workspace.
test build clippy bench: spandsp-deps

# Short criterion runs (the machine is shared), then the side-by-side report.
bench-report: deps bench-deps
	$(CARGO) bench -p codecs-bench --bench media -- --warm-up-time 1 --measurement-time 2
	$(CARGO) run --release -p codecs-bench --bin report -- --doc docs/quality.md

pesq-venv:
	@if ! $(VENV)/bin/python -c 'import pesq, numpy, scipy, soundfile' 2>/dev/null; then \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q pesq numpy scipy soundfile; \
	fi

pesq: deps bench-deps pesq-venv
	VENV=$(CURDIR)/$(VENV) CARGO=$(CARGO) codecs-bench/pesq/run.sh
