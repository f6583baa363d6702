// Command escape is a hostile model for the builtin runtime's tests: it tries every
// way its authors could think of to write on the host, into the data, to create or
// use device nodes, to see, signal or trace host processes and to keep privileges,
// and reports each try as one JSON object: "ok" where the try succeeded (an escape),
// else the error. Tries that could harm the host were they to succeed only open
// (never write) a device, a sysctl or the sysrq trigger, and set the hostname to the
// one it already has.
//
// Input (environment): ESC_HOSTDIR, a host directory to write markers into (also the
// working directory of ESC_PID, a host process); ESC_BLOCKDEV "major:minor" of a host
// block device; ESC_ABSTRACT, an abstract unix socket the host listens on.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

var r = map[string]any{}

func res(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func write(path string) error {
	return os.WriteFile(path, []byte("escaped\n"), 0o644)
}

// openOnly opens path with flags and closes it at once: whether it could be opened.
func openOnly(path string, flags int) error {
	fd, err := syscall.Open(path, flags|syscall.O_CLOEXEC, 0)
	if err == nil {
		syscall.Close(fd)
	}
	return err
}

func pids() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

func main() {
	if len(os.Args) > 1 {
		signals(os.Args[1])
		return
	}
	// Descriptors inherited from the host, before the Go runtime opens its own.
	var extra []string
	for fd := 3; fd < 1024; fd++ {
		if _, err := fcntl(fd, syscall.F_GETFD); err == nil {
			t, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
			extra = append(extra, fmt.Sprintf("%d=%s", fd, t))
		}
	}
	r["extra_fds"] = extra
	host := os.Getenv("ESC_HOSTDIR")
	hostPID, _ := strconv.Atoi(os.Getenv("ESC_PID"))
	var maj, min uint32
	fmt.Sscanf(os.Getenv("ESC_BLOCKDEV"), "%d:%d", &maj, &min)
	blockdev := int((maj << 8) | (min & 0xff) | ((min &^ 0xff) << 12))

	// Sanity: what a model must be able to do.
	r["sane_scratch"] = res(write("/scratch/ok"))
	r["sane_devnull"] = res(openOnly("/dev/null", syscall.O_WRONLY))
	r["sane_urandom"] = res(openOnly("/dev/urandom", syscall.O_RDONLY))
	_, err := os.ReadFile("/data/in.txt")
	r["sane_data_read"] = res(err)

	// Privileges.
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			if strings.HasPrefix(k, "Cap") || k == "NoNewPrivs" || k == "Uid" {
				r[k] = strings.TrimSpace(v)
			}
		}
	}

	// Host processes: seen, written through, signalled, traced.
	ps := pids()
	r["pids"] = ps
	_, err = os.Stat(fmt.Sprintf("/proc/%d", hostPID))
	r["host_pid_visible"] = res(err)
	var viaRoot, viaCwd []string
	for _, p := range ps {
		if write(filepath.Join("/proc", p, "root", host, "m-root-"+p)) == nil {
			viaRoot = append(viaRoot, p)
		}
		// Only through processes working in ESC_HOSTDIR: this test must not litter
		// the working directories of a host's processes where it escapes.
		cwd := filepath.Join("/proc", p, "cwd")
		if t, _ := os.Readlink(cwd); t == host && write(filepath.Join(cwd, "m-cwd-"+p)) == nil {
			viaCwd = append(viaCwd, p)
		}
	}
	r["write_proc_pid_root"] = viaRoot
	r["write_proc_pid_cwd"] = viaCwd
	r["write_proc_hostpid_root"] = res(write(fmt.Sprintf("/proc/%d/root%s/m-hostpid", hostPID, host)))
	r["write_proc_hostpid_cwd"] = res(write(fmt.Sprintf("/proc/%d/cwd/m-hostcwd", hostPID)))
	r["write_proc_1_root"] = res(write("/proc/1/root" + host + "/m-1"))
	r["write_proc_self_root"] = res(write("/proc/self/root" + host + "/m-self"))
	r["write_dotdot"] = res(write("/../../../../.." + host + "/m-dotdot"))
	r["write_host_path"] = res(write(host + "/m-direct"))
	r["ptrace_host_pid"] = res(ptraceSeize(hostPID))
	r["ptrace_pid_1"] = res(ptraceSeize(1))
	r["kill_host_pid"] = res(syscall.Kill(hostPID, syscall.SIGKILL))
	_, err = os.Readlink("/proc/1/exe")
	r["read_proc_1_exe"] = res(err)
	_, err = os.ReadFile("/proc/1/environ")
	r["read_proc_1_environ"] = res(err)

	// Data: directly, after a remount, through a hard link, by unmounting.
	r["write_data"] = res(write("/data/m-data"))
	r["write_data_existing"] = res(openOnly("/data/in.txt", syscall.O_WRONLY))
	r["write_data_sub"] = res(write("/data/sub/m-data"))
	r["remount_data_rw"] = res(syscall.Mount("", "/data", "", syscall.MS_REMOUNT|syscall.MS_BIND, ""))
	r["write_data_after_remount"] = res(write("/data/m-remount"))
	r["link_data"] = res(os.Link("/data/in.txt", "/scratch/in-link"))
	r["write_root"] = res(write("/m-root"))
	r["write_image_dir"] = res(write("/bin/m-bin"))

	// A setuid-root program left in host directories (/out, /scratch), which would
	// work on the host: by chmod, fchmod, fchmodat; a setgid directory.
	for _, dir := range []string{"/out", "/scratch"} {
		d := strings.TrimPrefix(dir, "/")
		p := dir + "/m-suid"
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			r["setuid_"+d] = err.Error()
			continue
		}
		r["setuid_"+d] = res(syscall.Chmod(p, 0o4755))
		if f, err := os.Open(p); err == nil {
			r["setuid_fchmod_"+d] = res(syscall.Fchmod(int(f.Fd()), 0o6755))
			f.Close()
		}
		r["setuid_fchmodat_"+d] = res(fchmodat(p, 0o2755))
		if fi, err := os.Stat(p); err == nil && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			r["setuid_mode_"+d] = "ok"
		} else {
			r["setuid_mode_"+d] = fmt.Sprint(fi.Mode())
		}
		os.Mkdir(dir+"/m-sgid", 0o755)
		r["setgid_dir_"+d] = res(syscall.Chmod(dir+"/m-sgid", 0o2755))
	}
	r["sane_chmod"] = res(syscall.Chmod("/scratch/ok", 0o700))
	// A user namespace whose root is this uid: its capabilities there would let it put
	// file capabilities on a file in /out, valid on the host.
	os.WriteFile("/out/m-fcap", []byte("#!/bin/sh\n"), 0o755)
	r["userns"] = res(inUserNS(true, "fcap", "/out/m-fcap"))
	r["userns_unmapped"] = res(inUserNS(false, "sleep0"))
	r["keyctl_user_keyring"] = res(keyctl())

	// Mounts and namespaces.
	os.MkdirAll("/tmp/mnt", 0o755)
	r["mount_tmpfs"] = res(syscall.Mount("tmpfs", "/tmp/mnt", "tmpfs", 0, ""))
	r["mount_proc"] = res(syscall.Mount("proc", "/tmp/mnt", "proc", 0, ""))
	r["umount_dev"] = res(syscall.Unmount("/dev/null", syscall.MNT_DETACH))
	r["umount_proc_sys"] = res(syscall.Unmount("/proc/sys", syscall.MNT_DETACH))
	name, _ := os.Hostname()
	r["sethostname"] = res(syscall.Sethostname([]byte(name)))
	r["open_core_pattern"] = res(openOnly("/proc/sys/kernel/core_pattern", syscall.O_WRONLY))
	r["open_sysrq_trigger"] = res(openOnly("/proc/sysrq-trigger", syscall.O_WRONLY))
	r["open_kcore"] = res(readSome("/proc/kcore"))
	if c, err := net.Dial("unix", "@"+os.Getenv("ESC_ABSTRACT")); err == nil {
		c.Close()
		r["connect_abstract"] = "ok"
	} else {
		r["connect_abstract"] = err.Error()
	}
	ifs, _ := net.Interfaces()
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	r["interfaces"] = names

	// Devices: make one, use the one the image ships, use what /dev holds.
	for _, dir := range []string{"/tmp", "/scratch", "/dev"} {
		p := dir + "/m-blk"
		r["mknod_"+strings.TrimPrefix(dir, "/")] = res(syscall.Mknod(p, syscall.S_IFBLK|0o666, blockdev))
		r["open_mknod_"+strings.TrimPrefix(dir, "/")] = res(openOnly(p, syscall.O_RDWR))
	}
	r["open_image_blockdev"] = res(openOnly("/evil/disk", syscall.O_RDWR))
	devs, _ := os.ReadDir("/dev")
	var dev, devWritable []string
	for _, d := range devs {
		dev = append(dev, d.Name())
		if d.Type()&os.ModeDevice != 0 && openOnly("/dev/"+d.Name(), syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY) == nil {
			devWritable = append(devWritable, d.Name())
		}
	}
	sort.Strings(dev)
	r["dev"] = dev
	r["dev_writable"] = devWritable
	r["write_dev"] = res(write("/dev/m-dev"))

	// Last, as it changes this process's root: the classic chroot escape.
	r["chroot_escape"] = res(chrootEscape(host))

	json.NewEncoder(os.Stdout).Encode(r)
}

