package hostname

import (
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "1": 1, "443": 443, "08443": 8443, "65535": 65535} {
		if got, err := ParsePort(in); err != nil || got != want {
			t.Errorf("ParsePort(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for in, errHas := range map[string]string{
		"": "empty", "65536": "above 65535", "99999999999999999999": "above 65535",
		"-1": "not a number", "+80": "not a number", "http": "not a number", "8 0": "not a number", "0x50": "not a number",
	} {
		if _, err := ParsePort(in); err == nil || !strings.Contains(err.Error(), errHas) {
			t.Errorf("ParsePort(%q) = %v, want an error mentioning %q", in, err, errHas)
		}
	}
}
