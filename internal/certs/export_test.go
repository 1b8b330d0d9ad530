package certs

import "time"

// SetPrefetchClock makes s's prefetch expire reads by now instead of time.Now.
func SetPrefetchClock(s *Storage, now func() time.Time) {
	s.prefetch.mu.Lock()
	defer s.prefetch.mu.Unlock()
	s.prefetch.now = now
}

// PrefetchSize returns how many reads s's prefetch keeps.
func PrefetchSize(s *Storage) int {
	s.prefetch.mu.Lock()
	defer s.prefetch.mu.Unlock()
	return len(s.prefetch.reads)
}