func readSome(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 16)
	n, err := f.Read(b)
	if n > 0 {
		return nil
	}
	return err
}

// ptraceSeize attaches to pid without stopping it, and detaches.
func ptraceSeize(pid int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const ptraceSeize = 0x4206
	_, _, e := syscall.Syscall6(syscall.SYS_PTRACE, ptraceSeize, uintptr(pid), 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	syscall.Syscall6(syscall.SYS_PTRACE, syscall.PTRACE_DETACH, uintptr(pid), 0, 0, 0, 0)
	return nil
}

// chrootEscape: chroot into a subdirectory, climb with .., chroot there, and write
// host/m-chroot.
func chrootEscape(host string) error {
	if err := os.MkdirAll("/tmp/jail", 0o755); err != nil {
		return err
	}
	if err := syscall.Chroot("/tmp/jail"); err != nil {
		return err
	}
	for range 64 {
		syscall.Chdir("..")
	}
	if err := syscall.Chroot("."); err != nil {
		return err
	}
	return write(host + "/m-chroot")
}

// signals is the model of the signal tests. "term": say ready, wait for SIGTERM,
// answer "term" and exit 0. "tree": start a copy of itself that holds stdout and
// sleeps, say ready, and sleep.
func signals(mode string) {
	switch mode {
	case "term":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("term")
	case "tree":
		p, err := os.StartProcess("/proc/self/exe", []string{"escape", "sleep"}, &os.ProcAttr{Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ready", p.Pid)
		time.Sleep(time.Hour)
	case "sleep":
		time.Sleep(time.Hour)
	case "sleep0":
	case "fcap":
		// v2 file capabilities: every capability permitted and effective.
		v := []byte{0x01, 0, 0, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
		if err := syscall.Setxattr(os.Args[2], "security.capability", v, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func fcntl(fd, cmd int) (int, error) {
	v, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(v), nil
}

func fchmodat(path string, mode uint32) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_FCHMODAT, uintptr(0xffffff9c), uintptr(unsafe.Pointer(p)), uintptr(mode), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// inUserNS runs this program with args in a new user namespace, with mapped: uid and
// gid 0 mapped to this process's own, and waits for it.
func inUserNS(mapped bool, args ...string) error {
	sys := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if mapped {
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	pid, err := syscall.ForkExec("/proc/self/exe", append([]string{"escape"}, args...), &syscall.ProcAttr{
		Files: []uintptr{0, 2, 2}, Sys: sys})
	if err != nil {
		return err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if ws.ExitStatus() != 0 {
		return fmt.Errorf("in the user namespace: exit %d", ws.ExitStatus())
	}
	return nil
}

// keyctl asks for the id of the uid's user keyring (KEYCTL_GET_KEYRING_ID of
// KEY_SPEC_USER_KEYRING, without creating it).
func keyctl() error {
	const sysKeyctl = 250 // amd64
	_, _, e := syscall.Syscall(sysKeyctl, 0, ^uintptr(3), 0)
	if e != 0 {
		return e
	}
	return nil
}
