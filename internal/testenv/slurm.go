package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// slurmPrograms are the daemons and clients StartSlurm needs (Debian: munge,
// slurmctld, slurmd, slurm-client; scripts/deps.sh installs them).
var slurmPrograms = []string{"munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "scancel"}

// SlurmTestMaxArraySize is the MaxArraySize of the test cluster: small, so that
// a job of a few shards is split into several arrays as on a real cluster with
// more shards than MaxArraySize.
const SlurmTestMaxArraySize = 8

// slurmCluster is the one private single-node cluster of this test process.
type slurmCluster struct {
	dir   string
	conf  string
	procs []*exec.Cmd
}

var (
	slurmMu   sync.Mutex
	slurmRefs int
	slurmCur  *slurmCluster
)

// StartSlurm starts (or joins) a private single-node Slurm cluster for this test
// process and returns the environment that points Slurm's clients at it
// (SLURM_CONF=…). The cluster has its own munge key and socket, its own ports on
// 127.0.0.1, state directories in a temporary directory, the CPUs and memory of
// this machine, MaxArraySize SlurmTestMaxArraySize, and two fake GPUs (gres gpu:2 backed by /dev/null and /dev/zero).
// It is shared by the tests of the process and stopped, with its jobs cancelled,
// when the last test using it ends; several test processes each get their own.
func StartSlurm(t testing.TB) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("StartSlurm runs slurmd and munged, which need root; run the tests as root")
	}
	for _, p := range slurmPrograms {
		if _, err := lookSbin(p); err != nil {
			t.Fatalf("%s is not installed: run 'scripts/deps.sh' (make test does) first", p)
		}
	}
	slurmMu.Lock()
	defer slurmMu.Unlock()
	if slurmCur == nil {
		c, err := startSlurmCluster()
		if err != nil {
			t.Fatalf("start single-node Slurm: %v", err)
		}
		slurmCur = c
	}
	slurmRefs++
	c := slurmCur
	t.Cleanup(func() {
		slurmMu.Lock()
		defer slurmMu.Unlock()
		slurmRefs--
		if slurmRefs == 0 {
			c.stop()
			slurmCur = nil
		}
	})
	return []string{"SLURM_CONF=" + c.conf}
}

// lookSbin finds a program on PATH or in the sbin directories that a non-login
// root shell may lack.
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// memoryMB returns 90% of MemTotal: slurmd drains a node that reports less
// memory than RealMemory.
func memoryMB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 1024
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(fields[1])
			return kb / 1024 * 9 / 10
		}
	}
	return 1024
}

// SlurmConfig returns a slurm.conf for a single-node cluster rooted at dir, with
// its daemons on the given ports and munge's socket at dir/munge/munge.socket: the
// template scripts/slurm.conf.in, which scripts/slurm-up.sh fills in the same way.
func SlurmConfig(root, dir, cluster string, ctldPort, slurmdPort, cpus, memMB, maxArraySize int) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "scripts", "slurm.conf.in"))
	if err != nil {
		return "", err
	}
	return strings.NewReplacer("@DIR@", dir, "@CLUSTER@", cluster, "@CTLD_PORT@", strconv.Itoa(ctldPort),
		"@SLURMD_PORT@", strconv.Itoa(slurmdPort), "@CPUS@", strconv.Itoa(cpus), "@MEM_MB@", strconv.Itoa(memMB),
		"@MAX_ARRAY_SIZE@", strconv.Itoa(maxArraySize)).Replace(string(b)), nil
}

