package sharding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// listData is a data root with files, a sub-directory, a symlink inside and one
// pointing out, a FIFO and an unrelated file outside.
func listData(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "data")
	outside = filepath.Join(base, "secret.png")
	for _, f := range []string{"a.png", "b.png", "sub/c.png", "sub dir/d e.png"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte("12345"), 0o644)
	}
	os.WriteFile(outside, []byte("x"), 0o644)
	os.Symlink("a.png", filepath.Join(root, "link.png"))
	os.Symlink(outside, filepath.Join(root, "out.png"))
	os.Symlink(base, filepath.Join(root, "up"))
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func TestScanList(t *testing.T) {
	root, outside := listData(t)
	tests := []struct {
		name    string
		list    string
		want    []string // inputs, in order
		skipped map[string]string
		err     error
	}{
		{"text", "a.png\nsub/c.png\n\nsub dir/d e.png\r\n" + root + "/b.png\n", []string{"a.png", "sub/c.png", "sub dir/d e.png", "b.png"}, nil, nil},
		{"text without final newline", "b.png\na.png", []string{"b.png", "a.png"}, nil, nil},
		{"csv", "id,Path,label\n1,a.png,cat\n2,\"sub dir/d e.png\",dog\n3," + root + "/sub/c.png,x\n", []string{"a.png", "sub dir/d e.png", "sub/c.png"}, nil, nil},
		{"csv path only", "path\nb.png\n", []string{"b.png"}, nil, nil},
		{"outside", "a.png\n../secret.png\n" + outside + "\n/etc/passwd\nsub/../../secret.png\n", []string{"a.png"}, map[string]string{
			"../secret.png": "outside", outside: "outside", "/etc/passwd": "outside", "sub/../../secret.png": "outside"}, nil},
		{"through links", "link.png\nout.png\nup/secret.png\n", []string{"link.png"}, map[string]string{
			"out.png": "outside", "up/secret.png": "outside"}, nil},
		{"missing and special", "nope.png\nsub\nfifo.png\nb.png\n", []string{"b.png"}, map[string]string{
			"nope.png": "no such file", "sub": "not a regular file", "fifo.png": "not a regular file"}, nil},
		{"duplicates", "a.png\n./a.png\nsub/c.png\n" + root + "/a.png\nsub//c.png\n", []string{"a.png", "sub/c.png"}, map[string]string{
			"a.png": "more than once", "sub/c.png": "more than once"}, nil},
		{"bad names", "a.png\nbad\xffname.png\n", []string{"a.png"}, map[string]string{"bad\xffname.png": "UTF-8"}, nil},
		{"csv record without the column", "label,path\ncat\n", nil, nil, ErrBadList},
		{"broken csv", "path\n\"a.png\n", nil, nil, ErrBadList},
		{"long line", strings.Repeat("x", MaxListLine+10) + "\n", nil, nil, ErrBadList},
		{"empty", "", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			skipped := map[string]string{}
			calls := int64(0)
			o := ScanOptions{OnSkip: func(rel, why string) { skipped[rel] = why; calls++ }}
			st, err := ScanList(context.Background(), root, strings.NewReader(tc.list), "list.txt", o, func(rel string, size int64) error {
				if size != 5 {
					t.Errorf("%s: size %d", rel, size)
				}
				got = append(got, rel)
				return nil
			})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), "list.txt") {
					t.Fatalf("err %v, want %v naming the list", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("inputs %q, want %q", got, tc.want)
			}
			if len(skipped) != len(tc.skipped) || st.Skipped != calls || st.Inputs != int64(len(tc.want)) {
				t.Errorf("skipped %q (stats %+v), want %q", skipped, st, tc.skipped)
			}
			for rel, why := range tc.skipped {
				if !strings.Contains(skipped[rel], why) {
					t.Errorf("%s: reason %q, want %q", rel, skipped[rel], why)
				}
			}
		})
	}
}

