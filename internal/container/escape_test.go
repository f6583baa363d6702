package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot skips tests of the confinement of a model run by root (make test runs as root).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: this tests how the builtin runtime confines a model when scv-hpc runs as root (as an unprivileged user the kernel refuses these writes anyway); run it as root, as make test does")
	}
}

// snapshot lists every entry below dir with its mode, size and contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBuiltinHostileModel runs a hostile model (testdata/escape) in an image that, as
// root, ships a block device node (a loop device of the host), over a data directory
// with (as root) a mount inside it, next to a host process whose working directory is
// a host directory, and a host abstract unix socket. Every try to write on the host
// or in the data, to make or use a device, to see, signal or trace the host process,
// to reach the socket, to leave a setuid program or to keep a capability must fail,
// and nothing may appear. TestBuiltinUnprivileged runs it again as nobody.
func TestBuiltinHostileModel(t *testing.T) {
	root := os.Getuid() == 0
	if !root {
		t.Log("not root: the builtin runtime uses a user namespace")
	}
	host := t.TempDir()
	img := os.Getenv("SCV_TEST_ESCAPE_SIF") // made by the parent test, which runs this one unprivileged
	if img == "" {
		img = buildEscapeImage(t, root)
	}

	// The data, with a file system mounted inside it.
	data := t.TempDir()
	sub := filepath.Join(data, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if root {
		if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount a tmpfs in the data: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	}
	for p, c := range map[string]string{"in.txt": "hello", "sub/inner.txt": "inner"} {
		if err := os.WriteFile(filepath.Join(data, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, data)

	// A host process working in the host directory.
	sleeper := exec.Command("sleep", "600")
	sleeper.Dir = host
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	abstract := fmt.Sprintf("scv-hpc-escape-test-%d", os.Getpid())
	ln, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hostname, _ := os.Hostname()

	treeDir := t.TempDir()
	rt := NewBuiltin(BuiltinOptions{Dir: treeDir, Log: nopLog})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := rt.Command(ctx, Spec{SIF: img, Command: []string{"escape"}, DataRoot: data, Scratch: t.TempDir(),
		// ESC_BLOCKDEV: a block device the host does not use (the kernel may refuse to
		// open a mounted disk for writing).
		Output: t.TempDir(), Env: map[string]string{"ESC_HOSTDIR": host, "ESC_PID": strconv.Itoa(sleeper.Process.Pid),
			"ESC_BLOCKDEV": loopDevice(t), "ESC_ABSTRACT": abstract}})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hostile model: %v\nstderr: %s", err, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("hostile model output: %v\n%s", err, stdout.String())
	}
	t.Logf("hostile model saw: %s", stdout.String())

	// Sanity: the model could do what a model must (else every try fails for nothing).
	for _, k := range []string{"sane_scratch", "sane_devnull", "sane_urandom", "sane_data_read", "sane_chmod"} {
		if got[k] != "ok" {
			t.Errorf("%s: %v, want ok", k, got[k])
		}
	}
	for _, k := range []string{
		"host_pid_visible", "write_proc_hostpid_root", "write_proc_hostpid_cwd", "write_proc_1_root",
		"write_proc_self_root", "write_dotdot", "write_host_path", "kill_host_pid", "ptrace_host_pid",
		"ptrace_pid_1", "read_proc_1_exe", "read_proc_1_environ", "write_data", "write_data_existing",
		"write_data_sub", "remount_data_rw", "write_data_after_remount", "link_data", "write_root",
		"write_image_dir", "mount_tmpfs", "mount_proc", "umount_dev", "umount_proc_sys", "sethostname",
		"open_core_pattern", "open_sysrq_trigger", "open_kcore", "connect_abstract", "mknod_tmp",
		"open_mknod_tmp", "mknod_scratch", "open_mknod_scratch", "mknod_dev", "open_mknod_dev",
		"open_image_blockdev", "write_dev", "chroot_escape",
		"setuid_out", "setuid_fchmod_out", "setuid_fchmodat_out", "setuid_mode_out", "setgid_dir_out",
		"userns", "userns_unmapped", "keyctl_user_keyring",
		"setuid_scratch", "setuid_fchmod_scratch", "setuid_fchmodat_scratch", "setuid_mode_scratch", "setgid_dir_scratch",
	} {
		v, ok := got[k]
		if !ok || v == "ok" {
			t.Errorf("escape %s: %v", k, v)
		}
	}
	for _, k := range []string{"write_proc_pid_root", "write_proc_pid_cwd", "extra_fds"} {
		if l, _ := got[k].([]any); len(l) > 0 {
			t.Errorf("escape %s: %v", k, l)
		}
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if got[k] != "0000000000000000" {
			t.Errorf("%s = %v, want 0000000000000000", k, got[k])
		}
	}
	if got["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs = %v, want 1", got["NoNewPrivs"])
	}
	if pids, _ := got["pids"].([]any); len(pids) > 2 {
		t.Errorf("the model sees processes other than itself and its init: %v", pids)
	}
	if ifs := fmt.Sprint(got["interfaces"]); ifs != "[lo]" {
		t.Errorf("network interfaces %s, want [lo]", ifs)
	}
	want := []string{"fd", "shm", "stderr", "stdin", "stdout"}
	for _, n := range devNodes {
		if _, err := os.Stat("/dev/" + n); err == nil {
			want = append(want, n)
		}
	}
	slices.Sort(want)
	if d := fmt.Sprint(got["dev"]); d != fmt.Sprint(want) {
		t.Errorf("/dev holds %s, want %v", d, want)
	}
	if w, _ := got["dev_writable"].([]any); len(w) > 0 {
		for _, n := range w {
			if !slices.Contains(devNodes, n.(string)) {
				t.Errorf("/dev/%v writable", n)
			}
		}
	}

	// Nothing appeared on the host, the data and the shared tree are as they were,
	// the host process lives, the hostname is the same.
	if ents, _ := os.ReadDir(host); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the model wrote on the host: %v", names)
	}
	if after := snapshot(t, data); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the data changed:\nbefore %v\nafter  %v", before, after)
	}
	key, _ := rootfsKey(img)
	if s := checkTree(filepath.Join(treeDir, key)); !s.ok() {
		t.Errorf("the shared unpacked tree changed: recorded %+v, found %+v (%v)", s.rec, s.got, s.walkErr)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleeper.Process.Pid)); err != nil || strings.Contains(string(b), ") Z ") {
		t.Errorf("the host process was killed: %s %v", b, err)
	}
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("hostname changed from %q to %q", hostname, h)
	}
}

