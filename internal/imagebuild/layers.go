package imagebuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Add places host file or directory Src at Dst (absolute) in the image.
type Add struct{ Src, Dst string }

// ErrBadAdd marks an --add that is not SRC:/DST.
var ErrBadAdd = errors.New("want SRC:DST with an absolute DST, e.g. bin/faces:/usr/local/bin/faces")

// ParseAdd reads "SRC:/DST" (the last ":/" splits, so SRC may hold colons).
func ParseAdd(s string) (Add, error) {
	i := strings.LastIndex(s, ":/")
	if i <= 0 {
		return Add{}, fmt.Errorf("%q: %w", s, ErrBadAdd)
	}
	return Add{Src: s[:i], Dst: s[i+1:]}, nil
}

// Layers makes an image's layers, bottom first: the root file system fromDir (owners
// and modes kept; none when ""), then one layer per directory in adds (owned by root),
// then one layer holding every file in adds. skipped (optional) hears of entries left
// out (devices, sockets).
func Layers(fromDir string, adds []Add, skipped func(path, why string)) ([]v1.Layer, error) {
	var common []DirOption
	if skipped != nil {
		common = append(common, WithSkipped(skipped))
	}
	var layers []v1.Layer
	if fromDir != "" {
		l, err := LayerFromDir(fromDir, common...)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	var files []File
	for _, a := range adds {
		fi, err := os.Stat(a.Src)
		if err != nil {
			return nil, fmt.Errorf("add %s:%s: %w", a.Src, a.Dst, err)
		}
		if !fi.IsDir() {
			files = append(files, File{Path: a.Dst, Src: a.Src})
			continue
		}
		l, err := LayerFromDir(a.Src, append([]DirOption{WithPrefix(a.Dst), WithOwner(0, 0)}, common...)...)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	if len(files) > 0 {
		l, err := Layer(files)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return layers, nil
}

// ErrBadSetting marks an image setting written wrongly (KEY=VALUE, a JSON array).
var ErrBadSetting = errors.New("bad image setting")

// ParseArgs reads repeated one-argument values, or a single JSON array of strings
// (Docker's exec form, e.g. ["python3","/opt/serve.py"]).
func ParseArgs(vals []string) ([]string, error) {
	if len(vals) == 1 && strings.HasPrefix(strings.TrimSpace(vals[0]), "[") {
		var out []string
		if err := json.Unmarshal([]byte(vals[0]), &out); err != nil {
			return nil, fmt.Errorf("%s: %w: not a JSON array of strings: %v", vals[0], ErrBadSetting, err)
		}
		return out, nil
	}
	return vals, nil
}

// ParseEnv checks KEY=VALUE pairs (KEY not empty).
func ParseEnv(env []string) ([]string, error) {
	for _, e := range env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return nil, fmt.Errorf("%q: %w: want KEY=VALUE", e, ErrBadSetting)
		}
	}
	return env, nil
}

// ParseLabels reads KEY=VALUE labels (nil for none).
func ParseLabels(labels []string) (map[string]string, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: %w: want KEY=VALUE", l, ErrBadSetting)
		}
		m[k] = v
	}
	return m, nil
}
