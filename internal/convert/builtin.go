package convert

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/squashfs"
	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
)

// The builtin packer is scv-hpc's own squashfs writer (internal/squashfs),
// in this process: no tar stream, no pipe, no second read of the layers.
// Each regular file's bytes go into the image while its layer inflates, on
// the other cores; once every layer is merged the tree is named from the
// merged headers. The bytes of files that a later layer replaced or removed
// stay in the image, unreachable. Where they are more than
// maxUnusedShare of the content (and more than minUnusedRewrite bytes), the
// image is written again from the merged tree, reading each layer twice, so
// that no image carries much more than what it holds.
var (
	maxUnusedShare   int64 = 8 // 1/8
	minUnusedRewrite int64 = 64 << 20
)

// builtinAlgos are the compressors the builtin packer has.
var builtinAlgos = map[string]bool{"gzip": true, "zstd": true}

// convertBuiltin writes the squashfs of layers and sd at sqfs with the
// builtin packer.
func convertBuiltin(ctx context.Context, layers []v1.Layer, sd singularityD, sqfs string, opts Options) (stageTimes, error) {
	var times stageTimes
	start := time.Now()
	fail := func(err error) (stageTimes, error) {
		return times, fmt.Errorf("make squashfs: %w", spaceHint(err, "the output directory", filepath.Dir(sqfs)))
	}
	// The layers are read and the image written at once: a full disk is the
	// output directory's.
	failRead := func(err error) (stageTimes, error) {
		return times, fmt.Errorf("read layers: %w", spaceHint(err, "the output directory", filepath.Dir(sqfs)))
	}
	f, err := os.Create(sqfs)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	sw, err := newBuiltinWriter(f, opts)
	if err != nil {
		return fail(err)
	}
	defer sw.Abort()
	// Progress: the layers' compressed bytes read (their total is known before
	// they are read; the files' is not).
	layers, total := countedLayers(layers, opts.Progress.Add)
	opts.Progress.SetTotal(total)

	var m *builtinMerger
	var data map[*inode]*squashfs.Data
	var unused int64 // bytes of files packed that the tree does not name
	twoPass := opts.TwoPass
	if !twoPass {
		if m, data, err = builtinOnePass(ctx, sw, layers, opts); err != nil {
			return failRead(err)
		}
		if err := m.t.addSingularityD(sd); err != nil {
			return times, fmt.Errorf("add /.singularity.d: %w", err)
		}
		unused = m.dataBytes - survivingBytes(m.t, data)
		if unused > minUnusedRewrite && unused > m.dataBytes/maxUnusedShare {
			opts.Log.Info().Int64("unused_bytes", unused).Int64("bytes", m.dataBytes).
				Msg("later layers replaced much of what earlier ones hold: writing the image again from the merged layers")
			twoPass, unused = true, 0
			opts.Progress.SetTotal(2 * total)
			sw.Abort()
			if err := truncate(f); err != nil {
				return fail(err)
			}
			if sw, err = newBuiltinWriter(f, opts); err != nil {
				return fail(err)
			}
			defer sw.Abort()
		}
	}
	if twoPass {
		if m, err = builtinMerge(ctx, layers, opts.Log); err != nil {
			return failRead(err)
		}
		if err := m.t.addSingularityD(sd); err != nil {
			return times, fmt.Errorf("add /.singularity.d: %w", err)
		}
		if data, err = builtinData(ctx, sw, layers, m.t, opts); err != nil {
			return failRead(err)
		}
	}
	times.flatten = time.Since(start)
	start = time.Now()
	if err := nameTree(ctx, sw, m.t, data); err != nil {
		return fail(err)
	}
	if err := sw.Close(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	times.compress = time.Since(start)
	if unused > 0 {
		opts.Log.Info().Int64("unused_bytes", unused).Msg("files that later layers replaced or removed stay in the image, unreachable")
	}
	opts.Log.Debug().Int("entries", m.entries).Int("skipped", m.skipped).Msg("layers merged and packed")
	return times, nil
}

// countedLayers returns layers whose compressed streams report the bytes read
// to add, and their total size.
func countedLayers(layers []v1.Layer, add func(int64)) ([]v1.Layer, int64) {
	out := make([]v1.Layer, len(layers))
	var total int64
	for i, l := range layers {
		if n, err := l.Size(); err == nil {
			total += n
		}
		out[i] = countedLayer{Layer: l, add: add}
	}
	return out, total
}

type countedLayer struct {
	v1.Layer
	add func(int64)
}

func (c countedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := c.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, add: c.add}, nil
}

