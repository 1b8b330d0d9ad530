// Certificate packs: the certificates of the snapshot folder, many to a
// file.
//
// Folders of version 5 and older held one file per certificate. A node's
// warm-up loads ten thousand certificates, and a file each cost about
// 170 µs of the processor in the kernel (create, chmod, sync, rename: a
// fifth of a 1M node's processor while it filled its cache, CPU profile
// in BENCHMARKS.md); a pack of a thousand costs about what one file does.
// A write puts the certificates that are on disk in no pack into new
// packs, of at most certPackMax each. A pack stays as long as the
// manifest names one of its certificates and, at a look-up of every
// hostname, at least half of them; else its named certificates go to the
// write's new packs and the pack leaves the folder. The folder thus holds
// at most about twice the certificates it names, and a write costs what
// changed, plus, now and then, the half of a pack still named.
//
// A pack, certs/pack-<random>.bin (random: its content is secret):
//
//	"spine certpack 1\n"
//	uvarint len(keyID), keyID          the key its private keys are sealed with ("": none)
//	uvarint n
//	n × 32 bytes                       the SHA-256 of each certificate's leaf
//	n × (uvarint len, certPart JSON)   each certificate, in the same order
//
// The leaves come first so that a writer that restarts reads a pack's
// index without its certificates.

package fleet

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	certPackMagic = "spine certpack 1\n"
	// certPackMax is how many certificates a new pack holds at most: a
	// write after a warm-up's ten thousand writes ten packs, and a pack
	// half evicted rewrites at most half of this.
	certPackMax = 1024
	// maxKeyIDLen bounds the key ID a pack names (keyring IDs are short).
	maxKeyIDLen = 255
)

// errNotCertPack is the error of a file that is not a certificate pack.
var errNotCertPack = errors.New("not a certificate pack")

// certPack is what a writer keeps of a pack on disk: the key its private
// keys are sealed with and the leaves it holds.
type certPack struct {
	keyID  string
	leaves [][sha256.Size]byte
}

// newCertPackName returns a name for a new pack.
func newCertPackName() string {
	var rnd [16]byte
	rand.Read(rnd[:])
	return "pack-" + hex.EncodeToString(rnd[:]) + ".bin"
}

// certPackNameOK reports whether name is one newCertPackName makes.
func certPackNameOK(name string) bool {
	h, ok := strings.CutPrefix(name, "pack-")
	if h, ok = strings.CutSuffix(h, ".bin"); !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// encodeCertPack writes a pack of keyID holding leaves, whose certificates
// part(i) returns in order (certPart JSON, encodeCertPart's).
func encodeCertPack(b *bufio.Writer, keyID string, leaves [][sha256.Size]byte, part func(i int) ([]byte, error)) error {
	b.WriteString(certPackMagic)
	var buf [binary.MaxVarintLen64]byte
	b.Write(binary.AppendUvarint(buf[:0], uint64(len(keyID))))
	b.WriteString(keyID)
	b.Write(binary.AppendUvarint(buf[:0], uint64(len(leaves))))
	for i := range leaves {
		b.Write(leaves[i][:])
	}
	for i := range leaves {
		p, err := part(i)
		if err != nil {
			return err
		}
		b.Write(binary.AppendUvarint(buf[:0], uint64(len(p))))
		_, err = b.Write(p)
		clear(p) // without a keyring, the key in PEM
		if err != nil {
			return err // a bufio.Writer keeps its first error: the earlier writes' too
		}
	}
	return nil
}

// packReader is what readCertPackIndex reads from: a file behind a
// bufio.Reader, or a pack in memory.
type packReader interface {
	io.Reader
	io.ByteReader
}

// readCertPackIndex reads a pack's key ID and leaves from r, which holds
// size bytes from the pack's start.
func readCertPackIndex(r packReader, size int64) (certPack, error) {
	var p certPack
	magic := make([]byte, len(certPackMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != certPackMagic {
		return p, errNotCertPack
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxKeyIDLen {
		return p, errShortPart
	}
	id := make([]byte, n)
	if _, err := io.ReadFull(r, id); err != nil {
		return p, errShortPart
	}
	p.keyID = string(id)
	n, err = binary.ReadUvarint(r)
	// each certificate takes its leaf's 32 bytes and more
	if err != nil || n > uint64(size)/sha256.Size {
		return p, errShortPart
	}
	p.leaves = make([][sha256.Size]byte, n)
	for i := range p.leaves {
		if _, err := io.ReadFull(r, p.leaves[i][:]); err != nil {
			return p, errShortPart
		}
	}
	return p, nil
}

// readCertPackFile reads the index of the pack at path.
func readCertPackFile(path string) (certPack, error) {
	f, err := os.Open(path)
	if err != nil {
		return certPack{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return certPack{}, err
	}
	return readCertPackIndex(bufio.NewReaderSize(f, 16<<10), fi.Size())
}

// decodeCertPack decodes a pack (encodeCertPack's): its index and each
// certificate's certPart JSON, pieces of b.
func decodeCertPack(b []byte) (certPack, [][]byte, error) {
	r := bytes.NewReader(b)
	p, err := readCertPackIndex(r, int64(len(b)))
	if err != nil {
		return p, nil, err
	}
	parts := make([][]byte, len(p.leaves))
	for i := range parts {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return p, nil, errShortPart
		}
		at := len(b) - r.Len()
		parts[i] = b[at : at+int(n) : at+int(n)]
		r.Seek(int64(n), io.SeekCurrent)
	}
	if r.Len() != 0 {
		return p, nil, fmt.Errorf("%d bytes after the last certificate", r.Len())
	}
	return p, parts, nil
}
