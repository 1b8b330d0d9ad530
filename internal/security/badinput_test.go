package security

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/secrets"
)

// TestAPIBadInput sends bad input for every field of every API body and
// path: each is refused with its status, a stable error code and a message
// that says what to fix, and nothing is stored. Afterwards a good service
// still goes live, so no refused input reached the edge's route table.
func TestAPIBadInput(t *testing.T) {
	s := startSpine(t, edge.Config{})
	base := "http://" + s.n.APIAddr()
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	ups := `"upstreams":["` + up + `"]`
	s.addService(t, s.admin, client.ServiceCreate{Name: "taken", Upstreams: []string{up}})
	// A domain that is not loopback, whose served names only the store knows.
	if _, err := s.n.Platform().AddDomain(t.Context(), platform.DefaultProjectID, "loop.test", true); err != nil {
		t.Fatal(err)
	}
	s.addService(t, s.admin, client.ServiceCreate{Name: "svc", Domain: "loop.test", Upstreams: []string{up}})
	_, apiPort, _ := net.SplitHostPort(s.n.APIAddr())
	_, httpsPort, _ := net.SplitHostPort(s.n.HTTPSAddr())
	_, httpPort, _ := net.SplitHostPort(s.n.HTTPAddr())
	if _, err := s.admin.CreateToken(t.Context(), client.TokenCreate{Name: "taken", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}

	// Certificates for upload refusals: each check's.
	pki := pkitest.NewRoot("Bad Input Root")
	good := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo.localhost"}})
	other := pki.Issue(pkitest.Leaf{DNSNames: []string{"other.localhost"}})
	ed := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo.localhost"}, Key: pkitest.Ed25519})
	short := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo.localhost"}, NotAfter: time.Now().Add(time.Hour)})
	upload := func(chain, key []byte, root bool) string {
		in := client.CertificateUpload{Certificate: string(chain), PrivateKey: string(key)}
		if root {
			in.Root = string(pki.RootPEM())
		}
		b, _ := json.Marshal(in)
		return string(b)
	}

	before := state(t, s.admin)

	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
		hint                            string // the message must contain it
	}{
		// Service names.
		{"service name too long", "POST", "/v1/services", "", `{"name":"` + strings.Repeat("a", 64) + `",` + ups + `}`, 400, "invalid_name", "limit is 63"},
		{"service name malformed", "POST", "/v1/services", "", `{"name":"Bad_Name!",` + ups + `}`, 400, "invalid_name", "lower-case letters"},
		{"service name with a leading hyphen", "POST", "/v1/services", "", `{"name":"-x",` + ups + `}`, 400, "invalid_name", "hyphens"},
		{"service name empty", "POST", "/v1/services", "", `{"name":"",` + ups + `}`, 400, "invalid_name", "empty"},
		{"service name taken", "POST", "/v1/services", "", `{"name":"taken",` + ups + `}`, 409, "conflict", "already"},
		// Body shape.
		{"unknown field", "POST", "/v1/services", "", `{"name":"x",` + ups + `,"colour":"red"}`, 400, "unknown_field", "colour"},
		{"name of the wrong type", "POST", "/v1/services", "", `{"name":1,` + ups + `}`, 400, "invalid_json", "name"},
		{"upstreams of the wrong type", "POST", "/v1/services", "", `{"name":"x","upstreams":"` + up + `"}`, 400, "invalid_json", "upstreams"},
		{"hosts of the wrong type", "POST", "/v1/services", "", `{"name":"x","hosts":"a.localhost",` + ups + `}`, 400, "invalid_json", "hosts"},
		{"hsts_max_age of the wrong type", "POST", "/v1/services", "", `{"name":"x","hsts_max_age":"year",` + ups + `}`, 400, "invalid_json", "hsts_max_age"},
		{"hsts_max_age negative", "POST", "/v1/services", "", `{"name":"x","hsts_max_age":-1,` + ups + `}`, 400, "invalid_hsts", "between 0"},
		{"hsts_max_age too large", "POST", "/v1/services", "", `{"name":"x","hsts_max_age":99999999999,` + ups + `}`, 400, "", "hsts_max_age"},
		{"not JSON", "POST", "/v1/services", "", `name=x`, 400, "invalid_json", "not valid JSON"},
		{"empty body", "POST", "/v1/services", "", ``, 400, "invalid_json", "empty"},
		{"two objects", "POST", "/v1/services", "", `{"name":"x",` + ups + `}{"name":"y"}`, 400, "invalid_json", "exactly one"},
		{"a JSON array", "POST", "/v1/services", "", `[1]`, 400, "invalid_json", ""},
		{"wrong content type", "POST", "/v1/services", "text/plain", `{"name":"x",` + ups + `}`, 415, "unsupported_media_type", "application/json"},
		{"oversized body", "POST", "/v1/services", "", `{"name":"x",` + ups + `,"hosts":["` + strings.Repeat("a", 70<<10) + `"]}`, 413, "body_too_large", "larger than"},
		// Hostnames.
		{"host with a wildcard", "POST", "/v1/services", "", `{"name":"x","hosts":["*.localhost"],` + ups + `}`, 400, "invalid_hostname", "wildcard"},
		{"host with a port", "POST", "/v1/services", "", `{"name":"x","hosts":["x.localhost:8443"],` + ups + `}`, 400, "invalid_hostname", "not allowed"},
		{"host with a long label", "POST", "/v1/services", "", `{"name":"x","hosts":["` + strings.Repeat("a", 64) + `.localhost"],` + ups + `}`, 400, "invalid_hostname", "63"},
		{"host too long", "POST", "/v1/services", "", `{"name":"x","hosts":["` + strings.Repeat("a.", 130) + `localhost"],` + ups + `}`, 400, "invalid_hostname", "253"},
		{"host outside the project's domains", "POST", "/v1/services", "", `{"name":"x","hosts":["example.com"],` + ups + `}`, 400, "host_outside_domains", "domain"},
		{"host another service holds", "POST", "/v1/services", "", `{"name":"x","hosts":["taken.localhost"],` + ups + `}`, 409, "conflict", "taken"},
		{"too many hosts", "POST", "/v1/services", "", `{"name":"x","hosts":[` + strings.TrimSuffix(strings.Repeat(`"h.localhost",`, 101), ",") + `],` + ups + `}`, 400, "too_many_hosts", "at most"},
		// The domain field.
		{"unknown domain", "POST", "/v1/services", "", `{"name":"x","domain":"example.com",` + ups + `}`, 400, "unknown_domain", "spine domain add"},
		{"domain under a project domain", "POST", "/v1/services", "", `{"name":"x","domain":"sub.localhost",` + ups + `}`, 400, "unknown_domain", "spine domain add"},
		{"domain field a number", "POST", "/v1/services", "", `{"name":"x","domain":1,` + ups + `}`, 400, "invalid_json", `"domain" must be of type string`},
		{"domain field a list", "POST", "/v1/services", "", `{"name":"x","domain":["localhost"],` + ups + `}`, 400, "invalid_json", `"domain" must be of type string`},
		{"domain field an object", "POST", "/v1/services", "", `{"name":"x","domain":{"name":"localhost"},` + ups + `}`, 400, "invalid_json", `"domain" must be of type string`},
		{"domain field a boolean", "POST", "/v1/services", "", `{"name":"x","domain":true,` + ups + `}`, 400, "invalid_json", `"domain" must be of type string`},
		{"domain with an empty label", "POST", "/v1/services", "", `{"name":"x","domain":"bad..name",` + ups + `}`, 400, "invalid_hostname", "empty label"},
		{"domain a wildcard", "POST", "/v1/services", "", `{"name":"x","domain":"*.localhost",` + ups + `}`, 400, "invalid_hostname", "wildcard"},
		{"domain with a port", "POST", "/v1/services", "", `{"name":"x","domain":"localhost:8443",` + ups + `}`, 400, "invalid_hostname", "not allowed"},
		{"domain with a space", "POST", "/v1/services", "", `{"name":"x","domain":"local host",` + ups + `}`, 400, "invalid_hostname", "not allowed"},
		{"domain with a long label", "POST", "/v1/services", "", `{"name":"x","domain":"` + strings.Repeat("a", 64) + `.test",` + ups + `}`, 400, "invalid_hostname", "limit is 63"},
		{"domain too long", "POST", "/v1/services", "", `{"name":"x","domain":"` + strings.Repeat("a.", 127) + `com",` + ups + `}`, 400, "invalid_hostname", "253"},
		// Upstreams.
		{"no upstream", "POST", "/v1/services", "", `{"name":"x"}`, 400, "no_upstream", "--upstream"},
		{"upstream scheme ftp", "POST", "/v1/services", "", `{"name":"x","upstreams":["ftp://127.0.0.1:21"]}`, 400, "invalid_upstream", "http:// or https://"},
		{"upstream scheme file", "POST", "/v1/services", "", `{"name":"x","upstreams":["file:///etc/passwd"]}`, 400, "invalid_upstream", ""},
		{"upstream scheme unix", "POST", "/v1/services", "", `{"name":"x","upstreams":["unix:///run/x.sock"]}`, 400, "invalid_upstream", ""},
		{"upstream without host", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://"]}`, 400, "invalid_upstream", "absolute URL"},
		{"upstream relative", "POST", "/v1/services", "", `{"name":"x","upstreams":["/path"]}`, 400, "invalid_upstream", "absolute URL"},
		{"upstream with credentials", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://user:hunter2@127.0.0.1:9"]}`, 400, "invalid_upstream", "credentials"},
		{"upstream with a query", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:9/?a=b"]}`, 400, "invalid_upstream", "query"},
		{"upstream with an empty query", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:9/?"]}`, 400, "invalid_upstream", ""},
		{"upstream with port 0", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:0"]}`, 400, "invalid_upstream", "port"},
		{"upstream with port 99999", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:99999"]}`, 400, "invalid_upstream", "port"},
		{"upstream with a named port", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:http"]}`, 400, "invalid_upstream", ""},
		{"upstream at Spine's HTTPS listener", "POST", "/v1/services", "", `{"name":"x","upstreams":["https://127.0.0.1:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine's HTTP listener", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine's API", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://localhost:` + apiPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine through ::1", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://[::1]:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine through a served name", "POST", "/v1/services", "", `{"name":"x","upstreams":["https://taken.localhost:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at a name Spine serves", "POST", "/v1/services", "", `{"name":"x","upstreams":["https://svc.loop.test:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at the service's own new name", "POST", "/v1/services", "", `{"name":"x","hosts":["self.loop.test"],"upstreams":["http://SELF.loop.test.:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream with an empty port", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:"]}`, 400, "invalid_upstream", "port"},
		{"upstream at Spine in upper case", "POST", "/v1/services", "", `{"name":"x","upstreams":["HTTP://LOCALHOST:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine with a leading zero", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:0` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine through localhost.", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://localhost.:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"too many upstreams", "POST", "/v1/services", "", `{"name":"x","upstreams":[` + strings.TrimSuffix(strings.Repeat(`"`+up+`",`, 33), ",") + `]}`, 400, "too_many_upstreams", "at most"},
		// Health checks, at create.
		{"health_path relative", "POST", "/v1/services", "", `{"name":"x","health_path":"healthz",` + ups + `}`, 400, "invalid_health_path", "must start with /"},
		{"health_path with a space", "POST", "/v1/services", "", `{"name":"x","health_path":"/a b",` + ups + `}`, 400, "invalid_health_path", "printable ASCII"},
		{"health_path a URL", "POST", "/v1/services", "", `{"name":"x","health_path":"//evil.test/x",` + ups + `}`, 400, "invalid_health_path", "not a path"},
		{"health_path too long", "POST", "/v1/services", "", `{"name":"x","health_path":"/` + strings.Repeat("a", 1100) + `",` + ups + `}`, 400, "invalid_health_path", "limit is 1024"},
		{"health_path of the wrong type", "POST", "/v1/services", "", `{"name":"x","health_path":1,` + ups + `}`, 400, "invalid_json", "health_path"},
		{"health_interval not a duration", "POST", "/v1/services", "", `{"name":"x","health_interval":"soon",` + ups + `}`, 400, "invalid_health_interval", "15s"},
		{"health_interval a number", "POST", "/v1/services", "", `{"name":"x","health_interval":10,` + ups + `}`, 400, "invalid_json", "health_interval"},
		{"health_interval too short", "POST", "/v1/services", "", `{"name":"x","health_interval":"10ms",` + ups + `}`, 400, "invalid_health_interval", "between 1s and 1h"},
		{"health_interval too long", "POST", "/v1/services", "", `{"name":"x","health_interval":"25h",` + ups + `}`, 400, "invalid_health_interval", "between 1s and 1h"},
		{"health_interval negative", "POST", "/v1/services", "", `{"name":"x","health_interval":"-5s",` + ups + `}`, 400, "invalid_health_interval", "between 1s and 1h"},
		// Updates: every field, and the service named in the path.
		{"update with nothing", "PATCH", "/v1/services/svc", "", `{}`, 400, "nothing_to_update", "--upstream"},
		{"update a missing service", "PATCH", "/v1/services/nothere", "", `{"hsts_max_age":0}`, 404, "not_found", "does not exist"},
		{"update a service name with bad characters", "PATCH", "/v1/services/Bad_Name!", "", `{"hsts_max_age":0}`, 400, "invalid_name", "lower-case letters"},
		{"update with an unknown field", "PATCH", "/v1/services/svc", "", `{"hosts":["a.loop.test"]}`, 400, "unknown_field", "hosts"},
		{"update not JSON", "PATCH", "/v1/services/svc", "", `upstreams=x`, 400, "invalid_json", "not valid JSON"},
		{"update with the wrong content type", "PATCH", "/v1/services/svc", "text/plain", `{"hsts_max_age":0}`, 415, "unsupported_media_type", "application/json"},
		{"update upstreams empty", "PATCH", "/v1/services/svc", "", `{"upstreams":[]}`, 400, "no_upstream", "at least one upstream"},
		{"update upstreams of the wrong type", "PATCH", "/v1/services/svc", "", `{"upstreams":"` + up + `"}`, 400, "invalid_json", "upstreams"},
		{"update upstream scheme ftp", "PATCH", "/v1/services/svc", "", `{"upstreams":["ftp://127.0.0.1:21"]}`, 400, "invalid_upstream", "http:// or https://"},
		{"update upstream with credentials", "PATCH", "/v1/services/svc", "", `{"upstreams":["http://user:hunter2@127.0.0.1:9"]}`, 400, "invalid_upstream", "credentials"},
		{"update upstream with port 99999", "PATCH", "/v1/services/svc", "", `{"upstreams":["http://127.0.0.1:99999"]}`, 400, "invalid_upstream", "port"},
		{"update upstream at Spine's HTTPS listener", "PATCH", "/v1/services/svc", "", `{"upstreams":["https://127.0.0.1:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"update upstream at a name Spine serves", "PATCH", "/v1/services/svc", "", `{"upstreams":["https://taken.localhost:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"update upstream at the service's added name", "PATCH", "/v1/services/svc", "", `{"add_hosts":["self.loop.test"],"upstreams":["http://self.loop.test:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"update too many upstreams", "PATCH", "/v1/services/svc", "", `{"upstreams":[` + strings.TrimSuffix(strings.Repeat(`"`+up+`",`, 33), ",") + `]}`, 400, "too_many_upstreams", "at most"},
		{"update add_hosts of the wrong type", "PATCH", "/v1/services/svc", "", `{"add_hosts":"a.loop.test"}`, 400, "invalid_json", "add_hosts"},
		{"update add a wildcard", "PATCH", "/v1/services/svc", "", `{"add_hosts":["*.loop.test"]}`, 400, "invalid_hostname", "wildcard"},
		{"update add a host with a port", "PATCH", "/v1/services/svc", "", `{"add_hosts":["a.loop.test:8443"]}`, 400, "invalid_hostname", "not allowed"},
		{"update add a host outside the project's domains", "PATCH", "/v1/services/svc", "", `{"add_hosts":["example.com"]}`, 400, "host_outside_domains", "add its domain first"},
		{"update add a host another service holds", "PATCH", "/v1/services/svc", "", `{"add_hosts":["taken.localhost"]}`, 409, "conflict", "taken"},
		{"update add too many hosts", "PATCH", "/v1/services/svc", "", `{"add_hosts":[` + strings.TrimSuffix(strings.Repeat(`"h.loop.test",`, 101), ",") + `]}`, 400, "too_many_hosts", "at most"},
		{"update remove_hosts of the wrong type", "PATCH", "/v1/services/svc", "", `{"remove_hosts":{"a":1}}`, 400, "invalid_json", "remove_hosts"},
		{"update remove a malformed host", "PATCH", "/v1/services/svc", "", `{"remove_hosts":["bad..loop.test"]}`, 400, "invalid_hostname", "empty label"},
		{"update remove the service's own name", "PATCH", "/v1/services/svc", "", `{"remove_hosts":["SVC.loop.test."]}`, 400, "cannot_remove_primary", "delete the service instead"},
		{"update remove a host it does not have", "PATCH", "/v1/services/svc", "", `{"remove_hosts":["taken.localhost"]}`, 400, "not_a_host", "not one of the service's hostnames"},
		{"update add and remove one host", "PATCH", "/v1/services/svc", "", `{"add_hosts":["a.loop.test"],"remove_hosts":["a.loop.test"]}`, 400, "host_added_and_removed", "give it once"},
		{"update hsts_max_age negative", "PATCH", "/v1/services/svc", "", `{"hsts_max_age":-1}`, 400, "invalid_hsts", "between 0"},
		{"update hsts_max_age of the wrong type", "PATCH", "/v1/services/svc", "", `{"hsts_max_age":"year"}`, 400, "invalid_json", "hsts_max_age"},
		{"update health_path relative", "PATCH", "/v1/services/svc", "", `{"health_path":"up"}`, 400, "invalid_health_path", "must start with /"},
		{"update health_path with a fragment", "PATCH", "/v1/services/svc", "", `{"health_path":"/up#x"}`, 400, "invalid_health_path", "fragment"},
		{"update health_path with a control character", "PATCH", "/v1/services/svc", "", `{"health_path":"/up\r\nX: y"}`, 400, "invalid_health_path", "printable ASCII"},
		{"update health_interval not a duration", "PATCH", "/v1/services/svc", "", `{"health_interval":"often"}`, 400, "invalid_health_interval", "15s"},
		{"update health_interval too short", "PATCH", "/v1/services/svc", "", `{"health_interval":"999ms"}`, 400, "invalid_health_interval", "between 1s and 1h"},
		{"update good and bad at once", "PATCH", "/v1/services/svc", "", `{"upstreams":["http://127.0.0.1:7"],"add_hosts":["new.loop.test"],"health_interval":"2h"}`, 400, "invalid_health_interval", "between 1s and 1h"},
		// Domains.
		{"domain empty", "POST", "/v1/domains", "", `{"name":""}`, 400, "invalid_hostname", "empty"},
		{"domain malformed", "POST", "/v1/domains", "", `{"name":"exa mple.com"}`, 400, "invalid_hostname", "not allowed"},
		{"domain too long", "POST", "/v1/domains", "", `{"name":"` + strings.Repeat("a.", 127) + `com"}`, 400, "invalid_hostname", "253"},
		{"domain with an unknown field", "POST", "/v1/domains", "", `{"name":"x.test","owner":"me"}`, 400, "unknown_field", "owner"},
		{"domain of the wrong type", "POST", "/v1/domains", "", `{"name":["x.test"]}`, 400, "invalid_json", "name"},
		{"domain taken", "POST", "/v1/domains", "", `{"name":"loop.test"}`, 409, "conflict", "already"},
		{"domain taken, in another case", "POST", "/v1/domains", "", `{"name":"LOOP.test."}`, 409, "conflict", "already"},
		{"domain a top-level name", "POST", "/v1/domains", "", `{"name":"localhost"}`, 400, "invalid_domain", "add the domain you own under it"},
		// Paths.
		{"get a malformed domain", "GET", "/v1/domains/bad..name", "", "", 400, "invalid_hostname", "empty label"},
		{"delete a malformed domain", "DELETE", "/v1/domains/bad..name", "", "", 400, "invalid_hostname", "empty label"},
		{"delete a domain in use", "DELETE", "/v1/domains/localhost", "", "", 409, "in_use", "delete them first"},
		{"get a missing service", "GET", "/v1/services/nothere", "", "", 404, "not_found", "does not exist"},
		{"list services, a page of none", "GET", "/v1/services?limit=0", "", "", 400, "invalid_limit", "from 1 to 1000"},
		{"list services, a page too large", "GET", "/v1/services?limit=1000000", "", "", 400, "invalid_limit", "at most 1000"},
		{"list services, a negative offset", "GET", "/v1/services?offset=-1", "", "", 400, "invalid_offset", "below 0"},
		{"list services, an offset not a number", "GET", "/v1/services?offset=%00", "", "", 400, "invalid_offset", "not a whole number"},
		{"list services, a cursor and an offset", "GET", "/v1/services?after=a&offset=1", "", "", 400, "invalid_after", "both given"},
		{"list services, a cursor too long", "GET", "/v1/services?after=" + strings.Repeat("%00", 300), "", "", 400, "invalid_after", "longer than 253"},
		{"get a service name with bad characters", "GET", "/v1/services/Bad_Name!", "", "", 400, "invalid_name", "lower-case letters"},
		{"get a service name too long", "GET", "/v1/services/" + strings.Repeat("a", 64), "", "", 400, "invalid_name", "limit is 63"},
		{"get a service name with a NUL", "GET", "/v1/services/a%00b", "", "", 400, "invalid_name", "lower-case letters"},
		{"get a service name with an escaped slash", "GET", "/v1/services/a%2Fb", "", "", 400, "invalid_name", "lower-case letters"},
		{"delete a service name with a leading hyphen", "DELETE", "/v1/services/-x", "", "", 400, "invalid_name", "hyphens"},
		{"delete a service name with bad characters", "DELETE", "/v1/services/Bad_Name!", "", "", 400, "invalid_name", "lower-case letters"},
		{"delete a service name too long", "DELETE", "/v1/services/" + strings.Repeat("a", 64), "", "", 400, "invalid_name", "limit is 63"},
		{"verify a malformed domain", "POST", "/v1/domains/bad..name/verify", "", "", 400, "invalid_hostname", "empty label"},
		{"verify a domain with a long label", "POST", "/v1/domains/" + strings.Repeat("a", 64) + ".test/verify", "", "", 400, "invalid_hostname", "limit is 63"},
		{"verify a domain too long", "POST", "/v1/domains/" + strings.Repeat("a.", 127) + "com/verify", "", "", 400, "invalid_hostname", "253"},
		{"verify a domain with a space", "POST", "/v1/domains/exa%20mple.com/verify", "", "", 400, "invalid_hostname", "not allowed"},
		{"verify a wildcard", "POST", "/v1/domains/%2A.localhost/verify", "", "", 400, "invalid_hostname", "wildcard"},
		{"verify a domain with a port", "POST", "/v1/domains/localhost:8443/verify", "", "", 400, "invalid_hostname", "not allowed"},
		{"verify a missing domain", "POST", "/v1/domains/nothere.test/verify", "", "", 404, "not_found", "does not exist"},
		{"delete a missing service", "DELETE", "/v1/services/nothere", "", "", 404, "not_found", "does not exist"},
		// Events.
		{"events after a negative ID", "GET", "/v1/events?after=-1", "", "", 400, "invalid_after", "0 or more"},
		{"events after a word", "GET", "/v1/events?after=latest", "", "", 400, "invalid_after", "whole number"},
		{"events with a huge after", "GET", "/v1/events?after=99999999999999999999", "", "", 400, "invalid_after", "whole number"},
		{"events with a zero limit", "GET", "/v1/events?limit=-1", "", "", 400, "invalid_limit", "from 1 to 1000"},
		{"events with a limit too large", "GET", "/v1/events?limit=1001", "", "", 400, "invalid_limit", "from 1 to 1000"},
		{"event stream after a negative ID", "GET", "/v1/events/stream?after=-5", "", "", 400, "invalid_after", "0 or more"},
		{"event stream after a word", "GET", "/v1/events/stream?after=x", "", "", 400, "invalid_after", "whole number"},
		// Webhooks.
		{"webhook URL empty", "POST", "/v1/webhooks", "", `{"url":""}`, 400, "invalid_webhook_url", "empty"},
		{"webhook URL missing", "POST", "/v1/webhooks", "", `{}`, 400, "invalid_webhook_url", "empty"},
		{"webhook URL scheme ftp", "POST", "/v1/webhooks", "", `{"url":"ftp://hooks.test/x"}`, 400, "invalid_webhook_url", "use https://"},
		{"webhook URL relative", "POST", "/v1/webhooks", "", `{"url":"/hooks"}`, 400, "invalid_webhook_url", "absolute URL"},
		{"webhook URL with credentials", "POST", "/v1/webhooks", "", `{"url":"https://u:hunter2@hooks.test/"}`, 400, "invalid_webhook_url", "credentials"},
		{"webhook URL with a fragment", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test/#x"}`, 400, "invalid_webhook_url", "fragment"},
		{"webhook URL with port 0", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test:0/"}`, 400, "invalid_webhook_url", "port"},
		{"webhook URL with port 99999", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test:99999/"}`, 400, "invalid_webhook_url", "port"},
		{"webhook URL with a bad host", "POST", "/v1/webhooks", "", `{"url":"https://bad..host/"}`, 400, "invalid_webhook_url", "not a valid name"},
		{"webhook URL too long", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test/` + strings.Repeat("a", 2100) + `"}`, 400, "invalid_webhook_url", "limit is 2048"},
		{"webhook at loopback", "POST", "/v1/webhooks", "", `{"url":"http://127.0.0.1:9/x"}`, 400, "private_webhook_url", "loopback"},
		{"webhook at IPv6 loopback", "POST", "/v1/webhooks", "", `{"url":"http://[::1]:9/x"}`, 400, "private_webhook_url", "loopback"},
		{"webhook at a private address", "POST", "/v1/webhooks", "", `{"url":"http://10.1.2.3/x"}`, 400, "private_webhook_url", "private"},
		{"webhook at a link-local address", "POST", "/v1/webhooks", "", `{"url":"http://169.254.10.10/x"}`, 400, "private_webhook_url", "link-local"},
		{"webhook at the metadata address", "POST", "/v1/webhooks", "", `{"url":"http://169.254.169.254/latest/meta-data/"}`, 400, "private_webhook_url", "metadata"},
		{"webhook at localhost", "POST", "/v1/webhooks", "", `{"url":"http://localhost:9/x"}`, 400, "private_webhook_url", "this machine"},
		{"webhook at localhost.", "POST", "/v1/webhooks", "", `{"url":"http://App.Localhost.:9/x"}`, 400, "private_webhook_url", "this machine"},
		{"webhook at a v4-mapped loopback", "POST", "/v1/webhooks", "", `{"url":"http://[::ffff:127.0.0.1]/x"}`, 400, "private_webhook_url", "loopback"},
		{"webhook event unknown", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test/spine","events":["nope"]}`, 400, "invalid_event_type", "not one of"},
		{"webhook events of the wrong type", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test/spine","events":"service.created"}`, 400, "invalid_json", "events"},
		{"webhook with an unknown field", "POST", "/v1/webhooks", "", `{"url":"https://hooks.test/spine","secret":"whsec_mine"}`, 400, "unknown_field", "secret"},
		{"get a malformed webhook ID", "GET", "/v1/webhooks/nope", "", "", 400, "invalid_webhook_id", "wh_ and 24 hex digits"},
		{"get a missing webhook", "GET", "/v1/webhooks/wh_000000000000000000000000", "", "", 404, "not_found", "does not exist"},
		{"delete a malformed webhook ID", "DELETE", "/v1/webhooks/wh_x", "", "", 400, "invalid_webhook_id", "wh_ and 24 hex digits"},
		{"test a malformed webhook ID", "POST", "/v1/webhooks/..%2f/test", "", "", 400, "invalid_webhook_id", "wh_"},
		{"enable a missing webhook", "POST", "/v1/webhooks/wh_000000000000000000000000/enable", "", "", 404, "not_found", "does not exist"},
		{"deliveries of a malformed webhook ID", "GET", "/v1/webhooks/WH_1/deliveries", "", "", 400, "invalid_webhook_id", "wh_"},
		{"deliveries with a bad limit", "GET", "/v1/webhooks/wh_000000000000000000000000/deliveries?limit=501", "", "", 400, "invalid_limit", "from 1 to 500"},
		{"deliveries with a word for a limit", "GET", "/v1/webhooks/wh_000000000000000000000000/deliveries?limit=all", "", "", 400, "invalid_limit", "whole number"},
		{"get a malformed delivery ID", "GET", "/v1/deliveries/nope", "", "", 400, "invalid_delivery_id", "dlv_ and 24 hex digits"},
		{"redeliver a missing delivery", "POST", "/v1/deliveries/dlv_000000000000000000000000/redeliver", "", "", 404, "not_found", "does not exist"},
		// Quotas (the default project's token is the operator's).
		{"quota negative", "PUT", "/v1/projects/default/quota", "", `{"domains":-1}`, 400, "invalid_quota", "from 0 (no limit)"},
		{"quota too large", "PUT", "/v1/projects/default/quota", "", `{"hostnames":2000000}`, 400, "invalid_quota", "1000000"},
		{"quota of the wrong type", "PUT", "/v1/projects/default/quota", "", `{"services":"ten"}`, 400, "invalid_json", "services"},
		{"quota with an unknown field", "PUT", "/v1/projects/default/quota", "", `{"certificates":3}`, 400, "unknown_field", "certificates"},
		{"quota of a missing project", "PUT", "/v1/projects/nobody/quota", "", `{}`, 404, "not_found", "spine project list"},
		{"quota read of a missing project", "GET", "/v1/projects/nobody/quota", "", "", 404, "not_found", "does not exist"},
		{"quota of an overlong project ID", "GET", "/v1/projects/" + strings.Repeat("p", 80) + "/quota", "", "", 400, "invalid_project", "not a project ID"},
		// Tokens.
		{"token name empty", "POST", "/v1/tokens", "", `{"name":""}`, 400, "invalid_name", "empty"},
		{"token name malformed", "POST", "/v1/tokens", "", `{"name":"CI token"}`, 400, "invalid_name", "lower-case letters"},
		{"token name too long", "POST", "/v1/tokens", "", `{"name":"` + strings.Repeat("a", 64) + `"}`, 400, "invalid_name", "limit is 63"},
		{"token name taken", "POST", "/v1/tokens", "", `{"name":"taken"}`, 409, "conflict", `token "taken" already exists`},
		{"token scope unknown", "POST", "/v1/tokens", "", `{"name":"x","scopes":["admin"]}`, 400, "invalid_scope", "read, services:write"},
		{"token scope empty", "POST", "/v1/tokens", "", `{"name":"x","scopes":[""]}`, 400, "invalid_scope", "not one Spine knows"},
		{"token scopes of the wrong type", "POST", "/v1/tokens", "", `{"name":"x","scopes":"read"}`, 400, "invalid_json", "scopes"},
		{"token lifetime unreadable", "POST", "/v1/tokens", "", `{"name":"x","expires_in":"forever"}`, 400, "invalid_expiry", "30d"},
		{"token lifetime too short", "POST", "/v1/tokens", "", `{"name":"x","expires_in":"1s"}`, 400, "invalid_expiry", "from 10s"},
		{"token lifetime too long", "POST", "/v1/tokens", "", `{"name":"x","expires_in":"3651d"}`, 400, "invalid_expiry", "at most 3650d"},
		{"token lifetime negative", "POST", "/v1/tokens", "", `{"name":"x","expires_in":"-1h"}`, 400, "invalid_expiry", "from 10s"},
		{"token lifetime a number", "POST", "/v1/tokens", "", `{"name":"x","expires_in":3600}`, 400, "invalid_json", "expires_in"},
		{"token with an unknown field", "POST", "/v1/tokens", "", `{"name":"x","value":"spine_mine"}`, 400, "unknown_field", "value"},
		{"revoke a malformed token name", "DELETE", "/v1/tokens/Bad_Name!", "", "", 400, "invalid_name", "lower-case letters"},
		{"revoke a missing token", "DELETE", "/v1/tokens/nothere", "", "", 404, "not_found", "spine token list"},
		// Projects.
		{"project name empty", "POST", "/v1/projects", "", `{"name":""}`, 400, "invalid_name", "empty"},
		{"project name malformed", "POST", "/v1/projects", "", `{"name":"My Project"}`, 400, "invalid_name", "lower-case letters"},
		{"project name too long", "POST", "/v1/projects", "", `{"name":"` + strings.Repeat("p", 64) + `"}`, 400, "invalid_name", "limit is 63"},
		{"project name taken", "POST", "/v1/projects", "", `{"name":"default"}`, 409, "conflict", "already exists"},
		{"project with an unknown field", "POST", "/v1/projects", "", `{"name":"x","owner":"me"}`, 400, "unknown_field", "owner"},
		{"get a malformed project", "GET", "/v1/projects/Bad_Name!", "", "", 400, "invalid_name", "lower-case letters"},
		{"get a missing project", "GET", "/v1/projects/nothere", "", "", 404, "not_found", "spine project list"},
		{"suspend the default project", "POST", "/v1/projects/default/suspend", "", "", 400, "default_project", "cannot be suspended"},
		{"suspend a missing project", "POST", "/v1/projects/nothere/suspend", "", "", 404, "not_found", "does not exist"},
		{"resume a malformed project", "POST", "/v1/projects/a%00b/resume", "", "", 400, "invalid_name", "lower-case letters"},
		{"delete the default project", "DELETE", "/v1/projects/default", "", "", 400, "default_project", "cannot be suspended or deleted"},
		{"delete a missing project", "DELETE", "/v1/projects/nothere", "", "", 404, "not_found", "does not exist"},
		// The audit trail's parameters.
		{"audit limit zero", "GET", "/v1/audit?limit=0", "", "", 400, "invalid_limit", "positive whole number"},
		{"audit limit too large", "GET", "/v1/audit?limit=1001", "", "", 400, "invalid_limit", "from 1 to 1000"},
		{"audit limit not a number", "GET", "/v1/audit?limit=ten", "", "", 400, "invalid_limit", "positive whole number"},
		{"audit before negative", "GET", "/v1/audit?before=-1", "", "", 400, "invalid_before", "positive whole number"},
		{"audit of a missing project", "GET", "/v1/audit?project=nothere", "", "", 404, "not_found", "does not exist"},
		// Client certificates (mTLS) of a service.
		{"client_auth without a client CA", "POST", "/v1/services", "", `{"name":"x","client_auth":"require",` + ups + `}`, 400, "invalid_client_auth", "needs client_ca"},
		{"client CA not PEM", "POST", "/v1/services", "", `{"name":"x","client_ca":"hello",` + ups + `}`, 400, "invalid_client_ca", "no PEM certificate"},
		{"client CA holding a key", "POST", "/v1/services", "", `{"name":"x","client_ca":` + strconv.Quote(string(good.KeyPEM)) + `,` + ups + `}`, 400, "invalid_client_ca", "only CERTIFICATE blocks"},
		{"client_auth unknown", "POST", "/v1/services", "", `{"name":"x","client_auth":"maybe","client_ca":` + strconv.Quote(string(pki.RootPEM())) + `,` + ups + `}`, 400, "invalid_client_auth", "require or optional"},
		{"client_auth of the wrong type", "POST", "/v1/services", "", `{"name":"x","client_auth":true,` + ups + `}`, 400, "invalid_json", "client_auth"},
		{"update: client_auth without a CA", "PATCH", "/v1/services/svc", "", `{"client_auth":"require"}`, 400, "invalid_client_auth", "no client CA"},
		{"update: off with a CA", "PATCH", "/v1/services/svc", "", `{"client_auth":"off","client_ca":` + strconv.Quote(string(pki.RootPEM())) + `}`, 400, "invalid_client_auth", "give no client_ca"},
		// Uploaded certificates.
		{"upload: not PEM", "PUT", "/v1/certificates/byo.localhost", "", `{"certificate":"hello","private_key":"x"}`, 400, "certificate_parse", "not PEM"},
		{"upload: no key", "PUT", "/v1/certificates/byo.localhost", "", `{"certificate":` + strconv.Quote(string(good.ChainPEM)) + `}`, 400, "certificate_parse", "no PEM private key"},
		{"upload: Ed25519", "PUT", "/v1/certificates/byo.localhost", "", upload(ed.ChainPEM, ed.KeyPEM, true), 400, "certificate_key_type", "browsers do not accept Ed25519"},
		{"upload: another key", "PUT", "/v1/certificates/byo.localhost", "", upload(good.ChainPEM, other.KeyPEM, true), 400, "certificate_key_match", "not the key"},
		{"upload: other names", "PUT", "/v1/certificates/byo.localhost", "", upload(other.ChainPEM, other.KeyPEM, true), 400, "certificate_names", "not byo.localhost"},
		{"upload: less than a day left", "PUT", "/v1/certificates/byo.localhost", "", upload(short.ChainPEM, short.KeyPEM, true), 400, "certificate_validity", "less than 24h"},
		{"upload: no public chain", "PUT", "/v1/certificates/byo.localhost", "", upload(good.ChainPEM, good.KeyPEM, false), 400, "certificate_chain", "--root"},
		{"upload: root not PEM", "PUT", "/v1/certificates/byo.localhost", "", `{"certificate":` + strconv.Quote(string(good.ChainPEM)) + `,"private_key":` + strconv.Quote(string(good.KeyPEM)) + `,"root":"x"}`, 400, "certificate_parse", "root file"},
		{"upload: outside the project's domains", "PUT", "/v1/certificates/byo.example.com", "", upload(good.ChainPEM, good.KeyPEM, true), 400, "host_outside_domains", "verify its domain"},
		{"upload: a wildcard name", "PUT", "/v1/certificates/*.localhost", "", upload(good.ChainPEM, good.KeyPEM, true), 400, "invalid_hostname", "wildcard"},
		{"upload: a port", "PUT", "/v1/certificates/byo.localhost:443", "", upload(good.ChainPEM, good.KeyPEM, true), 400, "invalid_hostname", "not allowed"},
		{"upload: unknown field", "PUT", "/v1/certificates/byo.localhost", "", `{"certificate":"x","key":"y"}`, 400, "unknown_field", "key"},
		{"upload: wrong type", "PUT", "/v1/certificates/byo.localhost", "", `{"certificate":["x"]}`, 400, "invalid_json", "certificate"},
		{"upload: oversized", "PUT", "/v1/certificates/byo.localhost", "", `{"certificate":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large", "larger than"},
		{"remove: none uploaded", "DELETE", "/v1/certificates/byo.localhost", "", "", 404, "not_found", "does not exist"},
		{"remove: bad hostname", "DELETE", "/v1/certificates/bad..localhost", "", "", 400, "invalid_hostname", "empty label"},
		// The node's profiles (operator).
		{"profile: unknown name", "GET", "/debug/pprof/heapz", "", "", 404, "no_such_profile", "the profiles are allocs, block"},
		{"profile: the command line", "GET", "/debug/pprof/cmdline", "", "", 404, "no_such_profile", "heap"},
		{"profile: a path in the name", "GET", "/debug/pprof/..%2fcmdline", "", "", 404, "no_such_profile", "goroutine"},
		{"profile: seconds past the write timeout", "GET", "/debug/pprof/profile?seconds=120", "", "", 400, "invalid_seconds", "from 1 to 50"},
		{"profile: seconds not a number", "GET", "/debug/pprof/trace?seconds=ten", "", "", 400, "invalid_seconds", "whole number"},
		{"profile: seconds zero", "GET", "/debug/pprof/profile?seconds=0", "", "", 400, "invalid_seconds", "from 1"},
		{"unknown route", "GET", "/v1/servces", "", "", 404, "no_such_route", "/v1/services"},
		{"wrong method", "PUT", "/v1/services/taken", "", `{}`, 404, "no_such_route", "not part of the API"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+s.token)
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e client.Error
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%s: %s), want %d", resp.StatusCode, e.Code, e.Message, tc.status)
			}
			if e.Code == "" || e.Message == "" {
				t.Errorf("answer without an error code and message: %+v", e)
			}
			if tc.code != "" && e.Code != tc.code {
				t.Errorf("code %q (%s), want %q", e.Code, e.Message, tc.code)
			}
			if !strings.Contains(e.Message, tc.hint) {
				t.Errorf("message %q does not say %q", e.Message, tc.hint)
			}
			if strings.Contains(e.Message, "hunter2") {
				t.Errorf("message shows the upstream's password: %q", e.Message)
			}
		})
	}
	if after := state(t, s.admin); after != before {
		t.Errorf("refused requests changed what is stored:\nbefore %s\nafter  %s", before, after)
	}
	// The edge still takes route updates: nothing refused poisoned them.
	s.addService(t, s.admin, client.ServiceCreate{Name: "after", Upstreams: []string{up}})
	reportf(t, "%d kinds of bad API input refused with a code and a message that says what to fix; nothing stored", len(cases))
}

// TestCLIBadInput checks that bad command-line arguments are refused with a
// non-zero exit status and a message that names the flag or argument and
// says what to fix, and that nothing is stored: against `spine up`, the
// project's domains and services are the same before and after each; a
// `spine serve` or `spine up` refused for its flags leaves no data folder,
// and one refused later (a busy port, an unreachable store) leaves no
// admin token, project or CA behind.
func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	bin := spineBinary(t)
	u := startProc(t, bin, filepath.Join(t.TempDir(), "data"), nil, "up", "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	admin := u.admin(t)
	up := "http://127.0.0.1:9"
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pki := pkitest.NewRoot("CLI Bad Input Root")
	leaf := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo.localhost"}})
	otherLeaf := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo.localhost"}})
	pemDir := t.TempDir()
	pemFile := func(name string, b []byte) string {
		p := filepath.Join(pemDir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chainFile, keyFile, otherKey, rootFile := pemFile("chain.pem", leaf.ChainPEM), pemFile("key.pem", leaf.KeyPEM), pemFile("other.pem", otherLeaf.KeyPEM), pemFile("root.pem", pki.RootPEM())
	bigFile := pemFile("big.pem", make([]byte, 70<<10))
	badKey := pemFile("bad.key", []byte("# a key file\nnot a key at all\n"))
	openKey := filepath.Join(pemDir, "open.key")
	goodKey, _ := secrets.Generate()
	if err := os.WriteFile(openKey, goodKey, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(openKey, 0o644)
	missingKey := filepath.Join(pemDir, "missing.key")
	cases := []struct {
		args       []string
		flag, hint string // the message must contain both
	}{
		{[]string{"service", "create"}, "", "accepts 1 arg"},
		{[]string{"ech", "config", "bad..name"}, "bad..name", "give a hostname"},
		{[]string{"service", "create", "a", "b"}, "", "accepts 1 arg"},
		{[]string{"service", "create", "x"}, "--upstream", "at least one upstream"},
		{[]string{"service", "create", "x", "--upstream", up, "--hsts-max-age", "year"}, "--hsts-max-age", "invalid argument"},
		{[]string{"service", "create", "x", "--upstream", up, "--hsts-max-age", "-1"}, "--hsts-max-age", "between 0"},
		{[]string{"service", "create", "x", "--upstream", "gopher://h"}, "--upstream", "http:// or https://"},
		{[]string{"service", "create", "x", "--upstream", "http://u:hunter2@127.0.0.1:9"}, "--upstream", "credentials"},
		{[]string{"service", "create", "UPPER_case", "--upstream", up}, "upper_case", "lower-case letters"},
		{[]string{"service", "create", "x", "--upstream", up, "--timeout", "soon"}, "--timeout", "invalid argument"},
		{[]string{"service", "create", "x", "--upstream", up, "--timeout", "0s"}, "--timeout", "positive duration"},
		{[]string{"service", "create", "x", "--upstream", up, "--host", "*.localhost"}, "--host", "wildcards are not accepted"},
		{[]string{"service", "create", "x", "--upstream", up, "--host", "bad..localhost"}, "--host", "empty label"},
		{[]string{"service", "create", "x", "--upstream", up, "--host", "x.localhost:8443"}, "--host", "not allowed"},
		{[]string{"service", "create", "x", "--upstream", up, "--host", strings.Repeat("a", 64) + ".localhost"}, "--host", "limit is 63"},
		{[]string{"service", "create", "x", "--upstream", up, "--host", "x.example.com"}, "--host", "add its domain first"},
		{[]string{"service", "create", "x", "--upstream", up, "--host", ""}, "--host", "empty"},
		{[]string{"service", "create", "x", "--upstream", up, "--domain", "example.com"}, "--domain", "spine domain add"},
		{[]string{"service", "create", "x", "--upstream", up, "--domain", "bad..name"}, "--domain", "empty label"},
		{[]string{"service", "create", "x", "--upstream", up, "--domain", "*.localhost"}, "--domain", "wildcards are not accepted"},
		{[]string{"service", "create", "x", "--upstream", up, "--domain", "local host"}, "--domain", "not allowed"},
		{[]string{"service", "create", "x", "--upstream", up, "--health-path", "healthz"}, "--health-path", "must start with /"},
		{[]string{"service", "create", "x", "--upstream", up, "--health-interval", "often"}, "--health-interval", "invalid argument"},
		{[]string{"service", "create", "x", "--upstream", up, "--health-interval", "10ms"}, "--health-interval", "between 1s and 1h"},
		{[]string{"service", "update"}, "", "accepts 1 arg"},
		{[]string{"service", "update", "a", "b", "--hsts-max-age", "0"}, "", "accepts 1 arg"},
		{[]string{"service", "update", "hello"}, "--upstream", "nothing to change"},
		{[]string{"service", "update", "nothere", "--hsts-max-age", "0"}, "nothere", "does not exist"},
		{[]string{"service", "update", "Bad_Name!", "--hsts-max-age", "0"}, "bad_name!", "lower-case letters"},
		{[]string{"service", "update", "hello", "--upstream", "gopher://h"}, "--upstream", "http:// or https://"},
		{[]string{"service", "update", "hello", "--upstream", "http://u:hunter2@127.0.0.1:9"}, "--upstream", "credentials"},
		{[]string{"service", "update", "hello", "--upstream", ""}, "--upstream", "absolute URL"},
		{[]string{"service", "update", "hello", "--add-host", "*.localhost"}, "--add-host", "wildcards are not accepted"},
		{[]string{"service", "update", "hello", "--add-host", "bad..localhost"}, "--add-host", "empty label"},
		{[]string{"service", "update", "hello", "--add-host", "x.example.com"}, "--add-host", "add its domain first"},
		{[]string{"service", "update", "hello", "--add-host", "a.localhost", "--remove-host", "a.localhost"}, "--add-host", "give it once"},
		{[]string{"service", "update", "hello", "--remove-host", "hello.localhost"}, "--remove-host", "delete the service instead"},
		{[]string{"service", "update", "hello", "--remove-host", "other.localhost"}, "--remove-host", "not one of the service's hostnames"},
		{[]string{"service", "update", "hello", "--remove-host", "x.localhost:1"}, "--remove-host", "not allowed"},
		{[]string{"service", "update", "hello", "--hsts-max-age", "year"}, "--hsts-max-age", "invalid argument"},
		{[]string{"service", "update", "hello", "--hsts-max-age", "-1"}, "--hsts-max-age", "between 0"},
		{[]string{"service", "update", "hello", "--health-path", "a b"}, "--health-path", "must start with /"},
		{[]string{"service", "update", "hello", "--health-path", "/a b"}, "--health-path", "printable ASCII"},
		{[]string{"service", "update", "hello", "--health-interval", "soon"}, "--health-interval", "invalid argument"},
		{[]string{"service", "update", "hello", "--health-interval", "2h"}, "--health-interval", "between 1s and 1h"},
		{[]string{"service", "update", "hello", "--hsts-max-age", "0", "--timeout", "0s"}, "--timeout", "positive duration"},
		{[]string{"service", "update", "hello", "--hsts-max-age", "0", "--timeout", "soon"}, "--timeout", "invalid argument"},
		{[]string{"service", "create", "m", "--upstream", up, "--client-ca", "/nonexistent.pem"}, "--client-ca", "no such file"},
		{[]string{"service", "create", "m", "--upstream", up, "--client-ca", notPEM}, "--client-ca", "no PEM certificate"},
		{[]string{"service", "create", "m", "--upstream", up, "--client-ca", rootFile, "--client-auth", "sometimes"}, "--client-auth", "require or optional"},
		{[]string{"service", "create", "m", "--upstream", up, "--client-auth", "require"}, "--client-auth", "needs client_ca"},
		{[]string{"service", "update", "hello", "--client-auth", "require"}, "--client-auth", "no client CA"},
		{[]string{"service", "update", "hello", "--client-ca", keyFile}, "--client-ca", "only CERTIFICATE blocks"},
		{[]string{"cert", "upload"}, "required flag", "host"},
		{[]string{"cert", "upload", "--host", "*.localhost", "--cert", chainFile, "--key", keyFile}, "--host", "wildcards are not accepted"},
		{[]string{"cert", "upload", "--host", "byo.localhost", "--cert", "/nonexistent.pem", "--key", keyFile}, "--cert", "no such file"},
		{[]string{"cert", "upload", "--host", "byo.localhost", "--cert", bigFile, "--key", keyFile}, "--cert", "larger than"},
		{[]string{"cert", "upload", "--host", "byo.localhost", "--cert", chainFile, "--key", otherKey, "--root", rootFile}, "--key", "not the key of the certificate"},
		{[]string{"cert", "upload", "--host", "byo.localhost", "--cert", chainFile, "--key", keyFile}, "--cert/--root", "check chain"},
		{[]string{"cert", "upload", "--host", "web.localhost", "--cert", chainFile, "--key", keyFile, "--root", rootFile}, "--host", "not web.localhost"},
		{[]string{"cert", "upload", "--host", "byo.example.com", "--cert", chainFile, "--key", keyFile, "--root", rootFile}, "--host", "not under any of this project's domains"},
		{[]string{"cert", "upload", "--host", "byo.localhost", "--cert", keyFile, "--key", keyFile}, "--cert/--key", "only CERTIFICATE blocks"},
		{[]string{"cert", "remove"}, "required flag", "host"},
		{[]string{"cert", "remove", "--host", "byo.localhost"}, "byo.localhost", "does not exist"},
		{[]string{"cert", "remove", "--host", "bad..localhost"}, "--host", "empty label"},
		{[]string{"ca", "trust", "extra"}, "", "unknown command"},
		{[]string{"ca", "trust", "--root", "/nonexistent.pem"}, "--root", "no such file"},
		{[]string{"ca", "trust", "--root", "/etc/passwd"}, "/etc/passwd", "no PEM certificate"},
		{[]string{"ca", "trust", "--system-dir", "/tmp"}, "--system-update", "give both"},
		{[]string{"ca", "untrust", "--system-update", "true"}, "--system-dir", "give both"},
		{[]string{"service", "show"}, "", "accepts 1 arg"},
		{[]string{"service", "list", "extra"}, "", "unknown command"},
		{[]string{"service", "list", "-o", "yaml"}, "--output", "text or json"},
		{[]string{"domain", "add"}, "", "accepts 1 arg"},
		{[]string{"domain", "add", "bad..name"}, "bad..name", "empty label"},
		{[]string{"domain", "remove", strings.Repeat("a", 64) + ".test"}, "", "limit is 63"},
		{[]string{"project", "create"}, "", "accepts 1 arg"},
		{[]string{"project", "create", "Bad Name"}, "bad name", "lower-case letters"},
		{[]string{"project", "create", "x", "--store", "mysql://db/x"}, "--store", "sqlite:PATH or postgres://"},
		{[]string{"webhook", "add"}, "", "accepts 1 arg"},
		{[]string{"webhook", "add", "ftp://hooks.test/x"}, "ftp", "use https://"},
		{[]string{"webhook", "add", "https://hooks.test/x", "--event", "nope"}, "--event", "not one of"},
		{[]string{"webhook", "add", "http://169.254.169.254/latest"}, "metadata", "never the metadata address"},
		{[]string{"webhook", "remove", "nope"}, "nope", "not a webhook ID"},
		{[]string{"webhook", "test"}, "", "accepts 1 arg"},
		{[]string{"webhook", "deliveries", "wh_000000000000000000000000", "--limit", "-1"}, "--limit", "1 to 500"},
		{[]string{"webhook", "redeliver", "nope"}, "nope", "not a delivery ID"},
		{[]string{"webhook", "enable", "wh_000000000000000000000000"}, "wh_000000000000000000000000", "does not exist"},
		{[]string{"quota", "set", "default", "--domains", "-1"}, "--domains", "0 for no limit"},
		{[]string{"quota", "set", "default", "--services", "lots"}, "--services", "or default"},
		{[]string{"quota", "set", "default"}, "--domains", "at least one"},
		{[]string{"quota", "show"}, "", "accepts 1 arg"},
		{[]string{"quota", "show", "nobody"}, "nobody", "does not exist"},
		{[]string{"events", "--after", "-1"}, "--after", "ID of the last event"},
		{[]string{"events", "--after", "x"}, "--after", "invalid argument"},
		{[]string{"events", "--limit", "-1"}, "--limit", "0 for all"},
		{[]string{"events", "extra"}, "", "unknown command"},
		{[]string{"events", "-o", "yaml"}, "--output", "text or json"},
		{[]string{"project", "create", "default"}, "", "already exists"},
		{[]string{"project", "suspend"}, "", "accepts 1 arg"},
		{[]string{"project", "suspend", "default"}, "default", "cannot be suspended"},
		{[]string{"project", "resume", "Bad_Name"}, "Bad_Name", "lower-case letters"},
		{[]string{"project", "delete", "nothere"}, "nothere", "does not exist"},
		{[]string{"project", "list", "extra"}, "", "unknown command"},
		{[]string{"token", "create"}, "--name", "give the token a name"},
		{[]string{"token", "create", "ci"}, "", "unknown command"},
		{[]string{"token", "create", "--name", "CI"}, "--name", "lower-case letters"},
		{[]string{"token", "create", "--name", "x", "--scope", "everything"}, "--scope", "not one Spine knows"},
		{[]string{"token", "create", "--name", "x", "--expires", "forever"}, "--expires", "30d"},
		{[]string{"token", "create", "--name", "x", "--expires", "1s"}, "--expires", "from 10s"},
		{[]string{"token", "create", "--name", "x", "--expires", "9999d"}, "--expires", "at most 3650d"},
		{[]string{"token", "revoke"}, "", "accepts 1 arg"},
		{[]string{"token", "revoke", "nothere"}, "nothere", "does not exist"},
		{[]string{"audit", "--limit", "0"}, "--limit", "from 1 to 1000"},
		{[]string{"audit", "--limit", "ten"}, "--limit", "invalid argument"},
		{[]string{"audit", "--before", "-1"}, "--before", "the ID of an entry"},
		{[]string{"audit", "--project", "nothere"}, "--project", "does not exist"},
		{[]string{"audit", "extra"}, "", "unknown command"},
		{[]string{"no-such-command"}, "", "unknown command"},
		{[]string{"service", "list", "--no-such-flag"}, "--no-such-flag", "unknown flag"},
		{[]string{"inspect"}, "", "accepts 1 arg"},
		{[]string{"inspect", "http://hello.localhost:8443/"}, "http://hello.localhost:8443/", "must start with https://"},
		{[]string{"inspect", "ftp://hello.localhost/"}, "ftp://hello.localhost/", "must start with https://"},
		{[]string{"inspect", "https://user:hunter2@hello.localhost/"}, "holds credentials", "leave them out"},
		{[]string{"inspect", "hello.localhost:99999"}, "port \"99999\"", "from 1 to 65535"},
		{[]string{"inspect", "hello.localhost:0"}, "port \"0\"", "from 1 to 65535"},
		{[]string{"inspect", "hello.localhost:https"}, "port \"https\"", "from 1 to 65535"},
		{[]string{"inspect", "hello.localhost:"}, "port after", "leave the colon out"},
		{[]string{"inspect", "bad..localhost"}, "bad..localhost", "empty label"},
		{[]string{"inspect", "hello.localhost/path"}, "hello.localhost/path", "https://HOST[:PORT]/PATH"},
		{[]string{"inspect", "hello.localhost", "--ca", "/nonexistent/ca.pem"}, "--ca", "does not exist"},
		{[]string{"inspect", "hello.localhost", "--ca", notPEM}, "--ca", "holds no PEM certificate"},
		{[]string{"inspect", "hello.localhost", "--servername", "*.localhost"}, "--servername", "wildcards are not accepted"},
		{[]string{"inspect", "hello.localhost", "--resolver", "nonsense"}, "--resolver", "HOST:PORT"},
		{[]string{"inspect", "hello.localhost", "--timeout", "0s"}, "--timeout", "positive duration"},
		{[]string{"inspect", "hello.localhost", "-o", "yaml"}, "--output", "text or json"},
		{[]string{"secrets", "new-key"}, "--out", "give the file"},
		{[]string{"secrets", "new-key", "--out", chainFile}, "--out", "never replaced"},
		{[]string{"secrets", "rotate"}, "--new-key-file", "give the file"},
		{[]string{"secrets", "rotate", "--new-key-file", badKey}, badKey, "line 2 is not a key"},
		{[]string{"secrets", "rotate", "--new-key-file", openKey}, openKey, "chmod 600"},
		{[]string{"secrets", "rotate", "--new-key-file", pemDir}, pemDir, "is a folder"},
		{[]string{"secrets", "rotate", "--new-key-file", missingKey, "--wait", "0s"}, "--wait", "positive duration"},
		{[]string{"secrets", "rotate", "--new-key-file", missingKey, "--secret-key-file", badKey}, badKey, "line 2 is not a key"},
	}
	for _, tc := range cases {
		before := state(t, admin)
		o, e, err := u.cli(t, nil, tc.args...)
		name := "spine " + strings.Join(tc.args, " ")
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("%s: %v, want a non-zero exit status: %s", name, err, o)
			continue
		}
		if !strings.Contains(e, tc.flag) || !strings.Contains(e, tc.hint) {
			t.Errorf("%s: error %q does not say %q and %q", name, strings.TrimSpace(e), tc.flag, tc.hint)
		}
		if after := state(t, admin); after != before {
			t.Errorf("%s changed what is stored:\nbefore %s\nafter  %s", name, before, after)
		}
	}

	// Servers refused for their flags. late: refused after the data folder
	// was opened (a busy port, an unreachable store).
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	notAFolder := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notAFolder, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	servers := []struct {
		args       []string
		flag, hint string
		late       bool
	}{
		{[]string{"serve", "--store", "mysql://db/spine"}, "--store", "write sqlite:PATH or postgres://", false},
		{[]string{"serve", "--store", "spine.db"}, "--store", "write sqlite:PATH or postgres://", false},
		{[]string{"serve", "--store", "sqlite:"}, "--store", "give the path of the database file", false},
		{[]string{"serve", "--store", "sqlite:" + filepath.Join(notAFolder, "spine.db")}, "--store", "is not a folder; give a path whose folder exists", false},
		{[]string{"serve", "--store", "postgres://db.test:notaport/spine"}, "--store", "not a PostgreSQL URL", false},
		{[]string{"serve", "--store", "postgres://spine@127.0.0.1:1/spine"}, "--store", "is the database running", true},
		{[]string{"serve", "--acme-ca", "ftp://ca.test/dir"}, "--acme-ca", "give an https://HOST/... directory URL", false},
		{[]string{"serve", "--acme-ca", "https://"}, "--acme-ca", "give an https://HOST/... directory URL", false},
		{[]string{"serve", "--acme-ca", "lets encrypt"}, "--acme-ca", "letsencrypt, letsencrypt-staging", false},
		{[]string{"serve", "--acme-eab-kid", "kid"}, "--acme-eab-hmac", "give both", false},
		{[]string{"serve", "--acme-eab-hmac", "aG1hYw"}, "--acme-eab-kid", "give both", false},
		{[]string{"serve", "--acme-eab-kid", "kid", "--acme-eab-hmac", "not base64!"}, "--acme-eab-hmac", "not base64url", false},
		{[]string{"serve", "--dns-rfc2136", "example.test"}, "--dns-rfc2136", "ZONE=SERVER", false},
		{[]string{"serve", "--dns-rfc2136", "=ns1.example.test"}, "--dns-rfc2136", "ZONE=SERVER", false},
		{[]string{"serve", "--dns-rfc2136", "example.test="}, "--dns-rfc2136", "SERVER is empty", false},
		{[]string{"serve", "--dns-rfc2136", "example.test=ns1.example.test,key."}, "--dns-rfc2136", "want 1 or 3", false},
		{[]string{"serve", "--dns-rfc2136", "example.test=ns1.example.test,key.,c2VjcmV0,more"}, "--dns-rfc2136", "want 1 or 3", false},
		{[]string{"serve", "--dns-rfc2136", "example.test=ns1.example.test,,c2VjcmV0"}, "--dns-rfc2136", "KEYNAME and BASE64SECRET", false},
		{[]string{"serve", "--dns-rfc2136", "example.test=ns1.example.test,key.,not base64"}, "--dns-rfc2136", "is not base64", false},
		{[]string{"serve", "--dns-rfc2136", "example.test=ns1:99999"}, "--dns-rfc2136", "HOST or HOST:PORT", false},
		{[]string{"serve", "--dns-rfc2136", "bad..zone=ns1.example.test"}, "--dns-rfc2136", "empty label", false},
		{[]string{"serve", "--cert-lifetime", "0s"}, "--cert-lifetime", "from 1h to 8760h", false},
		{[]string{"serve", "--cert-lifetime", "-1h"}, "--cert-lifetime", "from 1h to 8760h", false},
		{[]string{"serve", "--cert-lifetime", "1m"}, "--cert-lifetime", "from 1h to 8760h", false},
		{[]string{"serve", "--cert-lifetime", "10000h"}, "--cert-lifetime", "from 1h to 8760h", false},
		{[]string{"serve", "--cert-lifetime", "a day"}, "--cert-lifetime", "invalid argument", false},
		{[]string{"serve", "--cert-cache-size", "0"}, "--cert-cache-size", "or -1 for no bound", false},
		{[]string{"serve", "--cert-cache-size", "-2"}, "--cert-cache-size", "or -1 for no bound", false},
		{[]string{"serve", "--metrics-max-series", "-1"}, "--metrics-max-series", "must be 0 (the default, 10000) or more", false},
		{[]string{"serve", "--metrics-max-series", "lots"}, "--metrics-max-series", "invalid argument", false},
		{[]string{"serve", "--https-addr", "nonsense"}, "--https-addr", "write HOST:PORT or :PORT", false},
		{[]string{"serve", "--https-addr", "127.0.0.1:99999"}, "--https-addr", "port from 0 to 65535", false},
		{[]string{"serve", "--http-addr", "127.0.0.1:-1"}, "--http-addr", "port from 0 to 65535", false},
		{[]string{"serve", "--api-addr", "localhost"}, "--api-addr", "write HOST:PORT", false},
		{[]string{"serve", "--api-addr", "127.0.0.1:"}, "--api-addr", "write HOST:PORT", false},
		{[]string{"serve", "--dns-addr", "53"}, "--dns-addr", "write HOST:PORT", false},
		{[]string{"serve", "--https-addr", busy.Addr().String()}, "--https-addr", "pick another", true},
		{[]string{"serve", "--domain", "bad..name"}, "--domain", "give the domain this node serves", false},
		{[]string{"serve", "--domain-check-interval", "0s"}, "--domain-check-interval", "positive duration", false},
		{[]string{"serve", "--resync-interval", "0s"}, "--resync-interval", "positive duration", false},
		{[]string{"serve", "--resync-interval", "-5s"}, "--resync-interval", "positive duration", false},
		{[]string{"serve", "--renew-check-interval", "0s"}, "--renew-check-interval", "positive duration", false},
		{[]string{"serve", "--renewal-window-ratio", "0"}, "--renewal-window-ratio", "between 0 and 1", false},
		{[]string{"serve", "--renewal-window-ratio", "1.5"}, "--renewal-window-ratio", "between 0 and 1", false},
		{[]string{"serve", "--renewal-window-ratio", "NaN"}, "--renewal-window-ratio", "between 0 and 1", false},
		{[]string{"serve", "--webhook-timeout", "0s"}, "--webhook-timeout", "from 1s to 5m", false},
		{[]string{"serve", "--quota-domains", "-1"}, "--quota-domains", "0 for no limit", false},
		{[]string{"serve", "--quota-hostnames", "many"}, "--quota-hostnames", "invalid argument", false},
		{[]string{"serve", "--quota-services", "2000000"}, "--quota-services", "1000000", false},
		{[]string{"serve", "--quota-orders-per-hour", "-5"}, "--quota-orders-per-hour", "0 for no limit", false},
		{[]string{"serve", "--acme-ca-budget", "letsencrypt"}, "--acme-ca-budget", "CA=ORDERS/WINDOW", false},
		{[]string{"serve", "--acme-ca-budget", "letsencrypt=300/3h"}, "--acme-ca-budget", "1 limits", false},
		{[]string{"serve", "--acme-ca-budget", "letsencrypt=lots/3h,-,-"}, "--acme-ca-budget", "COUNT/WINDOW", false},
		{[]string{"serve", "--acme-ca-budget", "letsencrypt=300/0s,-,-"}, "--acme-ca-budget", "positive count and duration", false},
		{[]string{"serve", "--webhook-timeout", "1h"}, "--webhook-timeout", "from 1s to 5m", false},
		{[]string{"serve", "--webhook-allow-private=maybe"}, "--webhook-allow-private", "invalid argument", false},
		{[]string{"serve", "extra"}, "", "unknown command", false},
		{[]string{"up", "--https-addr", "nonsense"}, "--https-addr", "write HOST:PORT", false},
		{[]string{"up", "--cert-lifetime", "-1h"}, "--cert-lifetime", "from 1h to 8760h", false},
		{[]string{"serve", "--secret-key-file", badKey}, badKey, "line 2 is not a key", false},
		{[]string{"serve", "--secret-key-file", openKey}, openKey, "chmod 600", false},
		{[]string{"serve", "--secret-key-file", pemDir}, pemDir, "is a folder", false},
		{[]string{"up", "--secret-key-file", badKey}, badKey, "line 2 is not a key", false},
		{[]string{"serve", "--log-format", "logfmt"}, "--log-format", "give text or json", false},
		{[]string{"serve", "--log-format", ""}, "--log-format", "give text or json", false},
		{[]string{"serve", "--log-level", "trace"}, "--log-level", "give debug, info, warn or error", false},
		{[]string{"up", "--log-level", "INFO+4"}, "--log-level", "give debug, info, warn or error", false},
		{[]string{"up", "--log-format", "json\n"}, "--log-format", "give text or json", false},
		{[]string{"serve", "--access-log", ""}, "--access-log", "give stderr, the path of a file, or off", false},
		{[]string{"serve", "--access-log", "/nonexistent-folder/access.log"}, "--access-log", "give a file Spine may append to", false},
		{[]string{"up", "--access-log", "/proc/spine-access.log"}, "--access-log", "give a file Spine may append to", false},
	}
	for _, tc := range servers {
		data := filepath.Join(t.TempDir(), "data")
		args := append([]string{tc.args[0], "--data", data, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}, tc.args[1:]...)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "SPINE_STORE=", "SPINE_ACME_EAB_HMAC=", "SPINE_DATA=")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		cancel()
		name := "spine " + strings.Join(tc.args, " ")
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("%s: %v, want a non-zero exit status:\n%s%s", name, err, o.String(), e.String())
			continue
		}
		if !strings.Contains(e.String(), tc.flag) || !strings.Contains(e.String(), tc.hint) {
			t.Errorf("%s: error %q does not say %q and %q", name, strings.TrimSpace(e.String()), tc.flag, tc.hint)
		}
		left := dataLeft(t, data)
		switch {
		case !tc.late && left != "":
			t.Errorf("%s was refused after writing to its data folder: %s", name, left)
		case tc.late && slices.ContainsFunc(strings.Fields(left), func(f string) bool { return f == "admin.token" || f == "ca" }):
			t.Errorf("%s stored a project before it was refused: %s", name, left)
		}
	}
	reportf(t, "%d kinds of bad CLI arguments and %d of bad server flags refused with a message that names the flag and says what to fix; nothing stored", len(cases), len(servers))
}

// TestRequestIDBadInput sends hostile X-Request-ID values through a node's
// edge over HTTP/1.1 and HTTP/2 (the Go client), and ones no client library
// sends (a CR, an LF, a NUL) as raw HTTP/1.1 and raw HTTP/2 frames. Each
// well-formed-looking but bad value is replaced by a new ID, in the answer,
// upstream and in the access log; a value with a control character is
// refused by net/http before the edge sees it. No access line carries a
// hostile value, and every logged ID is well formed.
func TestRequestIDBadInput(t *testing.T) {
	accessLog := filepath.Join(t.TempDir(), "access.log")
	s := startSpineWith(t, func(c *config.Config) { c.AccessLog, c.AccessLogFormat = accessLog, logging.JSON })
	var mu sync.Mutex
	var got []string // what the upstream received, one entry a request
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, strings.Join(r.Header.Values("X-Request-Id"), "|")+" "+r.Header.Get("X-Injected"))
		mu.Unlock()
		w.Write([]byte("ok"))
	})
	s.addService(t, s.admin, client.ServiceCreate{Name: "web", Upstreams: []string{up}})
	hostile := []string{
		strings.Repeat("a", accesslog.MaxRequestIDLen+1),
		"", " ", "a b", "a\tb", `x","status":200,"request_id":"forged`, "x=1 level=ERROR msg=forged",
		"idé", "%0d%0aX-Injected:%201", "<script>alert(1)</script>", "$(id)", "../../etc/passwd", "a\\nb",
	}
	ids := map[string]bool{}
	for _, h2 := range []bool{false, true} {
		c := s.httpClient(h2)
		for _, v := range hostile {
			req, _ := http.NewRequest("GET", "https://web.localhost/", nil)
			req.Header["X-Request-Id"] = []string{v}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("h2=%v %q: %v", h2, v, err)
			}
			resp.Body.Close()
			id := resp.Header.Get("X-Request-Id")
			if resp.StatusCode != 200 || id == v || len(id) != 32 || !accesslog.ValidRequestID(id) {
				t.Errorf("h2=%v %q: %d with X-Request-ID %q, want 200 and a new ID", h2, v, resp.StatusCode, id)
			}
			mu.Lock()
			if last := got[len(got)-1]; last != id+" " {
				t.Errorf("h2=%v %q: the upstream got %q, want %q", h2, v, last, id)
			}
			mu.Unlock()
			ids[id] = true
		}
		// Two IDs: neither is kept.
		req, _ := http.NewRequest("GET", "https://web.localhost/", nil)
		req.Header["X-Request-Id"] = []string{"first-id", "second-id"}
		if resp, err := c.Do(req); err != nil {
			t.Fatal(err)
		} else if resp.Body.Close(); strings.Contains(resp.Header.Get("X-Request-Id"), "-id") {
			t.Errorf("h2=%v: two IDs sent, %q answered", h2, resp.Header.Get("X-Request-Id"))
		}
	}
	// Raw HTTP/1.1: a CR, an LF folded into the value, a NUL.
	for _, raw := range []string{"abc\rX-Injected: 1", "abc\x00def", "abc\r\n X-Injected: 1"} {
		conn, err := s.dialTLS("web.localhost", "http/1.1")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Request-ID: %s\r\nConnection: close\r\n\r\n", raw)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if id := resp.Header.Get("X-Request-Id"); resp.StatusCode != 400 && !accesslog.ValidRequestID(id) {
			t.Errorf("%q: %d with X-Request-ID %q", raw, resp.StatusCode, id)
		}
	}
	// Raw HTTP/2: CR, LF and NUL in the field's value (HPACK carries any
	// byte); net/http resets the stream.
	for _, raw := range []string{"abc\r\nx-injected: 1", "abc\x00", "abc\ndef"} {
		h, err := dialH2Host(s, "web.localhost")
		if err != nil {
			t.Fatal(err)
		}
		block := h.headerBlock("x-request-id", raw)
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		h.bw.Flush()
		// The edge answers with a reset or a 400; wait for either, then a
		// well-formed request on a fresh stream shows the connection works.
		block = h.headerBlock("x-request-id", "after-"+strings.Repeat("x", 4))
		h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block, EndStream: true, EndHeaders: true})
		h.bw.Flush()
		poll.Until(t, "an answer on the stream after the hostile one", time.Minute, poll.True(func() bool {
			v, ok := h.statuses.Load("200")
			return ok && v.(*atomic.Int64).Load() == 1 || h.isClosed()
		}))
		h.c.Close()
	}
	mu.Lock()
	for _, g := range got {
		if strings.Contains(g, "X-Injected") || strings.HasSuffix(g, " 1") {
			t.Errorf("the upstream got an injected field: %q", g)
		}
	}
	mu.Unlock()

	// The access log: every line is JSON, its ID well formed; the hostile
	// values are nowhere.
	poll.Until(t, "the access lines of the replaced IDs", time.Minute, func() error {
		b, err := os.ReadFile(accessLog)
		if err != nil {
			return err
		}
		for id := range ids {
			if !bytes.Contains(b, []byte(`"request_id":"`+id+`"`)) {
				return fmt.Errorf("no line with %s", id)
			}
		}
		return nil
	})
	b, _ := os.ReadFile(accessLog)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("an access line is not JSON: %q", line)
			continue
		}
		if id, _ := m["request_id"].(string); !accesslog.ValidRequestID(id) {
			t.Errorf("an access line's ID is not well formed: %q", line)
		}
	}
	for _, v := range []string{"forged", "X-Injected", "<script>", "$(id)", "passwd", "idé", "first-id"} {
		if bytes.Contains(b, []byte(v)) {
			t.Errorf("%q in the access log", v)
		}
	}
	reportf(t, "%d hostile X-Request-ID values over HTTP/1.1 and HTTP/2 replaced by new IDs (answer, upstream, access log), CR/LF/NUL in raw HTTP/1.1 and HTTP/2 refused by net/http; %d access lines, all JSON with well-formed IDs", 2*len(hostile)+2, strings.Count(string(b), "\n"))
}

// TestChallengePathBadInput sends ACME HTTP-01 validation requests with
// hostile Host headers and tokens to the plain-HTTP edge. Challenges are
// looked up in the store for any hostname (a node may answer for a name it
// does not manage yet); none of these may be answered or fail the server:
// each gets the 404 page, the redirect of a served name, or net/http's
// 400 for a Host it refuses.
func TestChallengePathBadInput(t *testing.T) {
	s := startSpine(t, edge.Config{})
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	s.addService(t, s.admin, client.ServiceCreate{Name: "web", Upstreams: []string{up}})
	cases := []struct{ host, token string }{
		{"web.localhost", "no-such-token"},
		{"web.localhost", "..%2F..%2Fspine.db"},
		{"web.localhost", "a/b"},
		{"web.localhost", ""},
		{"nowhere.localhost", "token"},
		{"", "token"},
		{"..", "token"},
		{"[::1]", "token"},
		{"under_score.localhost", "token"},
		{strings.Repeat("a", 300) + ".localhost", "token"},
		{"acme/spine-challenges/web.localhost.json", "token"},
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range cases {
		req, err := http.NewRequest(http.MethodGet, "http://"+s.n.HTTPAddr()+"/.well-known/acme-challenge/"+tc.token, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("Host %q, token %q: %v", tc.host, tc.token, err)
			continue
		}
		resp.Body.Close()
		want := http.StatusNotFound
		if tc.host == "web.localhost" {
			want = http.StatusPermanentRedirect // served: to HTTPS, as any other path
		}
		if resp.StatusCode != want && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Host %q, token %q: status %d, want %d (or 400)", tc.host, tc.token, resp.StatusCode, want)
		}
	}
}
