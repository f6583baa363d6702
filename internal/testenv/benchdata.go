package testenv

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// BenchFiles generates nFiles files of about totalBytes in all, the same each time, and
// hands each to emit with its path relative to an image root: half compress like source
// text, half like model weights (random bytes). Benchmarks of conversion build images
// or trees from it.
func BenchFiles(nFiles, totalBytes int, emit func(rel string, data []byte) error) (total int64, err error) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("import numpy torch model predict weights layer conv relu batch tensor image label score box")
	per := totalBytes / nFiles
	for i := 0; i < nFiles; i++ {
		size := per/2 + rng.IntN(per+1)
		buf := make([]byte, 0, size)
		if i%2 == 0 {
			for len(buf) < size {
				buf = append(buf, words[rng.IntN(len(words))]...)
				buf = append(buf, ' ')
			}
			buf = buf[:size]
		} else {
			buf = buf[:size]
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
		}
		if err := emit(fmt.Sprintf("opt/pkg%02d/mod%03d/file%05d.dat", i%37, i%101, i), buf); err != nil {
			return total, err
		}
		total += int64(size)
	}
	return total, nil
}
