package results

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrFormat marks an output format that is unknown or cannot be told from a name.
var ErrFormat = errors.New("unknown output format")

// FormatFor picks Collect's format: format when given (jsonl, ndjson or csv, any
// case), else from the extension of out (.jsonl, .ndjson, .csv); "-" (stdout) is JSONL.
func FormatFor(out, format string) (string, error) {
	switch strings.ToLower(format) {
	case FormatJSONL, "ndjson":
		return FormatJSONL, nil
	case FormatCSV:
		return FormatCSV, nil
	case "":
	default:
		return "", fmt.Errorf("%w %q: use jsonl or csv", ErrFormat, format)
	}
	if out == "-" {
		return FormatJSONL, nil
	}
	switch strings.ToLower(filepath.Ext(out)) {
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	case ".csv":
		return FormatCSV, nil
	}
	return "", fmt.Errorf("%w: cannot tell it from the extension of %q; name it .jsonl or .csv", ErrFormat, out)
}
