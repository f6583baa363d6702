package main

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

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
	"github.com/scivision-hpc/scv-hpc/internal/report"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/watch"
)

// Output helpers that every command shares, and the hints added to errors where they
// are shown: internal packages say what failed, the command line says what to type.

// notCached adds to a model's not-cached error (online: offline ones say it) the
// command that fetches it.
func (a *app) notCached(model string, err error) error {
	if errors.Is(err, cache.ErrNotCached) && !errors.Is(err, registry.ErrOffline) {
		return fmt.Errorf("%w; run: scv-hpc pull %s --cache %s", err, shellWord(model), shellWord(a.cfg.Cache))
	}
	return err
}

// shellWord quotes s for a shell command line only when it needs it.
func shellWord(s string) string { return slurm.QuoteArgs([]string{s}) }

// corruptHint adds what to do to an error that reports a corrupt cached SIF of model
// (cache.ErrCorrupt); other errors are returned as they are.
func corruptHint(model string, err error) error {
	if err == nil || !errors.Is(err, cache.ErrCorrupt) {
		return err
	}
	return &hinted{err, fmt.Sprintf("%v; run 'scv-hpc cache verify' to check the cache, then 'scv-hpc pull --force %s' to convert it again", err, shellWord(model))}
}

// hinted is an error whose hint was added where more was known (corruptHint, which
// names the model): withHint leaves it as it is.
type hinted struct {
	err error
	msg string
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

// hints are what to type next for the sentinel errors of internal packages, the first
// that matches winning (withHint).
var hints = []struct {
	err  error
	hint string
}{
	{fetch.ErrTmpFull, "free space there, point --tmpdir elsewhere, or drop --no-layer-cache"},
	{sif.ErrNoSpace, "free space there, or point --tmpdir (or TMPDIR) at a larger file system"},
	{convert.ErrNoSpace, "free space there: 'scv-hpc cache gc' in the cache, or point --tmpdir (or TMPDIR) at a larger file system"},
	{lockfile.ErrNotRegular, "something not a regular file was put at a lock's path; remove it ('scv-hpc cache gc' does, in the cache)"},
	{cache.ErrRefRefused, "refs that only moved are set with --force; refs the SIF disagrees with never are"},
	{cache.ErrCorrupt, "run 'scv-hpc cache verify' to check the cache ('scv-hpc cache gc' removes what is left of broken entries)"},
	{job.ErrNoJob, "create one with 'scv-hpc predict' or 'scv-hpc submit'"},
	{job.ErrOwnFile, "write it elsewhere: another name in the job directory (OUT/results.csv, OUT/report.html) is fine"},
	{job.ErrExists, "use 'scv-hpc resubmit' for a submitted job, or a new --out"},
	{slurm.ErrNotSubmitted, "it was not created by 'scv-hpc submit'; run it with 'scv-hpc predict' or 'scv-hpc run-shard'"},
	{jobsetup.ErrListNeeded, "give --files-from with the list to re-shard"},
	{slurm.ErrNoBinary, "give --scv-hpc PATH"},
	{jobsetup.ErrRescanSlurm, "use 'scv-hpc resubmit', or a new --out"},
	{slurm.ErrUnsafeValue, "pass such a value with --sbatch-arg instead"},
	{slurm.ErrGPUsAndGres, "give either --gpus-per-task or --gres, not both"},
	{slurm.ErrNoSlurm, "run this on a Slurm login node (or 'scv-hpc predict' on this machine)"},
	{sharding.ErrNoInputs, "check --data and --include"},
	{sharding.ErrNotDir, "--data takes the directory that holds the images"},
	{jobsetup.ErrNoDataDir, "--data takes the directory that holds the images"},
	{gpu.ErrBadList, "check --gpus"},
	{catalog.ErrUnknown, "list the models with 'scv-hpc models'"},
	{catalog.ErrUnreadable, "check --catalog and SCV_HPC_CATALOG"},
	{fetch.ErrForceOffline, "drop --force or --offline"},
	{fetch.ErrNoPredict, "add 'predict:' to a --catalog entry"},
	{execute.ErrNoIndex, "run-shard needs --index I (or $SLURM_ARRAY_TASK_ID inside a Slurm array)"},
	{container.ErrUnknownRuntime, "use --runtime auto, apptainer, singularity or builtin"},
	{container.ErrRootfsDir, "set --tmpdir to a writable local disk"},
	{runner.ErrScratch, "set --tmpdir (or TMPDIR) to a writable local disk"},
	{imagebuild.ErrTempFile, "set --tmpdir (or TMPDIR) to a writable local disk"},
	{registry.ErrUntrustedCert, "install the site CA in the system trust store, or use --offline with a staged cache"},
	{registry.ErrUnreachable, "check the network and try again later, or use --offline with a staged cache"},
	{registry.ErrNoPlatform, "choose one with --platform"},
	{registry.ErrNotLayout, "write one with 'scv-hpc image build --oci-layout DIR:TAG' or 'skopeo copy ... oci:DIR:TAG'"},
}

// withHint adds what to type next to the errors of internal packages that call for
// it (typed errors whose hint names what they hold, then the hints table); other
// errors are returned as they are.
func withHint(err error) error {
	var (
		mismatch *job.MismatchError
		changed  *jobsetup.ChangedError
		busy     *job.BusyError
		missing  *container.NotInstalledError
		regErr   *registry.Error
		done     *hinted
		write    *cache.WriteError
		offline  *fetch.NotCachedError
	)
	hint := ""
	switch {
	case err == nil || errors.As(err, &done):
		return err
	case errors.As(err, &offline):
		hint = fmt.Sprintf("on a machine with network run: scv-hpc stage %s --cache %s", shellWord(offline.Model), shellWord(offline.CacheDir))
	case errors.As(err, &write) && errors.Is(err, syscall.EROFS):
		hint = "stage models from a node that can write the cache, or use a writable --cache"
	case errors.As(err, &write) && errors.Is(err, fs.ErrPermission):
		hint = "ask the cache owner, or use your own --cache"
	case errors.As(err, &write):
		hint = "free space or quota, or point --cache elsewhere"
	case errors.As(err, &mismatch):
		hint = "use a new --out, or --force to move the old job aside and start anew"
	case errors.As(err, &changed):
		hint = "run again with --rescan to re-shard it (results of the inputs still there are kept), or use a new --out"
	case errors.As(err, &busy):
		hint = fmt.Sprintf("wait for that run to end, or stop it (the lock of a run that died on another node is taken over after %s)", job.LockStale)
	case errors.As(err, &missing):
		hint = fmt.Sprintf("install it, load its module (module load %s), or use --runtime builtin (no GPU binding)", missing.Name)
	case errors.Is(err, registry.ErrPlainHTTP) && errors.As(err, &regErr):
		hint = fmt.Sprintf("if you trust it, pass --insecure-registry %s", regErr.Host)
	case errors.Is(err, registry.ErrOffline) && !errors.Is(err, cache.ErrNotCached):
		hint = "run 'scv-hpc stage' for it on a machine with network access, or drop --offline"
	default:
		for _, h := range hints {
			if errors.Is(err, h.err) {
				hint = h.hint
				break
			}
		}
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}

// usageErrors are the sentinels of internal packages that mark bad flags or options:
// such an error is a wrong invocation (exit code 2), as a cli.UsageError is.
var usageErrors = []error{
	job.ErrBadOption, jobsetup.ErrBadFlag, sharding.ErrBadPlan, sharding.ErrBadInclude,
	execute.ErrNoShard, slurm.ErrBadOption, slurm.ErrTemplate, imagebuild.ErrBadFlag, report.ErrBadOption,
	watch.ErrBadInterval, results.ErrFormat, job.ErrOwnFile,
}

// exitCode shows err, with its hint (withHint), and returns the exit code.
func exitCode(a *app, err error) int { return cli.Exit(a.stderr, withHint(err), usageErrors) }
