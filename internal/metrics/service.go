package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Service records one service's requests. The edge asks for it at the
// service's first request (Registry.Service) and keeps it in its table, so a
// request finds its counters without a lookup: after a code's first
// request, Observe is two atomic loads, a counter add and a histogram
// observation, with no allocation and no lock. Series are made at a
// service's first request with each code and HTTP version, not before, so
// an idle service costs no series. The methods of a nil *Service do nothing.
type Service struct {
	r     *Registry
	label string       // "project/service"
	used  atomic.Int64 // r.made at its last request (Registry.Service's bound)

	gone atomic.Bool // ForgetServices deleted its series: make no new ones

	dur   atomic.Pointer[observer]
	codes atomic.Pointer[codeTable] // made at the first request: an idle service holds none
}

// codeTable holds one service's request counters.
type codeTable struct {
	common [len(commonCodes)][nProtos]atomic.Pointer[counter]
	other  sync.Map // uint32(code)<<2 | proto → *counter, for the codes commonCodes lacks
}

type counter struct{ prometheus.Counter }
type observer struct{ prometheus.Observer }

// The HTTP versions of the proto label.
const (
	proto10 = iota
	proto11
	proto2
	proto3
	nProtos
)

var protoNames = [nProtos]string{"1.0", "1.1", "2", "3"}

// commonCodes are the status codes whose counters sit in an array of each
// Service; the others are found in a map.
var commonCodes = [...]int{200, 201, 204, 206, 301, 302, 304, 307, 308,
	400, 401, 403, 404, 405, 408, 413, 421, 429, 499, 500, 502, 503, 504}

func commonIndex(code int) int {
	switch code {
	case 200:
		return 0
	case 201:
		return 1
	case 204:
		return 2
	case 206:
		return 3
	case 301:
		return 4
	case 302:
		return 5
	case 304:
		return 6
	case 307:
		return 7
	case 308:
		return 8
	case 400:
		return 9
	case 401:
		return 10
	case 403:
		return 11
	case 404:
		return 12
	case 405:
		return 13
	case 408:
		return 14
	case 413:
		return 15
	case 421:
		return 16
	case 429:
		return 17
	case 499:
		return 18
	case 500:
		return 19
	case 502:
		return 20
	case 503:
		return 21
	case 504:
		return 22
	}
	return -1
}

// ServiceLabel is the service label of a project's service: service names
// are unique within a project only, so the label carries both, as
// Traefik's "name@provider" does.
func ServiceLabel(project, service string) string { return project + "/" + service }

// Service returns the recorder of project's service, the same one for as
// long as the service's series are not forgotten.
func (r *Registry) Service(project, service string) *Service {
	if r == nil {
		return nil
	}
	label := ServiceLabel(project, service)
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.services[label]
	if s == nil {
		if len(r.services) >= r.maxServices {
			r.dropOne()
		}
		s = &Service{r: r, label: label}
		s.used.Store(r.made.Add(1))
		r.services[label] = s
	}
	return s
}

// dropSample is how many recorders dropOne compares.
const dropSample = 8

// dropOne forgets the least recently used of a few recorders (r.mu held):
// the request series are kept for at most maxServices services (each costs
// about 2.9 KB once it answered a request: a counter and a histogram
// series; a million services reached by traffic held 2.9 GB). A dropped
// service that answers again gets a new recorder (edge.Server.recorder),
// its counters from zero: Prometheus reads that as a counter reset.
func (r *Registry) dropOne() {
	var victim *Service
	n := 0
	for _, s := range r.services { // Go's map order: a sample at random
		if victim == nil || s.used.Load() < victim.used.Load() {
			victim = s
		}
		if n++; n == dropSample {
			break
		}
	}
	if victim != nil {
		r.forget(victim.label)
		r.dropped.Add(1)
	}
}

// Gone reports whether s's series were deleted (the service left, or was
// dropped for the bound): it records nothing more, and a caller that keeps
// it asks Registry.Service for a new one.
func (s *Service) Gone() bool { return s != nil && s.gone.Load() }

