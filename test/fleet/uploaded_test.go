package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/poll"
)

// A certificate uploaded through one node is served by every node (the
// change notice, not the resync), with its intermediate; `cert list` on
// another node shows it uploaded. Removed through a third node, every node
// goes back to a managed certificate, and no handshake fails meanwhile.
func TestUploadedCertificateFleetWide(t *testing.T) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleetArgs(t, dsn, 3, []string{"--resync-interval", "1h"})
	host := "byo." + Domain
	if _, err := f.nodes[0].client().CreateService(ctx, client.ServiceCreate{Name: "byo", Upstreams: []string{upstream(t, "byo-upstream")}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, "managed certificate on "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "byo-upstream") })
	}

	pki := pkitest.NewRoot("Fleet Customer Root")
	issuing := pki.Intermediate("Fleet Customer Issuing CA")
	leaf := issuing.Issue(pkitest.Leaf{DNSNames: []string{host}})
	if _, err := f.nodes[1].client().UploadCertificate(ctx, host, client.CertificateUpload{
		Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM), Root: string(pki.RootPEM())}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, "uploaded certificate on "+nd.name, time.Minute, func() error {
			got, err := nd.leaf(pki.Pool(), host) // verified with the intermediate the node sends
			if err != nil {
				return err
			}
			if !got.Equal(leaf.Cert) {
				return fmt.Errorf("%s serves %s's certificate", nd.name, got.Issuer.CommonName)
			}
			return nd.serves(pki.Pool(), host, "byo-upstream")
		})
	}
	certs, err := f.nodes[2].client().Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, c := range certs {
		if c.Hostname == host {
			listed = c.Status == "uploaded" && c.Issuer == "Fleet Customer Issuing CA" && c.NotAfter != nil && c.NotAfter.Equal(leaf.Cert.NotAfter)
		}
	}
	if !listed {
		t.Errorf("cert list on node3 does not show %s uploaded: %+v", host, certs)
	}

	if err := f.nodes[2].client().RemoveCertificate(ctx, host); err != nil {
		t.Fatal(err)
	}
	caPEM, err := f.nodes[0].client().CARoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	both := pki.Pool()
	if !both.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA root")
	}
	for _, nd := range f.nodes {
		poll.Until(t, "managed certificate again on "+nd.name, time.Minute, func() error {
			got, err := nd.leaf(both, host)
			if err != nil {
				return poll.Stop(fmt.Errorf("a handshake failed after the removal: %w", err))
			}
			if got.Equal(leaf.Cert) {
				return fmt.Errorf("%s still serves the uploaded certificate", nd.name)
			}
			return nd.serves(f.root, host, "byo-upstream")
		})
	}
}
