package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func blobDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestBlobOnce: concurrent requests for one blob download it once, and every
// caller gets the whole, checked file.
func TestBlobOnce(t *testing.T) {
	c := Open(t.TempDir())
	data := []byte("layer bytes")
	var calls atomic.Int32
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _, err := c.Blob(t.Context(), blobDigest(data), int64(len(data)), func(w io.Writer) error {
				calls.Add(1)
				time.Sleep(50 * time.Millisecond)
				_, err := w.Write(data)
				return err
			})
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err != nil || string(b) != string(data) {
			t.Errorf("%s = %q, %v", p, b, err)
		}
	}
}

// TestBlobRefused: a download that does not match its digest or size, or
// fails, leaves no blob and no temp file.
func TestBlobRefused(t *testing.T) {
	data := []byte("layer bytes")
	tests := []struct {
		name   string
		body   []byte
		size   int64
		err    error
		wantIs error
	}{
		{"other bytes", []byte("tampered!!!"), int64(len(data)), nil, ErrBlobDigest},
		{"short", data[:4], int64(len(data)), nil, ErrBlobDigest},
		{"download fails", nil, int64(len(data)), io.ErrUnexpectedEOF, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			_, _, err := c.Blob(t.Context(), blobDigest(data), tt.size, func(w io.Writer) error {
				if tt.err != nil {
					return tt.err
				}
				_, err := w.Write(tt.body)
				return err
			})
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			blobs, _ := c.Blobs()
			tmp, _ := os.ReadDir(filepath.Join(c.Dir, "tmp"))
			if len(blobs) != 0 || len(tmp) != 0 {
				t.Errorf("left %d blobs, %d temp files", len(blobs), len(tmp))
			}
		})
	}
}

// TestGCBlobs: blobs unused for longer than the max age go, recent ones and
// those of a dry run stay.
func TestGCBlobs(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration // since last use
		maxAge   time.Duration
		dryRun   bool
		wantGone bool
	}{
		{"recent", time.Hour, 0, false, false},
		{"older than the default", 8 * 24 * time.Hour, 0, false, true},
		{"older than a set age", 2 * time.Hour, time.Hour, false, true},
		{"dry run", 8 * 24 * time.Hour, 0, true, false},
		{"all", 0, -1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			data := []byte(tt.name)
			p, _, err := c.Blob(t.Context(), blobDigest(data), int64(len(data)), func(w io.Writer) error {
				_, err := w.Write(data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			used := time.Now().Add(-tt.age)
			if err := os.Chtimes(p, used, used); err != nil {
				t.Fatal(err)
			}
			removed, err := c.GCBlobs(tt.maxAge, tt.dryRun)
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(p)
			if gone := errors.Is(statErr, os.ErrNotExist); gone != tt.wantGone {
				t.Errorf("blob gone = %v, want %v", gone, tt.wantGone)
			}
			if want := tt.wantGone || tt.dryRun; (len(removed) == 1) != want {
				t.Errorf("reported %d removed", len(removed))
			}
		})
	}
}