// TestWriteShardsFrom: shards follow the list's order; balancing by bytes is refused.
func TestWriteShardsFrom(t *testing.T) {
	root, _ := listData(t)
	dir := t.TempDir()
	sum, err := WriteShardsFrom(context.Background(), dir, root, strings.NewReader("sub/c.png\nb.png\na.png\n"), "-", ScanOptions{}, Plan{ShardSize: 2})
	if err != nil || sum.Shards != 2 || sum.Inputs != 3 {
		t.Fatalf("%+v, %v", sum, err)
	}
	var got []string
	for i := 0; i < 2; i++ {
		ReadShard(dir, i, func(rel string) error { got = append(got, rel); return nil })
	}
	if fmt.Sprint(got) != "[sub/c.png b.png a.png]" {
		t.Errorf("shards hold %q", got)
	}
	if _, err := WriteShardsFrom(context.Background(), dir, root, strings.NewReader("a.png\n"), "-", ScanOptions{}, Plan{Shards: 2}); !errors.Is(err, ErrBadPlan) {
		t.Errorf("balanced: %v", err)
	}
	if _, err := WriteShardsFrom(context.Background(), t.TempDir(), root, strings.NewReader("nope.png\n"), "-", ScanOptions{OnSkip: func(string, string) {}}, Plan{}); !errors.Is(err, ErrNoInputs) {
		t.Errorf("nothing usable: %v", err)
	}
}

// BenchmarkScanList1M reads a list of a million paths (to 1000 files, so that each
// line is a distinct path only by name: every other line repeats one) and reports
// the heap it grew by, which must stay small.
func BenchmarkScanList1M(b *testing.B) {
	root := b.TempDir()
	for d := 0; d < 10; d++ {
		os.MkdirAll(filepath.Join(root, fmt.Sprintf("d%d", d)), 0o755)
		for i := 0; i < 100; i++ {
			os.WriteFile(filepath.Join(root, fmt.Sprintf("d%d/f%03d.png", d, i)), nil, 0o644)
		}
	}
	list := filepath.Join(b.TempDir(), "list.txt")
	f, _ := os.Create(list)
	for i := 0; i < 1_000_000; i++ {
		fmt.Fprintf(f, "d%d/f%03d.png\n", i%10, i/10%100)
	}
	f.Close()
	b.ResetTimer()
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		lf, _ := os.Open(list)
		st, err := ScanList(context.Background(), root, lf, list, ScanOptions{OnSkip: func(string, string) {}}, func(string, int64) error { return nil })
		lf.Close()
		runtime.ReadMemStats(&m1)
		if err != nil || st.Inputs != 1000 {
			b.Fatal(st, err)
		}
		b.ReportMetric(float64(m1.HeapInuse)-float64(m0.HeapInuse), "heap-growth-B")
	}
	b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// FuzzScanList: whatever the list holds, every input handed on is a distinct,
// local path of a regular file inside the root, and nothing panics.
func FuzzScanList(f *testing.F) {
	f.Add([]byte("a.png\nsub/c.png\n../x\n/etc/passwd\n"))
	f.Add([]byte("x,path\n1,\"a.png\"\n2,\"b\"\"q.png\"\n"))
	f.Add([]byte("path\n\"multi\nline\"\n"))
	root, _ := listData(f)
	f.Fuzz(func(t *testing.T, list []byte) {
		seen := map[string]bool{}
		ScanList(context.Background(), root, bytes.NewReader(list), "fuzz", ScanOptions{OnSkip: func(string, string) {}}, func(rel string, _ int64) error {
			if seen[rel] || !filepath.IsLocal(rel) {
				t.Fatalf("input %q handed on twice or not local", rel)
			}
			seen[rel] = true
			fi, err := os.Stat(filepath.Join(root, rel))
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("input %q is not a regular file: %v", rel, err)
			}
			return nil
		})
	})
}
