package convert

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
)

// The streaming conversion runs in two passes over the layers, never writing a
// file tree:
//
//  1. merge: the layers' tar headers (contents skipped), lowest first, are
//     applied to an in-memory tree with the tree path's rules (merge.go); the
//     result is what survives, each regular file pointing at the layer entry
//     that holds its bytes. /.singularity.d is added to the tree.
//  2. write: one tar stream for the squashfs packer: the root, then every
//     directory, symlink, device, FIFO and /.singularity.d file in path order,
//     then the layers are read again, lowest first, and each surviving file is
//     written with its bytes as they come, followed by its other hard-linked
//     names. Layers with nothing surviving are not read again.
//
// Owners, modes, devices and hard links come from the headers, so an
// unprivileged conversion needs no pseudo file, and the same image always
// gives the same stream.

// readAheadChunk and readAheadDepth bound the decompressed bytes a layer
// keeps ready ahead of the writer: 8 MiB per layer, at most two layers.
const (
	readAheadChunk = 1 << 20
	readAheadDepth = 8
)

// mergeLayers is pass 1. Up to jobs layers are decompressed at once; their
// headers are merged in layer order. With spoolDir, each layer's tar is also
// spooled there (spool.go) for pass 2; spools[i] is nil where that failed.
// The caller closes the spools.
func mergeLayers(ctx context.Context, layers []v1.Layer, jobs int, spoolDir string, log zerolog.Logger) (m *merger, spools []*spool, err error) {
	type scanned struct {
		hdrs []*tar.Header
		err  error
	}
	made := make([]*spool, len(layers)) // closed here on error: the results are nil then
	defer func() {
		if err != nil {
			closeSpools(made)
		}
	}()
	results := make([]chan scanned, len(layers))
	sem := make(chan struct{}, max(jobs, 1))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, l := range layers {
		results[i] = make(chan scanned, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] <- scanned{err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			sp := newSpool(spoolDir)
			hdrs, err := scanHeaders(ctx, l, sp)
			if sp != nil && sp.finish() {
				made[i] = sp
			}
			results[i] <- scanned{hdrs, err}
		}()
	}
	m = newMerger(log)
	for i := range layers {
		r := <-results[i]
		if r.err != nil {
			cancel()
			wg.Wait()
			return nil, nil, layerErr(layers, i, r.err)
		}
		m.startLayer(i)
		for k, hdr := range r.hdrs {
			if err := m.apply(hdr, k); err != nil {
				cancel()
				wg.Wait()
				return nil, nil, layerErr(layers, i, err)
			}
		}
	}
	wg.Wait()
	return m, made, nil
}

func closeSpools(spools []*spool) {
	for _, s := range spools {
		s.close()
	}
}

// scanHeaders reads every header of a layer, to the end of the blob, copying
// the decompressed tar into sp when it is not nil.
func scanHeaders(ctx context.Context, l v1.Layer, sp *spool) ([]*tar.Header, error) {
	rc, err := openLayer(l)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if sp != nil {
		r = io.TeeReader(rc, sp)
	}
	var hdrs []*tar.Header
	err = readTar(ctx, r, func(hdr *tar.Header, _ int, _ io.Reader) error {
		hdrs = append(hdrs, hdr)
		return nil
	})
	return hdrs, err
}

func layerErr(layers []v1.Layer, i int, err error) error {
	name := fmt.Sprintf("layer %d of %d", i+1, len(layers))
	if d, derr := layers[i].Digest(); derr == nil {
		name += " (" + d.String() + ")"
	}
	return fmt.Errorf("%s: %w", name, err)
}

// streamStats says what a conversion wrote.
type streamStats struct {
	entries, files int
	bytes          int64
}

// tarWriter writes the merged tree as a tar stream. The order of the stream
// is fixed, so the same image gives the same squashfs: the layers' surviving
// files in layer order (each under the name it was made at, while it still
// holds it), then every other entry in path order (directories, symlinks,
// devices, FIFOs, /.singularity.d files, and the other names of hard-linked
// files as links), then the root.
type tarWriter struct {
	tw    *tar.Writer
	names map[*inode][]string // every name of an inode, in path order
	st    streamStats
	add   func(int64)
}

func newTarWriter(out io.Writer, add func(int64)) *tarWriter {
	if add == nil {
		add = func(int64) {}
	}
	return &tarWriter{tw: tar.NewWriter(out), add: add}
}