// TestBuiltinSignals: the model runs under an init (PID 1 of the container), which
// the kernel shields from signals it does not handle. SIGTERM to the process the
// runner started must still reach the model, and a SIGKILL of its process group
// must end the model and everything it started (stdout reaches EOF).
func TestBuiltinSignals(t *testing.T) {
	img := buildImage(t, []string{"PATH=/bin"}, "escape", nil)
	rt := NewBuiltin(BuiltinOptions{Dir: t.TempDir(), Log: nopLog})
	start := func(mode string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
		t.Helper()
		cmd, err := rt.Command(context.Background(), Spec{SIF: img, Command: []string{"escape", mode},
			DataRoot: t.TempDir(), Scratch: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr.Setpgid = true
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		br := bufio.NewReader(out)
		line, err := br.ReadString('\n')
		if !strings.HasPrefix(line, "ready") {
			t.Fatalf("model %s: %q %v\nstderr: %s", mode, line, err, stderr.String())
		}
		return cmd, br, &stderr
	}
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: not within 20s", what)
		}
	}

	t.Run("SIGTERM reaches the model", func(t *testing.T) {
		cmd, br, stderr := start("term")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var line string
		within("answer to SIGTERM", func() { line, _ = br.ReadString('\n') })
		var err error
		within("exit", func() { err = cmd.Wait() })
		if line != "term\n" || err != nil {
			t.Errorf("after SIGTERM: line %q, exit %v\nstderr: %s", line, err, stderr.String())
		}
	})
	t.Run("SIGKILL of the group ends the model's children", func(t *testing.T) {
		cmd, br, _ := start("tree")
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		within("stdout EOF after SIGKILL", func() { br.ReadString('\n') })
		within("exit", func() { cmd.Wait() })
	})
}

// loopDevice is "major:minor" of a block device the host does not use: /dev/loop0,
// else 7:0 (the loop major).
func loopDevice(t *testing.T) string {
	var st unix.Stat_t
	if err := unix.Stat("/dev/loop0", &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return "7:0"
}

// buildEscapeImage builds the hostile model's image; with device, a block device node
// (of loopDevice) at /evil/disk (root only: unsquashfs cannot make one unprivileged).
func buildEscapeImage(t *testing.T, device bool) string {
	t.Helper()
	return buildImage(t, []string{"PATH=/bin"}, "escape", func(rootfs string) {
		if !device {
			return
		}
		var maj, min uint32
		fmt.Sscanf(loopDevice(t), "%d:%d", &maj, &min)
		if err := os.MkdirAll(filepath.Join(rootfs, "evil"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(rootfs, "evil", "disk"), unix.S_IFBLK|0o666, int(unix.Mkdev(maj, min))); err != nil {
			t.Fatal(err)
		}
	})
}
