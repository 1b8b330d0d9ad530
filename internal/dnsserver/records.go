package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// RecordStore gives the server the TXT records it answers with.
type RecordStore interface {
	// TXT returns the values of the TXT records at the fully qualified,
	// lowercase name, or none (and no error) if there are none. An error
	// means the store could not be read; the server answers SERVFAIL.
	TXT(ctx context.Context, name string) ([]string, error)
}

// RecordWriter changes TXT records. The Solver needs one; a server whose
// RecordStore also implements it accepts TSIG-signed dynamic updates.
// Implementations must be safe for concurrent use.
type RecordWriter interface {
	// AddTXT adds value to the TXT records at name. Adding a value that is
	// already there is not an error and does not duplicate it.
	AddTXT(ctx context.Context, name, value string) error
	// DeleteTXT removes value from the TXT records at name, or every value
	// if value is "". Removing what is not there is not an error.
	DeleteTXT(ctx context.Context, name, value string) error
}

// TXTLister is the optional ability to list every TXT record, which the
// server needs for zone transfers (AXFR).
type TXTLister interface {
	// ListTXT returns the values of every TXT record, by canonical name.
	ListTXT(ctx context.Context) (map[string][]string, error)
}

// ErrInvalidRecord is returned (wrapped) for a name or value a store refuses
// to hold: a name with characters other than letters, digits, '-' and '_',
// a value over 1024 bytes, or more than 32 values at one name.
var ErrInvalidRecord = errors.New("dnsserver: invalid record")

func checkRecord(name, value string) error {
	if !validName(name) {
		return fmt.Errorf("%w: name %q", ErrInvalidRecord, name)
	}
	if len(value) > maxTXTLen {
		return fmt.Errorf("%w: TXT value of %d bytes at %s (at most %d)", ErrInvalidRecord, len(value), name, maxTXTLen)
	}
	return nil
}

// MemoryStore keeps TXT records in memory, for one process and for tests.
// Its zero value is ready to use.
type MemoryStore struct {
	mu  sync.RWMutex
	txt map[string][]string
}

var (
	_ RecordStore  = (*MemoryStore)(nil)
	_ RecordWriter = (*MemoryStore)(nil)
	_ TXTLister    = (*MemoryStore)(nil)
)

// TXT implements RecordStore.
func (m *MemoryStore) TXT(_ context.Context, name string) ([]string, error) {
	name = canonicalName(name)
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.txt[name]), nil
}

// AddTXT implements RecordWriter.
func (m *MemoryStore) AddTXT(_ context.Context, name, value string) error {
	name = canonicalName(name)
	if err := checkRecord(name, value); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vals := m.txt[name]
	if slices.Contains(vals, value) {
		return nil
	}
	if len(vals) >= maxTXTPerName {
		return fmt.Errorf("%w: already %d TXT values at %s", ErrInvalidRecord, len(vals), name)
	}
	if m.txt == nil {
		m.txt = make(map[string][]string)
	}
	vals = append(slices.Clone(vals), value)
	slices.Sort(vals)
	m.txt[name] = vals
	return nil
}

// DeleteTXT implements RecordWriter.
func (m *MemoryStore) DeleteTXT(_ context.Context, name, value string) error {
	name = canonicalName(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	vals := slices.DeleteFunc(slices.Clone(m.txt[name]), func(v string) bool { return value == "" || v == value })
	if len(vals) == 0 {
		delete(m.txt, name)
	} else {
		m.txt[name] = vals
	}
	return nil
}

// ListTXT implements TXTLister.
func (m *MemoryStore) ListTXT(context.Context) (map[string][]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := maps.Clone(m.txt)
	if out == nil {
		out = map[string][]string{}
	}
	return out, nil
}
