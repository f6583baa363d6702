package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLine(t *testing.T) {
	tests := []struct {
		done, total int64
		unit, want  string
	}{
		{0, 100, "inputs", "[..............................] 0/100"},
		{50, 100, "inputs", "[###############...............] 50/100"},
		{2 << 20, 4 << 20, "bytes", "[###############...............] 2.0 MiB/4.0 MiB"},
		{512, 3 << 30, "bytes", "] 512 B/3.0 GiB"},
		{5, 0, "inputs", "[..............................] 5/0"},
	}
	for _, tt := range tests {
		got := Line("op", tt.unit, tt.done, tt.total, 0)
		if !strings.Contains(got, tt.want) {
			t.Errorf("Line(%d,%d)=%q, want it to contain %q", tt.done, tt.total, got, tt.want)
		}
	}
	if got, want := Line("op", "bytes", 2<<20, 4<<20, 2*time.Second), "2.0 MiB/4.0 MiB 1.0 MiB/s"; !strings.HasSuffix(got, want) {
		t.Errorf("Line with a rate = %q, want it to end in %q", got, want)
	}
}

func TestLogReporterCountsConcurrentAdds(t *testing.T) {
	var buf bytes.Buffer
	r := LogFactory(zerolog.New(&buf), time.Hour)("pull x", "bytes")
	r.SetTotal(1000)
	r.SetTotal(10) // never lowers
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.Add(100) }()
	}
	wg.Wait()
	r.Done()
	r.Done()
	out := buf.String()
	if strings.Count(out, "finished") != 1 || !strings.Contains(out, `"done":1000`) || !strings.Contains(out, `"total":1000`) {
		t.Fatalf("final line wrong: %s", out)
	}
}
