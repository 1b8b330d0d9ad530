package edge

// UpstreamHealth reports, for each upstream URL of the route table, whether
// it takes requests now: its last active health check passed and no
// transport error put it in its cooldown (the health cache's verdict, at
// most one check interval old). A URL checked in two ways (two services
// with different health checks) is healthy only if both say so. It takes
// the route table's lock, never held by requests: for the dashboard, not
// for the request path.
func (s *Server) UpstreamHealth() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.upstreams))
	for _, up := range s.upstreams {
		u := up.target.String()
		if ok, seen := out[u]; seen && !ok {
			continue
		}
		out[u] = up.available()
	}
	return out
}

// Upstreams calls yield for each upstream of each service in the route
// table, with the service's project and name, the upstream's URL and
// whether it takes requests now (its last health check passed and it is
// not in a passive cooldown), until yield returns false. A service with
// several hostnames comes once per hostname. It makes no string: a
// scrape at a million hostnames made a label and a URL for each.
func (s *Server) Upstreams(yield func(project, service, upstream string, healthy bool) bool) {
	for rt := range s.table.Load().all() {
		if rt.Suspended {
			continue
		}
		for _, up := range rt.pool.ups {
			if !yield(rt.Project(), rt.Service, up.key, up.available()) {
				return
			}
		}
	}
}
