//go:build !linux

package doctor

import "errors"

func statfs(string) (FSInfo, error) {
	return FSInfo{}, errors.New("file system type is only checked on Linux")
}
