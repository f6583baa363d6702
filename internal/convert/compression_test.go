package convert

import (
	"errors"
	"slices"
	"testing"
)

func TestParseCompression(t *testing.T) {
	tests := []struct {
		in       string
		want     Compression
		bad      bool
		mksq, ng []string
	}{
		{in: "", want: DefaultCompression, mksq: []string{"-comp", "gzip", "-Xcompression-level", "3"}, ng: []string{"-c", "gzip", "-X", "level=3"}},
		{in: "gzip", want: Compression{"gzip", 3}},
		{in: "GZIP:9", want: Compression{"gzip", 9}, mksq: []string{"-comp", "gzip", "-Xcompression-level", "9"}},
		{in: "zstd", want: Compression{"zstd", 3}, mksq: []string{"-comp", "zstd", "-Xcompression-level", "3"}, ng: []string{"-c", "zstd", "-X", "level=3"}},
		{in: "zstd:3", want: Compression{"zstd", 3}, ng: []string{"-c", "zstd", "-X", "level=3"}},
		{in: "xz:6", want: Compression{"xz", 6}, mksq: []string{"-comp", "xz"}, ng: []string{"-c", "xz", "-X", "level=6"}},
		{in: "lz4", want: Compression{"lz4", 0}},
		{in: "lzo:9", want: Compression{"lzo", 9}},
		{in: "lz4:1", bad: true},
		{in: "gzip:0", bad: true},
		{in: "gzip:10", bad: true},
		{in: "zstd:23", bad: true},
		{in: "zstd:x", bad: true},
		{in: "brotli", bad: true},
		{in: "gzip:", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseCompression(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrBadCompression) {
				t.Errorf("ParseCompression(%q) = %v, %v; want ErrBadCompression", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if back, err := ParseCompression(got.String()); err != nil || back != got {
			t.Errorf("%q: String() = %q does not parse back (%v, %v)", tt.in, got.String(), back, err)
		}
		if tt.mksq != nil && !slices.Equal(got.mksquashfsArgs(), tt.mksq) {
			t.Errorf("%q: mksquashfs args %q, want %q", tt.in, got.mksquashfsArgs(), tt.mksq)
		}
		if tt.ng != nil && !slices.Equal(got.tar2sqfsArgs(), tt.ng) {
			t.Errorf("%q: tar2sqfs args %q, want %q", tt.in, got.tar2sqfsArgs(), tt.ng)
		}
	}
}
