package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// BuiltinOptions configure the builtin runtime.
type BuiltinOptions struct {
	// Dir holds the unpacked root file systems, one per image digest.
	// Default: $TMPDIR/scv-hpc-rootfs-UID (node-local; unpacking is per node).
	Dir string
	// MaxAge: after a Prepare, trees of other images unused for longer than this
	// (and held by no process) are removed. 0 = DefaultMaxAge, negative = never.
	MaxAge time.Duration
	Log    zerolog.Logger
}

// builtinRuntime runs a SIF without Apptainer: its squashfs partition is unpacked once
// per digest, and the command runs in it, confined even when scv-hpc runs as root:
// its own mount, PID, UTS, IPC and network namespaces, pivot_root into the tree
// bound read-only, the same binds as apptainer (data read-only at /data, scratch at
// /scratch, the output directory at /out), a private /tmp, a minimal /dev, a fresh
// /proc, no capability and no_new_privs (docs/security.md). It binds NO GPU driver
// libraries: it is a fallback for laptops and CI, not a replacement for Apptainer.
type builtinRuntime struct {
	o BuiltinOptions
	// self is this executable, re-run as the container's first process (it calls
	// MaybeRunChild first thing in main, or TestMain); selfErr why it is unknown.
	self     string
	selfErr  error
	mu       sync.Mutex
	prepared map[string]*unpacked // by SIF path
}

type unpacked struct {
	root string
	env  []string // the image's environment (OCI config Env)
	// Held for the life of the runtime (the process exit releases them): the shared
	// flock on <key>.lock that keeps pruners away (nil for a private copy), and a
	// shared flock on the tree directory that keeps systemd-tmpfiles from aging it.
	lock *treeLock
	dir  *os.File
}

// NewBuiltin returns the builtin runtime.
func NewBuiltin(o BuiltinOptions) Runtime {
	if o.Dir == "" {
		o.Dir = filepath.Join(os.TempDir(), fmt.Sprintf("scv-hpc-rootfs-%d", os.Getuid()))
	}
	r := &builtinRuntime{o: o, prepared: map[string]*unpacked{}}
	if r.self, r.selfErr = os.Executable(); r.selfErr != nil {
		r.selfErr = fmt.Errorf("builtin runtime: own executable: %w", r.selfErr)
	}
	return r
}

func (r *builtinRuntime) Name() string { return Builtin }

var hexName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// rootfsKey names the unpacked tree of sif: the digest when the SIF lives in the cache
// (named <hex>.sif), else a hash of its path, size and modification time.
func rootfsKey(sif string) (string, error) {
	fi, err := os.Stat(sif)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", sif, err)
	}
	if base := strings.TrimSuffix(filepath.Base(sif), ".sif"); hexName.MatchString(base) {
		return "sha256-" + base, nil
	}
	abs, _ := filepath.Abs(sif)
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d", abs, fi.Size(), fi.ModTime().UnixNano())))
	return "file-" + hex.EncodeToString(h[:16]), nil
}

// Prepare unpacks the SIF's root file system once: under an exclusive lock, into a
// temporary directory renamed into place when complete, so parallel workers (and
// processes) unpack it once and never see a partial tree. A tree already there is
// checked against its record (entry count and bytes) and unpacked afresh when damaged.
// The tree is then held (shared lock) for the life of the runtime, marked used, and
// trees of other images unused for MaxAge are pruned.
func (r *builtinRuntime) Prepare(ctx context.Context, sif string) error {
	_, err := r.prepare(ctx, sif)
	return err
}

