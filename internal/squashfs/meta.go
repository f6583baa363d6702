package squashfs

// metaWriter writes a metadata table (inodes, directories, fragment or id
// entries) as a run of metadata blocks: 8 KiB of data each, compressed, with
// a 2-byte header giving the stored size (bit 15 set when stored as is).
type metaWriter struct {
	c   compressor
	out []byte // finished blocks, headers included
	buf []byte // the block being filled, < metaBlockSize bytes
}

// ref is where the next byte written goes: the offset of its block from the
// start of the table, and its offset inside the block uncompressed.
func (m *metaWriter) ref() (block uint64, offset uint16) {
	return uint64(len(m.out)), uint16(len(m.buf))
}

func (m *metaWriter) write(p []byte) {
	for len(p) > 0 {
		n := min(len(p), metaBlockSize-len(m.buf))
		m.buf = append(m.buf, p[:n]...)
		p = p[n:]
		if len(m.buf) == metaBlockSize {
			m.flush()
		}
	}
}

// flush ends the current block, if it holds anything.
func (m *metaWriter) flush() {
	if len(m.buf) == 0 {
		return
	}
	data := m.c.compress(m.buf)
	hdr := uint16(len(data))
	if data == nil {
		data, hdr = m.buf, uint16(len(m.buf))|metaUncompBit
	}
	m.out = le.AppendUint16(m.out, hdr)
	m.out = append(m.out, data...)
	m.buf = m.buf[:0]
}
