# Developer and CI entry points. `make test` is what .ci/run runs.

GO ?= go
# staticcheck 2026.2.2, the newest release. The module proxy knows releases
# by module version only: 2025.1.1 is v0.6.1.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test bench lint build ensure-postgres

# The tests start their own PostgreSQL clusters (internal/pgtest), so the
# server programs must be installed first.
ensure-postgres:
	bash scripts/ensure-postgres.sh

test: ensure-postgres
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

bench: ensure-postgres
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l lists files needing gofmt:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

build:
	$(GO) build -o bin/replicator ./cmd/replicator
