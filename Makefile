# diskport — two commands: `make demo` and `make test` (`make test-short`
# is the inner loop: the same tests without -race, the long ones skipped).
GO ?= go
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: demo test test-short cross deps test-deps build bench fuzz fuzz-campaign clean

## demo: install what is missing, build, convert an example image, print info
demo: deps
	sh scripts/demo.sh

## test: install what the tests need, then vet, staticcheck and the race-enabled tests
## (vmdk twice: with libdeflate through cgo, the default, and the pure-Go inflate),
## then the cross builds and the portable side's tests (scripts/cross.sh)
test: test-deps
	$(GO) vet ./...
	$(GO) vet -tags purego ./vmdk/...
	$(STATICCHECK) ./...
	$(GO) test -race -timeout 45m ./...
	$(GO) test -race -tags purego ./vmdk/...
	GO=$(GO) sh scripts/cross.sh

## cross: only the cross builds and vets and the portable-tag tests
cross:
	GO=$(GO) sh scripts/cross.sh

## test-short: the inner loop, every package's core in a few minutes: no
## -race, and the long cases (real CLI clients, PostgreSQL clusters, kill -9
## loops, large images) skip under -short; `make test` runs everything
test-short: test-deps
	$(GO) test -short ./...

deps:
	sh scripts/install-deps.sh

test-deps:
	sh scripts/install-deps.sh --test

build:
	$(GO) build -o bin/diskport ./cmd/diskport

## bench: time diskport against qemu-img on the same images (bench/)
bench: deps
	$(GO) run ./bench/compare

## fuzz: run every fuzz target for FUZZTIME each (FUZZPARALLEL workers) and
## print per target its executions, executions/s, new inputs and crashes;
## fails on a crash or a target under 1,000 executions/s (scripts/fuzz.sh)
FUZZTIME ?= 60s
FUZZPARALLEL ?= 1
fuzz:
	FUZZPARALLEL=$(FUZZPARALLEL) sh scripts/fuzz.sh -t $(FUZZTIME)

## fuzz-campaign: FUZZPKGTIME (default 1h) of fuzzing per parser package,
## split between its targets: one CPU-hour each with FUZZPARALLEL=1
FUZZPKGTIME ?= 1h
FUZZCAMPAIGN = vmdk vhd vhdx ova manifest bundle server server/auth .
fuzz-campaign:
	FUZZPARALLEL=$(FUZZPARALLEL) FUZZLOG=$${FUZZLOG:-$${TMPDIR:-/tmp}/diskport-fuzz-campaign} sh scripts/fuzz.sh -P $(FUZZPKGTIME) $(FUZZCAMPAIGN)

clean:
	rm -rf bin demo
