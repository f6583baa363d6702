package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckEntry(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		damage  func(t *testing.T, c *Cache, hex string)
		ctx     context.Context
		corrupt bool   // a *CorruptError
		want    error  // else errors.Is
		detail  string // part of the message
	}{
		{"sound entry", nil, context.Background(), false, nil, ""},
		{"one flipped bit", func(t *testing.T, c *Cache, hex string) {
			flipByte(t, c.sifPath(hex), fileSize(c.sifPath(hex))-3)
		}, context.Background(), true, nil, "sha256"},
		{"truncated", func(t *testing.T, c *Cache, hex string) {
			os.Truncate(c.sifPath(hex), 100)
		}, context.Background(), true, nil, "bytes"},
		{"replaced by a symlink", func(t *testing.T, c *Cache, hex string) {
			moved := filepath.Join(t.TempDir(), "x.sif")
			os.Rename(c.sifPath(hex), moved)
			os.Symlink(moved, c.sifPath(hex))
		}, context.Background(), true, nil, "symlink"},
		{"not cached", func(t *testing.T, c *Cache, hex string) {
			os.Remove(c.metaPath(hex))
		}, context.Background(), false, ErrNotCached, ""},
		{"cancelled", nil, cancelled, false, context.Canceled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			d, p := commitTest(t, c, "faces")
			hex, _ := ParseDigest(d)
			if tt.damage != nil {
				tt.damage(t, c, hex)
			}
			for _, check := range []func() error{
				func() error { return c.CheckEntry(tt.ctx, d) },
				func() error { return CheckSIFFile(tt.ctx, p) },
			} {
				err := check()
				var ce *CorruptError
				switch {
				case tt.corrupt:
					if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Digest != d || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.detail) {
						t.Errorf("got %v; want a CorruptError naming %s, %s and %q", err, d, p, tt.detail)
					}
				case tt.want == nil && err != nil:
					t.Errorf("a sound entry: %v", err)
				case tt.want != nil && (!errors.Is(err, tt.want) || errors.Is(err, ErrCorrupt)):
					t.Errorf("got %v; want %v and not corrupt", err, tt.want)
				}
			}
		})
	}
}

func TestCheckSIFFileOutsideTheCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.sif")
	if err := writeSIF(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := CheckSIFFile(context.Background(), p); !errors.Is(err, ErrNotCached) {
		t.Errorf("a SIF outside any cache: %v", err)
	}
}
