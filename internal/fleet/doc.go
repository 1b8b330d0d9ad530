// Package fleet holds what lets several Spine nodes share one store, and
// each of them keep serving while the store is away:
//
//   - membership.go: the node's stable ID, its heartbeat and the fleet's
//     node list (kept as last read, for when the store is away);
//   - health.go: whether the store answered the last operation;
//   - tickets.go: the TLS session-ticket keys the nodes share through the
//     store, rotated by one node at a time under a lease lock;
//   - snapshot.go, snapshotfolder.go, snapshotwriter.go: the fail-static
//     snapshot in the data folder (the services of the last sync, the
//     certificates in memory, the ticket keys, the hashes of the API tokens
//     seen), a folder of parts named by their content under a manifest
//     written last; its reader, and its writer that writes only the parts
//     that changed;
//   - published.go: what a node publishes for its names (the delegation
//     zone's HTTPS records, the API's ECH): ALPN and ECH's configuration;
//   - prepare.go: the start-up work that needs the store (key file, default
//     project and admin token, domain, internal CA), once, retried while a
//     node serves its snapshot.
//   - node.go: a node's fleet part as one value (Node): the data folder,
//     its ID, the store or the snapshot to start from (Join), and the
//     parts above built (Build) and run (Run) together.
//
// Each part works on the narrow store interface it needs, defined where it
// is used; *store.DB satisfies them all. The node builds the parts, hands
// them the edge's and the certificate manager's functions, and runs them.
//
// Package fleet may import store (records, errors), platform (secret files,
// the bootstrap), ca (the internal CA Prepare loads) and client (the node
// list's type); what it needs of node, api, edge and certs comes in as
// functions or small interfaces.
//
// Imports: never internal/node, internal/api, internal/edge, internal/certs.
package fleet