type countingReader struct {
	io.ReadCloser
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

// survivingBytes is the size of the files of t whose bytes are in data.
func survivingBytes(t *tree, data map[*inode]*squashfs.Data) int64 {
	var n int64
	seen := map[*inode]bool{}
	_ = t.walk(func(_ string, in *inode) error {
		if d := data[in]; d != nil && !seen[in] {
			seen[in] = true
			n += d.Size()
		}
		return nil
	})
	return n
}

func newBuiltinWriter(f *os.File, opts Options) (*squashfs.Writer, error) {
	return squashfs.NewWriter(f, squashfs.Options{Compression: opts.Compression.Algo, Level: opts.Compression.Level, Workers: opts.Processors})
}

func truncate(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// builtinMerger is a merger that also counts the file bytes it saw.
type builtinMerger struct {
	*merger
	dataBytes int64
}

// builtinOnePass merges the layers, lowest first, writing every regular
// file's bytes into sw as its entry is read.
func builtinOnePass(ctx context.Context, sw *squashfs.Writer, layers []v1.Layer, opts Options) (*builtinMerger, map[*inode]*squashfs.Data, error) {
	m := &builtinMerger{merger: newMerger(opts.Log)}
	data := map[*inode]*squashfs.Data{}
	err := eachLayer(ctx, layers, nil, func(i int, hdr *tar.Header, k int, r io.Reader) error {
		if k == 0 {
			m.startLayer(i)
		}
		if err := m.apply(hdr, k); err != nil {
			return err
		}
		n := m.lastFile
		if n == nil {
			return nil
		}
		d, err := sw.Data(r, n.size)
		if err != nil {
			return fmt.Errorf("entry %s: %w", tarsafe.Quote(hdr.Name), err)
		}
		data[n] = d
		m.dataBytes += n.size
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return m, data, nil
}

// builtinMerge merges the layers' headers (contents skipped).
func builtinMerge(ctx context.Context, layers []v1.Layer, log zerolog.Logger) (*builtinMerger, error) {
	m, spools, err := mergeLayers(ctx, layers, 2, "", log)
	closeSpools(spools)
	if err != nil {
		return nil, err
	}
	return &builtinMerger{merger: m}, nil
}

// builtinData reads the layers again and writes into sw the bytes of the
// files that survive in t.
func builtinData(ctx context.Context, sw *squashfs.Writer, layers []v1.Layer, t *tree, opts Options) (map[*inode]*squashfs.Data, error) {
	need := (&tarWriter{}).index(t)
	data := map[*inode]*squashfs.Data{}
	err := eachLayer(ctx, layers, func(i int) bool { return need[i] != nil }, func(i int, hdr *tar.Header, k int, r io.Reader) error {
		n := need[i][k]
		if n == nil {
			return nil
		}
		if hdr.Size != n.size {
			return fmt.Errorf("entry %q changed between two reads of the layer", hdr.Name)
		}
		d, err := sw.Data(r, n.size)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		data[n] = d
		return nil
	})
	return data, err
}

// eachLayer calls fn with every header of the layers that want selects (nil:
// all), lowest first, with its layer, its index in the layer and its
// content, and reads each blob to its end (where its digest is checked).
// Each layer inflates in a goroutine of its own, up to readAheadDepth chunks
// ahead, and the next layer starts while this one is read.
func eachLayer(ctx context.Context, layers []v1.Layer, want func(int) bool, fn func(i int, hdr *tar.Header, k int, r io.Reader) error) error {
	return eachLayerFrom(ctx, layers, func(i int) io.ReadCloser {
		if want != nil && !want(i) {
			return nil
		}
		return openAhead(layers[i])
	}, fn)
}

// openAhead opens layer l inflating ahead of its reader (readAhead).
func openAhead(l v1.Layer) io.ReadCloser {
	rc, err := openLayer(l)
	if err != nil {
		return errReader{err}
	}
	return readAhead(rc, readAheadChunk, readAheadDepth)
}

// eachLayerFrom is eachLayer over the readers open gives (nil: skip the
// layer); layer i+1 is opened before layer i is read.
func eachLayerFrom(ctx context.Context, layers []v1.Layer, open func(i int) io.ReadCloser, fn func(i int, hdr *tar.Header, k int, r io.Reader) error) error {
	var next io.ReadCloser
	if len(layers) > 0 {
		next = open(0)
	}
	defer func() {
		if next != nil {
			next.Close()
		}
	}()
	for i := range layers {
		cur := next
		next = nil
		if i+1 < len(layers) {
			next = open(i + 1)
		}
		if cur == nil {
			continue
		}
		err := readTar(ctx, cur, func(hdr *tar.Header, k int, r io.Reader) error { return fn(i, hdr, k, r) })
		cur.Close()
		if err != nil {
			return layerErr(layers, i, err)
		}
	}
	return nil
}

// readTar calls fn with every header of the tar stream r, its index and its
// content, and reads r to its end.
func readTar(ctx context.Context, r io.Reader, fn func(hdr *tar.Header, k int, r io.Reader) error) error {
	tr := tar.NewReader(r)
	for k := 0; ; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := tarsafe.Check(hdr); err != nil {
			return fmt.Errorf("entry %w", err)
		}
		if err := fn(hdr, k, tr); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read layer: %w", err)
	}
	return nil
}

// nameTree adds every name of t to sw, in path order: directories,
// symlinks, devices, FIFOs, and regular files with the bytes written for
// them (data) or held in the tree (/.singularity.d); the other names of a
// hard-linked file become links to its first.
func nameTree(ctx context.Context, sw *squashfs.Writer, t *tree, data map[*inode]*squashfs.Data) error {
	first := map[*inode]string{}
	err := t.walk(func(rel string, n *inode) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !n.isDir() {
			if f, ok := first[n]; ok {
				return sw.Link(rel, f)
			}
			first[n] = rel
		}
		e := squashfs.Entry{Type: n.typ, Mode: n.mode, UID: n.uid, GID: n.gid,
			Target: n.link, Major: n.major, Minor: n.minor}
		if n.typ == tar.TypeReg {
			if n.layer < 0 {
				d, err := sw.Data(bytes.NewReader(n.data), int64(len(n.data)))
				if err != nil {
					return fmt.Errorf("/%s: %w", rel, err)
				}
				e.Data = d
			} else if e.Data = data[n]; e.Data == nil {
				return fmt.Errorf("/%s: its content was not read from its layer", rel)
			}
		}
		return sw.Add(rel, e)
	})
	if err != nil {
		return err
	}
	root := t.root
	return sw.Add("", squashfs.Entry{Type: tar.TypeDir, Mode: root.mode, UID: root.uid, GID: root.gid})
}
