package registry

import (
	"errors"
	"fmt"
)

// Failure classes of opening an image. Every error Open returns matches one of them with
// errors.Is (or is a context error), and its message names the reference and what
// failed. Advice naming scv-hpc's flags and commands is added by the command line.
var (
	// ErrUnreachable: the registry could not be reached (connection refused, DNS,
	// TLS, timeouts, persistent server errors).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrAuth: the registry refused the credentials (401/403).
	ErrAuth = errors.New("registry refused access")
	// ErrNotFound: no such repository, tag, digest, layout or archive.
	ErrNotFound = errors.New("image not found")
	// ErrNoPlatform: the image has no variant for the wanted platform.
	ErrNoPlatform = errors.New("no image for the platform")
	// ErrBadReference: the reference cannot be parsed.
	ErrBadReference = errors.New("bad image reference")
	// ErrOffline: a registry reference was asked for while offline.
	ErrOffline = errors.New("offline")
	// ErrBadImage: the image's own files break a rule that keeps reading them bounded: a
	// sparse member in an archive, a configuration over MaxJSONSize, a blob file of
	// another size than its descriptor says.
	ErrBadImage = errors.New("malformed image")
)

// Reasons an Error may carry beside its class (Error.Reason), for advice that depends on
// more than the class.
var (
	// ErrPlainHTTP (with ErrUnreachable): the registry speaks plain HTTP, and it is
	// neither a loopback host nor one of Options.Insecure.
	ErrPlainHTTP = errors.New("registry serves plain HTTP")
	// ErrUntrustedCert (with ErrUnreachable): the registry's TLS certificate is not
	// trusted by this host.
	ErrUntrustedCert = errors.New("registry certificate not trusted")
	// ErrNotLayout (with ErrNotFound): an oci-layout: path holds no OCI image layout.
	ErrNotLayout = errors.New("not an OCI image layout")
)

// Error is a classified failure: Kind is one of the sentinel errors above, Err the cause.
type Error struct {
	Kind error
	// Ref is the reference as the user gave it.
	Ref string
	// Host is the registry host, when a registry was involved.
	Host string
	// Reason is one of ErrPlainHTTP, ErrUntrustedCert, ErrNotLayout, or nil.
	Reason error
	// Msg is the complete human message: what failed.
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match the failure class, the reason and the underlying cause.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Reason != nil {
		errs = append(errs, e.Reason)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func newError(kind error, ref string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Ref: ref, Err: cause, Msg: fmt.Sprintf(format, args...)}
}
