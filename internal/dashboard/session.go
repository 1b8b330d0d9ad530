package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// sessions are the signed-in browsers of this node, and the single-use
// sign-in codes not yet exchanged. Both live in memory: a session is the
// token it was opened with, so a node restart signs every browser out (the
// token still works), and a fleet behind one name needs its load balancer
// to keep a browser on one node (or scripts send the token as Bearer).
//
// Bounds: MaxSessions sessions (the one closest to its expiry is dropped
// for a new one), maxCodes codes (the oldest dropped); a session ends at
// its expiry (Config.SessionTTL) or after Config.IdleTTL unused, a code
// after codeTTL or its first use. Keys are SHA-256 of the cookie value or
// code, so a memory dump does not hand out sessions.
type sessions struct {
	mu    sync.Mutex
	byID  map[[32]byte]*session
	codes map[[32]byte]code
	max   int
	ttl   time.Duration
	idle  time.Duration
	now   func() time.Time
}

type session struct {
	token   string // the API token this session acts with; never shown
	csrf    string
	expires time.Time
	used    time.Time
	flash   string // a message for the next page, then cleared
}

type code struct {
	token   string
	expires time.Time
}

const (
	codeTTL  = 10 * time.Minute
	maxCodes = 64
)

func newSessions(max int, ttl, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[[32]byte]*session{}, codes: map[[32]byte]code{}, max: max, ttl: ttl, idle: idle, now: now}
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func key(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// open starts a session for token and returns its cookie value.
func (ss *sessions) open(token string) (string, *session) {
	id := randomString()
	now := ss.now()
	s := &session{token: token, csrf: randomString(), expires: now.Add(ss.ttl), used: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expire(now)
	if len(ss.byID) >= ss.max {
		var oldest [32]byte
		var at time.Time
		for k, s := range ss.byID {
			if at.IsZero() || s.expires.Before(at) {
				oldest, at = k, s.expires
			}
		}
		delete(ss.byID, oldest)
	}
	ss.byID[key(id)] = s
	return id, s
}

// get returns the live session of cookie value id, and marks it used.
func (ss *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := key(id)
	s, ok := ss.byID[k]
	if !ok {
		return nil, false
	}
	if !now.Before(s.expires) || now.Sub(s.used) >= ss.idle {
		delete(ss.byID, k)
		return nil, false
	}
	s.used = now
	return s, true
}

func (ss *sessions) close(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, key(id))
}

// takeFlash returns the session's message and clears it.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = msg
}

// expire drops the sessions and codes that ended; under mu.
func (ss *sessions) expire(now time.Time) {
	for k, s := range ss.byID {
		if !now.Before(s.expires) || now.Sub(s.used) >= ss.idle {
			delete(ss.byID, k)
		}
	}
	for k, c := range ss.codes {
		if !now.Before(c.expires) {
			delete(ss.codes, k)
		}
	}
}

// newCode returns a single-use code that opens a session for token within
// codeTTL.
func (ss *sessions) newCode(token string) string {
	c := randomString()
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expire(now)
	if len(ss.codes) >= maxCodes {
		var oldest [32]byte
		var at time.Time
		for k, c := range ss.codes {
			if at.IsZero() || c.expires.Before(at) {
				oldest, at = k, c.expires
			}
		}
		delete(ss.codes, oldest)
	}
	ss.codes[key(c)] = code{token: token, expires: now.Add(codeTTL)}
	return c
}

// redeem returns the token of code c and forgets the code.
func (ss *sessions) redeem(c string) (string, bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := key(c)
	cd, ok := ss.codes[k]
	delete(ss.codes, k)
	if !ok || !now.Before(cd.expires) {
		return "", false
	}
	return cd.token, true
}

func sameSecret(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
