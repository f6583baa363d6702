package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// runtimes are the container runtimes scv-hpc drives, preferred first.
var runtimes = []string{"apptainer", "singularity"}

func (d *doctor) containerRuntime(ctx context.Context) Check {
	c := Check{Name: "container runtime"}
	var found []string
	for _, name := range runtimes {
		if _, err := d.p.LookPath(name); err != nil {
			continue
		}
		v, err := d.run(ctx, name, "--version")
		if err != nil {
			found = append(found, fmt.Sprintf("%s (--version failed: %v)", name, err))
			continue
		}
		found = append(found, firstLine(v))
	}
	if len(found) == 0 {
		c.Status = Warn
		c.Detail = "neither apptainer nor singularity is on PATH"
		c.Fix = "install Apptainer (https://apptainer.org/docs/admin/main/installation.html) or 'module load apptainer'; " +
			"without it use '--runtime builtin' (needs user namespaces)"
		return c
	}
	c.Status = OK
	c.Detail = strings.Join(found, "; ")
	if strings.Contains(c.Detail, "failed") {
		c.Status = Warn
		c.Fix = "the runtime is installed but does not run: check its installation (apptainer --debug version)"
	}
	return c
}

// readInt reads a /proc integer; ok is false when the file is absent or unreadable.
func (d *doctor) readInt(path string) (int, bool) {
	b, err := d.p.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// setuidStarter returns the path of a setuid-root starter of an installed runtime.
func (d *doctor) setuidStarter() string {
	for _, name := range runtimes {
		bin, err := d.p.LookPath(name)
		if err != nil {
			continue
		}
		starter := filepath.Join(filepath.Dir(filepath.Dir(bin)), "libexec", name, "bin", "starter-suid")
		st, err := d.p.Stat(starter)
		if err == nil && st.Mode()&fs.ModeSetuid != 0 {
			return starter
		}
	}
	return ""
}

func (d *doctor) userNamespaces(_ context.Context) Check {
	c := Check{Name: "user namespaces"}
	var off []string
	max, haveMax := d.readInt("/proc/sys/user/max_user_namespaces")
	if haveMax && max == 0 {
		off = append(off, "user.max_user_namespaces=0")
	}
	if v, ok := d.readInt("/proc/sys/kernel/unprivileged_userns_clone"); ok && v == 0 {
		off = append(off, "kernel.unprivileged_userns_clone=0")
	}
	if !haveMax {
		off = append(off, "/proc/sys/user/max_user_namespaces is missing (kernel without user namespaces)")
	}
	apparmor, _ := d.readInt("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
	starter := d.setuidStarter()
	switch {
	case len(off) == 0 && apparmor == 1:
		c.Status = Warn
		c.Detail = fmt.Sprintf("enabled (max %d) but restricted by AppArmor (kernel.apparmor_restrict_unprivileged_userns=1)", max)
		c.Fix = "install the AppArmor profile shipped with Apptainer (/etc/apparmor.d/apptainer), or an admin sets kernel.apparmor_restrict_unprivileged_userns=0"
	case len(off) == 0:
		c.Status = OK
		c.Detail = fmt.Sprintf("enabled for unprivileged users (max %d): apptainer and --runtime builtin run without setuid", max)
	case starter != "":
		c.Status = OK
		c.Detail = "disabled (" + strings.Join(off, ", ") + "); setuid starter " + starter + " is used instead"
	case d.p.Getuid() == 0:
		c.Status = Warn
		c.Detail = "disabled (" + strings.Join(off, ", ") + "); containers run here only because this is root"
		c.Fix = "for users: an admin runs 'sysctl -w user.max_user_namespaces=15000' (and kernel.unprivileged_userns_clone=1 on Debian), or installs apptainer-suid"
	default:
		c.Status = Fail
		c.Detail = "disabled (" + strings.Join(off, ", ") + ") and no setuid starter found"
		c.Fix = "ask an admin to run 'sysctl -w user.max_user_namespaces=15000' (and kernel.unprivileged_userns_clone=1 on Debian), or install apptainer-suid"
	}
	return c
}

func (d *doctor) squashfsTools(ctx context.Context) []Check {
	var out []Check
	for _, tool := range []struct{ name, why string }{
		{"tar2sqfs", "--compression xz, lz4 or lzo streams images into it (squashfs-tools-ng); without it, mksquashfs -tar or the slower unpacked-tree path. gzip and zstd (the default is gzip) need no tool"},
		{"mksquashfs", "--compression xz, lz4 or lzo needs it where tar2sqfs is missing. gzip and zstd (the default is gzip) need no tool"},
		{"unsquashfs", "--runtime builtin needs it to unpack images"},
	} {
		c := Check{Name: tool.name}
		if _, err := d.p.LookPath(tool.name); err != nil && tool.name != "unsquashfs" {
			c.Status = Warn
			c.Detail = "not on PATH: " + tool.why
			c.Fix = "install squashfs-tools-ng (apt-get install squashfs-tools-ng / dnf install squashfs-tools-ng)"
			if tool.name == "mksquashfs" {
				c.Fix = "install squashfs-tools (apt-get install squashfs-tools / dnf install squashfs-tools), or 'module load squashfs-tools'"
			}
			out = append(out, c)
			continue
		} else if err != nil {
			c.Status = Fail
			c.Detail = "not on PATH: " + tool.why
			c.Fix = "install squashfs-tools (apt-get install squashfs-tools / dnf install squashfs-tools), or 'module load squashfs-tools'"
			out = append(out, c)
			continue
		}
		flag := "-version"
		if tool.name == "tar2sqfs" {
			flag = "--version"
		}
		v, _ := d.run(ctx, tool.name, flag) // exits non-zero in some versions; the text is what counts
		c.Status = OK
		c.Detail = firstLine(v)
		if c.Detail == "" {
			c.Detail = "found (version unknown)"
		}
		out = append(out, c)
	}
	return out
}

func (d *doctor) squashfsKernel(ctx context.Context) Check {
	c := Check{Name: "squashfs kernel support"}
	if b, err := d.p.ReadFile("/proc/filesystems"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == "squashfs" {
				c.Status, c.Detail = OK, "squashfs is in /proc/filesystems"
				return c
			}
		}
	}
	if _, err := d.p.LookPath("modinfo"); err == nil {
		if out, err := d.run(ctx, "modinfo", "-F", "filename", "squashfs"); err == nil && out != "" {
			c.Status, c.Detail = OK, "squashfs module available ("+firstLine(out)+"), loaded on first mount"
			return c
		}
	}
	c.Status = Warn
	c.Detail = "the kernel has no squashfs support (not in /proc/filesystems, no module)"
	if _, err := d.p.LookPath("squashfuse"); err == nil {
		c.Detail += "; apptainer will mount SIFs with squashfuse (slower)"
		c.Fix = "an admin runs 'modprobe squashfs' for faster start-up"
		return c
	}
	c.Fix = "an admin runs 'modprobe squashfs', or install squashfuse; '--runtime builtin' extracts with unsquashfs instead"
	return c
}

func (d *doctor) gpu(ctx context.Context) Check {
	c := Check{Name: "GPU driver"}
	if _, err := d.p.LookPath("nvidia-smi"); err != nil {
		c.Status = Warn
		c.Detail = "nvidia-smi not found: no NVIDIA driver on this host; GPU models run on CPU or fail"
		c.Fix = "fine on login nodes and for CPU models; run 'scv-hpc doctor' on a GPU node (srun --gres=gpu:1 scv-hpc doctor) to check those"
		return c
	}
	out, err := d.run(ctx, "nvidia-smi", "--query-gpu=index,name,driver_version", "--format=csv,noheader")
	if err != nil {
		c.Status = Fail
		c.Detail = "nvidia-smi failed: " + firstLine(out)
		c.Fix = "the driver is installed but not working (driver/library version mismatch after an update needs a reboot or module reload)"
		return c
	}
	var gpus []string
	driver := ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 {
			continue
		}
		gpus = append(gpus, strings.TrimSpace(f[0])+": "+strings.TrimSpace(f[1]))
		driver = strings.TrimSpace(f[2])
	}
	if len(gpus) == 0 {
		c.Status = Warn
		c.Detail = "nvidia-smi lists no GPUs"
		c.Fix = "on a Slurm node, request GPUs (--gres=gpu:N); check CUDA_VISIBLE_DEVICES is not empty"
		return c
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("%d GPU(s), driver %s: %s (apptainer --nv binds the driver; one worker per GPU)", len(gpus), driver, strings.Join(gpus, "; "))
	return c
}

// slurmCommands are the client commands 'submit' (sbatch, scontrol for MaxArraySize),
// 'status' (squeue) and 'cancel' (scancel) use.
var slurmCommands = []string{"sbatch", "squeue", "scontrol", "scancel"}

func (d *doctor) slurm(ctx context.Context) []Check {
	client := Check{Name: "Slurm client"}
	var missing []string
	for _, p := range slurmCommands {
		if _, err := d.p.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	switch {
	case len(missing) == len(slurmCommands):
		client.Status = Warn
		client.Detail = "no Slurm commands on PATH: 'submit' is unavailable, 'predict' runs here"
		client.Fix = "run on a cluster login node, or install the Slurm client (slurm-client) configured for your cluster"
	case len(missing) > 0:
		client.Status = Warn
		client.Detail = "missing " + strings.Join(missing, ", ")
		client.Fix = "install the full Slurm client (slurm-client); 'submit' needs sbatch and scontrol, 'status' squeue, 'cancel' scancel"
	default:
		v, err := d.run(ctx, "sbatch", "--version")
		client.Status = OK
		client.Detail = strings.Join(slurmCommands, ", ") + " found"
		if err == nil && v != "" {
			client.Detail = firstLine(v) + ": " + client.Detail
		}
	}
	ctl := Check{Name: "Slurm controller"}
	if _, err := d.p.LookPath("scontrol"); err != nil {
		ctl.Status = Warn
		ctl.Detail = "not checked: scontrol is not on PATH"
		ctl.Fix = client.Fix
		return []Check{client, ctl}
	}
	out, err := d.run(ctx, "scontrol", "ping")
	switch {
	case err == nil && strings.Contains(out, " is UP") && !strings.Contains(out, " is DOWN"):
		ctl.Status = OK
		ctl.Detail = pingSummary(out)
	case strings.Contains(out, " is UP"):
		ctl.Status = Warn
		ctl.Detail = pingSummary(out)
		ctl.Fix = "one controller answers, another is down: tell the cluster admins (jobs still run)"
	default:
		ctl.Status = Fail
		ctl.Detail = "scontrol ping: " + pingSummary(out)
		if out == "" && err != nil {
			ctl.Detail = "scontrol ping: " + err.Error()
		}
		ctl.Fix = "the controller does not answer: check slurmctld is running, munge works ('munge -n | unmunge'), and SlurmctldHost in slurm.conf"
		if strings.Contains(out, "configuration source") || strings.Contains(out, "slurm.conf") {
			ctl.Fix = "no Slurm configuration found: install the cluster's slurm.conf (/etc/slurm/slurm.conf) or set SLURM_CONF"
		}
	}
	return []Check{client, ctl}
}

// pingSummary keeps the "Slurmctld(primary) at HOST is UP/DOWN" lines of scontrol ping
// (dropping its banner of asterisks), else the last line, where the fatal error is.
func pingSummary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Slurmctld") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) > 0 {
		return strings.Join(keep, "; ")
	}
	return lastLine(out)
}
