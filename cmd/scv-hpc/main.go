// Command scv-hpc runs Scivision computer-vision models in bulk on HPC clusters:
// it pulls model images, converts them to SIF, shards datasets, and runs predict
// through a worker pool locally or as Slurm job arrays.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/container"
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
