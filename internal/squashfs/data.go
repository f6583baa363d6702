package squashfs

import (
	"io"
	"sync"
)

// Data is the content of a regular file written with Writer.Data: where its
// blocks and its tail are. It is filled in as the blocks are written; the
// writer reads it only when it is closed.
type Data struct {
	size    int64
	start   uint64   // file offset of the first block
	blocks  []uint32 // stored size of each full block, dataUncompBit when not compressed (the pipeline's writer appends)
	frag    uint32   // fragment block holding the tail, or invalidFrag
	fragOff uint32   // offset of the tail in the fragment block
}

// Size is the file's length in bytes.
func (d *Data) Size() int64 { return d.size }

// block is one unit of work of the pipeline: a full block of a file, or a
// fragment block.
type block struct {
	src  []byte
	out  []byte // src compressed, or nil: stored as is
	done chan struct{}
	file *Data      // the file of a full block, or nil
	frag *fragEntry // the entry of a fragment block, or nil
}

// pipeline compresses blocks on workers goroutines and writes them in the
// order they were submitted, so the image does not depend on timing.
type pipeline struct {
	w       io.Writer
	pos     uint64 // file offset of the next byte written
	work    chan *block
	ordered chan *block
	pool    sync.Pool
	wg      sync.WaitGroup // workers and the writer
	err     error          // the first write error; read after the writer ended
	failed  chan struct{}  // closed when err is set
	once    sync.Once
}

type fragEntry struct {
	start uint64
	size  uint32
}

func newPipeline(w io.Writer, pos uint64, blockSize, workers int, newComp func() compressor) *pipeline {
	p := &pipeline{
		w: w, pos: pos,
		work:    make(chan *block, workers),
		ordered: make(chan *block, 4*workers),
		failed:  make(chan struct{}),
	}
	p.pool.New = func() any { b := make([]byte, 0, blockSize); return &b }
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			c := newComp()
			for b := range p.work {
				if out := c.compress(b.src); out != nil {
					b.out = append(p.getBuf(), out...)
				}
				close(b.done)
			}
		}()
	}
	p.wg.Add(1)
	go p.writer()
	return p
}

func (p *pipeline) getBuf() []byte { return (*(p.pool.Get().(*[]byte)))[:0] }
func (p *pipeline) putBuf(b []byte) {
	if b != nil {
		p.pool.Put(&b)
	}
}

func (p *pipeline) fail(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.failed)
	})
}

// writer writes the blocks in submission order and records where each went.
func (p *pipeline) writer() {
	defer p.wg.Done()
	for b := range p.ordered {
		<-b.done
		data, size := b.out, uint32(len(b.out))
		if data == nil {
			data, size = b.src, uint32(len(b.src))|dataUncompBit
		}
		select {
		case <-p.failed:
		default:
			if _, err := p.w.Write(data); err != nil {
				p.fail(err)
			}
		}
		if b.file != nil {
			if len(b.file.blocks) == 0 {
				b.file.start = p.pos
			}
			b.file.blocks = append(b.file.blocks, size)
		} else {
			*b.frag = fragEntry{start: p.pos, size: size}
		}
		p.pos += uint64(len(data))
		p.putBuf(b.src)
		p.putBuf(b.out)
	}
}

// submit queues src (from getBuf) for compression and writing. It returns
// the first write error, if one happened.
func (p *pipeline) submit(b *block) error {
	b.done = make(chan struct{})
	select {
	case p.ordered <- b:
	case <-p.failed:
		return p.err
	}
	p.work <- b
	return nil
}

// close waits for every block to be written and returns the first error.
func (p *pipeline) close() error {
	close(p.ordered)
	close(p.work)
	p.wg.Wait()
	return p.err
}
