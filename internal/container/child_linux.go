package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

func childSysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if uid := os.Getuid(); uid != 0 {
		// Unprivileged: a user namespace where we are root, so we may mount and chroot.
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// runChild is the container's first process: already in its own mount namespace,
// it makes the mounts private, binds the root file system read-only with data
// (read-only), scratch, the output directory (when given), /proc, /dev and a fresh
// /tmp inside, chroots and execs.
func runChild() error {
	var cs childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childSpecEnv)), &cs); err != nil {
		return fmt.Errorf("bad child spec: %w", err)
	}
	if len(cs.Argv) == 0 {
		return errors.New("no command")
	}
	mount := func(src, dst, fstype string, flags uintptr, data string) error {
		if err := syscall.Mount(src, dst, fstype, flags, data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", src, dst, err)
		}
		return nil
	}
	if err := mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return err
	}
	root := cs.Root
	if err := mount(root, root, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return err
	}
	if err := bindReadOnly(cs.Data, filepath.Join(root, "data")); err != nil {
		return err
	}
	if err := mount(cs.Scratch, filepath.Join(root, "scratch"), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return err
	}
	if cs.Output != "" {
		if err := mount(cs.Output, filepath.Join(root, "out"), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return err
		}
	}
	for _, d := range []string{"/proc", "/dev"} {
		if err := mount(d, filepath.Join(root, d), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return err
		}
	}
	if err := mount("tmpfs", filepath.Join(root, "tmp"), "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	// The image itself stays untouched by the model: remount its root read-only.
	if err := remountReadOnly(root); err != nil {
		return err
	}
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := syscall.Chdir("/scratch"); err != nil {
		return fmt.Errorf("chdir /scratch: %w", err)
	}
	path, err := lookPath(cs.Argv[0], cs.Env)
	if err != nil {
		return err
	}
	if err := syscall.Exec(path, cs.Argv, cs.Env); err != nil {
		return fmt.Errorf("exec %s: %w", cs.Argv[0], err)
	}
	return nil
}

// bindReadOnly bind-mounts src on dst and makes that mount read-only.
func bindReadOnly(src, dst string) error {
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", src, dst, err)
	}
	return remountReadOnly(dst)
}

// remountReadOnly makes the bind mount at dst read-only, keeping the flags the kernel
// locks in a user namespace (nosuid, nodev, noexec, atime).
func remountReadOnly(dst string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dst, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dst, err)
	}
	flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
	for _, f := range []struct{ st, ms uintptr }{
		{0x2, syscall.MS_NOSUID}, {0x4, syscall.MS_NODEV}, {0x8, syscall.MS_NOEXEC},
		{0x400, syscall.MS_NOATIME}, {0x800, syscall.MS_NODIRATIME}, {0x1000, syscall.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := syscall.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", dst, err)
	}
	return nil
}

// lookPath finds name in the PATH of env, inside the (chrooted) container.
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
