package sif

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/tool"
)

// ErrNoUnsquashfs is returned when unsquashfs is not on PATH.
var ErrNoUnsquashfs = errors.New("unsquashfs not found on PATH: install squashfs-tools (apt-get install squashfs-tools)")

// ErrNoPrimaryPartition is returned for a SIF without a squashfs primary
// system partition (not a runnable container image).
var ErrNoPrimaryPartition = errors.New("no squashfs primary system partition")

func lookTool(name string, missing error) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", missing
	}
	return p, nil
}

// PrimaryPartition returns the offset and size in bytes of the squashfs
// primary system partition of the SIF at path.
func PrimaryPartition(path string) (offset, size int64, err error) {
	f, done, err := loadPath(path)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	d, err := primaryDescriptor(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return d.Offset(), d.Size(), nil
}

func primaryDescriptor(f *sif.FileImage) (sif.Descriptor, error) {
	d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return sif.Descriptor{}, fmt.Errorf("%w: %w", ErrNoPrimaryPartition, err)
	}
	fs, _, _, err := d.PartitionMetadata()
	if err != nil {
		return sif.Descriptor{}, err
	}
	if fs != sif.FsSquash {
		return sif.Descriptor{}, fmt.Errorf("%w: the primary partition is %s", ErrNoPrimaryPartition, fs)
	}
	return d, nil
}

// ExtractRootfs unpacks the root file system of the SIF at sifPath into
// dstDir, which must not exist yet. It extracts into a temporary sibling
// and renames it, so dstDir appears complete or not at all; cancelling ctx
// stops unsquashfs and removes the partial tree.
func ExtractRootfs(ctx context.Context, sifPath, dstDir string) error {
	dstDir = filepath.Clean(dstDir)
	if _, err := os.Lstat(dstDir); err == nil {
		return fmt.Errorf("extract %s: %s already exists", sifPath, dstDir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dstDir), filepath.Base(dstDir)+".tmp-")
	if err != nil {
		return fmt.Errorf("extract %s: %w", sifPath, diskHint(err))
	}
	if err := ExtractRootfsInto(ctx, sifPath, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dstDir); err != nil {
		_ = fsutil.RemoveAll(tmp)
		return fmt.Errorf("extract %s: %w", sifPath, err)
	}
	return nil
}

// ExtractRootfsInto unpacks the root file system of the SIF at sifPath into dir
// itself, which must not exist yet or be empty; nothing else is created. A caller
// that wants the tree to appear whole names dir as its own temporary and renames
// it. On error (cancelling ctx stops unsquashfs) dir is removed.
func ExtractRootfsInto(ctx context.Context, sifPath, dir string) (err error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("extract %s: %w", sifPath, diskHint(err))
		}
		ents, rerr := os.ReadDir(dir)
		if rerr != nil {
			return fmt.Errorf("extract %s: %w", sifPath, rerr)
		}
		if len(ents) > 0 {
			return fmt.Errorf("extract %s: %s is not empty", sifPath, dir)
		}
	}
	defer func() {
		if err != nil {
			_ = fsutil.RemoveAll(dir)
		}
	}()
	bin, err := lookTool("unsquashfs", ErrNoUnsquashfs)
	if err != nil {
		return err
	}
	offset, _, err := PrimaryPartition(sifPath)
	if err != nil {
		return err
	}
	args := []string{"-o", strconv.FormatInt(offset, 10), "-f", "-d", dir, "-no-progress", "-quiet"}
	if os.Geteuid() != 0 {
		args = append(args, "-no-xattrs")
	}
	args = append(args, sifPath)
	if _, err := tool.Run(ctx, bin, args...); err != nil {
		return fmt.Errorf("extract %s: %w", sifPath, diskHint(err))
	}
	return nil
}

// catFile returns the contents of one file of the SIF's root file system.
func catFile(ctx context.Context, sifPath string, offset int64, name string) ([]byte, error) {
	bin, err := lookTool("unsquashfs", ErrNoUnsquashfs)
	if err != nil {
		return nil, err
	}
	return tool.Run(ctx, bin, "-o", strconv.FormatInt(offset, 10), "-cat", sifPath, name)
}
