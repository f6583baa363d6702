package report

import (
	"math/rand/v2"
	"slices"
)

// Reservoir keeps a uniform sample of at most K items of a stream of unknown length
// (Algorithm R) in O(K) memory. Its random source has a fixed seed, so the same
// stream gives the same sample: a report made twice shows the same inputs.
type Reservoir[T any] struct {
	K     int
	Items []T
	seen  int64
	rng   *rand.Rand
}

// NewReservoir returns a reservoir of k items whose choices follow seed.
func NewReservoir[T any](k int, seed uint64) *Reservoir[T] {
	return &Reservoir[T]{K: k, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Offer shows the reservoir the next item of the stream; make is called only when
// the item is kept, so a costly copy is made for few items.
func (r *Reservoir[T]) Offer(make func() T) {
	r.seen++
	if len(r.Items) < r.K {
		r.Items = append(r.Items, make())
		return
	}
	if j := r.rng.Int64N(r.seen); j < int64(r.K) {
		r.Items[j] = make()
	}
}

// Seen is how many items were offered.
func (r *Reservoir[T]) Seen() int64 { return r.seen }

// Extremes keeps the K items with the largest keys (or the smallest, with Less
// reversed) seen in a stream; ties keep the earlier item.
type Extremes[T any] struct {
	K     int
	Items []T
	key   func(T) int
	most  bool
}

// NewExtremes keeps the k items of largest key when most is true, else smallest.
func NewExtremes[T any](k int, most bool, key func(T) int) *Extremes[T] {
	return &Extremes[T]{K: k, key: key, most: most}
}

// better reports whether key a ranks before key b.
func (e *Extremes[T]) better(a, b int) bool {
	if e.most {
		return a > b
	}
	return a < b
}

// Would reports whether an item of this key would be kept (to skip making it).
func (e *Extremes[T]) Would(key int) bool {
	return len(e.Items) < e.K || e.better(key, e.key(e.Items[len(e.Items)-1]))
}

// Offer keeps item if it ranks among the K best so far. Items stays sorted best
// first; K is small (a gallery row), so insertion is linear.
func (e *Extremes[T]) Offer(item T) {
	k := e.key(item)
	if !e.Would(k) {
		return
	}
	i := len(e.Items)
	for i > 0 && e.better(k, e.key(e.Items[i-1])) {
		i--
	}
	e.Items = slices.Insert(e.Items, i, item)
	if len(e.Items) > e.K {
		e.Items = e.Items[:e.K]
	}
}
