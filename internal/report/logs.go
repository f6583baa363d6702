package report

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// Bounds on what the report reads of logs (written by models: untrusted, unbounded).
const (
	tailBytes      = 4 << 10 // of a worker log shown under a load or crash failure
	maxTailLogs    = 4       // worker logs shown per failure group
	slurmLogPeek   = 64 << 10
	maxSlurmLogs   = 20_000
	nodeLinePrefix = "start node="
)

// slurmStart matches the batch script's start line:
// "… scv-hpc[123_4 shard 5]: start node=n01 job_id=128 …".
var slurmStart = regexp.MustCompile(`scv-hpc\[([0-9]*)_([0-9]+) shard ([0-9]+)\]: start node=(\S+)`)

// shardNodes reads the Slurm logs of the job (logs/*.out) and returns the nodes each
// shard ran on (several after a requeue), in the order seen.
func shardNodes(jobDir string) map[int][]string {
	files, _ := filepath.Glob(filepath.Join(job.LogsDir(jobDir), "*_*.out"))
	sort.Strings(files)
	if len(files) > maxSlurmLogs {
		files = files[:maxSlurmLogs]
	}
	nodes := map[int][]string{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(io.LimitReader(fh, slurmLogPeek))
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, nodeLinePrefix) {
				continue
			}
			m := slurmStart.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			shard, err := strconv.Atoi(m[3])
			if err != nil {
				continue
			}
			node := units.Clip(m[4], 64)
			if l := nodes[shard]; len(l) == 0 || l[len(l)-1] != node {
				nodes[shard] = append(l, node)
			}
		}
		fh.Close()
	}
	return nodes
}

// logTail is the end of one worker log.
type logTail struct {
	Name string
	Text string
}

// workerTails returns the last tailBytes of the worker logs of shard, at most
// maxTailLogs, as valid UTF-8 text.
func workerTails(jobDir string, shard int) []logTail {
	files, _ := filepath.Glob(filepath.Join(job.LogsDir(jobDir), fmt.Sprintf("worker-%06d-*.log", shard)))
	sort.Strings(files)
	var out []logTail
	for _, f := range files {
		if len(out) == maxTailLogs {
			break
		}
		text, err := tail(f, tailBytes)
		if err != nil || len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		out = append(out, logTail{Name: filepath.Base(f), Text: strings.ToValidUTF8(string(text), "\uFFFD")})
	}
	return out
}

// tail reads the last n bytes of a regular file, starting after a line break.
func tail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	off := max(0, fi.Size()-n)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, err
	}
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
		for len(buf) > 0 && !utf8.RuneStart(buf[0]) {
			buf = buf[1:]
		}
	}
	return buf, nil
}
