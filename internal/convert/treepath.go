package convert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/tool"
)

// convertTree is the tree path: the layers are unpacked into a directory
// under opts.TmpDir (confined, see rootfs.go), /.singularity.d is written
// into it, and mksquashfs packs it into sqfs. Unprivileged, a pseudo file
// gives mksquashfs the owners, modes and device nodes the tree cannot hold.
func convertTree(ctx context.Context, mksquashfs string, layers []v1.Layer, sd singularityD, sqfs string, opts Options) (times stageTimes, err error) {
	start := time.Now()
	work, err := MkScratch(opts.TmpDir, "convert")
	if err != nil {
		return times, err
	}
	defer func() {
		if rerr := fsutil.RemoveAll(work); rerr != nil && err == nil {
			err = fmt.Errorf("remove temporary root file system %s: %w", work, rerr)
		}
	}()
	tmpHint := func(err error) error { return spaceHint(err, "the temporary directory", opts.TmpDir) }
	rootDir := filepath.Join(work, "rootfs")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		return times, fmt.Errorf("make root file system: %w", tmpHint(err))
	}
	root, err := newRootFS(rootDir)
	if err != nil {
		return times, err
	}
	fl, err := flattenLayers(ctx, layers, root, opts.Log)
	if err != nil {
		return times, fmt.Errorf("unpack layers into %s: %w", rootDir, tmpHint(err))
	}
	opts.Log.Debug().Int("entries", fl.entries).Int("skipped", fl.skipped).Msg("layers unpacked")
	if err := writeSingularityD(root, sd); err != nil {
		return times, fmt.Errorf("write /.singularity.d: %w", tmpHint(err))
	}
	var extra []string
	if !fl.isRoot {
		// Owners, exact modes and device nodes come from a pseudo file.
		pseudo := filepath.Join(work, "pseudo")
		if err := fl.writePseudo(pseudo); err != nil {
			return times, fmt.Errorf("write mksquashfs pseudo file: %w", tmpHint(err))
		}
		ro := fl.rootOwner()
		extra = []string{"-pf", pseudo, "-root-uid", strconv.Itoa(ro.uid), "-root-gid", strconv.Itoa(ro.gid),
			"-root-mode", strconv.FormatUint(uint64(ro.mode), 8)}
	}
	times.flatten = time.Since(start)
	start = time.Now()
	if err := runMksquashfs(ctx, mksquashfs, rootDir, sqfs, opts, extra...); err != nil {
		return times, err
	}
	times.compress = time.Since(start)
	return times, nil
}

// runMksquashfs packs rootDir into out with fixed times, no xattrs and the
// owners of the files, so the same tree gives the same bytes. extra are
// further mksquashfs arguments (the pseudo file of an unprivileged run).
func runMksquashfs(ctx context.Context, bin, rootDir, out string, opts Options, extra ...string) error {
	args := []string{rootDir, out, "-noappend"}
	args = append(args, opts.Compression.mksquashfsArgs()...)
	args = append(args, "-processors", strconv.Itoa(opts.Processors),
		"-all-time", "0", "-mkfs-time", "0",
		"-no-xattrs", "-no-progress", "-quiet",
	)
	args = append(args, extra...)
	if _, err := tool.Run(ctx, bin, args...); err != nil {
		os.Remove(out)
		return fmt.Errorf("make squashfs: %w", spaceHint(err, "the output directory", filepath.Dir(out)))
	}
	return nil
}
