package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/hostname"
)

// echRecordTTL is the TTL of the printed HTTPS records: short, as the
// configuration rotates every day.
const echRecordTTL = 300

func newECHCmd(g *globals) *cobra.Command {
	ech := &cobra.Command{Use: "ech", Short: "Encrypted Client Hello"}
	ech.AddCommand(&cobra.Command{
		Use:   "config [HOSTNAME...]",
		Short: "Print the HTTPS records (with ech=) to publish at another DNS provider, for HOSTNAMEs or every hostname of the project's services",
		Long: `Print, in zone-file form, the HTTPS record of each HOSTNAME (default: every hostname of
the project's services) with the server's current ECH configuration and its ALPN protocols
(h3 when HTTP/3 is on, h2), for a DNS provider other than Spine's own DNS server (which answers
these records by itself). The configuration changes every day; a client holding an older one
still connects (the server sends it the current one to retry with), but publish the new record
to spare it that round trip.`,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			names := make([]string, 0, len(args))
			for _, a := range args {
				n, err := hostname.Normalize(a)
				if err != nil {
					return fmt.Errorf("%q: %w; give a hostname, e.g. app.example.com", a, err)
				}
				names = append(names, n)
			}
			info, err := c.ECH(ctx)
			if err != nil {
				return err
			}
			if len(names) == 0 {
				svcs, err := c.Services(ctx)
				if err != nil {
					return err
				}
				for _, s := range svcs {
					names = append(names, s.Hostnames...)
				}
			}
			if g.output == "json" {
				return g.print(cmd.OutOrStdout(), info, nil)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "; ECH public name %s: clients show it on the wire; it has a certificate of its own\n", info.PublicName)
			if len(names) == 0 {
				fmt.Fprintln(w, "; the project serves no hostname yet: give HOSTNAMEs, or add a service")
			}
			rec := dnsserver.HTTPSRecord{ALPN: info.ALPN, ECH: info.ConfigList}
			for _, n := range names {
				fmt.Fprintln(w, strings.ReplaceAll(rec.RR(n+".", echRecordTTL).String(), "\t", " "))
			}
			return nil
		}),
	})
	return ech
}
