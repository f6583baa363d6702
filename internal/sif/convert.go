// Package sif converts OCI images into SIF files that Apptainer and
// SingularityCE run unchanged, inspects SIF files, and extracts their root
// file system.
//
// A converted SIF holds one primary-system squashfs partition (the image's
// architecture) and three JSON descriptors: oci-config.json (the image's
// runtime config, as Apptainer stores it), labels.json and
// scv-provenance.json. The same image always gives the same bytes.
package sif

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// Names of the JSON descriptors a converted SIF carries.
const (
	DescOCIConfig  = "oci-config.json"
	DescLabels     = "labels.json"
	DescProvenance = "scv-provenance.json"
)

// launchScript is the header line of SIF files built by Apptainer and
// SingularityCE, which lets a SIF be executed directly.
const launchScript = "#!/usr/bin/env run-singularity\n"

// ErrNoMksquashfs is returned when mksquashfs is not on PATH.
var ErrNoMksquashfs = errors.New("mksquashfs not found on PATH: install squashfs-tools (apt-get install squashfs-tools)")

// Provenance records where a SIF came from. It is stored in the SIF as the
// scv-provenance.json descriptor.
type Provenance struct {
	Ref      string `json:"ref"`      // the reference the user asked for
	Digest   string `json:"digest"`   // manifest digest of the image
	Tool     string `json:"tool"`     // "scv-hpc VERSION"
	Platform string `json:"platform"` // os/arch[/variant]
}

// Options tune a conversion. The zero value is usable.
type Options struct {
	// Compression is the squashfs compressor: "gzip" (default, readable by
	// every kernel and runtime), "xz", "zstd", "lz4" or "lzo".
	Compression string
	// TmpDir holds the temporary root file system and squashfs; default
	// os.TempDir(). It needs room for the unpacked image plus the squashfs.
	TmpDir string
	// Processors is the number of mksquashfs threads; 0 uses all cores.
	Processors int
	// Log receives warnings about skipped layer entries and progress.
	Log zerolog.Logger
}

var compressors = map[string]bool{"gzip": true, "xz": true, "zstd": true, "lz4": true, "lzo": true}

// Convert writes img as a complete SIF file at dst, replacing it. The caller
// normally passes a temporary path and renames it into place once Convert
// returns nil; on error nothing is left at dst. The layers are flattened
// into a temporary root file system (OCI whiteouts honoured, every write
// confined to it), /.singularity.d/ is written as Apptainer's own conversion
// writes it, mksquashfs packs it and the SIF is assembled deterministically:
// the same image gives a byte-identical file. The temporary files are
// always removed.
func Convert(ctx context.Context, img v1.Image, dst string, prov Provenance, opts Options) (err error) {
	if opts.Compression == "" {
		opts.Compression = "gzip"
	}
	if !compressors[opts.Compression] {
		return fmt.Errorf("convert to %s: unknown compression %q (use gzip, xz, zstd, lz4 or lzo)", dst, opts.Compression)
	}
	if opts.Processors <= 0 {
		opts.Processors = runtime.NumCPU()
	}
	if opts.TmpDir == "" {
		opts.TmpDir = os.TempDir()
	}
	mksquashfs, err := lookTool("mksquashfs", ErrNoMksquashfs)
	if err != nil {
		return err
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("read image config: %w", err)
	}
	arch := cf.Architecture
	if arch == "" {
		arch = "amd64"
	}
	if prov.Platform == "" {
		prov.Platform = platformString(cf)
	}
	// /.singularity.d/labels.json and the SIF's labels descriptor hold the same bytes.
	labels, err := labelsJSON(cf.Config.Labels)
	if err != nil {
		return err
	}

	work, err := os.MkdirTemp(opts.TmpDir, "scv-hpc-convert-")
	if err != nil {
		return fmt.Errorf("make temporary directory in %s: %w", opts.TmpDir, diskHint(err))
	}
	defer func() {
		if rerr := removeAll(work); rerr != nil && err == nil {
			err = fmt.Errorf("remove temporary root file system %s: %w", work, rerr)
		}
	}()
	rootDir := filepath.Join(work, "rootfs")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		return fmt.Errorf("make root file system: %w", diskHint(err))
	}
	root, err := newRootFS(rootDir)
	if err != nil {
		return err
	}

	fl, err := flattenImage(ctx, img, root, opts.Log)
	if err != nil {
		return fmt.Errorf("unpack layers into %s: %w", rootDir, diskHint(err))
	}
	opts.Log.Debug().Int("entries", fl.entries).Int("skipped", fl.skipped).Msg("layers unpacked")
	if err := writeSingularityD(root, cf.Config, labels, opts.Log); err != nil {
		return fmt.Errorf("write /.singularity.d: %w", diskHint(err))
	}

	var extra []string
	if !fl.isRoot {
		// Owners, exact modes and device nodes come from a pseudo file.
		pseudo := filepath.Join(work, "pseudo")
		if err := fl.writePseudo(pseudo); err != nil {
			return fmt.Errorf("write mksquashfs pseudo file: %w", diskHint(err))
		}
		ro := fl.rootOwner()
		extra = []string{"-pf", pseudo, "-root-uid", strconv.Itoa(ro.uid), "-root-gid", strconv.Itoa(ro.gid),
			"-root-mode", strconv.FormatUint(uint64(ro.mode), 8)}
	}
	sqfs := filepath.Join(work, "rootfs.sqfs")
	if err := runMksquashfs(ctx, mksquashfs, rootDir, sqfs, opts, extra...); err != nil {
		return err
	}
	if err := removeAll(rootDir); err != nil { // free the space before the SIF is written
		return fmt.Errorf("remove temporary root file system %s: %w", rootDir, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeSIF(dst, sqfs, arch, cf.Config, labels, prov); err != nil {
		os.Remove(dst)
		return fmt.Errorf("write SIF %s: %w", dst, diskHint(err))
	}
	return nil
}

// writeSIF assembles the SIF at dst from the squashfs file and the metadata.
// labels is labelsJSON(cfg.Labels).
func writeSIF(dst, sqfs, arch string, cfg v1.Config, labels []byte, prov Provenance) error {
	part, err := os.Open(sqfs)
	if err != nil {
		return err
	}
	defer part.Close()

	ociConfig, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode image config: %w", err)
	}
	provJSON, err := json.MarshalIndent(prov, "", "  ")
	if err != nil {
		return fmt.Errorf("encode provenance: %w", err)
	}

	partDI, err := sif.NewDescriptorInput(sif.DataPartition, part,
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, arch))
	if err != nil {
		return fmt.Errorf("primary partition (arch %q): %w", arch, err)
	}
	dis := []sif.DescriptorInput{partDI}
	for _, d := range []struct {
		name string
		data []byte
	}{{DescOCIConfig, ociConfig}, {DescLabels, labels}, {DescProvenance, provJSON}} {
		di, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader(d.data), sif.OptObjectName(d.name))
		if err != nil {
			return fmt.Errorf("descriptor %s: %w", d.name, err)
		}
		dis = append(dis, di)
	}
	f, err := sif.CreateContainerAtPath(dst,
		sif.OptCreateDeterministic(),
		sif.OptCreateWithLaunchScript(launchScript),
		sif.OptCreateWithDescriptors(dis...))
	if err != nil {
		return err
	}
	return f.UnloadContainer()
}

func platformString(cf *v1.ConfigFile) string {
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
	return p.String()
}

// diskHint adds what to do to an out-of-space error.
func diskHint(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w (free space there, or point --tmpdir (or TMPDIR) at a larger file system)", err)
	}
	return err
}
