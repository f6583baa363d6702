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
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// classifyRemote maps an error from a registry to its failure class and message.
func classifyRemote(ref, host string, err error) error {
	var terr *transport.Error
	// TLS first: go-containerregistry's ping joins the HTTPS failure with the plain-HTTP
	// fallback's answer (e.g. a 400), and the TLS failure is the one that matters.
	if !isTLS(err) && errors.As(err, &terr) {
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
				"registry %s unavailable for %s (HTTP %d after retries): try again later, or use --offline with a staged cache",
				host, ref, terr.StatusCode)
		}
		return fmt.Errorf("pull %s from %s: %w", ref, host, err)
	}
	if isUnreachable(err) {
		hint := "check the network or use --offline with a staged cache"
		msg := err.Error()
		switch {
		case strings.Contains(msg, "server gave HTTP response to HTTPS client") || errors.Is(err, errPlainHTTP):
			hint = fmt.Sprintf("it serves plain HTTP; if you trust it, pass --insecure-registry %s", host)
		case isTLS(err):
			hint = "its TLS certificate is not trusted; install the site CA in the system trust store, or use --offline with a staged cache"
		}
		return newError(ErrUnreachable, ref, err, "registry %s unreachable: %v; %s", host, shortCause(err), hint)
	}
	return fmt.Errorf("pull %s from %s: %w", ref, host, err)
}

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

// shortCause drops the request URL that url.Error prefixes, keeping the reason.
func shortCause(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return urlErr.Err.Error()
	}
	return err.Error()
}
