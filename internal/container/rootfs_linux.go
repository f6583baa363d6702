package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The container's file system, built by its first process (runChild) in its own,
// private mount namespace, then entered with pivot_root:
//
//	/         the unpacked tree, bound read-only, nosuid, nodev (shared by every worker)
//	/data     the data directory, read-only, nosuid, nodev, with every mount below it
//	/scratch  the worker's scratch directory, writable, nosuid, nodev
//	/out      the output directory (when given), writable, nosuid, nodev
//	/tmp      a private tmpfs, nosuid, nodev
//	/dev      a read-only tmpfs holding null, zero, full, random, urandom, tty (the
//	          host's nodes bound on files), fd/stdin/stdout/stderr links, a writable
//	          tmpfs /dev/shm, and the host's /dev/nvidia* nodes only for a GPU worker
//	/proc     a fresh proc of the container's PID namespace, with sys, sysrq-trigger,
//	          irq, bus, fs read-only and kcore, keys, timer_list… masked
//
// Nothing else of the host is mounted (no /sys, no host /dev, no host /proc).

// errMountPoint is returned when the image holds something other than a directory
// where the runtime mounts (a symlink there would be followed on the host).
var errMountPoint = errors.New("image mount point is not a directory")

// devNodes are the host device nodes every container gets.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// procReadOnly are made read-only and procMasked hidden, as other container runtimes
// do: a process with uid 0 may write sysctls and the sysrq trigger without any
// capability (their permission check is the uid), and these files say much about
// the host kernel.
var (
	procReadOnly = []string{"sys", "sysrq-trigger", "irq", "bus", "fs"}
	procMasked   = []string{"kcore", "keys", "timer_list", "timer_stats", "sched_debug", "latency_stats", "kallsyms", "acpi", "scsi", "asound"}
)

func mountErr(src, dst string, err error) error {
	return fmt.Errorf("mount %s on %s: %w", src, dst, err)
}

// setupRoot builds the container's file system described above and pivots into it.
// It is called in a new mount namespace; the old root is detached at the end.
func setupRoot(cs childSpec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root, err := filepath.EvalSymlinks(cs.Root)
	if err != nil {
		return fmt.Errorf("image tree: %w", err)
	}
	for _, d := range mountPoints {
		fi, err := os.Lstat(filepath.Join(root, d))
		if err != nil {
			return fmt.Errorf("/%s: %w", d, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("/%s of the image (%s): %w; the builtin runtime cannot run this image, use apptainer", d, fi.Mode().Type(), errMountPoint)
		}
	}
	// The tree alone (not what may be mounted below it on the host).
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		return mountErr(root, root, err)
	}
	if err := bindData(cs.Data, filepath.Join(root, "data")); err != nil {
		return err
	}
	if err := bindWritable(cs.Scratch, filepath.Join(root, "scratch")); err != nil {
		return err
	}
	if cs.Output != "" {
		if err := bindWritable(cs.Output, filepath.Join(root, "out")); err != nil {
			return err
		}
	}
	if err := unix.Mount("tmpfs", filepath.Join(root, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return mountErr("tmpfs", "/tmp", err)
	}
	if err := setupDev(filepath.Join(root, "dev"), cs.GPU); err != nil {
		return err
	}
	if err := setupProc(filepath.Join(root, "proc"), cs.UserNS); err != nil {
		return err
	}
	// The image itself stays untouched by the model, and nothing in it (a setuid
	// file, a device node a hostile image shipped) has any effect.
	if err := remount(root, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	return pivot(root)
}

// pivot makes root the root of the mount namespace and detaches the old one, so no
// path (.., /proc/*/root of a process) leads back to the host's file system.
func pivot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	// pivot_root(".", "."): the old root ends stacked on the new one, needing no
	// directory inside the (read-only) image; then it is detached.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// bindData binds src on dst with every mount below it, and makes each of those
// mounts read-only, nosuid and nodev: no path under /data is writable.
func bindData(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return mountErr(src, dst, err)
	}
	subs, err := mountsUnder(dst)
	if err != nil {
		return err
	}
	if len(subs) == 0 {
		return fmt.Errorf("data bind %s: not in /proc/self/mountinfo", dst)
	}
	for _, m := range subs {
		if err := remount(m, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV); err != nil {
			return err
		}
	}
	return nil
}

// bindWritable binds src (alone, not the mounts below it) on dst, nosuid and nodev.
func bindWritable(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return mountErr(src, dst, err)
	}
	return remount(dst, unix.MS_NOSUID|unix.MS_NODEV)
}

