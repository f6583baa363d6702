package registry

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Source kinds.
const (
	KindRegistry      = "registry"
	KindOCILayout     = "oci-layout"
	KindDockerArchive = "docker-archive"
)

// Prefixes of the local source references.
const (
	prefixOCILayout     = "oci-layout:"
	prefixDockerArchive = "docker-archive:"
)

// Reference is a parsed image reference.
type Reference struct {
	// Kind is KindRegistry, KindOCILayout or KindDockerArchive.
	Kind string
	// Name is the registry reference (KindRegistry only).
	Name name.Reference
	// Path is the layout directory or archive file, made absolute (local kinds only). A
	// layout directory whose name holds a colon is recognised when it exists.
	Path string
	// Tag selects an image of an OCI layout by its org.opencontainers.image.ref.name.
	Tag string
	// Digest selects an image of an OCI layout by manifest digest.
	Digest string
}

// String is the canonical form: registry references fully qualified
// (index.docker.io/library/alpine:3.20), local ones with an absolute path.
func (r Reference) String() string {
	switch r.Kind {
	case KindRegistry:
		return r.Name.Name()
	case KindOCILayout:
		s := prefixOCILayout + r.Path
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		if r.Digest != "" {
			s += "@" + r.Digest
		}
		return s
	default:
		return prefixDockerArchive + r.Path
	}
}

var (
	tagRe    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRe = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// IsLocal reports whether ref names a local source (oci-layout: or docker-archive:).
func IsLocal(ref string) bool {
	return strings.HasPrefix(ref, prefixOCILayout) || strings.HasPrefix(ref, prefixDockerArchive)
}

// Parse parses an image reference: host/repo:tag, repo@sha256:…, oci-layout:DIR[:TAG]
// (or DIR@sha256:…) and docker-archive:FILE. insecure lists the registry hosts that may
// be reached over plain HTTP besides loopback ones.
func Parse(ref string, insecure ...string) (Reference, error) {
	bad := func(why string) (Reference, error) {
		return Reference{}, newError(ErrBadReference, ref, nil,
			"bad image reference %q: %s; use host/repo:tag, repo@sha256:<digest>, oci-layout:DIR[:TAG] or docker-archive:FILE", ref, why)
	}
	switch {
	case strings.HasPrefix(ref, prefixOCILayout):
		rest := strings.TrimPrefix(ref, prefixOCILayout)
		r := Reference{Kind: KindOCILayout}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if !digestRe.MatchString(rest[i+1:]) {
				return bad("the part after @ is not a sha256 digest")
			}
			r.Digest, rest = rest[i+1:], rest[:i]
		}
		// A tag is what follows the last ':' when that part holds no '/', unless the
		// whole string names a layout directory (a ':' inside the directory name).
		if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i+1:], "/") && !isLayoutDir(rest) {
			tag := rest[i+1:]
			if !tagRe.MatchString(tag) {
				return bad(fmt.Sprintf("%q is not a valid tag", tag))
			}
			if r.Digest != "" {
				return bad("give a tag or a digest, not both")
			}
			r.Tag, rest = tag, rest[:i]
		}
		if rest == "" {
			return bad("no layout directory")
		}
		r.Path = absPath(rest)
		return r, nil
	case strings.HasPrefix(ref, prefixDockerArchive):
		rest := strings.TrimPrefix(ref, prefixDockerArchive)
		if rest == "" {
			return bad("no archive file")
		}
		return Reference{Kind: KindDockerArchive, Path: absPath(rest)}, nil
	}
	if ref == "" {
		return bad("empty")
	}
	if strings.ContainsAny(ref, " \t\n") {
		return bad("contains white space")
	}
	opts := []name.Option{}
	n, err := name.ParseReference(ref)
	if err != nil {
		return bad(err.Error())
	}
	if PlainHTTPAllowed(n.Context().RegistryStr(), insecure) {
		opts = append(opts, name.Insecure)
		if n, err = name.ParseReference(ref, opts...); err != nil {
			return bad(err.Error())
		}
	}
	return Reference{Kind: KindRegistry, Name: n}, nil
}

func isLayoutDir(p string) bool {
	fi, err := os.Stat(filepath.Join(p, "index.json"))
	return err == nil && fi.Mode().IsRegular()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// PlainHTTPAllowed reports whether the registry host (host or host:port) may be reached
// over plain HTTP: loopback addresses (127.0.0.0/8, ::1, localhost) always, other hosts
// only when listed in insecure (with or without the port).
func PlainHTTPAllowed(hostport string, insecure []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, h := range insecure {
		if strings.EqualFold(h, hostport) || strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}
