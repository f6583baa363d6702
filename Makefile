# scv-hpc — see README.md. 'make demo' runs a whole prediction locally; 'make test' runs
# every test (it installs the Debian packages the tests need first).
GO        ?= go
VERSION   ?= 0.1.0-dev
LDFLAGS   := -s -w -X github.com/scivision-hpc/scv-hpc/internal/version.Version=$(VERSION)
BIN       := bin/scv-hpc
export CGO_ENABLED := 0

.PHONY: all build deps test test-go vet bench demo clean fuzz example-opencv

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/scv-hpc

deps:
	scripts/deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

test: deps vet test-go

test-go:
	$(GO) test -count=1 -timeout 25m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

clean:
	rm -rf bin demo-out

demo: deps
	scripts/demo.sh
