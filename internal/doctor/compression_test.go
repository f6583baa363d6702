package doctor

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSquashfsCompression reads the kernel config (/proc/config.gz, else
// /boot/config-RELEASE) and squashfuse's libraries, and says which squashfs
// compressors this host mounts.
func TestSquashfsCompression(t *testing.T) {
	const rhel8 = "CONFIG_SQUASHFS=m\nCONFIG_SQUASHFS_ZLIB=y\nCONFIG_SQUASHFS_XZ=y\nCONFIG_SQUASHFS_LZO=y\n# CONFIG_SQUASHFS_ZSTD is not set\n"
	const modern = rhel8 + "CONFIG_SQUASHFS_LZ4=y\nCONFIG_SQUASHFS_ZSTD=y\n"
	ldd := "\tlibfuse3.so.3 => /lib/libfuse3.so.3\n\tlibz.so.1 => /lib/libz.so.1\n\tliblzma.so.5 => /lib/liblzma.so.5\n\tlibzstd.so.1 => /lib/libzstd.so.1\n"
	tests := []struct {
		name       string
		host       fakeHost
		wantStatus Status
		wantDetail []string
		wantFix    string
	}{
		{
			name:       "zstd kernel from /proc/config.gz",
			host:       fakeHost{files: map[string]string{"/proc/config.gz": gzipped(t, modern)}},
			wantStatus: OK,
			wantDetail: []string{"kernel (/proc/config.gz): gzip xz lzo lz4 zstd", "squashfuse: not installed"},
			wantFix:    "this host reads zstd",
		},
		{
			name: "RHEL 8 kernel from /boot, squashfuse with zstd",
			host: fakeHost{
				files:    map[string]string{"/proc/sys/kernel/osrelease": "4.18.0-553.el8\n", "/boot/config-4.18.0-553.el8": rhel8},
				programs: map[string]string{"squashfuse": "", "ldd /opt/x/bin/squashfuse": ldd},
			},
			wantStatus: OK,
			wantDetail: []string{"kernel (/boot/config-4.18.0-553.el8): gzip xz lzo", "squashfuse: gzip xz zstd"},
			wantFix:    "this host reads zstd",
		},
		{
			name:       "RHEL 8 kernel, no squashfuse",
			host:       fakeHost{files: map[string]string{"/proc/sys/kernel/osrelease": "4.18.0\n", "/boot/config-4.18.0": rhel8}},
			wantStatus: OK,
			wantDetail: []string{"kernel (/boot/config-4.18.0): gzip xz lzo;"},
			wantFix:    "cannot mount zstd",
		},
		{
			name:       "nothing known",
			host:       fakeHost{},
			wantStatus: Warn,
			wantDetail: []string{"config not readable", "squashfuse: not installed"},
			wantFix:    "keep the default --compression gzip",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &doctor{p: tt.host.probes().withDefaults()}
			c := d.squashfsCompression(t.Context())
			if c.Status != tt.wantStatus {
				t.Errorf("status %s, want %s (%+v)", c.Status, tt.wantStatus, c)
			}
			for _, w := range tt.wantDetail {
				if !strings.Contains(c.Detail, w) {
					t.Errorf("detail %q lacks %q", c.Detail, w)
				}
			}
			if !strings.Contains(c.Fix, tt.wantFix) {
				t.Errorf("fix %q lacks %q", c.Fix, tt.wantFix)
			}
		})
	}
}
