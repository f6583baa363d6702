// Command probe reports, as one JSON object, what a process sees inside a container:
// used by the builtin runtime's tests.
package main

import (
	"encoding/json"
	"os"
	"sort"
)

func main() {
	r := map[string]any{}
	r["cwd"], _ = os.Getwd()
	env := os.Environ()
	sort.Strings(env)
	r["env"] = env
	r["args"] = os.Args[1:]
	if b, err := os.ReadFile("/data/in.txt"); err == nil {
		r["data"] = string(b)
	} else {
		r["data_err"] = err.Error()
	}
	try := func(key, path string) {
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			r[key] = err.Error()
		} else {
			r[key] = "ok"
		}
	}
	try("write_data", "/data/new.txt")
	try("write_root", "/probe-was-here")
	try("write_scratch", "/scratch/out.txt")
	try("write_out", "/out/result.txt")
	try("write_tmp", "/tmp/t.txt")
	_, err := os.Stat("/proc/self/status")
	r["proc"] = err == nil
	_, err = os.Stat("/dev/null")
	r["dev"] = err == nil
	json.NewEncoder(os.Stdout).Encode(r)
}
