# McCache for TypeScript. `make test` and `make demo` work on a fresh clone: they install
# what they need (npm ci, Debian packages) themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := test
export TS_NODE_PROJECT := tsconfig.test.json
# Debian's python3 (not a pyenv one): python3-kaitaistruct installs there.
PYTHON ?= /usr/bin/python3
APT_PACKAGES := python3-kaitaistruct tcpdump tshark iputils-tracepath iproute2 nftables
# Only `make bench` needs these: the Redis comparison benches start their own redis-server.
BENCH_APT_PACKAGES := redis-server
MOCHA := npx mocha

.PHONY: deps apt-deps bench-deps generated check-generated build typecheck test unit conformance bench bench-report demo clean

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
deps: node_modules/.package-lock.json

# Installs the Debian packages the tests use when they are missing (CI runs as root).
apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "apt-deps: need root to install:$$missing" >&2; exit 1; fi; fi

# Regenerates generated/ from spec/ (never edit generated/ by hand).
generated: deps
	node tools/gen.mjs

# Regenerates into a scratch folder and fails on any difference with the committed generated/.
check-generated: deps
	@rm -rf .check-generated && node tools/gen.mjs .check-generated >/dev/null
	@if diff -r generated .check-generated >/dev/null; then echo "check-generated: generated/ matches spec/"; rm -rf .check-generated; \
	 else diff -r generated .check-generated | head -40; rm -rf .check-generated; echo "check-generated: generated/ is stale or hand-edited; run make generated" >&2; exit 1; fi

# tsc already emits dist/generated/error-codes.json, so the build copies generated/'s contents
# into that folder (a plain `cp -r generated dist/generated` would nest it as dist/generated/generated).
build: deps
	rm -rf dist
	npx tsc -p tsconfig.json
	mkdir -p dist/generated && cp -r generated/. dist/generated/
	chmod +x dist/runtime/cli/*.js 2>/dev/null || true

typecheck: deps
	npx tsc -p tsconfig.test.json

unit: deps
	$(MOCHA)

conformance: build apt-deps
	node conformance/run.mjs --python $(PYTHON)

test: deps apt-deps check-generated typecheck unit conformance

# Installs redis-server for the benches when it is missing (as root; without root the benches
# still run and print their Redis columns as skipped). The Debian package may start a system
# service on port 6379: the benches never use it (each starts a private instance on a random
# port), so a service this step installed is stopped and disabled at once.
bench-deps:
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    case "$$missing" in *redis-server*) \
	      if [ -d /run/systemd/system ]; then systemctl disable --now redis-server >/dev/null 2>&1 || true; \
	      else service redis-server stop >/dev/null 2>&1 || true; fi;; esac; \
	  else echo "bench-deps: need root to install:$$missing (the Redis comparisons will be skipped)" >&2; fi; fi

# Every bench (bench/run.mjs; never part of `make test`), then BENCHMARKS.md, bench/charts/*.svg
# and bench/report.html from bench/results/ (bench/report.mjs), also when a bench failed.
# BENCH_QUICK=1 make bench: short phases and one repetition, to check the harness (not for quoting).
bench: build bench-deps
	node bench/run.mjs; status=$$?; node bench/report.mjs && exit $$status

# Rewrites BENCHMARKS.md and the charts from the results of the last `make bench`, measuring nothing.
bench-report:
	node bench/report.mjs

# The README's first command: three local processes sharing a cache over host-local multicast
# (runtime/cli/demo.ts). Builds first when dist/ is missing or older than a source.
DEMO_JS := dist/runtime/cli/demo.js
$(DEMO_JS): $(shell find runtime generated -type f 2>/dev/null) tsconfig.json package.json node_modules/.package-lock.json
	$(MAKE) build

demo: deps $(DEMO_JS)
	node $(DEMO_JS)

clean:
	rm -rf dist .check-generated
