// Package convert turns OCI images into SIF files that Apptainer and
// SingularityCE run unchanged. internal/sif reads them.
//
// The layers are merged in memory from their tar headers and streamed, as one
// tar with /.singularity.d in it, into a squashfs packer (tar2sqfs, else
// mksquashfs -tar): no unpacked tree is written (stream.go). Where neither
// tool reads a tar, the layers are unpacked into a directory under TmpDir and
// mksquashfs packs it (the tree path: flatten.go, rootfs.go, pseudo.go). Both
// apply the same rules to untrusted layers and give the same file tree. The
// SIF holds one primary-system squashfs partition (the image's architecture)
// and the oci-config.json, labels.json and scv-provenance.json descriptors;
// the same image always gives the same bytes.
package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	sifv2 "github.com/sylabs/sif/v2/pkg/sif"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
)

// launchScript is the header line of SIF files built by Apptainer and
// SingularityCE, which lets a SIF be executed directly.
const launchScript = "#!/usr/bin/env run-singularity\n"

// ErrNoMksquashfs is returned when mksquashfs is not on PATH.
var ErrNoMksquashfs = errors.New("mksquashfs not found on PATH: install squashfs-tools (apt-get install squashfs-tools)")

// Provenance records where a SIF came from (the scv-provenance.json descriptor).
type Provenance = sif.Provenance

// Options tune a conversion. The zero value is usable.
type Options struct {
	// Compression is the squashfs compressor; the zero value is
	// DefaultCompression (gzip level 3).
	Compression Compression
	// Packer is "builtin", "tar2sqfs", "mksquashfs" (-tar) or "tree"; empty
	// (the default) takes the builtin writer for gzip and zstd, else the
	// first of the others that is installed. The log says which ran.
	Packer string
	// TmpDir is where the tree path unpacks the image; default os.TempDir().
	// The streaming paths write nothing there: their squashfs is made next
	// to dst.
	TmpDir string
	// Processors is the number of compressor threads; 0 uses all cores.
	Processors int
	// TwoPass makes the builtin and tar2sqfs paths merge every layer before
	// they pack anything, instead of packing each file as it is read (and,
	// for tar2sqfs, starting again when a later entry replaces a file
	// already streamed; the builtin writer leaves such a file's bytes
	// unreachable in the image). Each layer is then read twice.
	TwoPass bool
	// NoSpool makes the streaming paths decompress each layer twice instead
	// of keeping it, S2-compressed, in an unlinked file next to dst between
	// the two passes (about half the image's unpacked size, for the time of
	// the conversion).
	NoSpool bool
	// Progress, when set, reports the bytes of file content packed (the
	// builtin packer: the layers' compressed bytes read, whose total is known
	// before they are read).
	Progress progress.Reporter
	// Log receives warnings about skipped layer entries, the packer that ran
	// and the time of each stage.
	Log zerolog.Logger
}

