package registry_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// serve500 answers HTTP 500 to every request and counts them.
func serve500(count *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		http.Error(w, "internal error", http.StatusInternalServerError)
	})
}

// peekedConn is a connection whose first bytes were read through r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener hands accepted connections to an http.Server.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *connListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *connListener) Addr() net.Addr { return l.addr }

// startAlertOr500 listens on 127.0.0.1: a TLS handshake gets a TLS alert (handshake
// failure), a plain HTTP request gets 500. Returns host:port.
func startAlertOr500(t *testing.T, count *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &connListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: serve500(count), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(cl)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				b, err := br.Peek(1)
				if err != nil {
					c.Close()
					return
				}
				if b[0] == 0x16 { // TLS handshake record
					c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}) // alert: handshake failure
					c.Close()
					return
				}
				select {
				case cl.conns <- peekedConn{c, br}:
				case <-cl.done:
					c.Close()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); srv.Close() })
	return ln.Addr().String()
}

// TestErrorsNameWhatFailed: each failing registry, a real server on 127.0.0.1, gives
// an error that names the host, the reference and what failed, and nothing else.
func TestErrorsNameWhatFailed(t *testing.T) {
	var plain500, mixed500 atomic.Int32
	s500 := httptest.NewServer(serve500(&plain500))
	t.Cleanup(s500.Close)
	untrusted := httptest.NewTLSServer(serve500(new(atomic.Int32)))
	t.Cleanup(untrusted.Close)
	localhost := func(u string) string {
		u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		return strings.Replace(u, "127.0.0.1", "localhost", 1)
	}

	tests := []struct {
		name  string
		host  string
		count *atomic.Int32 // requests the server saw
		want  []string
		never []string
	}{
		{"HTTP 500 to everything", strings.TrimPrefix(s500.URL, "http://"), &plain500,
			[]string{"unavailable", "HTTP 500 Internal Server Error after retries"}, []string{"TLS", "certificate", "unreachable"}},
		{"HTTP 500 to everything, tried over TLS first", localhost(s500.URL), &plain500,
			[]string{"unavailable", "HTTP 500 Internal Server Error after retries"}, []string{"TLS", "certificate", "unreachable"}},
		{"HTTP 500, and a TLS alert to TLS", localhost("http://" + startAlertOr500(t, &mixed500)), &mixed500,
			[]string{"unavailable", "HTTP 500 Internal Server Error after retries"}, []string{"TLS", "certificate", "unreachable"}},
		{"untrusted TLS certificate", localhost(untrusted.URL), nil,
			[]string{"unreachable", "x509", "TLS certificate is not trusted"}, []string{"HTTP 500", "HTTP 400"}},
		{"connection refused", closedPort(t), nil,
			[]string{"unreachable", "connection refused"}, []string{"TLS", "HTTP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.count != nil {
				tt.count.Store(0)
			}
			ref := tt.host + "/lab/faces:1.0"
			o := fastOptions()
			o.Retries = 2
			_, _, err := registry.Open(context.Background(), ref, o)
			if !errors.Is(err, registry.ErrUnreachable) {
				t.Fatalf("Open: %v, want ErrUnreachable", err)
			}
			msg := err.Error()
			for _, w := range append([]string{"registry " + tt.host, ref}, tt.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(msg, n) {
					t.Errorf("message %q says %q", msg, n)
				}
			}
			if tt.count != nil && tt.count.Load() < 3 {
				t.Errorf("the server saw %d requests: the 500 was not retried (want 3 with 2 retries)", tt.count.Load())
			}
		})
	}
}