// ForgetServices deletes the series of every service keep does not hold
// (by ServiceLabel), and forgets their recorders: a request still in
// flight on an old route table counts nothing more.
func (r *Registry) ForgetServices(keep map[string]bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for label := range r.services {
		if !keep[label] {
			r.forget(label)
		}
	}
}

// ForgetService deletes the series of the service of label (ServiceLabel)
// and forgets its recorder: ForgetServices for one service that left,
// costing that service only.
func (r *Registry) ForgetService(label string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(label)
}

// forget is ForgetService under r.mu.
func (r *Registry) forget(label string) {
	s := r.services[label]
	if s == nil {
		return
	}
	s.gone.Store(true)
	delete(r.services, label)
	// Its own series, each by its labels: a partial match walks every
	// service's series, and the bound makes this run at any request.
	if t := s.codes.Load(); t != nil {
		for i := range t.common {
			for p := range t.common[i] {
				if t.common[i][p].Load() != nil {
					r.requests.DeleteLabelValues(label, strconv.Itoa(commonCodes[i]), protoNames[p])
				}
			}
		}
		t.other.Range(func(k, _ any) bool {
			key := k.(uint32)
			r.requests.DeleteLabelValues(label, strconv.Itoa(int(key>>2)), protoNames[key&3])
			return true
		})
	}
	r.durations.DeleteLabelValues(label)
}

// Observe records one answered request: its status code, its HTTP version
// (major and minor, as in http.Request) and how long it took.
func (s *Service) Observe(code, major, minor int, d time.Duration) {
	if s == nil {
		return
	}
	if u := s.r.made.Load(); s.used.Load() != u {
		s.used.Store(u) // written only when a recorder was made since: no shared write per request
	}
	p := proto11
	switch {
	case major == 3:
		p = proto3
	case major == 2:
		p = proto2
	case minor == 0:
		p = proto10
	}
	t := s.codes.Load()
	if t == nil {
		t = s.makeTable()
	}
	var c *counter
	if i := commonIndex(code); i >= 0 {
		c = t.common[i][p].Load()
		if c == nil {
			c = s.makeCounter(&t.common[i][p], code, p)
		}
	} else {
		c = s.otherCounter(t, code, p)
	}
	if c != nil {
		c.Inc()
	}
	o := s.dur.Load()
	if o == nil {
		o = s.makeObserver()
	}
	if o != nil {
		o.Observe(d.Seconds())
	}
}

// makeCounter makes the series of code and proto, unless the service's
// series were forgotten (then nil: a late request must not bring back a
// series nothing would delete).
func (s *Service) makeCounter(slot *atomic.Pointer[counter], code, p int) *counter {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if c := slot.Load(); c != nil || s.gone.Load() {
		return c
	}
	c := &counter{s.r.requests.WithLabelValues(s.label, strconv.Itoa(code), protoNames[p])}
	slot.Store(c)
	return c
}

func (s *Service) makeTable() *codeTable {
	t := new(codeTable)
	if s.codes.CompareAndSwap(nil, t) {
		return t
	}
	return s.codes.Load()
}

func (s *Service) otherCounter(t *codeTable, code, p int) *counter {
	key := uint32(code)<<2 | uint32(p)
	if v, ok := t.other.Load(key); ok {
		return v.(*counter)
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.gone.Load() {
		return nil
	}
	v, _ := t.other.LoadOrStore(key, &counter{s.r.requests.WithLabelValues(s.label, strconv.Itoa(code), protoNames[p])})
	return v.(*counter)
}

func (s *Service) makeObserver() *observer {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if o := s.dur.Load(); o != nil || s.gone.Load() {
		return o
	}
	o := &observer{s.r.durations.WithLabelValues(s.label)}
	s.dur.Store(o)
	return o
}

// Label is the service's label, ServiceLabel(project, service).
func (s *Service) Label() string { return s.label }