// Convert writes img as a complete SIF file at dst, replacing it. The caller
// normally passes a temporary path and renames it into place once Convert
// returns nil; on error nothing is left at dst. Layers are merged with OCI
// whiteouts honoured and every name confined to the image root,
// /.singularity.d/ is added as Apptainer's own conversion writes it, and the
// SIF is assembled deterministically: the same image gives a byte-identical
// file. Temporary files (dst+".sqfs", or the tree path's directory under
// TmpDir) are always removed.
func Convert(ctx context.Context, img v1.Image, dst string, prov Provenance, opts Options) (err error) {
	if opts.Compression.Algo == "" {
		opts.Compression = DefaultCompression
	}
	if _, err := ParseCompression(opts.Compression.String()); err != nil {
		return fmt.Errorf("convert to %s: %w", dst, err)
	}
	if opts.Processors <= 0 {
		opts.Processors = runtime.NumCPU()
	}
	if opts.TmpDir == "" {
		opts.TmpDir = os.TempDir()
	}
	if opts.Progress == nil {
		opts.Progress = progress.Nop{}
	}
	packer, bin, err := choosePacker(opts.Packer, opts.Compression)
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
	sd := newSingularityD(cf.Config, labels, opts.Log)
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	opts.Log.Info().Str("packer", packer).Str("compression", opts.Compression.String()).Int("layers", len(layers)).Msg("packing squashfs")

	sqfs := dst + ".sqfs"
	defer os.Remove(sqfs)
	var times stageTimes
	switch packer {
	case PackerBuiltin:
		times, err = convertBuiltin(ctx, layers, sd, sqfs, opts)
	case PackerTree:
		times, err = convertTree(ctx, bin, layers, sd, sqfs, opts)
	default:
		times, err = convertStream(ctx, packer, bin, layers, sd, sqfs, opts)
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	if err := writeSIF(dst, sqfs, arch, cf.Config, labels, prov); err != nil {
		os.Remove(dst)
		return fmt.Errorf("write SIF %s: %w", dst, spaceHint(err, "the output directory", filepath.Dir(dst)))
	}
	times.assemble = time.Since(start)
	opts.Log.Info().Str("packer", packer).Dur("flatten", times.flatten).Dur("compress", times.compress).
		Dur("assemble", times.assemble).Msg("conversion stages")
	return nil
}

// stageTimes are the durations of a conversion's stages: flatten (merging the
// layers, or unpacking them for the tree path), compress (the packer; for the
// streaming paths it includes reading the layers a second time) and assemble
// (writing the SIF).
type stageTimes struct{ flatten, compress, assemble time.Duration }

// convertStream merges the layers in memory and pipes the tar stream into
// the packer, which writes the squashfs at sqfs.
func convertStream(ctx context.Context, packer, bin string, layers []v1.Layer, sd singularityD, sqfs string, opts Options) (stageTimes, error) {
	var times stageTimes
	start := time.Now()
	spoolDir := filepath.Dir(sqfs)
	if opts.NoSpool {
		spoolDir = ""
	}
	args := func(root *inode) []string {
		return packArgs(packer, sqfs, opts.Compression, opts.Processors, root)
	}
	withRoot := packer == PackerTar2sqfs
	fail := func(err error) (stageTimes, error) {
		return times, fmt.Errorf("make squashfs: %w", spaceHintNeed(err, "the output directory", filepath.Dir(sqfs), 1<<30))
	}

	var m *merger
	var spools []*spool
	defer func() { closeSpools(spools) }()
	if !opts.TwoPass && packer == PackerTar2sqfs {
		// One pass: the packer compresses while the layers inflate. tar2sqfs
		// only: mksquashfs -tar needs the root's owner and mode as options,
		// known only at the end.
		err := packStream(ctx, packer, bin, args(&inode{}), func(out io.Writer) error {
			w := newTarWriter(out, opts.Progress.Add)
			var written map[*inode]bool
			var err error
			m, spools, written, err = onePass(ctx, w, layers, spoolDir, sd, opts.Log)
			if err != nil {
				return err
			}
			if err := m.t.addSingularityD(sd); err != nil {
				return fmt.Errorf("add /.singularity.d: %w", err)
			}
			w.index(m.t)
			if !guessHolds(m.t, w, written) {
				return errGuess
			}
			times.flatten = time.Since(start)
			return w.rest(ctx, m.t, withRoot)
		})
		if err == nil {
			times.compress = time.Since(start) - times.flatten
			opts.Log.Debug().Int("entries", m.entries).Int("skipped", m.skipped).Msg("layers merged and packed in one pass")
			return times, nil
		}
		if !errors.Is(err, errGuess) {
			if m == nil && !errors.Is(err, errPacker) {
				return times, fmt.Errorf("read layers: %w", err)
			}
			return fail(err)
		}
		opts.Log.Info().Msg("a later layer replaced files already streamed: streaming the merged image again")
	} else {
		var err error
		m, spools, err = mergeLayers(ctx, layers, 2, spoolDir, opts.Log)
		if err != nil {
			return times, fmt.Errorf("read layers: %w", err)
		}
		if err := m.t.addSingularityD(sd); err != nil {
			return times, fmt.Errorf("add /.singularity.d: %w", err)
		}
	}
	times.flatten = time.Since(start)
	opts.Log.Debug().Int("entries", m.entries).Int("skipped", m.skipped).Dur("took", times.flatten).Msg("layers merged")

	start = time.Now()
	var size int64
	m.t.walk(func(_ string, n *inode) error {
		if n.layer >= 0 {
			size += n.size
		}
		return nil
	})
	opts.Progress.SetTotal(size)
	var st streamStats
	err := packStream(ctx, packer, bin, args(m.t.root), func(w io.Writer) error {
		var werr error
		st, werr = writeTar(ctx, w, m.t, layers, spools, withRoot, opts.Progress.Add)
		return werr
	})
	if err != nil {
		return times, fmt.Errorf("make squashfs: %w", spaceHintNeed(err, "the output directory", filepath.Dir(sqfs), size))
	}
	times.compress = time.Since(start)
	opts.Log.Debug().Int("entries", st.entries).Int("files", st.files).Int64("bytes", st.bytes).Dur("took", times.compress).Msg("squashfs made")
	return times, nil
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

	partDI, err := sifv2.NewDescriptorInput(sifv2.DataPartition, part,
		sifv2.OptPartitionMetadata(sifv2.FsSquash, sifv2.PartPrimSys, arch))
	if err != nil {
		return fmt.Errorf("primary partition (arch %q): %w", arch, err)
	}
	dis := []sifv2.DescriptorInput{partDI}
	for _, d := range []struct {
		name string
		data []byte
	}{{sif.DescOCIConfig, ociConfig}, {sif.DescLabels, labels}, {sif.DescProvenance, provJSON}} {
		di, err := sifv2.NewDescriptorInput(sifv2.DataGenericJSON, bytes.NewReader(d.data), sifv2.OptObjectName(d.name))
		if err != nil {
			return fmt.Errorf("descriptor %s: %w", d.name, err)
		}
		dis = append(dis, di)
	}
	f, err := sifv2.CreateContainerAtPath(dst,
		sifv2.OptCreateDeterministic(),
		sifv2.OptCreateWithLaunchScript(launchScript),
		sifv2.OptCreateWithDescriptors(dis...))
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

// ErrNoSpace marks a conversion that ran out of disk space or quota; the
// message names the place that is full.
var ErrNoSpace = errors.New("no space left")

// spaceHint names the place (what, at dir) that is full in an out-of-space
// error, and says what to do.
func spaceHint(err error, what, dir string) error {
	return spaceHintNeed(err, what, dir, 1<<20)
}

// spaceHintNeed is spaceHint for a tool that failed while writing up to need
// bytes in dir.
func spaceHintNeed(err error, what, dir string, need int64) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || isToolENOSPC(err, dir, need) {
		return fmt.Errorf("%w in %s %s (free space or quota there): %w", ErrNoSpace, what, dir, err)
	}
	return err
}

// isToolENOSPC recognises a packer that failed because its output disk is
// full: its message is all that comes back, and tar2sqfs says only "I/O
// error". A failure while dir's file system has less room than the need
// bytes the tool was writing counts.
func isToolENOSPC(err error, dir string, need int64) bool {
	if err == nil {
		return false
	}
	if strings.Contains(err.Error(), "No space left on device") {
		return true
	}
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return false
	}
	return int64(st.Bavail)*st.Bsize < need
}
