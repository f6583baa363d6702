package results

import "hash/maphash"

// pathSeed keys pathIndex's hashes; random per process, as maphash wants.
var pathSeed = maphash.MakeSeed()

// pathIndex is the per-shard map from a path to what the merge knows of it, built
// for the one use a shard read has: a table of 64-bit hashes with linear probing,
// cleared (not freed) between shards. It stores only a hash and a value: the caller
// compares the path itself (see shardBuf.find), so two paths of the same hash cost
// one more probe, never a wrong match. It is faster than map[string]int here because
// it hashes each path once per operation and never allocates once grown.
type pathIndex struct {
	slots []indexSlot
	n     int
}

// indexSlot is one entry: v > 0 is finals[v-1], v < 0 is pendings[-v-1], 0 is free.
type indexSlot struct {
	h uint64
	v int32
}

func hashPath(p string) uint64 { return maphash.String(pathSeed, p) }

// reset empties the index for about hint entries.
func (x *pathIndex) reset(hint int) {
	size := 64
	for size < 2*hint {
		size *= 2
	}
	if cap(x.slots) >= size {
		x.slots = x.slots[:cap(x.slots)]
		clear(x.slots)
	} else {
		x.slots = make([]indexSlot, size)
	}
	x.n = 0
}

// insert stores v for hash h at the free slot pos that a probe for h ended on.
func (x *pathIndex) insert(pos int, h uint64, v int32) {
	x.slots[pos] = indexSlot{h: h, v: v}
	x.n++
	if 2*x.n <= len(x.slots) {
		return
	}
	old := x.slots
	x.slots = make([]indexSlot, 2*len(old))
	mask := uint64(len(x.slots) - 1)
	for _, s := range old {
		if s.v == 0 {
			continue
		}
		i := s.h & mask
		for x.slots[i].v != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}
