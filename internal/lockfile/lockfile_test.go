package lockfile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as a lock holder in another process.
func TestMain(m *testing.M) {
	if path := os.Getenv("LOCKFILE_HOLD"); path != "" {
		l, err := Acquire(context.Background(), path, Options{RefreshEvery: 50 * time.Millisecond})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("held\n")
		bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holder starts a process that holds path until stop is called (stdin closed) or
// it is killed.
func holder(t *testing.T, path string) (cmd *exec.Cmd, stop func()) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKFILE_HOLD="+path)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("holder did not take the lock: %q", line)
	}
	stop = func() { in.Close(); cmd.Wait() }
	t.Cleanup(func() { cmd.Process.Kill(); stop() })
	return cmd, stop
}

func TestLockAcrossProcesses(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cmd *exec.Cmd, stop func())
	}{
		{"owner releases", func(_ *exec.Cmd, stop func()) { stop() }},
		{"owner killed", func(cmd *exec.Cmd, _ func()) { cmd.Process.Kill(); cmd.Process.Wait() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "job.lock")
			cmd, stop := holder(t, path)
			_, err := TryAcquire(path, Options{})
			var he *HeldError
			if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
				t.Fatalf("TryAcquire of a held lock: %v, want a HeldError", err)
			}
			if he.Owner.PID != cmd.Process.Pid || he.Owner.Host != Host() || he.Owner.Time.IsZero() {
				t.Errorf("owner %+v, want pid %d on %s", he.Owner, cmd.Process.Pid, Host())
			}
			for _, w := range []string{Host(), "pid " + itoa(cmd.Process.Pid), "since"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := Acquire(ctx, path, Options{}); !errors.Is(err, ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Acquire while held: %v, want ErrHeld and the deadline", err)
			}
			tc.end(cmd, stop)
			l, err := TryAcquire(path, Options{})
			if err != nil {
				t.Fatalf("after the owner ended: %v", err)
			}
			l.Release()
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Release left %s: %v", path, err)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestAcquireWaits: a second taker waits until the first releases.
func TestAcquireWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	first, err := Acquire(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() {
		l, err := Acquire(context.Background(), path, Options{})
		if err == nil {
			l.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Acquire returned while the lock was held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	first.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestStale: which locks are taken over, and that a lock on another host is only
// taken over once it was not touched for StaleAfter.
func TestStale(t *testing.T) {
	write := func(t *testing.T, path string, li Info, age time.Duration) {
		b, _ := json.Marshal(li)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(path, at, at)
	}
	for _, tc := range []struct {
		name  string
		info  Info
		age   time.Duration
		taken bool
	}{
		{"dead pid on this host", Info{Host: Host(), PID: deadPID(t), Time: time.Now()}, 0, true},
		{"live pid on this host", Info{Host: Host(), PID: os.Getppid(), Time: time.Now()}, time.Second, false},
		{"other host, fresh", Info{Host: "node-7", PID: 12, Time: time.Now()}, time.Minute, false},
		{"other host, silent", Info{Host: "node-7", PID: 12, Time: time.Now()}, 10 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			write(t, path, tc.info, tc.age)
			l, err := TryAcquire(path, Options{StaleAfter: 5 * time.Minute})
			if taken := err == nil; taken != tc.taken {
				t.Fatalf("taken %v (%v), want %v", taken, err, tc.taken)
			}
			l.Release()
		})
	}
}

// TestNotAFile: a FIFO or a symlink where the lock should be is an error, never a
// reader blocked forever or a file followed elsewhere.
func TestNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.lock")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.lock")
	os.Symlink("/etc/passwd", link)
	for _, p := range []string{fifo, link} {
		done := make(chan error, 1)
		go func() { _, err := TryAcquire(p, Options{}); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || errors.Is(err, ErrHeld) {
				t.Errorf("%s: %v, want ErrNotRegular", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: blocked", p)
		}
	}
}

func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"host":"a","pid":1,"time":"2024-01-01T00:00:00Z","token":"x"}`))
	f.Add([]byte(`{"host":"","pid":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		li, err := Parse(b)
		if err != nil {
			return
		}
		if li.Host == "" || li.PID <= 0 || len(b) > MaxSize {
			t.Fatalf("Parse accepted %q as %+v", b, li)
		}
	})
}
