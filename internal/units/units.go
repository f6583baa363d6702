// Package units formats quantities for people: sizes in binary units.
package units

import "fmt"

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
