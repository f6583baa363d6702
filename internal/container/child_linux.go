package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaybeRunChild runs the builtin runtime's container set-up when this process was
// started as its child, and never returns then; otherwise it returns at once.
// Call it first thing in main (and in TestMain of tests that use the builtin runtime).
func MaybeRunChild() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	err := runChild()
	if errors.Is(err, syscall.EPERM) {
		err = fmt.Errorf("%w (the builtin runtime needs root or unprivileged user namespaces: check sysctl user.max_user_namespaces; or install Apptainer)", err)
	}
	fmt.Fprintf(os.Stderr, "scv-hpc builtin runtime: %v\n", err)
	os.Exit(127)
}

// childCloneflags are the namespaces of a container: mounts, PIDs (its own /proc,
// no host process to see, signal or trace), hostname, System V IPC and POSIX message
// queues, and network (loopback only: no host abstract socket, no network at all).
const childCloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS |
	syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET

func childSysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Cloneflags: childCloneflags, Pdeathsig: syscall.SIGKILL}
	if uid := os.Getuid(); uid != 0 {
		// Unprivileged: a user namespace where we are root, so we may mount and pivot.
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// forwarded are the signals the container's first process passes on to the model's
// process group (the kernel drops, for a PID namespace's first process, the signals
// it does not handle: SIGTERM would otherwise never reach the model).
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2}

// runChild is the container's first process (PID 1 of its PID namespace): it builds
// the container's file system and pivots into it (setupRoot), brings up loopback,
// makes itself non-dumpable (the model may not read or trace it), starts the model
// with no capability and no_new_privs, then forwards signals to it and reaps
// orphans until the model exits, and exits with its status. Its own exit ends every
// process left in the namespace; the runner's SIGKILL of it does the same.
func runChild() error {
	var cs childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childSpecEnv)), &cs); err != nil {
		return fmt.Errorf("bad child spec: %w", err)
	}
	if len(cs.Argv) == 0 {
		return errors.New("no command")
	}
	if err := setupRoot(cs); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("set non-dumpable: %w", err)
	}
	path, err := lookPath(cs.Argv[0], cs.Env)
	if err != nil {
		return err
	}
	if err := closeOnExecAll(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	pid, err := startUnprivileged(path, cs.Argv, cs.Env, ScratchMount)
	if err != nil {
		return fmt.Errorf("exec %s: %w", cs.Argv[0], err)
	}
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			if syscall.Kill(-pid, sig.(syscall.Signal)) != nil {
				syscall.Kill(pid, sig.(syscall.Signal)) // the model left its group
			}
			continue
		}
		if ws, done := reap(pid); done {
			os.Exit(exitCode(ws))
		}
	}
	return nil
}

// reap collects every exited child; done when one of them was the model.
func reap(model int) (syscall.WaitStatus, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return 0, false
		}
		if pid == model {
			return ws, true
		}
	}
}

// exitCode is the model's exit status as a shell gives it: the code, or 128+signal
// (then said on stderr, which the runner keeps in the worker log).
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		fmt.Fprintf(os.Stderr, "scv-hpc builtin runtime: the model was killed by signal %d (%v)\n", int(ws.Signal()), ws.Signal())
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// lookPath finds name in the PATH of env, inside the container (after the pivot).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in the image (PATH=%s)", name, path)
}
