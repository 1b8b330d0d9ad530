package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// ZoneConfig configures a Zone. It is not changed once handed to NewZone.
type ZoneConfig struct {
	// KV holds the records (a KVStore) and the delegation state
	// (Delegations); a *store.DB. Required.
	KV DelegationKV
	// Zone is the delegation zone, e.g. "acme.spine.example.net". Required.
	Zone string
	// Resolver looks up the delegation CNAMEs ("host:port"). Default: the
	// first server of /etc/resolv.conf.
	Resolver string
	// HTTPS: see Config.HTTPS. Default: no HTTPS records.
	HTTPS func(name string) (HTTPSRecord, bool)
	// Logger: see Config.Logger. Default: discarded.
	Logger *slog.Logger
}

// Zone is a node's delegation zone: the fleet's Delegations, the DNS-01
// Solver writing into the records every node answers from, and the
// authoritative Server of the zone. NewZone builds it; Start loads the
// fleet's delegation key, Listen opens the sockets, Serve answers until
// Shutdown.
type Zone struct {
	cfg         ZoneConfig
	records     *KVStore
	delegations *Delegations
	solver      *Solver
	srv         *Server
	udp         net.PacketConn
	tcp         net.Listener
}

// keyLoadTimeout bounds Start's wait for the fleet's delegation key.
const keyLoadTimeout = 30 * time.Second

// NewZone returns the delegation zone of cfg; nothing is read or opened
// until Start.
func NewZone(cfg ZoneConfig) *Zone {
	z := &Zone{cfg: cfg, records: &KVStore{KV: cfg.KV}, delegations: NewDelegations(cfg.KV, cfg.Zone, cfg.Resolver)}
	z.solver = &Solver{Records: z.records, Target: z.delegations.SolverTarget}
	return z
}

// Delegations is the zone's delegation state (targets, checks, the
// domains seen delegated).
func (z *Zone) Delegations() *Delegations { return z.delegations }

// Solver is the zone's DNS-01 solver (an acmez.Solver).
func (z *Zone) Solver() *Solver { return z.solver }

// Start loads the fleet's delegation key (made under a lock by the first
// node; it waits at most 30 s) and builds the zone's server.
func (z *Zone) Start(ctx context.Context) error {
	kctx, cancel := context.WithTimeout(ctx, keyLoadTimeout)
	err := z.delegations.LoadKey(kctx)
	cancel()
	if err != nil {
		return fmt.Errorf("loading the DNS-01 delegation key: %w", err)
	}
	z.srv, err = New(Config{Zone: z.cfg.Zone, Records: z.records, HTTPS: z.cfg.HTTPS, Logger: z.cfg.Logger})
	return err
}

// Listen opens the server's UDP socket and TCP listener on one port of
// addr (the package's Listen), after Start.
func (z *Zone) Listen(addr string) error {
	var err error
	z.udp, z.tcp, err = Listen(addr)
	return err
}

// Serve answers on the sockets Listen opened until Shutdown; it returns
// nil after Shutdown.
func (z *Zone) Serve() error {
	if err := z.srv.Serve(z.udp, z.tcp); !errors.Is(err, ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, waiting at most 5 s for the queries it is
// answering.
func (z *Zone) Shutdown() {
	if z.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	z.srv.Shutdown(ctx)
}

// Addr is the address of the server's UDP socket, "" before Listen.
func (z *Zone) Addr() string {
	if z.udp == nil {
		return ""
	}
	return z.udp.LocalAddr().String()
}
