package results

import (
	"errors"
	"testing"
)

func TestFormatFor(t *testing.T) {
	for _, tc := range []struct{ out, format, want string }{
		{"r.jsonl", "", FormatJSONL}, {"r.NDJSON", "", FormatJSONL}, {"r.CSV", "", FormatCSV},
		{"-", "", FormatJSONL}, {"-", "csv", FormatCSV}, {"r.txt", "JSONL", FormatJSONL},
		{"r.txt", "", ""}, {"r.csv", "xml", ""},
	} {
		got, err := FormatFor(tc.out, tc.format)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrFormat) {
			t.Errorf("FormatFor(%q, %q) = %q, %v; want %q", tc.out, tc.format, got, err, tc.want)
		}
	}
}
