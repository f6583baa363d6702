package doctor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeHost is a host described by tables: programs on PATH and their output, files, modes.
type fakeHost struct {
	programs map[string]string // name → "output" (prefix "!" = the command fails)
	files    map[string]string
	modes    map[string]fs.FileMode
	statfs   map[string]FSInfo
	readOnly map[string]bool
	uid      int
}

func (h fakeHost) probes() Probes {
	return Probes{
		LookPath: func(name string) (string, error) {
			if _, ok := h.programs[name]; ok {
				return "/opt/x/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		Output: func(_ context.Context, name string, args ...string) ([]byte, error) {
			key := strings.Join(append([]string{name}, args...), " ")
			out, ok := h.programs[key]
			if !ok {
				out = h.programs[name]
			}
			if strings.HasPrefix(out, "!") {
				return []byte(out[1:]), errors.New("exit status 1")
			}
			return []byte(out), nil
		},
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := h.files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		Stat: func(p string) (fs.FileInfo, error) {
			if m, ok := h.modes[p]; ok {
				return fakeInfo{m}, nil
			}
			return nil, fs.ErrNotExist
		},
		Statfs: func(p string) (FSInfo, error) {
			if i, ok := h.statfs[p]; ok {
				return i, nil
			}
			return FSInfo{}, errors.New("no such file system")
		},
		TryWrite: func(dir string) error {
			if h.readOnly[dir] {
				return &fs.PathError{Op: "open", Path: dir, Err: errors.New("read-only file system")}
			}
			return nil
		},
		Getuid: func() int { return h.uid },
	}
}

type fakeInfo struct{ mode fs.FileMode }

func (f fakeInfo) Name() string       { return "x" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

func find(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, checks)
	return Check{}
}

const gib = 1 << 30

func TestChecks(t *testing.T) {
	userns := map[string]string{"/proc/sys/user/max_user_namespaces": "63288\n"}
	cases := []struct {
		name   string
		host   fakeHost
		check  string
		status Status
		detail string // substring of Detail
		fix    string // substring of Fix
	}{
		{"apptainer found", fakeHost{programs: map[string]string{"apptainer": "apptainer version 1.3.4"}}, "container runtime", OK, "apptainer version 1.3.4", ""},
		{"both runtimes", fakeHost{programs: map[string]string{"apptainer": "apptainer version 1.3.4", "singularity": "singularity-ce version 4.1.0"}},
			"container runtime", OK, "apptainer version 1.3.4; singularity-ce version 4.1.0", ""},
		{"no runtime", fakeHost{}, "container runtime", Warn, "neither apptainer nor singularity", "--runtime builtin"},
		{"broken runtime", fakeHost{programs: map[string]string{"apptainer": "!error while loading shared libraries"}}, "container runtime", Warn, "--version failed", "apptainer --debug"},

		{"userns on", fakeHost{files: userns}, "user namespaces", OK, "max 63288", ""},
		{"userns zero, setuid starter", fakeHost{
			programs: map[string]string{"apptainer": "apptainer version 1.3.4"},
			files:    map[string]string{"/proc/sys/user/max_user_namespaces": "0"},
			modes:    map[string]fs.FileMode{"/opt/x/libexec/apptainer/bin/starter-suid": fs.ModeSetuid | 0o755},
		}, "user namespaces", OK, "setuid starter /opt/x/libexec/apptainer/bin/starter-suid", ""},
		{"debian clone off, user", fakeHost{uid: 1000, files: map[string]string{
			"/proc/sys/user/max_user_namespaces": "100", "/proc/sys/kernel/unprivileged_userns_clone": "0"}},
			"user namespaces", Fail, "kernel.unprivileged_userns_clone=0", "sysctl -w user.max_user_namespaces"},
		{"userns off, root", fakeHost{uid: 0, files: map[string]string{"/proc/sys/user/max_user_namespaces": "0"}},
			"user namespaces", Warn, "only because this is root", "apptainer-suid"},
		{"apparmor restricted", fakeHost{files: map[string]string{"/proc/sys/user/max_user_namespaces": "10",
			"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}}, "user namespaces", Warn, "AppArmor", "/etc/apparmor.d/apptainer"},

		{"mksquashfs present", fakeHost{programs: map[string]string{"mksquashfs": "mksquashfs version 4.5 (2021/07/22)\ncopyright"}}, "mksquashfs", OK, "mksquashfs version 4.5", ""},
		{"unsquashfs missing", fakeHost{}, "unsquashfs", Fail, "not on PATH", "squashfs-tools"},

		{"squashfs builtin", fakeHost{files: map[string]string{"/proc/filesystems": "nodev\tproc\n\tsquashfs\n\text4\n"}}, "squashfs kernel support", OK, "/proc/filesystems", ""},
		{"squashfs module", fakeHost{programs: map[string]string{"modinfo": "/lib/modules/6.1/kernel/fs/squashfs/squashfs.ko"},
			files: map[string]string{"/proc/filesystems": "\text4\n"}}, "squashfs kernel support", OK, "squashfs.ko", ""},
		{"squashfs none", fakeHost{programs: map[string]string{"modinfo": "!modinfo: ERROR: Module squashfs not found."},
			files: map[string]string{"/proc/filesystems": "\text4\n"}}, "squashfs kernel support", Warn, "no squashfs support", "modprobe squashfs"},
		{"squashfuse fallback", fakeHost{programs: map[string]string{"squashfuse": ""}}, "squashfs kernel support", Warn, "squashfuse", "modprobe"},

		{"no gpu", fakeHost{}, "GPU driver", Warn, "nvidia-smi not found", "srun --gres=gpu:1"},
		{"two gpus", fakeHost{programs: map[string]string{"nvidia-smi": "0, NVIDIA A100-SXM4-40GB, 535.104.05\n1, NVIDIA A100-SXM4-40GB, 535.104.05\n"}},
			"GPU driver", OK, "2 GPU(s), driver 535.104.05: 0: NVIDIA A100-SXM4-40GB; 1: NVIDIA A100-SXM4-40GB", ""},
		{"driver mismatch", fakeHost{programs: map[string]string{"nvidia-smi": "!Failed to initialize NVML: Driver/library version mismatch"}},
			"GPU driver", Fail, "Driver/library version mismatch", "reboot"},
		{"no gpus listed", fakeHost{programs: map[string]string{"nvidia-smi": "No devices were found"}}, "GPU driver", Warn, "lists no GPUs", "--gres=gpu"},

		{"slurm full", fakeHost{programs: map[string]string{"sbatch": "slurm 22.05.8", "squeue": "", "scontrol": "", "scancel": "", "sacct": "",
			"scontrol ping": "Slurmctld(primary) at node1 is UP"}}, "Slurm client", OK, "slurm 22.05.8: sbatch", ""},
		{"slurm partial", fakeHost{programs: map[string]string{"sbatch": "slurm 22.05.8", "squeue": ""}}, "Slurm client", Warn, "missing scontrol, scancel", "slurm-client"},
		{"no slurm", fakeHost{}, "Slurm client", Warn, "'predict' runs here", "login node"},
		{"controller up", fakeHost{programs: map[string]string{"scontrol": "", "scontrol ping": "Slurmctld(primary) at node1 is UP"}}, "Slurm controller", OK, "node1 is UP", ""},
		{"controller down", fakeHost{programs: map[string]string{"scontrol": "", "scontrol ping": "!Slurmctld(primary) at node1 is DOWN\nSlurmctld(backup) at node2 is DOWN\n*****\n** RESTORE SLURMCTLD DAEMON TO SERVICE **\n*****"}},
			"Slurm controller", Fail, "scontrol ping: Slurmctld(primary) at node1 is DOWN; Slurmctld(backup) at node2 is DOWN", "munge"},
		{"backup down", fakeHost{programs: map[string]string{"scontrol": "", "scontrol ping": "!Slurmctld(primary) at node1 is UP\nSlurmctld(backup) at node2 is DOWN\n*****"}},
			"Slurm controller", Warn, "node1 is UP; Slurmctld(backup) at node2 is DOWN", "another is down"},
		{"no slurm.conf", fakeHost{programs: map[string]string{"scontrol": "", "scontrol ping": "!scontrol: error: fetch_config: DNS SRV lookup failed\nscontrol: fatal: Could not establish a configuration source"}},
			"Slurm controller", Fail, "scontrol ping: scontrol: fatal: Could not establish a configuration source", "SLURM_CONF"},
		{"controller unchecked", fakeHost{}, "Slurm controller", Warn, "not checked", ""},

		{"cache on lustre", fakeHost{statfs: map[string]FSInfo{"/lus/scv": {Magic: 0x0BD00BD0, FreeBytes: 900 * gib}}, modes: map[string]fs.FileMode{"/lus/scv": fs.ModeDir}},
			"cache directory", OK, "lustre, shared with other nodes, 900.0 GiB free", ""},
		{"cache local ext4", fakeHost{statfs: map[string]FSInfo{"/c": {Magic: 0xEF53, FreeBytes: 50 * gib}}, modes: map[string]fs.FileMode{"/c": fs.ModeDir}},
			"cache directory", OK, "compute nodes need a shared cache", ""},
		{"cache read-only nfs", fakeHost{statfs: map[string]FSInfo{"/c": {Magic: 0x6969, FreeBytes: 50 * gib}}, modes: map[string]fs.FileMode{"/c": fs.ModeDir},
			readOnly: map[string]bool{"/c": true}}, "cache directory", Warn, "read-only (read-only file system); nfs", "fine on compute nodes"},
		{"cache not created", fakeHost{statfs: map[string]FSInfo{"/home/u": {Magic: 0xEF53, FreeBytes: 50 * gib}}, modes: map[string]fs.FileMode{"/home/u": fs.ModeDir}},
			"cache directory", OK, "not created yet", ""},
		{"cache parent read-only", fakeHost{modes: map[string]fs.FileMode{"/home/u": fs.ModeDir}, readOnly: map[string]bool{"/home/u": true}},
			"cache directory", Fail, "does not exist and /home/u is not writable", "mkdir -p"},
		{"cache nearly full", fakeHost{statfs: map[string]FSInfo{"/c": {Magic: 0x6969, FreeBytes: gib}}, modes: map[string]fs.FileMode{"/c": fs.ModeDir}},
			"cache directory", Warn, "1.0 GiB free", "cache gc"},

		{"scratch tmpfs ok", fakeHost{statfs: map[string]FSInfo{"/tmp": {Magic: 0x01021994, FreeBytes: 64 * gib}}}, "scratch directory", OK, "tmpfs", ""},
		{"scratch small", fakeHost{statfs: map[string]FSInfo{"/tmp": {Magic: 0x01021994, FreeBytes: gib / 2}}}, "scratch directory", Warn, "512.0 MiB free", "TMPDIR"},
		{"scratch read-only", fakeHost{readOnly: map[string]bool{"/tmp": true}}, "scratch directory", Fail, "not writable", "--tmpdir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := "/c"
			switch {
			case strings.HasPrefix(tc.name, "cache on lustre"):
				cacheDir = "/lus/scv"
			case strings.HasPrefix(tc.name, "cache not created"), strings.HasPrefix(tc.name, "cache parent"):
				cacheDir = "/home/u/.cache/scv-hpc"
			}
			checks := Run(context.Background(), Options{CacheDir: cacheDir, TmpDir: "/tmp", Probes: tc.host.probes()})
			c := find(t, checks, tc.check)
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("%s = %s %q fix %q; want %s, detail containing %q, fix containing %q", tc.check, c.Status, c.Detail, c.Fix, tc.status, tc.detail, tc.fix)
			}
			if c.Status != OK && c.Fix == "" {
				t.Errorf("%s is %s but says no fix", c.Name, c.Status)
			}
		})
	}
}

func TestCommandTimeout(t *testing.T) {
	h := fakeHost{programs: map[string]string{"apptainer": ""}}
	p := h.probes()
	p.Output = func(ctx context.Context, _ string, _ ...string) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	start := time.Now()
	checks := Run(context.Background(), Options{CacheDir: "/c", TmpDir: "/tmp", Probes: p, CommandTimeout: 50 * time.Millisecond})
	if c := find(t, checks, "container runtime"); c.Status != Warn || !strings.Contains(c.Detail, "timed out after 50ms") {
		t.Errorf("hung apptainer: %+v", c)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("doctor took %v with hung commands", d)
	}
}

func TestWorstAndFSName(t *testing.T) {
	for _, tc := range []struct {
		in   []Status
		want Status
	}{{nil, OK}, {[]Status{OK, OK}, OK}, {[]Status{OK, Warn}, Warn}, {[]Status{Fail, Warn, OK}, Fail}} {
		var cs []Check
		for _, s := range tc.in {
			cs = append(cs, Check{Status: s})
		}
		if got := Worst(cs); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for magic, want := range map[int64]string{0x6969: "nfs", 0x0BD00BD0: "lustre", 0xEF53: "ext2/3/4", 0x47504653: "gpfs", 0x1234: "unknown (magic 0x1234)"} {
		if got, _ := fsName(magic); got != want {
			t.Errorf("fsName(%#x) = %q, want %q", magic, got, want)
		}
	}
}

// TestHost runs every check against this machine: the real probes must give one valid
// line per check, and what the test environment installs must be found.
func TestHost(t *testing.T) {
	dir := t.TempDir()
	checks := Run(context.Background(), Options{CacheDir: filepath.Join(dir, "cache"), TmpDir: dir})
	seen := map[string]bool{}
	for _, c := range checks {
		if c.Status != OK && c.Status != Warn && c.Status != Fail {
			t.Errorf("%s: status %q", c.Name, c.Status)
		}
		if c.Detail == "" || (c.Status != OK && c.Fix == "") {
			t.Errorf("%s: incomplete %+v", c.Name, c)
		}
		seen[c.Name] = true
		t.Logf("%-5s %-24s %s", c.Status, c.Name, c.Detail)
	}
	for _, name := range []string{"container runtime", "user namespaces", "mksquashfs", "unsquashfs", "squashfs kernel support",
		"GPU driver", "Slurm client", "Slurm controller", "cache directory", "scratch directory"} {
		if !seen[name] {
			t.Errorf("check %q missing", name)
		}
	}
	if _, err := exec.LookPath("mksquashfs"); err == nil {
		if c := find(t, checks, "mksquashfs"); c.Status != OK || !strings.Contains(c.Detail, "4.") {
			t.Errorf("mksquashfs is installed but: %+v", c)
		}
	}
	if c := find(t, checks, "cache directory"); c.Status == Fail {
		t.Errorf("a fresh temp cache dir: %+v", c)
	}
	if os.Getuid() == 0 {
		return
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if c := find(t, Run(context.Background(), Options{CacheDir: ro, TmpDir: dir}), "cache directory"); c.Status != Warn || !strings.Contains(c.Detail, "read-only") {
		t.Errorf("read-only cache: %+v", c)
	}
}
