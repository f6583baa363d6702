package sif

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// SIF header fields Load checks before the sif package sees the file: it
// allocates DescriptorsTotal descriptors, so a forged header would exhaust the
// memory.
const (
	headerSize     = 128
	descrTotalAt   = 88 // int64 DescriptorsTotal, then DescriptorsOffset, DescriptorsSize
	descriptorSize = 585
	maxDescriptors = 1 << 16
)

// Load loads the SIF open as f, of size bytes, read-only, after checking that
// its header claims no more descriptors than the file can hold (and at most
// 65536). The caller unloads the image and closes f.
func Load(f *os.File, size int64) (*sif.FileImage, error) {
	var h [headerSize]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("not a SIF: reading its header: %w", err)
	}
	total := int64(binary.LittleEndian.Uint64(h[descrTotalAt:]))
	off := int64(binary.LittleEndian.Uint64(h[descrTotalAt+8:]))
	dsize := int64(binary.LittleEndian.Uint64(h[descrTotalAt+16:]))
	if total < 0 || total > maxDescriptors || off < headerSize || off > size || dsize < 0 || dsize > size-off ||
		total*descriptorSize > size-off {
		return nil, fmt.Errorf("not a SIF: its header claims %d descriptors of %d bytes at offset %d in a file of %d bytes", total, dsize, off, size)
	}
	img, err := sif.LoadContainer(f, sif.OptLoadWithFlag(os.O_RDONLY), sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return nil, fmt.Errorf("not a SIF: %w", err)
	}
	return img, nil
}

// loadPath opens the SIF at path read-only with Load; done unloads and closes
// it. The error names path.
func loadPath(path string) (img *sif.FileImage, done func(), err error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("inspect: %w", err)
	}
	st, err := fh.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file")
	}
	if err == nil {
		img, err = Load(fh, st.Size())
	}
	if err != nil {
		fh.Close()
		return nil, nil, fmt.Errorf("%s is not a valid SIF file: %w", path, err)
	}
	return img, func() { img.UnloadContainer(); fh.Close() }, nil
}
