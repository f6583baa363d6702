package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// openPTY opens a pseudo-terminal of 120×40 and returns its two ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestStatusWatchUnderTerminal: status --watch on a pseudo-terminal, against a local
// job that is running, redraws its view in place and exits by itself once every
// input has a result; off a terminal it prints plain lines.
func TestStatusWatchUnderTerminal(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	lay := facesLayout(t)
	data := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(data, 0o755)
	samples := testenv.SampleImages(t)
	for i := 0; i < 8; i++ {
		for _, n := range testenv.SampleNames {
			b, _ := os.ReadFile(filepath.Join(samples, n))
			os.WriteFile(filepath.Join(data, fmt.Sprintf("%d-%s", i, n)), b, 0o644)
		}
	}
	out := filepath.Join(t.TempDir(), "run")
	predict := exec.Command(testenv.Binary(t), "--cache", filepath.Join(t.TempDir(), "cache"), "predict", "oci-layout:"+lay+":faces",
		"--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none", "--shard-size", "2")
	predict.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var plog bytes.Buffer
	predict.Stdout, predict.Stderr = &plog, &plog
	if err := predict.Start(); err != nil {
		t.Fatal(err)
	}
	predictDone := make(chan error, 1)
	go func() { predictDone <- predict.Wait() }()
	t.Cleanup(func() { predict.Process.Kill() })
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(job.File(out)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("predict made no job in 2 minutes:\n%s", plog.String())
		}
	}

	master, slave := openPTY(t)
	defer master.Close()
	watch := exec.Command(testenv.Binary(t), "status", out, "--watch", "--interval", "200ms")
	watch.Stdin, watch.Stdout, watch.Stderr = slave, slave, slave
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, master); close(copied) }() // ends with EIO once the watcher exits
	werr := watch.Wait()
	<-copied
	if werr != nil {
		t.Fatalf("status --watch: %v\n%s", werr, screen.String())
	}
	select {
	case err := <-predictDone:
		if err != nil {
			t.Fatalf("predict: %v\n%s", err, plog.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("status --watch returned while predict was still running")
	}
	sum, err := results.Summarize(out)
	if err != nil || sum.Totals.Pending != 0 {
		t.Fatalf("after the watch: %+v, %v", sum.Totals, err)
	}
	s := screen.String()
	redraws := strings.Count(s, "\x1b[J")
	if redraws < 2 {
		t.Errorf("the view was drawn %d time(s) over, want redraws in place:\n%q", redraws, s)
	}
	if !regexp.MustCompile(`000000 \[#+\.*\] \d+/2`).MatchString(s) || !strings.Contains(s, "ETA done") || !strings.Contains(s, "48/48 inputs ok") {
		t.Errorf("no progress bars or final line:\n%s", s)
	}
	if !regexp.MustCompile(`\d+/48 inputs ok, 0 failed, [1-9]\d* pending`).MatchString(s) {
		t.Errorf("never saw the job running:\n%s", s)
	}

	// Off a terminal: one plain line per refresh.
	cmd := exec.Command(testenv.Binary(t), "status", out, "--watch", "--interval", "200ms")
	lines, err := cmd.Output()
	if err != nil || bytes.Contains(lines, []byte("\x1b[")) || !regexp.MustCompile(`^\S+Z 48/48 inputs ok, 0 failed, 0 pending; [0-9.]+ inputs/s; ETA done\n$`).Match(lines) {
		t.Errorf("off a terminal: %q, %v", lines, err)
	}
}
