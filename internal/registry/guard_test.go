package registry

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

type recordingTransport struct{ hosts []string }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.hosts = append(r.hosts, req.URL.Scheme+"://"+req.URL.Host)
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// TestHTTPGuard checks that plain HTTP reaches only loopback and listed hosts, while
// HTTPS always passes.
func TestHTTPGuard(t *testing.T) {
	tests := []struct {
		url      string
		insecure []string
		allowed  bool
	}{
		{"http://127.0.0.1:5000/v2/", nil, true},
		{"http://localhost/v2/", nil, true},
		{"http://10.1.2.3:5000/v2/", nil, false},
		{"http://registry.example.org/v2/", nil, false},
		{"http://registry.example.org/v2/", []string{"registry.example.org"}, true},
		{"https://registry.example.org/v2/", nil, true},
		{"https://10.1.2.3:5000/v2/", nil, true},
	}
	for _, tt := range tests {
		rec := &recordingTransport{}
		g := &httpGuard{base: rec, insecure: tt.insecure}
		req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
		_, err := g.RoundTrip(req)
		if tt.allowed {
			if err != nil || len(rec.hosts) != 1 {
				t.Errorf("%s (insecure %v): %v, want it sent", tt.url, tt.insecure, err)
			}
			continue
		}
		if !errors.Is(err, errPlainHTTP) || len(rec.hosts) != 0 {
			t.Errorf("%s: %v, want refused before sending", tt.url, err)
		}
		// The classified error carries the reason and host the command line needs to
		// name the flag that allows it; the message itself names no flag.
		cerr := classifyRemote("x/y:1", req.URL.Host, err)
		var rerr *Error
		if !errors.Is(cerr, ErrUnreachable) || !errors.Is(cerr, ErrPlainHTTP) || !errors.As(cerr, &rerr) ||
			rerr.Host != req.URL.Host || strings.Contains(cerr.Error(), "--") {
			t.Errorf("classified %v, want ErrUnreachable and ErrPlainHTTP for host %s, naming no flag", cerr, req.URL.Host)
		}
	}
}