func (r *builtinRuntime) prepare(ctx context.Context, sif string) (*unpacked, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.prepared[sif]; u != nil {
		return u, nil
	}
	key, err := rootfsKey(sif)
	if err != nil {
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	env, err := imageEnv(sif)
	if err != nil {
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	if err := os.MkdirAll(r.o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("builtin runtime: rootfs directory: %w (set --tmpdir to a writable local disk)", err)
	}
	root := filepath.Join(r.o.Dir, key)
	l, err := openTreeLock(root + ".lock")
	if err != nil {
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	use, shared, err := r.acquireTree(ctx, sif, root, l)
	if err != nil {
		l.close()
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	u := &unpacked{root: use, env: env, dir: lockTreeDir(use)}
	if shared {
		touchTree(root)
		u.lock = l
	} else {
		l.close()
	}
	r.prepared[sif] = u
	keep := map[string]bool{}
	for _, p := range r.prepared {
		if p.lock != nil {
			keep[filepath.Base(p.root)] = true
		}
	}
	r.prune(keep)
	return u, nil
}

// mountPoints are the directories of an unpacked root that the child mounts on.
var mountPoints = []string{"data", "scratch", "out", "proc", "dev", "tmp"}

// addMountPoints creates the mount points missing from a tree unpacked by an older
// scv-hpc (trees are kept across versions); an entry the image itself holds, even a
// symlink, is left as it is, as for a fresh unpack. created says whether it made any.
func addMountPoints(root string) (bool, error) {
	created := false
	for _, d := range mountPoints {
		p := filepath.Join(root, d)
		if _, err := os.Lstat(p); err == nil || !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Mkdir(p, 0o755); err == nil {
			created = true
		} else if !errors.Is(err, os.ErrExist) {
			return created, fmt.Errorf("mount point /%s: %w", d, err)
		}
	}
	return created, nil
}

// Environment variables of the re-executed child.
const (
	childEnv     = "SCV_HPC_BUILTIN_CHILD"
	childSpecEnv = "SCV_HPC_BUILTIN_SPEC"
)

// childSpec is what the child needs to set up the container.
type childSpec struct {
	Root    string   `json:"root"`
	Data    string   `json:"data"`
	Scratch string   `json:"scratch"`
	Output  string   `json:"output,omitempty"` // "" = nothing bound at /out
	GPU     bool     `json:"gpu,omitempty"`    // bind the host's /dev/nvidia* nodes
	UserNS  bool     `json:"userns,omitempty"` // unprivileged: in a user namespace
	Env     []string `json:"env"`
	Argv    []string `json:"argv"`
}

// ErrOverlap is returned by the builtin runtime's Command for a data directory that
// contains, or lies in, the scratch or output directory.
var ErrOverlap = errors.New("directories overlap")

// checkApart refuses data, scratch and output directories inside one another (after
// symlinks): /data must not be reachable writable, nor /scratch or /out inside /data.
func checkApart(s Spec) error {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return filepath.Clean(p)
	}
	within := func(a, b string) bool { return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") }
	data := resolve(s.DataRoot)
	for _, o := range []struct{ what, path string }{{"scratch", s.Scratch}, {"output", s.Output}} {
		if o.path == "" {
			continue
		}
		p := resolve(o.path)
		if within(data, p) || within(p, data) {
			return fmt.Errorf("data directory %s and %s directory %s: %w: the model could write into the data; choose a %s directory outside the data (and the data outside it)",
				s.DataRoot, o.what, o.path, ErrOverlap, o.what)
		}
	}
	return nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Command returns the re-executed child that sets the container up and starts the
// command (see runChild and setupRoot): new mount, PID, UTS, IPC and network
// namespaces (and a user namespace when not root), pivot_root into the read-only
// tree, no capability, no_new_privs. Environment inside: the image's Env, then s.Env
// (cleanenv, as apptainer). s.GPU sets CUDA_VISIBLE_DEVICES and binds the host's
// /dev/nvidia* nodes, but no driver library: the image must bring its own.
// Data, scratch and output directories that contain one another are refused
// (ErrOverlap): /data would be writable through /scratch or /out.
func (r *builtinRuntime) Command(ctx context.Context, s Spec) (*exec.Cmd, error) {
	if err := checkSpec(s); err != nil {
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	u, err := r.prepare(ctx, s.SIF)
	if err != nil {
		return nil, err
	}
	if r.selfErr != nil {
		return nil, r.selfErr
	}
	if err := checkApart(s); err != nil {
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	cs := childSpec{Root: u.root, Data: s.DataRoot, Scratch: s.Scratch, Output: s.Output, Argv: s.Command,
		GPU: s.GPU != "", UserNS: os.Getuid() != 0}
	cs.Env = mergeEnv(u.env, s.Env, s.GPU)
	b, err := json.Marshal(cs)
	if err != nil {
		return nil, fmt.Errorf("builtin runtime: %w", err)
	}
	cmd := exec.CommandContext(ctx, r.self)
	cmd.Args = []string{"scv-hpc-builtin", s.Command[0]}
	cmd.Env = []string{childEnv + "=1", childSpecEnv + "=" + string(b)}
	cmd.SysProcAttr = childSysProcAttr()
	return cmd, nil
}

// mergeEnv gives the container environment: image env, then spec env (sorted keys
// win over the image), then CUDA_VISIBLE_DEVICES, with PATH defaulted.
func mergeEnv(image []string, spec map[string]string, gpu string) []string {
	idx := map[string]int{}
	var env []string
	set := func(k, v string) {
		if i, ok := idx[k]; ok {
			env[i] = k + "=" + v
			return
		}
		idx[k] = len(env)
		env = append(env, k+"="+v)
	}
	for _, e := range image {
		if k, v, ok := strings.Cut(e, "="); ok && k != "" {
			set(k, v)
		}
	}
	keys := make([]string, 0, len(spec))
	for k := range spec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set(k, spec[k])
	}
	if gpu != "" {
		set("CUDA_VISIBLE_DEVICES", gpu)
	}
	if _, ok := idx["PATH"]; !ok {
		set("PATH", defaultPath)
	}
	return env
}
