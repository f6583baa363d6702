package testenv

import "fmt"

// SparseTar returns a tar stream of 3 KiB holding one GNU sparse file named name, all
// hole, that archive/tar expands to realsize bytes of zeros (SparseEntry), followed by a
// regular file "after" holding "x".
func SparseTar(name string, realsize int64) []byte {
	out := SparseEntry(name, realsize)
	out = append(out, TarBlock("after", '0', 1)...)
	out = append(out, padBlock([]byte("x"))...)
	return append(out, make([]byte, 1024)...)
}

// SparseEntry returns the blocks of one GNU sparse file (PAX format 1.0) named name,
// all hole, of realsize bytes: built block by block, as archive/tar writes no sparse
// files.
func SparseEntry(name string, realsize int64) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(realsize))
	out := TarBlock("PaxHeaders/x", 'x', int64(len(recs)))
	out = append(out, padBlock([]byte(recs))...)
	out = append(out, TarBlock("GNUSparseFile.0/x", '0', 512)...)
	return append(out, padBlock([]byte("0\n"))...) // the sparse map: no data segment
}

// TarBlock returns a ustar header block for an entry of type typ and size bytes, mode
// 0644, owned by 0:0. The caller appends the content, padded to 512 bytes.
func TarBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecord is one PAX extended header record, "LEN key=value\n".
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}
