package sif

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestConvertFailures checks that every failure says what went wrong and
// leaves neither a SIF at dst nor temporary files.
func TestConvertFailures(t *testing.T) {
	testenv.Need(t, "mksquashfs")
	tests := []struct {
		name    string
		img     func(t testing.TB) v1.Image
		opts    Options
		ctx     func() context.Context
		setup   func(t *testing.T)
		wantIs  error
		wantMsg string
	}{
		{
			name:    "mksquashfs missing",
			img:     demoImage,
			setup:   func(t *testing.T) { t.Setenv("PATH", t.TempDir()) },
			wantIs:  ErrNoMksquashfs,
			wantMsg: "apt-get install squashfs-tools",
		},
		{
			name:    "unknown compression",
			img:     demoImage,
			opts:    Options{Compression: "brotli"},
			wantMsg: `unknown compression "brotli"`,
		},
		{
			name: "cancelled",
			img:  demoImage,
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantIs: context.Canceled,
		},
		{
			name: "hostile layer",
			img: func(t testing.TB) v1.Image {
				return imageOf(t, v1.Config{}, []ent{file("ok", "ok", 0o644), file("../../etc/cron.d/x", "x", 0o644)})
			},
			wantIs:  ErrUnsafePath,
			wantMsg: `"../../etc/cron.d/x"`,
		},
		{
			name: "cancelled while mksquashfs runs",
			img:  demoImage,
			setup: func(t *testing.T) {
				bin := t.TempDir()
				if err := os.WriteFile(filepath.Join(bin, "mksquashfs"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			},
			ctx: func() context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				_ = cancel // released by the timeout
				return ctx
			},
			wantIs: context.DeadlineExceeded,
		},
		{
			name: "mksquashfs fails",
			img:  demoImage,
			setup: func(t *testing.T) {
				bin := t.TempDir()
				script := "#!/bin/sh\necho 'mksquashfs: simulated write failure' >&2\nexit 1\n"
				if err := os.WriteFile(filepath.Join(bin, "mksquashfs"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			},
			wantMsg: "simulated write failure",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			img := tt.img(t)
			tmp, out := t.TempDir(), t.TempDir()
			dst := filepath.Join(out, "x.sif")
			opts := tt.opts
			opts.TmpDir, opts.Log = tmp, testLogger(t)
			err := Convert(ctx, img, dst, demoProv, opts)
			if err == nil {
				t.Fatal("convert succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want it to say %q", err, tt.wantMsg)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a SIF was left at %s", dst)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

// TestConvertDiskFull converts into a 1 MiB tmpfs: the error says the disk
// is full and what to do, and the temporary files are gone.
func TestConvertDiskFull(t *testing.T) {
	testenv.Need(t, "mksquashfs")
	if !isRoot() {
		t.Skip("needs root to mount a small tmpfs")
	}
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(small, 0) })
	big := make([]byte, 3<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, v1.Config{}, []ent{file("big.bin", string(big), 0o644)})
	dst := filepath.Join(t.TempDir(), "x.sif")
	err := Convert(t.Context(), img, dst, demoProv, Options{TmpDir: small, Log: testLogger(t)})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "TMPDIR") {
		t.Errorf("error does not say what to do: %v", err)
	}
	assertEmptyDir(t, small)
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a SIF was left at %s", dst)
	}
}
