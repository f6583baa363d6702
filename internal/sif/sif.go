// Package sif reads the SIF files scv-hpc makes and runs: their descriptors,
// provenance and image config (Inspect), the squashfs primary partition
// (PrimaryPartition) and its root file system (ExtractRootfs). It never
// builds one: internal/convert does, with the names and formats defined
// here.
//
// A converted SIF holds one primary-system squashfs partition (the image's
// architecture) and three JSON descriptors: oci-config.json (the image's
// runtime config, as Apptainer stores it), labels.json and
// scv-provenance.json.
package sif

import (
	"errors"
	"fmt"
	"syscall"
)

// Names of the JSON descriptors a converted SIF carries.
const (
	DescOCIConfig  = "oci-config.json"
	DescLabels     = "labels.json"
	DescProvenance = "scv-provenance.json"
)

// Provenance records where a SIF came from. It is stored in the SIF as the
// scv-provenance.json descriptor.
type Provenance struct {
	Ref      string `json:"ref"`      // the reference the user asked for
	Digest   string `json:"digest"`   // manifest digest of the image
	Tool     string `json:"tool"`     // "scv-hpc VERSION"
	Platform string `json:"platform"` // os/arch[/variant]
}

// ErrNoSpace is returned (beside the cause) when extracting a SIF's root file system
// ran out of space or quota in the destination directory.
var ErrNoSpace = errors.New("no space left for the root file system")

// diskHint marks an out-of-space error with ErrNoSpace.
func diskHint(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
