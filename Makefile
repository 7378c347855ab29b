# Developer and CI entry points. `make test` is what .ci/run runs.

GO ?= go
# staticcheck 2026.2.2, the newest release. The module proxy knows releases
# by module version only: 2025.1.1 is v0.6.1.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test bench bench-quota lint build ensure-postgres ensure-chromium

# The tests start their own PostgreSQL clusters (internal/pgtest), so the
# server programs must be installed first.
ensure-postgres:
	bash scripts/ensure-postgres.sh

# The httpapi browser tests drive the status page in headless Chromium.
ensure-chromium:
	bash scripts/ensure-chromium.sh

test: ensure-postgres ensure-chromium
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...

# Every benchmark once, each printing its figures (issue 9's among them:
# the quota ones take about 25 s per case, benchmark 4 streams 1M rows).
bench: ensure-postgres
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# Only issue 9's quota benchmarks: Feishu and GPTBots at 300 ms and 1 s
# answers, one and four tables (BenchmarkQuota, about 5 minutes), and the
# snapshot of 1M rows (about 4 minutes).
bench-quota: ensure-postgres
	$(GO) test -run '^$$' -bench 'Quota' -benchtime 1x -timeout 30m ./pipeline/ ./app/

# Minutes long, not part of make test: the daemon as a process under a
# pgbench-style load, with kill -9s, PostgreSQL restarts, terminated
# connections, a frozen network and a target outage; prints reconnects, restarts, peak RSS
# and catch-up time.
.PHONY: soak
soak: ensure-postgres
	$(GO) test -tags soak -run TestSoak -count=1 -timeout 30m -v ./soak/

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists files needing gofmt:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

build:
	$(GO) build -o bin/replicator ./cmd/replicator

# The README's first command: a throwaway PostgreSQL, the fake Feishu and
# GPTBots APIs (cmd/fakes) and the replicator as processes, a snapshot and a
# few changes mirrored and shown beside the source; everything it starts is
# stopped and removed. No credentials or network needed.
.PHONY: demo
demo: ensure-postgres
	$(GO) run ./cmd/demo -go $(GO)

# Issue 10's outage benchmark, not part of make test: the daemon as a
# process under 1,000 row changes/s with its Feishu target down for
# REPLICATOR_OUTAGE (default 10m); prints RSS each minute, peak RSS and the
# catch-up rate as a share of the quota.
.PHONY: bench-outage
bench-outage: ensure-postgres
	$(GO) test -tags soak -run TestOutage -count=1 -timeout 60m -v ./soak/
