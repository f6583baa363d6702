package registry_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func TestParse(t *testing.T) {
	abs, _ := filepath.Abs("rel/dir")
	tests := []struct {
		ref            string
		kind           string
		canonical      string
		path, tag, dig string
		bad            bool
	}{
		{ref: "alpine", kind: "registry", canonical: "index.docker.io/library/alpine:latest"},
		{ref: "127.0.0.1:5000/scivision/faces:1.0", kind: "registry", canonical: "127.0.0.1:5000/scivision/faces:1.0"},
		{ref: "ghcr.io/a/b@sha256:" + strings.Repeat("a", 64), kind: "registry", canonical: "ghcr.io/a/b@sha256:" + strings.Repeat("a", 64)},
		{ref: "oci-layout:/srv/img", kind: "oci-layout", canonical: "oci-layout:/srv/img", path: "/srv/img"},
		{ref: "oci-layout:/srv/img:1.0", kind: "oci-layout", canonical: "oci-layout:/srv/img:1.0", path: "/srv/img", tag: "1.0"},
		{ref: "oci-layout:/srv/a:b/img", kind: "oci-layout", path: "/srv/a:b/img"},
		{ref: "oci-layout:rel/dir:v2", kind: "oci-layout", path: abs, tag: "v2"},
		{ref: "oci-layout:/srv/img@sha256:" + strings.Repeat("b", 64), kind: "oci-layout", path: "/srv/img", dig: "sha256:" + strings.Repeat("b", 64)},
		{ref: "docker-archive:/srv/img.tar", kind: "docker-archive", canonical: "docker-archive:/srv/img.tar", path: "/srv/img.tar"},
		{ref: "oci-layout:", bad: true},
		{ref: "oci-layout::tag", bad: true},
		{ref: "oci-layout:/x:bad tag", bad: true},
		{ref: "oci-layout:/x@sha256:zz", bad: true},
		{ref: "docker-archive:", bad: true},
		{ref: "", bad: true},
		{ref: "UPPER/case", bad: true},
		{ref: "a b", bad: true},
	}
	for _, tt := range tests {
		r, err := registry.Parse(tt.ref)
		if tt.bad {
			if !errors.Is(err, registry.ErrBadReference) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrBadReference", tt.ref, r, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.ref, err)
			continue
		}
		if r.Kind != tt.kind || r.Path != tt.path || r.Tag != tt.tag || r.Digest != tt.dig {
			t.Errorf("Parse(%q) = %+v", tt.ref, r)
		}
		if tt.canonical != "" && r.String() != tt.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.ref, r.String(), tt.canonical)
		}
	}
}

func TestPlainHTTPAllowed(t *testing.T) {
	tests := []struct {
		host     string
		insecure []string
		want     bool
	}{
		{"127.0.0.1:5000", nil, true},
		{"127.8.9.1", nil, true},
		{"localhost:5000", nil, true},
		{"[::1]:5000", nil, true},
		{"registry.localhost", nil, true},
		{"10.0.0.5:5000", nil, false},
		{"192.168.1.2", nil, false},
		{"registry.example.org", nil, false},
		{"registry.example.org:5000", []string{"registry.example.org"}, true},
		{"registry.example.org:5000", []string{"registry.example.org:5000"}, true},
		{"registry.example.org:5000", []string{"registry.example.org:6000"}, false},
	}
	for _, tt := range tests {
		if got := registry.PlainHTTPAllowed(tt.host, tt.insecure); got != tt.want {
			t.Errorf("PlainHTTPAllowed(%q, %v) = %v, want %v", tt.host, tt.insecure, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"alpine", "oci-layout:/a:b", "oci-layout:/a@sha256:" + strings.Repeat("0", 64),
		"docker-archive:/x.tar", "host:5000/r/p:t", "oci-layout::", "oci-layout:@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := registry.Parse(s)
		if err != nil {
			if !errors.Is(err, registry.ErrBadReference) {
				t.Fatalf("Parse(%q) error %v is not ErrBadReference", s, err)
			}
			return
		}
		if registry.IsLocal(s) != (r.Kind != registry.KindRegistry) {
			t.Fatalf("Parse(%q) kind %s disagrees with IsLocal", s, r.Kind)
		}
		if r.Kind != registry.KindRegistry {
			if !filepath.IsAbs(r.Path) {
				t.Fatalf("Parse(%q) path %q not absolute", s, r.Path)
			}
			// The canonical form parses back to the same reference.
			r2, err := registry.Parse(r.String())
			if err != nil || r2.Path != r.Path || r2.Tag != r.Tag || r2.Digest != r.Digest {
				t.Fatalf("round trip of %q: %+v, %v; want %+v", r.String(), r2, err, r)
			}
		}
	})
}
