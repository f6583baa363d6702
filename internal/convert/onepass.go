package convert

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
)

// The single pass: while pass 1 reads each layer (lowest first), every
// regular file is written into the packer's stream at once, under the name
// it is made at, so the packer compresses while the layers inflate. Whether
// the guess holds is known only once every layer is merged: it does when
// each file written still holds its name in the final tree and no other layer
// file survives. Then the rest of the stream is written (tarWriter.rest) and
// the squashfs is exactly the one the two-pass stream gives. Otherwise (a
// later entry replaced or removed a file already written, which image builds
// that change files of lower layers do) the packer is killed and the stream
// is written again from the merged tree (writeTar) and the spools.

// errGuess is a single pass whose stream cannot be completed.
var errGuess = errors.New("a layer file already streamed did not survive the layers above it")

// onePass merges the layers as mergeLayers does, one at a time, writing each
// regular file into w as it is read. It returns the merger, the spools and
// the files written. Files at the paths the conversion writes itself
// (/.singularity.d, etc/hosts, etc/resolv.conf) are never written early.
func onePass(ctx context.Context, w *tarWriter, layers []v1.Layer, spoolDir string, sd singularityD, log zerolog.Logger) (m *merger, spools []*spool, written map[*inode]bool, err error) {
	own := map[string]bool{}
	for _, f := range sd.files {
		own[f.name] = true
	}
	m = newMerger(log)
	made := make([]*spool, len(layers)) // closed here on error: the results are nil then
	written = map[*inode]bool{}
	defer func() {
		if err != nil {
			closeSpools(made)
		}
	}()
	for i, l := range layers {
		sp := newSpool(spoolDir)
		if err := onePassLayer(ctx, w, m, i, l, sp, own, written); err != nil {
			if sp != nil {
				sp.bad = true
				sp.finish()
			}
			return nil, nil, nil, layerErr(layers, i, err)
		}
		if sp != nil && sp.finish() {
			made[i] = sp
		}
	}
	return m, made, written, nil
}

func onePassLayer(ctx context.Context, w *tarWriter, m *merger, i int, l v1.Layer, sp *spool, own map[string]bool, written map[*inode]bool) error {
	rc, err := openLayer(l)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if sp != nil {
		r = io.TeeReader(rc, sp)
	}
	m.startLayer(i)
	return readTar(ctx, r, func(hdr *tar.Header, k int, tr io.Reader) error {
		if err := m.apply(hdr, k); err != nil {
			return err
		}
		n := m.lastFile
		if n == nil || own[n.origin] || strings.HasPrefix(n.origin, ".singularity.d/") {
			return nil
		}
		if err := w.file(n.origin, n, tr); err != nil {
			return err
		}
		written[n] = true
		return nil
	})
}

// guessHolds reports whether the files written early are exactly the layer
// files of the final tree, each under its data name (w.index must have run).
func guessHolds(t *tree, w *tarWriter, written map[*inode]bool) bool {
	survivors := 0
	for n := range w.names {
		if n.typ != tar.TypeReg || n.layer < 0 {
			continue
		}
		if !written[n] || w.dataName(t, n) != n.origin {
			return false
		}
		survivors++
	}
	return survivors == len(written)
}
