package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// checkSIF opens path as a SIF, read-only, and checks that every data object lies
// within the file's size (a truncated copy loads but is not usable).
func checkSIF(path string, size int64) error {
	fh, _, err := openRegular(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	f, err := loadSIF(fh, size)
	if err != nil {
		return err
	}
	defer f.UnloadContainer()
	var bad error
	n := 0
	f.WithDescriptors(func(d sif.Descriptor) bool {
		n++
		if d.Offset() < 0 || d.Size() < 0 || d.Offset()+d.Size() > size {
			bad = fmt.Errorf("SIF object %d (%s) runs past the end of the file (%d bytes): truncated", d.ID(), d.Name(), size)
			return true
		}
		return false
	})
	if bad != nil {
		return bad
	}
	if n == 0 {
		return errors.New("SIF has no data objects")
	}
	return nil
}

// SIF header fields loadSIF checks before the sif package sees the file: it allocates
// DescriptorsTotal descriptors, so a forged header would exhaust the memory.
const (
	sifHeaderSize     = 128
	sifDescrTotalAt   = 88 // int64 DescriptorsTotal, then DescriptorsOffset, DescriptorsSize
	sifDescriptorSize = 585
	maxSIFDescriptors = 1 << 16
)

// loadSIF loads the SIF open as f, of size bytes, after checking that its header
// claims no more descriptors than the file can hold (and at most maxSIFDescriptors).
func loadSIF(f *os.File, size int64) (*sif.FileImage, error) {
	var h [sifHeaderSize]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("not a SIF: reading its header: %w", err)
	}
	total := int64(binary.LittleEndian.Uint64(h[sifDescrTotalAt:]))
	off := int64(binary.LittleEndian.Uint64(h[sifDescrTotalAt+8:]))
	dsize := int64(binary.LittleEndian.Uint64(h[sifDescrTotalAt+16:]))
	if total < 0 || total > maxSIFDescriptors || off < sifHeaderSize || off > size || dsize < 0 || dsize > size-off ||
		total*sifDescriptorSize > size-off {
		return nil, fmt.Errorf("not a SIF: its header claims %d descriptors of %d bytes at offset %d in a file of %d bytes", total, dsize, off, size)
	}
	img, err := sif.LoadContainer(f, sif.OptLoadWithFlag(os.O_RDONLY), sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return nil, fmt.Errorf("not a SIF: %w", err)
	}
	return img, nil
}
