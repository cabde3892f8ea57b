package local

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

// idSource hands out unique ids shaped as UUIDs (message ids, request ids): a random prefix
// per server and a counter, so that making one costs no system call and no lock.
type idSource struct {
	prefix [8]byte
	n      atomic.Uint64
}

func newIDSource() *idSource {
	s := new(idSource)
	_, _ = rand.Read(s.prefix[:])
	return s
}

func (s *idSource) uuid() string {
	var b [16]byte
	copy(b[:8], s.prefix[:])
	n := s.n.Add(1)
	for i := 15; i >= 8; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