func startSlurmCluster() (_ *slurmCluster, err error) {
	dir, err := os.MkdirTemp("", "scv-hpc-slurm-")
	if err != nil {
		return nil, err
	}
	c := &slurmCluster{dir: dir, conf: filepath.Join(dir, "slurm.conf")}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	// munged insists on a socket directory others can enter and a private key.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{"munge", "state", "spool", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 1024)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "munge", "munge.key")
	if err := os.WriteFile(keyFile, key, 0o400); err != nil {
		return nil, err
	}
	ctldPort, err := loopbackPort()
	if err != nil {
		return nil, err
	}
	slurmdPort, err := loopbackPort()
	if err != nil {
		return nil, err
	}
	cluster := fmt.Sprintf("scvtest%d", os.Getpid())
	conf, err := SlurmConfig(repoRoot(), dir, cluster, ctldPort, slurmdPort, runtime.NumCPU(), memoryMB(), SlurmTestMaxArraySize)
	if err != nil {
		return nil, err
	}
	// Two fake GPUs (scripts/gres.conf, which scripts/slurm-up.sh uses too).
	gres, err := os.ReadFile(filepath.Join(repoRoot(), "scripts", "gres.conf"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "gres.conf"), gres, 0o644); err != nil {
		return nil, err
	}

	m := filepath.Join(dir, "munge")
	if err := c.spawn("munged", "--foreground", "--force", "--socket", filepath.Join(m, "munge.socket"),
		"--key-file", keyFile, "--pid-file", filepath.Join(m, "munged.pid"),
		"--log-file", filepath.Join(dir, "log", "munged.log"), "--seed-file", filepath.Join(m, "munged.seed")); err != nil {
		return nil, err
	}
	if err := waitFor(10*time.Second, func() error {
		_, err := os.Stat(filepath.Join(m, "munge.socket"))
		return err
	}); err != nil {
		return nil, fmt.Errorf("munged did not create its socket: %v\n%s", err, c.logTail("munged.log"))
	}
	if err := c.spawn("slurmctld", "-D", "-i", "-f", c.conf); err != nil {
		return nil, err
	}
	if err := c.spawn("slurmd", "-D", "-N", "localhost", "-f", c.conf); err != nil {
		return nil, err
	}
	if err := waitFor(60*time.Second, func() error {
		cmd := exec.Command("sinfo", "-h", "-o", "%T")
		cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("sinfo: %v: %s", err, out)
		}
		if s := strings.TrimSpace(string(out)); s != "idle" {
			return fmt.Errorf("node state %q", s)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("node never became idle: %v\nslurmctld.log:\n%s\nslurmd.log:\n%s", err, c.logTail("slurmctld.log"), c.logTail("slurmd.log"))
	}
	return c, nil
}

// spawn starts a daemon in the foreground as a child of the test process, so it
// dies with it (Pdeathsig) and stop can end it by its pid.
func (c *slurmCluster) spawn(name string, args ...string) error {
	path, err := lookSbin(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
	out, err := os.Create(filepath.Join(c.dir, "log", name+".out"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	out.Close()
	c.procs = append(c.procs, cmd)
	return nil
}

// waitFor polls check until it succeeds or the timeout passes.
func waitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *slurmCluster) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "log", name))
	if o, _ := os.ReadFile(filepath.Join(c.dir, "log", strings.TrimSuffix(name, ".log")+".out")); len(o) > 0 {
		b = append(b, o...)
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// stop cancels every job of the cluster, then ends the daemons, newest first.
func (c *slurmCluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if len(c.procs) == 3 {
		cmd := exec.CommandContext(ctx, "scancel", "--user=root", "--full")
		cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
		_ = cmd.Run()
		// Give slurmstepd a moment to deliver the signals before slurmd goes.
		_ = waitFor(10*time.Second, func() error {
			cmd := exec.CommandContext(ctx, "squeue", "-h", "-t", "RUNNING,COMPLETING", "-o", "%i")
			cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
			out, err := cmd.Output()
			if err != nil || len(bytes.TrimSpace(out)) == 0 {
				return nil
			}
			return fmt.Errorf("jobs still running")
		})
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	c.procs = nil
	if os.Getenv("SCV_HPC_KEEP_SLURM") == "" {
		os.RemoveAll(c.dir)
	}
}
