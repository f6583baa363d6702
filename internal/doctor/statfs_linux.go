package doctor

import "golang.org/x/sys/unix"

func statfs(path string) (FSInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSInfo{}, err
	}
	return FSInfo{Magic: int64(st.Type), FreeBytes: st.Bavail * uint64(st.Bsize)}, nil
}
