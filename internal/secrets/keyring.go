package secrets

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the size of a key-encryption key: AES-256.
const KeySize = 32

// Prefix begins every sealed value; a value without it was stored before
// sealing began (or by a node without a key file) and is read as it is
// until a reseal rewrites it.
const Prefix = "spine-sealed:"

// header is Prefix and the format's version; the key's ID and a colon follow.
const header = Prefix + "v1:"

// idLen is the length of a key's ID in hex.
const idLen = 8

// sealedMin is the shortest sealed value: header, ID, colon, nonce and tag.
var sealedMin = len(header) + idLen + 1 + base64.RawStdEncoding.EncodedLen(12+16)

// ErrUnknownKey is returned by Open for a value sealed with a key the ring
// does not hold (an *UnknownKeyError says which).
var ErrUnknownKey = errors.New("secrets: sealed with a key the secret key file does not hold")

// ErrDamaged is returned by Open for a value that does not open with the
// key of its ID: changed, copied from another name, or truncated.
var ErrDamaged = errors.New("secrets: sealed value does not open: changed, truncated or copied from another name")

// UnknownKeyError names the key a value was sealed with.
type UnknownKeyError struct{ ID string }

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("secrets: sealed with key %s, which the secret key file does not hold", e.ID)
}

func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring is the keys of a secret key file, newest first. It is immutable
// and safe for concurrent use. The zero value holds no key: it seals
// nothing and opens nothing.
type Keyring struct {
	keys []key
}

// New returns a keyring of raw keys (KeySize bytes each), newest first.
func New(raw ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for i, r := range raw {
		if len(r) != KeySize {
			return nil, fmt.Errorf("secrets: key %d is %d bytes; a key is %d", i+1, len(r), KeySize)
		}
		block, err := aes.NewCipher(r)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := KeyID(r)
		for _, o := range k.keys {
			if o.id == id {
				return nil, fmt.Errorf("secrets: key %d is given twice (key %s)", i+1, id)
			}
		}
		k.keys = append(k.keys, key{id: id, aead: aead})
	}
	return k, nil
}

// KeyID is the public name of a key: 8 hex digits of a hash of it, shown in
// messages and in every value it seals. It reveals nothing of the key.
func KeyID(raw []byte) string {
	h := sha256.Sum256(append([]byte("spine secret key id\x00"), raw...))
	return hex.EncodeToString(h[:idLen/2])
}

// IDs returns the IDs of the ring's keys, newest (the sealing key) first.
func (k *Keyring) IDs() []string {
	out := make([]string, len(k.keys))
	for i, c := range k.keys {
		out[i] = c.id
	}
	return out
}

// Empty reports whether the ring holds no key.
func (k *Keyring) Empty() bool { return k == nil || len(k.keys) == 0 }

// aad is the additional authenticated data of a value sealed under name:
// the header and key ID too, so that neither can be swapped.
func aad(id, name string) []byte {
	return []byte(header + id + ":" + name)
}

// Seal returns plaintext sealed under name with the ring's newest key.
func (k *Keyring) Seal(name string, plaintext []byte) ([]byte, error) {
	if k.Empty() {
		return nil, errors.New("secrets: no key to seal with")
	}
	c := k.keys[0]
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	raw := c.aead.Seal(nonce, nonce, plaintext, aad(c.id, name))
	out := make([]byte, 0, len(header)+idLen+1+base64.RawStdEncoding.EncodedLen(len(raw)))
	out = append(out, header...)
	out = append(out, c.id...)
	out = append(out, ':')
	return base64.RawStdEncoding.AppendEncode(out, raw), nil
}

// IsSealed reports whether b is a sealed value (of any key).
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, []byte(Prefix)) }

// SealedWith returns the ID of the key that sealed b, or false if b is not
// a sealed value.
func SealedWith(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, []byte(header)) || len(b) < sealedMin || b[len(header)+idLen] != ':' {
		return "", false
	}
	return string(b[len(header) : len(header)+idLen]), true
}

// Current reports whether b is sealed with the ring's newest key: a value
// for which it is false (plaintext, or an older key's) is what a reseal
// rewrites.
func (k *Keyring) Current(b []byte) bool {
	id, ok := SealedWith(b)
	return ok && !k.Empty() && id == k.keys[0].id
}

