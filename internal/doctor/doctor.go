// Package doctor checks what this host can do for scv-hpc: container runtime and user
// namespaces, squashfs tools and kernel support, GPU driver, Slurm, the cache directory
// and its file system, and which catalog models are cached for offline use. Each check
// ends ok, warn or fail, and a check that is not ok says how to fix it.
//
// Every check reads the host only through Probes, the seam tests replace.
package doctor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/catalog"
)

// Status is the outcome of one check.
type Status string

// The outcomes, best first.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one line of the doctor's report.
type Check struct {
	// Name says what was checked ("apptainer", "user namespaces", "cache directory").
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail is what was found: a version, a count, a file system type.
	Detail string `json:"detail"`
	// Fix says what to do when Status is not OK.
	Fix string `json:"fix,omitempty"`
}

// FSInfo is what statfs(2) says about a directory.
type FSInfo struct {
	Magic     int64  // f_type
	FreeBytes uint64 // available to unprivileged users
}

// Probes is how checks see the host. Zero fields are filled with the real host's.
type Probes struct {
	// LookPath finds a program on PATH (exec.LookPath).
	LookPath func(name string) (string, error)
	// Output runs a program and returns its combined output.
	Output func(ctx context.Context, name string, args ...string) ([]byte, error)
	// ReadFile reads a file (os.ReadFile); used for /proc.
	ReadFile func(path string) ([]byte, error)
	// Stat stats a path (os.Stat).
	Stat func(path string) (fs.FileInfo, error)
	// Statfs reports the file system of a directory.
	Statfs func(path string) (FSInfo, error)
	// TryWrite creates and removes a file in dir to prove it is writable.
	TryWrite func(dir string) error
	// Getuid returns the user id (os.Getuid).
	Getuid func() int
}

// hostProbes returns the probes that look at this machine.
func hostProbes() Probes {
	return Probes{
		LookPath: exec.LookPath,
		Output:   runOutput,
		ReadFile: os.ReadFile,
		Stat:     os.Stat,
		Statfs:   statfs,
		TryWrite: tryWrite,
		Getuid:   os.Getuid,
	}
}

func (p Probes) withDefaults() Probes {
	h := hostProbes()
	if p.LookPath == nil {
		p.LookPath = h.LookPath
	}
	if p.Output == nil {
		p.Output = h.Output
	}
	if p.ReadFile == nil {
		p.ReadFile = h.ReadFile
	}
	if p.Stat == nil {
		p.Stat = h.Stat
	}
	if p.Statfs == nil {
		p.Statfs = h.Statfs
	}
	if p.TryWrite == nil {
		p.TryWrite = h.TryWrite
	}
	if p.Getuid == nil {
		p.Getuid = h.Getuid
	}
	return p
}

// Options says what to check.
type Options struct {
	// CacheDir is the SIF cache directory to check (writable, file system, contents).
	CacheDir string
	// TmpDir is the scratch directory for conversions; empty means os.TempDir().
	TmpDir string
	// Catalog lists the models whose offline readiness is reported; nil skips that check.
	Catalog *catalog.Catalog
	// CommandTimeout bounds each program the checks run; default 10s.
	CommandTimeout time.Duration
	// Probes replace the host's (tests); zero fields use the host.
	Probes Probes
}

// Run runs every check and returns them in a fixed order.
func Run(ctx context.Context, o Options) []Check {
	d := &doctor{p: o.Probes.withDefaults(), timeout: o.CommandTimeout}
	if d.timeout <= 0 {
		d.timeout = 10 * time.Second
	}
	var out []Check
	out = append(out, d.containerRuntime(ctx))
	out = append(out, d.userNamespaces(ctx))
	out = append(out, d.squashfsTools(ctx)...)
	out = append(out, d.squashfsKernel(ctx))
	out = append(out, d.squashfsCompression(ctx))
	out = append(out, d.gpu(ctx))
	out = append(out, d.slurm(ctx)...)
	out = append(out, d.cacheDir(o.CacheDir))
	tmp := o.TmpDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	out = append(out, d.tmpDir(tmp))
	if o.Catalog != nil {
		out = append(out, d.offline(o.Catalog, o.CacheDir))
	}
	return out
}

// Worst returns the worst status of checks (OK for none).
func Worst(checks []Check) Status {
	w := OK
	for _, c := range checks {
		switch {
		case c.Status == Fail:
			return Fail
		case c.Status == Warn:
			w = Warn
		}
	}
	return w
}

type doctor struct {
	p       Probes
	timeout time.Duration
}

// run runs a program with the per-command timeout; the output is trimmed.
func (d *doctor) run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	out, err := d.p.Output(ctx, name, args...)
	if ctx.Err() != nil && err != nil {
		err = errors.New("timed out after " + d.timeout.String())
	}
	return strings.TrimSpace(string(out)), err
}

func runOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

func tryWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".scv-hpc-doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.WriteString("ok\n")
	cerr := f.Close()
	rerr := os.Remove(name)
	return errors.Join(werr, cerr, rerr)
}

// firstLine returns the first non-empty line of s.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// lastLine returns the last non-empty line of s (where tools put the fatal error).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
