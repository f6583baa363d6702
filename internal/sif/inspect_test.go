package sif

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sylabs "github.com/sylabs/sif/v2/pkg/sif"
)

// TestInspectInvalid: files that are not runnable SIFs give an error naming
// the file. (Inspect of converted SIFs is tested in internal/convert.)
func TestInspectInvalid(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.sif")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho not a sif\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A valid SIF with no partition: not a container image.
	noPart := filepath.Join(dir, "nopart.sif")
	di, err := sylabs.NewDescriptorInput(sylabs.DataGenericJSON, strings.NewReader("{}"), sylabs.OptObjectName("x.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := sylabs.CreateContainerAtPath(noPart, sylabs.OptCreateDeterministic(), sylabs.OptCreateWithDescriptors(di))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.UnloadContainer(); err != nil {
		t.Fatal(err)
	}
	// The same SIF with a header that claims 2^40 descriptors: the sif package
	// would allocate them all.
	forged := filepath.Join(dir, "forged.sif")
	b, err := os.ReadFile(noPart)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[88:], 1<<40) // DescriptorsTotal
	if err := os.WriteFile(forged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
		is               error
	}{
		{"forged descriptor count", forged, "claims 1099511627776 descriptors", nil},
		{"a directory", dir, "not a regular file", nil},
		{"missing", filepath.Join(dir, "nope.sif"), "nope.sif", os.ErrNotExist},
		{"not a SIF", text, text + " is not a valid SIF file", nil},
		{"empty file", mkEmpty(t, dir), "empty.sif is not a valid SIF file", nil},
		{"no primary partition", noPart, noPart, ErrNoPrimaryPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if _, _, err := PrimaryPartition(tt.path); err == nil {
				t.Errorf("PrimaryPartition(%s) succeeded", tt.path)
			}
		})
	}
}

func mkEmpty(t *testing.T, dir string) string {
	p := filepath.Join(dir, "empty.sif")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
