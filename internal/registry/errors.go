package registry

import (
	"errors"
	"fmt"
)

// Failure classes of opening an image. Every error Open returns matches one of them with
// errors.Is (or is a context error), and its message names the reference and what to do.
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
)

// Error is a classified failure: Kind is one of the sentinel errors above, Err the cause.
type Error struct {
	Kind error
	// Ref is the reference as the user gave it.
	Ref string
	// Msg is the complete human message: what failed and what to do.
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match both the failure class and the underlying cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func newError(kind error, ref string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Ref: ref, Err: cause, Msg: fmt.Sprintf(format, args...)}
}
