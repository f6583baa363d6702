package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		level, format string
		wantErr       bool
		wantJSON      bool
	}{
		{"info", "auto", false, true}, // a buffer is not a terminal
		{"debug", "json", false, true},
		{"warn", "console", false, false},
		{"loud", "json", true, false},
		{"info", "xml", true, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log, err := New(&buf, tt.level, tt.format)
		if (err != nil) != tt.wantErr {
			t.Fatalf("New(%q,%q) err=%v, wantErr %v", tt.level, tt.format, err, tt.wantErr)
		}
		if err != nil {
			continue
		}
		log.Error().Str("k", "v").Msg("hello")
		line := strings.TrimSpace(buf.String())
		var m map[string]any
		isJSON := json.Unmarshal([]byte(line), &m) == nil
		if isJSON != tt.wantJSON {
			t.Errorf("New(%q,%q): JSON=%v want %v: %q", tt.level, tt.format, isJSON, tt.wantJSON, line)
		}
		if !strings.Contains(line, "hello") {
			t.Errorf("message missing: %q", line)
		}
	}
}
