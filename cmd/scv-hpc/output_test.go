package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/convert"
	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/lockfile"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
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
		{cli.Usagef("x: %w", slurm.ErrGPUsAndGres), "--gres"},
		{fmt.Errorf("model x is %w", catalog.ErrUnknown), "scv-hpc models"},
		{fmt.Errorf("x: %w", catalog.ErrUnreadable), "--catalog"},
		{fmt.Errorf("import: %w", cache.ErrRefRefused), "set with --force"},
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
		{&fetch.NotCachedError{Model: "faces@1.0", CacheDir: "/shared/scv"}, "scv-hpc stage faces@1.0 --cache /shared/scv"},
		{&cache.WriteError{Dir: "/c", Op: "converting x", Err: fmt.Errorf("write: %w", syscall.ENOSPC)}, "point --cache elsewhere"},
		{&cache.WriteError{Dir: "/c", Op: "converting x", Err: fmt.Errorf("write: %w", syscall.EROFS)}, "writable --cache"},
		{&cache.WriteError{Dir: "/c", Op: "converting x", Err: fmt.Errorf("open: %w", fs.ErrPermission)}, "your own --cache"},
		{fmt.Errorf("x: %w", cache.ErrCorrupt), "scv-hpc cache verify"},
		{fmt.Errorf("fetch x: %w /t: %w", fetch.ErrTmpFull, syscall.ENOSPC), "drop --no-layer-cache"},
		{fmt.Errorf("extract: %w: %w", sif.ErrNoSpace, syscall.ENOSPC), "--tmpdir"},
		{fmt.Errorf("make squashfs: %w in the temporary directory /t: %w", convert.ErrNoSpace, syscall.ENOSPC), "--tmpdir"},
		{fmt.Errorf("lock: %w", lockfile.ErrNotRegular), "scv-hpc cache gc"},
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
	// A hint added where the model is known is not added to again.
	corrupt := fmt.Errorf("predict: %w", corruptHint("faces", fmt.Errorf("x: %w", cache.ErrCorrupt)))
	if got := withHint(corrupt); got != corrupt || strings.Count(got.Error(), "cache verify") != 1 || !strings.Contains(got.Error(), "pull --force faces") {
		t.Errorf("withHint(corruptHint) = %v, want it unchanged, with one hint", got)
	}
}
