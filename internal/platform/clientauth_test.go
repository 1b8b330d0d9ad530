package platform

import (
	"context"
	"testing"

	"github.com/spine-platform/spine/internal/pkitest"
)

func TestServiceClientAuth(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	if _, err := p.AddDomain(ctx, "p1", "example.com", true); err != nil {
		t.Fatal(err)
	}
	ca := string(pkitest.NewRoot("Clients").RootPEM())
	ups := []string{"http://10.0.0.1:80"}
	for _, tc := range []struct {
		ca, mode, code, text string
	}{
		{"", "require", "invalid_client_auth", "needs client_ca"},
		{"not pem", "", "invalid_client_ca", "no PEM certificate"},
		{"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n", "", "invalid_client_ca", "only CERTIFICATE blocks"},
		{ca, "sometimes", "invalid_client_auth", "require or optional"},
	} {
		_, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "x", Upstreams: ups, ClientCA: tc.ca, ClientAuth: tc.mode})
		wantCode(t, err, tc.code, tc.text)
	}
	svc, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "api", Upstreams: ups, ClientCA: ca})
	if err != nil || svc.ClientAuth != ClientAuthRequire || svc.ClientCA != ca {
		t.Fatalf("create with a client CA: %+v %v", svc, err)
	}
	opt := ClientAuthOptional
	if svc, err = p.UpdateService(ctx, "p1", "api", ServiceUpdate{ClientAuth: &opt}); err != nil || svc.ClientAuth != opt || svc.ClientCA != ca {
		t.Fatalf("to optional: %+v %v", svc, err)
	}
	off := ClientAuthOff
	if svc, err = p.UpdateService(ctx, "p1", "api", ServiceUpdate{ClientAuth: &off}); err != nil || svc.ClientAuth != "" || svc.ClientCA != "" {
		t.Fatalf("off: %+v %v", svc, err)
	}
	req := ClientAuthRequire
	_, err = p.UpdateService(ctx, "p1", "api", ServiceUpdate{ClientAuth: &req})
	wantCode(t, err, "invalid_client_auth", "no client CA")
	if svc, err = p.UpdateService(ctx, "p1", "api", ServiceUpdate{ClientCA: &ca}); err != nil || svc.ClientAuth != ClientAuthRequire {
		t.Fatalf("a CA again: %+v %v", svc, err)
	}
	bad := "nope"
	_, err = p.UpdateService(ctx, "p1", "api", ServiceUpdate{ClientCA: &bad})
	wantCode(t, err, "invalid_client_ca", "no PEM")
}
