// Package units formats for people: sizes in binary units, and text clipped to a
// length.
package units

import (
	"fmt"
	"strings"
)

// Clip shortens s to at most n bytes on a rune boundary, marking the cut with "…".
// The result is a copy: a clipped piece of a large buffer does not keep it alive.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 { // a continuation byte: not a rune's start
		cut--
	}
	return strings.Clone(s[:cut]) + "…"
}

// Bytes formats n bytes as "512 B", "1.5 KiB", "2.0 GiB" (binary units, one decimal).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
