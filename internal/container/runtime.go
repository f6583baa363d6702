// Package container builds the processes that run a model inside its SIF: the exact
// apptainer / singularity command lines, and the builtin runtime (a fallback for hosts
// without Apptainer: the SIF's squashfs unpacked once and run confined in it, even as
// root (own namespaces, pivot_root, no capability; docs/security.md), with NO GPU
// driver binding).
package container

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/rs/zerolog"
)

// Spec is one model process to start inside a SIF.
type Spec struct {
	SIF      string            // the image
	Command  []string          // argv run inside the container
	DataRoot string            // host directory bound read-only at /data
	Scratch  string            // host directory bound writable at /scratch, also the working directory
	Output   string            // host directory bound writable at /out (outputs that outlive the run); "" = none
	Env      map[string]string // environment inside the container, on top of the image's
	GPU      string            // "" = no GPU, else the device id(s) for CUDA_VISIBLE_DEVICES
}

// Paths inside the container.
const (
	DataMount    = "/data"
	ScratchMount = "/scratch"
	OutputMount  = "/out"
)

// Runtime starts model processes inside SIF images.
type Runtime interface {
	// Name is the runtime's name as given to --runtime ("apptainer", "singularity", "builtin").
	Name() string
	// Prepare makes the SIF ready to run (checks it; unpacks it for builtin). It is safe
	// to call from several goroutines and processes at once; the work is done once.
	Prepare(ctx context.Context, sif string) error
	// Command returns the process for s, not started. Its Stdin/Stdout/Stderr are unset.
	Command(ctx context.Context, s Spec) (*exec.Cmd, error)
}

// Names accepted by Select.
const (
	Auto        = "auto"
	Apptainer   = "apptainer"
	Singularity = "singularity"
	Builtin     = "builtin"
)

// ErrUnknownRuntime is returned by Select for a name it does not know.
var ErrUnknownRuntime = errors.New("unknown runtime")

// ErrNotInstalled is returned by Select when the named runtime is not on PATH (as a
// *NotInstalledError).
var ErrNotInstalled = errors.New("runtime not installed")

// NotInstalledError names the runtime Select could not find on PATH. It matches
// ErrNotInstalled.
type NotInstalledError struct {
	// Name is the runtime asked for: apptainer or singularity.
	Name string
}

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("runtime %s: %v: %s is not on PATH", e.Name, ErrNotInstalled, e.Name)
}

// Unwrap makes errors.Is match ErrNotInstalled.
func (e *NotInstalledError) Unwrap() error { return ErrNotInstalled }

// Select returns the runtime called name: auto picks apptainer, then singularity on
// PATH, else builtin, with a warning that builtin binds no GPU.
func Select(name string, log zerolog.Logger) (Runtime, error) {
	switch name {
	case "", Auto:
		for _, n := range []string{Apptainer, Singularity} {
			if p, err := exec.LookPath(n); err == nil {
				log.Debug().Str("runtime", n).Str("path", p).Msg("runtime selected")
				return newContainerRuntime(n, p), nil
			}
		}
		log.Warn().Msg("neither apptainer nor singularity is on PATH: using the builtin runtime, a fallback that runs the image confined in its own namespaces with NO GPU driver binding and no network; install Apptainer for GPU models")
		return NewBuiltin(BuiltinOptions{Log: log}), nil
	case Apptainer, Singularity:
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, &NotInstalledError{Name: name}
		}
		return newContainerRuntime(name, p), nil
	case Builtin:
		return NewBuiltin(BuiltinOptions{Log: log}), nil
	}
	return nil, CheckName(name)
}

// CheckName returns ErrUnknownRuntime for a name Select does not know, and nil for
// one it does, without looking for the runtime (submit checks the name on a login
// node; the compute nodes select it).
func CheckName(name string) error {
	switch name {
	case "", Auto, Apptainer, Singularity, Builtin:
		return nil
	}
	return fmt.Errorf("runtime %q: %w (known: auto, apptainer, singularity, builtin)", name, ErrUnknownRuntime)
}

// ErrBadBindPath is returned for a host path that apptainer's --bind cannot express.
var ErrBadBindPath = errors.New("path cannot be bound into a container")

// CheckBindPath refuses host paths that --bind would split: ',' separates binds and ':'
// separates source, destination and options (escaping is not understood by every
// Apptainer/Singularity version).
func CheckBindPath(what, p string) error {
	if p == "" {
		return fmt.Errorf("%s: %w: empty path", what, ErrBadBindPath)
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s %q: %w: it must be absolute", what, p, ErrBadBindPath)
	}
	if strings.ContainsAny(p, ",:") {
		return fmt.Errorf("%s %q: %w: apptainer/singularity --bind splits paths at ',' and ':'; rename the directory or use a symlink without them", what, p, ErrBadBindPath)
	}
	if strings.ContainsAny(p, "\n\x00") {
		return fmt.Errorf("%s %q: %w: it contains a newline or NUL", what, p, ErrBadBindPath)
	}
	return nil
}

// checkSpec validates what every runtime needs.
func checkSpec(s Spec) error {
	if s.SIF == "" {
		return errors.New("no SIF image given")
	}
	if len(s.Command) == 0 {
		return fmt.Errorf("%s: no command to run: give the model's predict command (catalog 'predict' or label org.scivision.predict)", s.SIF)
	}
	if err := CheckBindPath("data directory", s.DataRoot); err != nil {
		return err
	}
	if err := CheckBindPath("scratch directory", s.Scratch); err != nil {
		return err
	}
	if s.Output != "" {
		if err := CheckBindPath("output directory", s.Output); err != nil {
			return err
		}
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("environment variable name %q is invalid", k)
		}
	}
	return nil
}