// Open returns the plaintext of a value sealed under name. It fails with
// an *UnknownKeyError if no key of the ring sealed it, ErrDamaged if it
// does not open. A value that is not sealed is an error too: a caller that
// reads values stored before sealing began checks IsSealed first.
func (k *Keyring) Open(name string, sealed []byte) ([]byte, error) {
	id, ok := SealedWith(sealed)
	if !ok {
		if IsSealed(sealed) {
			return nil, fmt.Errorf("secrets: %s: unknown sealed format (a newer Spine's?)", name)
		}
		return nil, fmt.Errorf("secrets: %s is not sealed", name)
	}
	if k != nil {
		for _, c := range k.keys {
			if c.id != id {
				continue
			}
			raw, err := base64.RawStdEncoding.DecodeString(string(sealed[len(header)+idLen+1:]))
			if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
				return nil, fmt.Errorf("%w (%s)", ErrDamaged, name)
			}
			n := c.aead.NonceSize()
			out, err := c.aead.Open(nil, raw[:n], raw[n:], aad(id, name))
			if err != nil {
				return nil, fmt.Errorf("%w (%s)", ErrDamaged, name)
			}
			return out, nil
		}
	}
	return nil, &UnknownKeyError{ID: id}
}

// Generate returns the content of a new secret key file: one random key.
func Generate() ([]byte, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	return FileContent(raw), nil
}

// FileContent returns the content of a secret key file holding raw keys,
// newest first.
func FileContent(raw ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("# Spine secret key file: the keys that seal the private keys in Spine's store and\n")
	b.WriteString("# snapshot. Newest first; the first seals, every one opens. Keep a copy apart from\n")
	b.WriteString("# the database: without it, the sealed keys cannot be read.\n")
	for _, r := range raw {
		fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(r))
	}
	return b.Bytes()
}

// Parse reads the content of a secret key file: one key a line, newest
// first, as 32 bytes in base64; blank lines and lines starting with '#' are
// skipped. Errors name the line, never its content.
func Parse(content []byte) (*Keyring, [][]byte, error) {
	var raw [][]byte
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 1024), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(r) != KeySize {
			return nil, nil, fmt.Errorf("line %d is not a key: a key is %d random bytes in base64 (%d characters), one a line",
				n, KeySize, base64.StdEncoding.EncodedLen(KeySize))
		}
		raw = append(raw, r)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("a line is too long: %w", err)
	}
	if len(raw) == 0 {
		return nil, nil, errors.New("it holds no key")
	}
	k, err := New(raw...)
	if err != nil {
		return nil, nil, err
	}
	return k, raw, nil
}

// FileError is a secret key file that cannot be used: which file, what is
// wrong, and what to do.
type FileError struct {
	Path string
	Err  error
	Do   string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("secret key file %s: %v; %s", e.Path, e.Err, e.Do)
}

func (e *FileError) Unwrap() error { return e.Err }

// ReadFile reads the secret key file at path. The file must be readable by
// its owner only (0600 or 0400), as ssh asks of a private key. It returns
// the keyring and the raw keys, newest first.
func ReadFile(path string) (*Keyring, [][]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, &FileError{Path: path, Err: fs.ErrNotExist,
			Do: "copy the secret key file the other nodes of the fleet use (or your backup of it) there, or name it with --secret-key-file"}
	}
	if err != nil {
		return nil, nil, &FileError{Path: path, Err: err, Do: "make it readable by the user spine runs as"}
	}
	if fi.IsDir() {
		return nil, nil, &FileError{Path: path, Err: errors.New("is a folder"), Do: "name the key file itself"}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, &FileError{Path: path, Err: fmt.Errorf("mode %04o lets others read it", fi.Mode().Perm()),
			Do: "run chmod 600 on it (the keys in it open every stored private key)"}
	}
	if fi.Size() > 64<<10 {
		return nil, nil, &FileError{Path: path, Err: errors.New("is larger than 64 KiB"), Do: "name a secret key file (one key a line)"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &FileError{Path: path, Err: err, Do: "make it readable by the user spine runs as"}
	}
	k, raw, err := Parse(b)
	if err != nil {
		return nil, nil, &FileError{Path: path, Err: err,
			Do: "restore it from your backup, or make a new one with `spine secrets new-key --out FILE` if no data was sealed with it yet"}
	}
	return k, raw, nil
}

// CreateFile writes content to a new file at path, 0600 (its folder made
// 0700): it never replaces an existing file.
func CreateFile(path string, content []byte) error {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		if err := os.MkdirAll(path[:i], 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
