package cache

import (
	"errors"
	"fmt"
	"os"

	"github.com/sylabs/sif/v2/pkg/sif"

	scvsif "github.com/scivision-hpc/scv-hpc/internal/sif"
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

// loadSIF is scvsif.Load: the header is checked before the sif package sees it.
func loadSIF(f *os.File, size int64) (*sif.FileImage, error) { return scvsif.Load(f, size) }
