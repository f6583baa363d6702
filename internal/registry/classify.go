package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// classifyRemote maps an error from a registry to its failure class and message. Every
// message names the registry host and the reference, and what actually failed: the
// HTTP status the registry answered (after retries), or the connection or TLS failure.
func classifyRemote(ref, host string, err error) error {
	if terr := httpAnswer(err); terr != nil {
		codes := map[transport.ErrorCode]bool{}
		for _, d := range terr.Errors {
			codes[d.Code] = true
		}
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
			codes[transport.UnauthorizedErrorCode] || codes[transport.DeniedErrorCode]:
			return newError(ErrAuth, ref, err,
				"registry %s refused access to %s (HTTP %d): log in with `docker login %s` or set credentials in ~/.docker/config.json",
				host, ref, terr.StatusCode, host)
		case terr.StatusCode == http.StatusNotFound || codes[transport.ManifestUnknownErrorCode] ||
			codes[transport.NameUnknownErrorCode] || codes[transport.BlobUnknownErrorCode]:
			return newError(ErrNotFound, ref, err,
				"image %s not found on registry %s: check the repository name and tag (or digest)", ref, host)
		case terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500:
			return newError(ErrUnreachable, ref, err,
				"registry %s unavailable for %s (HTTP %d %s after retries): try again later, or use --offline with a staged cache",
				host, ref, terr.StatusCode, http.StatusText(terr.StatusCode))
		}
		return fmt.Errorf("pull %s from registry %s: HTTP %d: %w", ref, host, terr.StatusCode, err)
	}
	if isUnreachable(err) {
		hint := "check the network or use --offline with a staged cache"
		msg := err.Error()
		switch {
		case strings.Contains(msg, "server gave HTTP response to HTTPS client") || errors.Is(err, errPlainHTTP):
			hint = fmt.Sprintf("it serves plain HTTP; if you trust it, pass --insecure-registry %s", host)
		case isTLS(err) && isCertificate(err):
			hint = "its TLS certificate is not trusted; install the site CA in the system trust store, or use --offline with a staged cache"
		case isTLS(err):
			hint = fmt.Sprintf("the TLS handshake with it failed; check that %s serves a registry over HTTPS, or use --offline with a staged cache", host)
		}
		return newError(ErrUnreachable, ref, err, "registry %s unreachable for %s: %v; %s", host, ref, shortCause(err), hint)
	}
	return fmt.Errorf("pull %s from registry %s: %w", ref, host, err)
}

// httpAnswer returns the HTTP answer of the registry found in err, or nil when there is
// none that counts. go-containerregistry's ping tries HTTPS and, for loopback and
// insecure hosts, plain HTTP, and joins both failures. A TLS failure next to a 400 is a
// TLS port answering plain HTTP: the TLS failure is what matters (nil). Any other
// status is what the registry said, whatever the other attempt failed with: a registry
// answering 500 is a server error, not a TLS problem.
func httpAnswer(err error) *transport.Error {
	var answers []*transport.Error
	walkErrors(err, func(e error) {
		if te, ok := e.(*transport.Error); ok {
			answers = append(answers, te)
		}
	})
	for _, te := range answers {
		if te.StatusCode != http.StatusBadRequest {
			return te
		}
	}
	if len(answers) == 0 || isTLS(err) {
		return nil
	}
	return answers[0]
}

// walkErrors calls fn on err and every error it wraps: Unwrap() error, Unwrap() []error,
// and slices of errors (go-containerregistry's joined ping failures).
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
		return
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
		return
	}
	if v := reflect.ValueOf(err); v.Kind() == reflect.Slice && v.Type().Elem() == errorType {
		for i := 0; i < v.Len(); i++ {
			if e, ok := v.Index(i).Interface().(error); ok {
				walkErrors(e, fn)
			}
		}
	}
}

var errorType = reflect.TypeOf((*error)(nil)).Elem()

func isUnreachable(err error) bool {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		urlErr *url.Error
		netErr net.Error
	)
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, errPlainHTTP), isTLS(err):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	case errors.As(err, &urlErr):
		return true
	}
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

func isTLS(err error) bool {
	var (
		unk  x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
		rec  tls.RecordHeaderError
		verr *tls.CertificateVerificationError
	)
	if errors.As(err, &unk) || errors.As(err, &host) || errors.As(err, &inv) || errors.As(err, &rec) || errors.As(err, &verr) {
		return true
	}
	// Some go-containerregistry errors keep only the text of their causes.
	msg := err.Error()
	return strings.Contains(msg, "x509: ") || strings.Contains(msg, "tls: ")
}

// isCertificate reports a TLS failure caused by the server's certificate.
func isCertificate(err error) bool {
	var (
		unk  x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
		verr *tls.CertificateVerificationError
	)
	return errors.As(err, &unk) || errors.As(err, &host) || errors.As(err, &inv) || errors.As(err, &verr) ||
		strings.Contains(err.Error(), "x509: ")
}

// shortCause drops the request URL that url.Error prefixes, keeping the reason.
func shortCause(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return urlErr.Err.Error()
	}
	return err.Error()
}
