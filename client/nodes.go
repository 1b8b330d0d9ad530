package client

import (
	"context"
	"net/http"
	"time"
)

// Node is one Spine node of a fleet (GET /v1/nodes). It holds no secrets.
type Node struct {
	ID        string    `json:"id"`
	Version   string    `json:"version"`
	HTTPSAddr string    `json:"https_addr"`
	HTTPAddr  string    `json:"http_addr"`
	APIAddr   string    `json:"api_addr"`
	StartedAt time.Time `json:"started_at"`
	// LastHeartbeat is when the node last reported to the store (the
	// store's clock); nil if the list could not be read from the store.
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	// SinceHeartbeat is how long ago that was, as a Go duration ("1.2s").
	SinceHeartbeat string `json:"since_heartbeat,omitempty"`
	// StoreConnected: the node reported recently, so it reaches the store.
	StoreConnected bool `json:"store_connected"`
	// Self marks the node that answered.
	Self bool `json:"self,omitempty"`
}

// StaleWarning is the Warning header of an answer read from a node's last
// known state because the store is unreachable: it may be out of date.
const StaleWarning = `110 - "store unreachable; data may be stale"`

// Nodes lists the nodes of the fleet. Only the default (operator)
// project's token may list them.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out struct{ Nodes []Node }
	return out.Nodes, c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
}
