package edge

import (
	"net/http"
	"strconv"

	"github.com/spine-platform/spine/internal/hostname"
)

// httpHandler serves plain HTTP: ACME HTTP-01 challenges, then a permanent
// redirect to HTTPS for known hosts. It never sets HSTS (browsers ignore it
// over plain HTTP).
type httpHandler struct{ s *Server }

func (h httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	id := requestID(w, r)
	rec := s.startRecord(w, r, id)
	if rec != nil {
		defer s.finishRecord(rec, r)
		w = rec
	}
	if s.cfg.HTTPChallenge != nil && s.cfg.HTTPChallenge(w, r) {
		return
	}
	host := hostname.Clean(r.Host)
	rt, ok := s.route(r.Context(), host)
	if !ok {
		rec.route(host, nil)
		writePage(w, r, http.StatusNotFound, nil, notFoundPage(host))
		return
	}
	rec.route(host, &rt)
	target := "https://" + host
	if s.cfg.HTTPSPort != 443 {
		target += ":" + strconv.Itoa(s.cfg.HTTPSPort)
	}
	uri := r.URL.RequestURI()
	if uri == "" || uri[0] != '/' {
		uri = "/" // "*" (OPTIONS) or an absolute-form target we do not echo
	}
	w.Header().Set("Location", target+uri)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusPermanentRedirect)
}
