package convert

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// failCase is a conversion that must fail: of img with opts, under ctx (default
// Background), after setup; the error matches wantIs and says wantMsg.
type failCase struct {
	name    string
	img     func(t testing.TB) v1.Image
	opts    Options
	ctx     func() context.Context
	setup   func(t *testing.T)
	wantIs  error
	wantMsg string
}

// TestConvertFailures checks that every failure says what went wrong and
// leaves neither a SIF at dst nor temporary files.
func TestConvertFailures(t *testing.T) {
	testenv.Need(t, "mksquashfs")
	tests := []failCase{
		{
			name:    "no squashfs tool for xz",
			img:     demoImage,
			opts:    Options{Compression: Compression{Algo: "xz"}},
			setup:   func(t *testing.T) { t.Setenv("PATH", t.TempDir()) },
			wantIs:  ErrNoPacker,
			wantMsg: "apt-get install squashfs-tools-ng squashfs-tools",
		},
		{
			name:    "unknown compression",
			img:     demoImage,
			opts:    Options{Compression: Compression{Algo: "brotli"}},
			wantIs:  ErrBadCompression,
			wantMsg: `unknown algorithm "brotli"`,
		},
		{
			name:    "unknown packer",
			img:     demoImage,
			opts:    Options{Packer: "cpio"},
			wantMsg: `unknown squashfs packer "cpio"`,
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
	}
	// A layer holding a sparse file that claims 1 TiB in 2 KiB: every packer refuses it
	// at once (expanded, it would be packed or written out for hours).
	for _, packer := range packers {
		tests = append(tests, failCase{
			name:    "sparse file, " + packer,
			img:     sparseImage,
			opts:    Options{Packer: packer},
			wantIs:  tarsafe.ErrSparse,
			wantMsg: `entry "big": sparse file`,
		})
	}
	// Each external packer, replaced by a script that hangs or fails.
	for _, packer := range packers[1:] {
		tool := packer
		if packer == PackerTree {
			tool = PackerMksquashfs
		}
		fake := func(body string) func(t *testing.T) {
			return func(t *testing.T) {
				bin := t.TempDir()
				script := "#!/bin/sh\ncase \"$1\" in -version) echo 'mksquashfs version 4.5.1'; exit 0;; esac\n" + body
				if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			}
		}
		tests = append(tests, failCase{
			name:  "cancelled while " + packer + " runs",
			img:   demoImage,
			opts:  Options{Packer: packer},
			setup: fake("exec sleep 60\n"),
			ctx: func() context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				_ = cancel // released by the timeout
				return ctx
			},
			wantIs: context.DeadlineExceeded,
		}, failCase{
			name:    packer + " fails",
			img:     demoImage,
			opts:    Options{Packer: packer},
			setup:   fake("cat >/dev/null; echo 'simulated write failure' >&2\nexit 1\n"),
			wantMsg: "simulated write failure",
		})
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

// TestConvertDiskFull fills, in turn, the directory of the SIF (the cache's
// tmp/ in a pull) and --tmpdir (used by the tree path only): each error says
// that the disk is full and names the place that is, never the other one,
// and the temporary files are gone.
func TestConvertDiskFull(t *testing.T) {
	testenv.Need(t, "mksquashfs", "tar2sqfs")
	if !isRoot() {
		t.Skip("needs root to mount a small tmpfs")
	}
	smallFS := func(t *testing.T) string {
		small := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
		}
		t.Cleanup(func() { _ = syscall.Unmount(small, 0) })
		return small
	}
	big := make([]byte, 3<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, v1.Config{}, []ent{file("big.bin", string(big), 0o644)})
	tests := []struct {
		packer    string
		fullTmp   bool // else the output directory is full
		wantPlace string
	}{
		{PackerBuiltin, false, "the output directory"},
		{PackerTar2sqfs, false, "the output directory"},
		{PackerMksquashfs, false, "the output directory"},
		{PackerTree, false, "the output directory"},
		{PackerTree, true, "the temporary directory"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/full-tmpdir=%v", tt.packer, tt.fullTmp), func(t *testing.T) {
			full := smallFS(t)
			tmp, out := t.TempDir(), full
			if tt.fullTmp {
				tmp, out = full, t.TempDir()
			}
			dst := filepath.Join(out, "x.sif")
			err := Convert(t.Context(), img, dst, demoProv, Options{Packer: tt.packer, TmpDir: tmp, Log: testLogger(t)})
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("err = %v, want ErrNoSpace", err)
			}
			if want := tt.wantPlace + " " + full; !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %q: %v", want, err)
			}
			other := "the temporary directory"
			if tt.fullTmp {
				other = "the output directory"
			}
			if strings.Contains(err.Error(), other) {
				t.Errorf("error blames %s, which is not full: %v", other, err)
			}
			assertEmptyDir(t, full)
			assertEmptyDir(t, tmp)
		})
	}
}

// sparseImage is demoImage with a layer on top holding a GNU sparse file of 1 TiB, all
// hole, in 3 KiB of tar (testenv.SparseTar).
func sparseImage(t testing.TB) v1.Image {
	t.Helper()
	stream := testenv.SparseTar("big", 1<<40)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(stream)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(demoImage(t), l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
