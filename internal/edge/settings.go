package edge

import (
	"fmt"
	"strconv"

	"github.com/spine-platform/spine/internal/hostname"
)

// Defaults of Settings.
const (
	DefaultHTTPSAddr = ":443"
	DefaultHTTPAddr  = ":80"
)

// Settings are the operator's settings of the edge: where it listens,
// HTTP/3 and Encrypted Client Hello. A node's Config embeds them, so their
// paths there are their names ("HTTPSAddr"). The zero value of each field
// stands for its default.
type Settings struct {
	// HTTPSAddr and HTTPAddr are the listen addresses. Defaults ":443"
	// and ":80".
	HTTPSAddr, HTTPAddr string
	// DisableHTTP3 turns HTTP/3 off. Default: HTTP/3 (QUIC) is served on
	// the HTTPS port over UDP and advertised with Alt-Svc.
	DisableHTTP3 bool
	// DisableECH turns Encrypted Client Hello off. Default: on, when
	// there is a public name (ECHPublicName, or the node's domain).
	DisableECH bool
	// ECHPublicName is the name clients show on the wire (the outer SNI)
	// when they use ECH; it is served with a certificate of its own, so
	// that a client with a stale configuration gets the current one.
	// Every node of a fleet must use the same. Default: "ech." + the
	// node's domain; with neither, ECH is off.
	ECHPublicName string
}

// SettingsError is a field of Settings that Validate refuses.
type SettingsError struct {
	Field string // the field's name, e.g. "HTTPSAddr"
	Value string // the refused value, quoted; "" when not shown
	Err   error  // what is wrong and what to give instead
}

func (e *SettingsError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("edge: %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("edge: %s %s: %v", e.Field, e.Value, e.Err)
}

func (e *SettingsError) Unwrap() error { return e.Err }

// Validate reports the first field of s that the edge would refuse, as a
// *SettingsError; a zero field is valid.
func (s Settings) Validate() error {
	for _, a := range []struct{ field, addr string }{{"HTTPSAddr", s.HTTPSAddr}, {"HTTPAddr", s.HTTPAddr}} {
		if err := hostname.CheckListenAddr(a.addr); a.addr != "" && err != nil {
			return &SettingsError{Field: a.field, Value: strconv.Quote(a.addr), Err: err}
		}
	}
	if s.ECHPublicName != "" {
		if _, err := hostname.Normalize(s.ECHPublicName); err != nil {
			return &SettingsError{Field: "ECHPublicName", Err: fmt.Errorf("%w; give a name clients may show in the clear, e.g. ech.example.com", err)}
		}
	}
	return nil
}

// ECHName is the public name of Encrypted Client Hello (the outer SNI):
// ECHPublicName, else "ech." under domain, normalised; "" (ECH off) with
// DisableECH, with neither name, or for a name that is no hostname.
func (s Settings) ECHName(domain string) string {
	name := s.ECHPublicName
	if s.DisableECH {
		return ""
	}
	if name == "" && domain != "" {
		name = "ech." + domain
	}
	if name == "" {
		return ""
	}
	n, err := hostname.Normalize(name)
	if err != nil {
		return ""
	}
	return n
}
