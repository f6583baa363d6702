# scv-hpc — see README.md. 'make demo' runs a whole prediction locally; 'make test' runs
# every test (it installs the Debian packages the tests need first).
GO        ?= go
VERSION   ?= 0.1.0-dev
LDFLAGS   := -s -w -X github.com/scivision-hpc/scv-hpc/internal/version.Version=$(VERSION)
BIN       := bin/scv-hpc
STATICCHECK ?= v0.8.2
export CGO_ENABLED := 0

.PHONY: all build deps test test-go test-python vet bench demo clean fuzz example-opencv

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/scv-hpc

deps:
	scripts/deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

test: deps vet test-python test-go

test-go:
	$(GO) test -count=1 -timeout 25m ./...

# The predict adapter's own tests, with Debian's python3 (the one model images carry).
PYTHON ?= /usr/bin/python3
test-python:
	$(PYTHON) -m unittest discover -s templates/adapter -p 'test_*.py'

# Short fuzzing runs of the parsers that read untrusted input (FUZZTIME each). Each new
# input the fuzzer keeps is minimized for at most FUZZMINIMIZE (Go's default, 60s, would
# spend a short run minimizing instead of fuzzing).
FUZZTIME ?= 20s
FUZZMINIMIZE ?= 2s
fuzz:
	@for p in $$(git grep -l '^func Fuzz' -- '*_test.go' | xargs -n1 dirname | sort -u | sed 's|^|./|'); do \
	  for f in $$(grep -h '^func Fuzz' $$p/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$p || exit 1; \
	  done; \
	done

# The OpenCV Python model image (debootstrap, no Docker); prints the OCI layout directory.
example-opencv: deps
	scripts/build-opencv-image.sh

# Go benchmarks of every package, then the conversion benchmark on the OpenCV image
# (scripts/bench-convert.sh: a table of pull times, peak RSS and SIF sizes per compression).
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...
	scripts/bench-convert.sh

clean:
	rm -rf bin demo-out

demo: deps
	scripts/demo.sh
