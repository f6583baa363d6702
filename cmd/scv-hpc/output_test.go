package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// TestWithHint: internal errors say what failed; the command line adds what to type,
// and keeps the error matchable.
func TestWithHint(t *testing.T) {
	nop := zerolog.Nop()
	_, unknownRuntime := container.Select("docker", nop)
	t.Setenv("PATH", t.TempDir())
	_, noApptainer := container.Select("apptainer", nop)
	ctx := context.Background()
	_, _, offline := registry.Open(ctx, "reg.example:5000/lab/faces:1", registry.Options{Offline: true})
	_, _, notLayout := registry.Open(ctx, "oci-layout:"+t.TempDir(), registry.Options{})
	for _, tc := range []struct {
		err  error
		hint string
	}{
		{&job.MismatchError{Dir: "/o", Have: "a", Want: "b"}, "--force"},
		{&jobsetup.ChangedError{Dir: "/o", What: "data"}, "--rescan"},
		{&job.BusyError{Dir: "/o", What: "the job"}, "wait for that run"},
		{fmt.Errorf("x: %w", job.ErrNoJob), "scv-hpc predict"},
		{fmt.Errorf("x: %w", slurm.ErrUnsafeValue), "--sbatch-arg"},
		{slurm.ErrGPUsAndGres, "--gpus-per-task or --gres"},
		{fmt.Errorf("sbatch: %w", slurm.ErrNoSlurm), "login node"},
		{fmt.Errorf("shard: %w", sharding.ErrNoInputs), "--include"},
		{fmt.Errorf("x: %w", gpu.ErrBadList), "--gpus"},
		{usageError{fmt.Errorf("x: %w", slurm.ErrGPUsAndGres)}, "--gres"},
		{fmt.Errorf("model x is %w", catalog.ErrUnknown), "scv-hpc models"},
		{fmt.Errorf("x: %w", catalog.ErrUnreadable), "--catalog"},
		{fmt.Errorf("x: %w", fetch.ErrNoPredict), "predict:"},
		{fmt.Errorf("x: %w", jobsetup.ErrNoDataDir), "--data takes"},
		{fmt.Errorf("x: %w", fetch.ErrForceOffline), "drop --force or --offline"},
		{fmt.Errorf("x: %w", execute.ErrNoIndex), "needs --index"},
		{unknownRuntime, "--runtime auto, apptainer"},
		{noApptainer, "module load apptainer"},
		{fmt.Errorf("x: %w", container.ErrRootfsDir), "--tmpdir"},
		{fmt.Errorf("x: %w", runner.ErrScratch), "--tmpdir"},
		{fmt.Errorf("x: %w", imagebuild.ErrTempFile), "--tmpdir"},
		{offline, "scv-hpc stage"},
		{notLayout, "--oci-layout"},
		{&registry.Error{Kind: registry.ErrUnreachable, Reason: registry.ErrPlainHTTP, Host: "reg.lab:5000", Msg: "m"}, "--insecure-registry reg.lab:5000"},
		{&registry.Error{Kind: registry.ErrUnreachable, Reason: registry.ErrUntrustedCert, Msg: "m"}, "site CA"},
		{&registry.Error{Kind: registry.ErrUnreachable, Msg: "m"}, "--offline"},
		{&registry.Error{Kind: registry.ErrNoPlatform, Msg: "m"}, "--platform"},
	} {
		got := withHint(tc.err)
		if !strings.Contains(got.Error(), tc.hint) || !strings.HasPrefix(got.Error(), tc.err.Error()) || !errors.Is(got, tc.err) {
			t.Errorf("withHint(%v) = %v, want the error, then %q", tc.err, got, tc.hint)
		}
	}
	plain := errors.New("disk full")
	if withHint(plain) != plain {
		t.Error("an error without a hint was changed")
	}
}
