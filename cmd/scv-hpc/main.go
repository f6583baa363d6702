// Command scv-hpc runs Scivision computer-vision models in bulk on HPC clusters:
// it pulls model images, converts them to SIF, shards datasets, and runs predict
// through a worker pool locally or as Slurm job arrays.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/report"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/watch"
)

func main() {
	container.MaybeRunChild() // the builtin runtime's container set-up, when re-executed as it
	// SIGTERM is what Slurm sends at preemption and before the time limit; both it and
	// Ctrl-C cancel the context so long operations stop cleanly and flush.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(os.Stdin, os.Stdout, os.Stderr)
	err := newRootCmd(a).ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(a, err))
}

// Exit codes, as documented in the README and DESIGN.md.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInputFailed = 3
)

// errInputsFailed is returned by commands that finished but recorded failed inputs.
var errInputsFailed = errors.New("finished with failed inputs")

// usageErrors are the sentinels of internal packages that mark bad flags or options:
// such an error is a wrong invocation (exit code 2), as a usageError is.
var usageErrors = []error{
	job.ErrBadOption, jobsetup.ErrBadFlag, sharding.ErrBadPlan, sharding.ErrBadInclude,
	execute.ErrNoShard, slurm.ErrBadOption, slurm.ErrTemplate, imagebuild.ErrBadFlag, report.ErrBadOption,
	watch.ErrBadInterval, results.ErrFormat,
}

// usageError marks a wrong invocation (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(a *app, err error) int {
	if err == nil {
		return exitOK
	}
	err = withHint(err)
	if errors.Is(err, errInputsFailed) {
		return exitInputFailed
	}
	var ue usageError
	if errors.As(err, &ue) || slices.ContainsFunc(usageErrors, func(e error) bool { return errors.Is(err, e) }) {
		fmt.Fprintf(a.stderr, "scv-hpc: %v\nRun 'scv-hpc --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "scv-hpc: %v\n", err)
	return exitError
}
