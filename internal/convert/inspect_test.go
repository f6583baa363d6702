package convert

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

func TestInspect(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	p := convertTo(t, demoImage(t), t.TempDir(), "demo.sif", Options{})
	info, err := sif.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != "amd64" || info.Provenance == nil || info.Provenance.Digest != demoProv.Digest {
		t.Errorf("info = %+v", info)
	}
	if info.Config == nil || info.Config.WorkingDir != "/work" || info.Config.Labels["maintainer"] != "scv" ||
		len(info.Config.Env) != len(demoConfig.Env) {
		t.Errorf("config = %+v", info.Config)
	}
	if info.Runscript != "" || info.RunscriptFrom != "" {
		t.Errorf("sif.Inspect read the runscript (from %q): that is ReadRunscript's job", info.RunscriptFrom)
	}
	info.ReadRunscript(t.Context())
	if info.RunscriptFrom != "squashfs" || info.Runscript != sif.Runscript(demoConfig) {
		t.Errorf("runscript from %q:\n%s", info.RunscriptFrom, info.Runscript)
	}
	off, size, err := sif.PrimaryPartition(p)
	if err != nil || info.PrimaryOffset != off || info.PrimarySize != size {
		t.Errorf("primary %d+%d, sif.PrimaryPartition %d+%d %v", info.PrimaryOffset, info.PrimarySize, off, size, err)
	}
	names := map[string]sif.Descriptor{}
	for _, d := range info.Descriptors {
		names[d.Name] = d
	}
	if d := names[""]; d.FS != "Squashfs" || d.Partition != "*System" || d.Arch != "amd64" || d.Offset != off {
		t.Errorf("primary descriptor = %+v", d)
	}
	for _, n := range []string{sif.DescOCIConfig, sif.DescLabels, sif.DescProvenance} {
		if d, ok := names[n]; !ok || d.Type != "JSON.Generic" || d.Size == 0 {
			t.Errorf("descriptor %s = %+v", n, d)
		}
	}

	var text bytes.Buffer
	if err := info.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{demoProv.Ref, demoProv.Digest, "linux/amd64", `Entrypoint: ["/bin/echo", "hello world"]`,
		"FOO=bar baz", "org.scivision.predict=faces --json", sif.DescProvenance, "Squashfs", "OCI_ENTRYPOINT="} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var back sif.Info
	if err := json.Unmarshal(b, &back); err != nil || back.Provenance.Ref != demoProv.Ref || back.PrimaryOffset != off {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

// TestInspectWithoutUnsquashfs: sif.Inspect needs no unsquashfs; ReadRunscript falls
// back to the runscript rebuilt from the config.
func TestInspectWithoutUnsquashfs(t *testing.T) {
	testenv.Need(t, "mksquashfs")
	p := convertTo(t, demoImage(t), t.TempDir(), "demo.sif", Options{})
	t.Setenv("PATH", t.TempDir())
	info, err := sif.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	info.ReadRunscript(t.Context())
	if info.RunscriptFrom != "config" || info.Runscript != sif.Runscript(demoConfig) {
		t.Errorf("runscript from %q:\n%s", info.RunscriptFrom, info.Runscript)
	}
}
