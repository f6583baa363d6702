package slurm

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// hostile is a directory name that runs commands if any value reaches the shell unquoted.
const hostile = "we'ird $(touch pwned) `touch pwned2` \"q\" $HOME;touch pwned3\nline2 \\ & | *"

func baseParams() Params {
	return Params{
		Version: "1.2.3", Model: "faces", Digest: "sha256:0123abcd",
		JobName: "scv-faces", Array: "0-9%2",
		Binary: "/opt/scv-hpc/bin/scv-hpc", JobDir: "/scratch/run1",
		GlobalArgs: []string{"--offline", "--cache", "/shared/cache"},
		Requeue:    true, SignalSeconds: 120,
	}
}

func TestRenderGolden(t *testing.T) {
	cases := []struct {
		name string
		edit func(p *Params)
	}{
		{"minimal", func(p *Params) {
			p.GlobalArgs, p.Requeue, p.SignalSeconds, p.Digest = nil, false, 0, ""
		}},
		{"defaults", func(p *Params) {}},
		{"all-options", func(p *Params) {
			p.Partition, p.Account, p.QOS, p.Time = "gpu", "vision-lab", "high", "04:00:00"
			p.CPUsPerTask, p.Mem, p.GPUsPerTask, p.Gres = 8, "32G", 1, "gpu:a100:1"
			p.Offset, p.Array = 1001, "0-1000%16"
		}},
		{"hostile-paths", func(p *Params) {
			p.JobDir = "/scratch/" + hostile
			p.Binary = "/opt/my tools/" + hostile + "/scv-hpc"
			p.Model = "faces\n#SBATCH --partition=evil\n$(touch pwned)"
			p.GlobalArgs = []string{"--offline", "--cache", "/shared/" + hostile}
		}},
		{"listed-shards", func(p *Params) {
			p.ShardList, p.Array = []int{3, 17, 42, 1500}, "0-3%2"
			p.RunArgs = []string{"--retry-failed"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := baseParams()
			tc.edit(&p)
			var buf bytes.Buffer
			if err := Render(&buf, p); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run 'go test ./internal/slurm -run TestRenderGolden -update')", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("rendered script differs from %s (rerun with -update after checking):\n%s", golden, buf.String())
			}
			bashSyntax(t, buf.Bytes())
			checkSbatchLines(t, buf.String())
		})
	}
}

// bashSyntax runs 'bash -n' over a script.
func bashSyntax(t *testing.T, script []byte) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}

// checkSbatchLines checks the #SBATCH block: only at the top (sbatch stops at
// the first command) and nothing a hostile value could have injected.
func checkSbatchLines(t *testing.T, script string) {
	t.Helper()
	inHeader := true
	for _, line := range strings.Split(script, "\n")[1:] {
		if !strings.HasPrefix(line, "#") {
			inHeader = false
		}
		if strings.HasPrefix(line, "#SBATCH") {
			if !inHeader {
				t.Errorf("#SBATCH line after the first command: %q", line)
			}
			if strings.Contains(line, "evil") {
				t.Errorf("injected #SBATCH line: %q", line)
			}
		}
	}
}

func TestRenderRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(p *Params)
		want string
	}{
		{"partition newline", func(p *Params) { p.Partition = "gpu\n#SBATCH --qos=evil" }, "partition"},
		{"account space", func(p *Params) { p.Account = "a b" }, "account"},
		{"gres quote", func(p *Params) { p.Gres = `gpu:1"` }, "gres"},
		{"time newline", func(p *Params) { p.Time = "1:00:00\n" }, "time"},
		{"relative job dir", func(p *Params) { p.JobDir = "run1" }, "job directory"},
		{"relative binary", func(p *Params) { p.Binary = "scv-hpc" }, "binary"},
		{"NUL in arg", func(p *Params) { p.RunArgs = []string{"a\x00b"} }, "NUL"},
		{"no array", func(p *Params) { p.Array = "" }, "array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := baseParams()
			tc.edit(&p)
			err := Render(&bytes.Buffer{}, p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render: got %v, want an error about %q", err, tc.want)
			}
		})
	}
	p := baseParams()
	p.Partition = "gpu\nx"
	if err := Render(&bytes.Buffer{}, p); !errors.Is(err, ErrUnsafeValue) {
		t.Errorf("want ErrUnsafeValue, got %v", err)
	}
}

// TestTemplateFromFile checks a site template: its own #SBATCH lines and the
// same quoting helpers.
func TestTemplateFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.tmpl")
	text := "#!/bin/bash\n#SBATCH --array={{sbatch .Array}}\n#SBATCH --constraint=a100\nmodule load apptainer\nexec {{shq .Binary}} run-shard {{shq .JobDir}} --index \"$SLURM_ARRAY_TASK_ID\" --offset {{.Offset}}\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := LoadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	p := baseParams()
	p.JobDir = "/scratch/it's here"
	var buf bytes.Buffer
	if err := tmpl.Render(&buf, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `'/scratch/it'\''s here'`) || !strings.Contains(buf.String(), "module load apptainer") {
		t.Errorf("site template output:\n%s", buf.String())
	}
	if _, err := ParseTemplate("bad", "{{.NoSuchField}}"); err != nil {
		t.Fatal(err) // parse is fine; execution fails
	}
	bad, _ := ParseTemplate("bad", "{{.NoSuchField}}")
	if err := bad.Render(&bytes.Buffer{}, p); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("unknown field: got %v", err)
	}
}

func TestQuote(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", "a b", "$(x)", "`x`", "a\nb", "'''", `\`, "!x", hostile} {
		out, err := exec.Command("bash", "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) came back as %q", s, out)
		}
	}
	if got := QuoteArgs([]string{"sbatch", "--output=logs/%A_%a.out", "/a b/c"}); got != "sbatch --output=logs/%A_%a.out '/a b/c'" {
		t.Errorf("QuoteArgs: %s", got)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a'b", hostile} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if !strings.HasPrefix(q, "'") || !strings.HasSuffix(q, "'") {
			t.Fatalf("not single-quoted: %s", q)
		}
		// Outside the '\'' sequences there is no single quote, so nothing is
		// ever outside a quoted region.
		inner := strings.ReplaceAll(q[1:len(q)-1], `'\''`, "")
		if strings.Contains(inner, "'") {
			t.Fatalf("stray quote in %s", q)
		}
	})
}

func TestJobName(t *testing.T) {
	for in, want := range map[string]string{
		"faces":                 "scv-faces",
		"ghcr.io/x/y:1.0":       "scv-ghcr.io_x_y_1.0",
		"a b\n$(x)":             "scv-a_b___x_",
		strings.Repeat("m", 99): "scv-" + strings.Repeat("m", 60),
	} {
		if got := JobName(in); got != want {
			t.Errorf("JobName(%q) = %q, want %q", in, got, want)
		}
	}
}
