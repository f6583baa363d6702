package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dockerRegistry is Debian's build of the CNCF distribution registry.
const dockerRegistry = "/usr/bin/docker-registry"

// StartRegistry starts a real OCI registry (Debian's docker-registry) on 127.0.0.1 at a
// free port, storing blobs under a temp dir, without auth and with deletes enabled. It
// returns host:port once /v2/ answers, and stops the registry (SIGTERM, wait) when the
// test ends.
func StartRegistry(t testing.TB) (host string) {
	t.Helper()
	return StartRegistryStoppable(t).Host
}

// Registry is a docker-registry started by StartRegistryStoppable.
type Registry struct {
	// Host is host:port of the registry.
	Host string
	stop func()
	once sync.Once
}

// Stop stops the registry now (SIGTERM, wait), e.g. to check what works offline. The
// end of the test stops it otherwise; calling Stop again does nothing.
func (r *Registry) Stop() { r.once.Do(r.stop) }

// StartRegistryStoppable is StartRegistry for a test that stops the registry before it
// ends.
func StartRegistryStoppable(t testing.TB) *Registry {
	t.Helper()
	Need(t, "docker-registry")
	bin := dockerRegistry
	if _, err := os.Stat(bin); err != nil {
		bin = "docker-registry"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRegistryOnce(t, bin)
		if err == nil {
			return r
		}
		lastErr = err // most likely another process took the port between probe and bind
	}
	t.Fatalf("start docker-registry: %v", lastErr)
	return nil
}

func startRegistryOnce(t testing.TB, bin string) (*Registry, error) {
	dir := t.TempDir()
	port, err := loopbackPort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	storage := filepath.Join(dir, "storage")
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, storage, host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	var logs syncBuffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("docker-registry exited at start (%v):\n%s", err, logs.String())
		default:
		}
		if resp, err := client.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("docker-registry on %s did not answer /v2/ within 20s:\n%s", host, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := &Registry{Host: host, stop: stop}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	return r, nil
}

// loopbackPort asks the kernel for a free TCP port on 127.0.0.1.
func loopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for the child's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
