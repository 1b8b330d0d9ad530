package edge

import (
	"errors"
	"strings"
	"testing"
)

// ECHName: the name given, else ech.<domain>, normalised; none without
// either, with ECH off, or for a name that is no hostname.
func TestSettingsECHName(t *testing.T) {
	for _, c := range []struct {
		s            Settings
		domain, want string
	}{
		{Settings{}, "", ""},
		{Settings{}, "Example.COM", "ech.example.com"},
		{Settings{ECHPublicName: "Outer.Example.NET"}, "example.com", "outer.example.net"},
		{Settings{ECHPublicName: "bad..name"}, "example.com", ""},
		{Settings{DisableECH: true, ECHPublicName: "outer.example.net"}, "example.com", ""},
	} {
		if got := c.s.ECHName(c.domain); got != c.want {
			t.Errorf("%+v.ECHName(%q) = %q, want %q", c.s, c.domain, got, c.want)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := (Settings{}).Validate(); err != nil {
		t.Fatalf("the zero Settings: %v", err)
	}
	for _, tc := range []struct {
		s           Settings
		field, hint string
	}{
		{Settings{HTTPSAddr: "nonsense"}, "HTTPSAddr", "HOST:PORT"},
		{Settings{HTTPAddr: ":+80"}, "HTTPAddr", "port from 0 to 65535"},
		{Settings{ECHPublicName: "bad..name"}, "ECHPublicName", "ech.example.com"},
	} {
		var se *SettingsError
		if err := tc.s.Validate(); !errors.As(err, &se) || se.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%+v.Validate() = %v, want field %s and %q", tc.s, err, tc.field, tc.hint)
		}
	}
}