func (w *tarWriter) header(name string, n *inode) *tar.Header {
	return &tar.Header{Name: name, Typeflag: n.typ, Mode: n.mode, Uid: n.uid, Gid: n.gid,
		Linkname: n.link, Devmajor: n.major, Devminor: n.minor, ModTime: time.Unix(0, 0)}
}

// dataName is the name a layer file's bytes are written under.
func (w *tarWriter) dataName(t *tree, n *inode) string {
	if got, err := t.lookup(n.origin); err == nil && got == n {
		return n.origin
	}
	return w.names[n][0]
}

// index records every name of every inode of t and returns, by layer and
// entry index, the layer files that survive.
func (w *tarWriter) index(t *tree) map[int]map[int]*inode {
	w.names = map[*inode][]string{}
	need := map[int]map[int]*inode{}
	_ = t.walk(func(rel string, n *inode) error {
		if n.isDir() {
			return nil
		}
		w.names[n] = append(w.names[n], rel)
		if n.typ == tar.TypeReg && n.layer >= 0 && len(w.names[n]) == 1 {
			if need[n.layer] == nil {
				need[n.layer] = map[int]*inode{}
			}
			need[n.layer][n.index] = n
		}
		return nil
	})
	return need
}

// file writes a layer file's header and bytes (from r) under name.
func (w *tarWriter) file(name string, n *inode, r io.Reader) error {
	h := w.header(name, n)
	h.Size = n.size
	if err := w.tw.WriteHeader(h); err != nil {
		return err
	}
	c, err := io.Copy(w.tw, r)
	if err != nil {
		return err
	}
	w.add(c)
	w.st.bytes += c
	w.st.entries++
	w.st.files++
	return nil
}

// rest writes everything but the layer files' bytes (see tarWriter), and
// ends the stream. withRoot writes the root directory as "./" (tar2sqfs takes
// its attributes from it; mksquashfs is given them as options instead).
func (w *tarWriter) rest(ctx context.Context, t *tree, withRoot bool) error {
	err := t.walk(func(rel string, n *inode) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var h *tar.Header
		switch {
		case n.typ == tar.TypeReg && n.layer >= 0:
			first := w.dataName(t, n)
			if rel == first {
				return nil // written with its bytes
			}
			h = w.header(rel, n)
			h.Typeflag, h.Linkname = tar.TypeLink, first
		case !n.isDir() && w.names[n][0] != rel:
			h = w.header(rel, n)
			h.Typeflag, h.Linkname = tar.TypeLink, w.names[n][0]
		default:
			h = w.header(rel, n)
			if n.typ == tar.TypeReg {
				h.Size = int64(len(n.data))
			}
		}
		if err := w.tw.WriteHeader(h); err != nil {
			return err
		}
		w.st.entries++
		if h.Typeflag == tar.TypeReg {
			if _, err := w.tw.Write(n.data); err != nil {
				return err
			}
			w.st.files++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if withRoot {
		if err := w.tw.WriteHeader(w.header("./", t.root)); err != nil {
			return err
		}
	}
	return w.tw.Close()
}

// writeTar is pass 2: the merged tree t as one tar stream on out, the layer
// files' bytes read again from the spools (or the layers). add receives the
// bytes of file content written.
func writeTar(ctx context.Context, out io.Writer, t *tree, layers []v1.Layer, spools []*spool, withRoot bool, add func(int64)) (streamStats, error) {
	w := newTarWriter(out, add)
	need := w.index(t)
	// The next layer decompresses while this one is written.
	open := func(i int) io.ReadCloser {
		if need[i] == nil {
			return nil
		}
		if i < len(spools) && spools[i] != nil {
			rc, err := spools[i].reader()
			if err != nil {
				return errReader{err}
			}
			return readAhead(rc, readAheadChunk, readAheadDepth)
		}
		return openAhead(layers[i])
	}
	err := eachLayerFrom(ctx, layers, open, func(i int, hdr *tar.Header, k int, r io.Reader) error {
		n := need[i][k]
		if n == nil {
			return nil
		}
		if hdr.Size != n.size {
			return fmt.Errorf("entry %q changed between two reads of the layer", hdr.Name)
		}
		return w.file(w.dataName(t, n), n, r)
	})
	if err != nil {
		return w.st, err
	}
	return w.st, w.rest(ctx, t, withRoot)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
func (e errReader) Close() error             { return nil }