// remount changes the flags of the bind mount at dst to flags, keeping those the
// kernel locks in a user namespace (nosuid, nodev, noexec, read-only, atime).
func remount(dst string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dst, err)
	}
	flags |= unix.MS_BIND | unix.MS_REMOUNT
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s (flags %#x): %w", dst, flags, err)
	}
	return nil
}

// mountsUnder lists the mount points at dir or below it, from /proc/self/mountinfo.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space…) of a mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// setupDev mounts the minimal /dev on dev.
func setupDev(dev string, gpu bool) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, "mode=755,size=64k"); err != nil {
		return mountErr("tmpfs", "/dev", err)
	}
	nodes := append([]string(nil), devNodes...)
	if gpu {
		nodes = append(nodes, gpuNodes("/dev")...)
	}
	for _, n := range nodes {
		if err := bindNode("/dev/"+n, filepath.Join(dev, n)); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return fmt.Errorf("/dev/shm: %w", err)
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777"); err != nil {
		return mountErr("tmpfs", "/dev/shm", err)
	}
	// /dev itself read-only: nothing to add there (its mounts stay as they are).
	if err := unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, "mode=755,size=64k"); err != nil {
		return fmt.Errorf("remount /dev read-only: %w", err)
	}
	return nil
}

// bindNode binds the host device node src on a new empty file dst (its directory
// made as needed); a node the host lacks is left out.
func bindNode(src, dst string) error {
	fi, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("device %s: %w", src, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return nil // only character devices: never a block device
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("device %s: %w", src, err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("device %s: %w", src, err)
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return mountErr(src, dst, err)
	}
	return nil
}

// gpuNodes lists the NVIDIA character devices under dev (nvidia0…, nvidiactl,
// nvidia-uvm…, nvidia-caps/*), relative to dev: all of them, as apptainer --nv
// binds them; CUDA_VISIBLE_DEVICES (and Slurm's device cgroup) pick the GPU.
func gpuNodes(dev string) []string {
	var out []string
	ents, _ := os.ReadDir(dev)
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "nvidia") {
			continue
		}
		if e.Type()&os.ModeCharDevice != 0 {
			out = append(out, name)
			continue
		}
		if e.IsDir() && name == "nvidia-caps" {
			sub, _ := os.ReadDir(filepath.Join(dev, name))
			for _, s := range sub {
				if s.Type()&os.ModeCharDevice != 0 {
					out = append(out, name+"/"+s.Name())
				}
			}
		}
	}
	return out
}

// setupProc mounts a fresh proc of the container's PID namespace on proc, then makes
// procReadOnly read-only and hides procMasked. Unprivileged, where the kernel refuses
// a new proc (the host's /proc is partly covered, as in some containers), the host's
// /proc is bound instead, with a warning: it shows no more than the user may see.
func setupProc(proc string, userNS bool) error {
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("proc", proc, "proc", flags, ""); err != nil {
		if !userNS {
			return mountErr("proc", "/proc", err)
		}
		fmt.Fprintf(os.Stderr, "scv-hpc builtin runtime: warning: cannot mount a proc of the container (%v): binding the host's /proc\n", err)
		if err := unix.Mount("/proc", proc, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("/proc", proc, err)
		}
	}
	for _, p := range procReadOnly {
		path := filepath.Join(proc, p)
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		if err := unix.Mount(path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr(path, path, err)
		}
		if err := remount(path, unix.MS_RDONLY|flags); err != nil {
			return err
		}
	}
	for _, p := range procMasked {
		path := filepath.Join(proc, p)
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", path, "tmpfs", unix.MS_RDONLY|flags, "mode=555")
		} else {
			err = unix.Mount("/dev/null", path, "", unix.MS_BIND, "")
		}
		if err != nil {
			return mountErr("mask", path, err)
		}
	}
	return nil
}
