package metrics

// Counts are the counters the node's parts keep for themselves (the access
// log, the event hub, the webhook sender, the certificate manager's event
// queue), read at each scrape; Values turns them into the series
// Sources.Counters returns.
type Counts struct {
	AccessLogLines, AccessLogDropped, AccessLogFailed uint64
	EventStreams                                      int
	EventStreamEvents, EventStreamsDropped            uint64
	WebhookAttempts, WebhookDeliveries                uint64
	WebhookRetries, WebhookFailures                   uint64
	WebhookEndpointsDisabled                          uint64
	CertificateEventsQueued                           int
	CertificateEventsDropped                          uint64
	// The warm-up (a node serving while its first sync runs): the names
	// read from the store one at a time, by answer, and how long the
	// first sync took (0 without a warm-up, or until it is applied).
	WarmLookupsRouted, WarmLookupsUnrouted uint64
	WarmLookupsRefused, WarmLookupsFailed  uint64
	FirstSyncSeconds                       float64
	// The periodic checks of every service against what the node applied
	// (a write behind Spine's back), and those that found one.
	StoreChecks, StoreChecksDiffered uint64
	// How long background work (the snapshot's write, the start's sealing
	// of plaintext secrets) waited for handshakes loading certificates
	// from the store (sched.HoldOff).
	BackgroundHeldSeconds float64
}

// Values are c's series: their names, help texts and kinds.
func (c Counts) Values() []Value {
	return []Value{
		{Name: "spine_access_log_lines_total", Help: "Access log lines written (0 without an access log).", Counter: true, V: float64(c.AccessLogLines)},
		{Name: "spine_access_log_lines_dropped_total", Help: "Access log lines dropped because the writer was behind (a slow disk, a blocked pipe); the requests were served.", Counter: true, V: float64(c.AccessLogDropped)},
		{Name: "spine_access_log_lines_failed_total", Help: "Access log lines lost to a failed write (a full disk).", Counter: true, V: float64(c.AccessLogFailed)},
		{Name: "spine_event_streams", Help: "Open event streams (GET /v1/events/stream).", V: float64(c.EventStreams)},
		{Name: "spine_event_stream_events_total", Help: "Events handed to event streams.", Counter: true, V: float64(c.EventStreamEvents)},
		{Name: "spine_event_streams_dropped_total", Help: "Event streams dropped because their client read too slowly.", Counter: true, V: float64(c.EventStreamsDropped)},
		{Name: "spine_webhook_attempts_total", Help: "Webhook delivery attempts made by this node.", Counter: true, V: float64(c.WebhookAttempts)},
		{Name: "spine_webhook_deliveries_total", Help: "Webhook deliveries that succeeded (2xx).", Counter: true, V: float64(c.WebhookDeliveries)},
		{Name: "spine_webhook_retries_total", Help: "Webhook attempts that failed and will be retried.", Counter: true, V: float64(c.WebhookRetries)},
		{Name: "spine_webhook_failures_total", Help: "Webhook deliveries given up (retries exhausted, or 410).", Counter: true, V: float64(c.WebhookFailures)},
		{Name: "spine_webhook_endpoints_disabled_total", Help: "Webhook endpoints this node disabled for failing.", Counter: true, V: float64(c.WebhookEndpointsDisabled)},
		{Name: "spine_certificate_events_queued", Help: "Certificate events waiting to be written to the store.", V: float64(c.CertificateEventsQueued)},
		{Name: "spine_warmup_lookups_routed_total", Help: "Names read from the store during the warm-up (serving while the first sync runs) that it routes.", Counter: true, V: float64(c.WarmLookupsRouted)},
		{Name: "spine_warmup_lookups_unrouted_total", Help: "Names read from the store during the warm-up that it does not route (unknown, or not served).", Counter: true, V: float64(c.WarmLookupsUnrouted)},
		{Name: "spine_warmup_lookups_refused_total", Help: "Names refused during the warm-up without reading the store: not a hostname, or every look-up slot busy for too long.", Counter: true, V: float64(c.WarmLookupsRefused)},
		{Name: "spine_warmup_lookups_failed_total", Help: "Names whose read from the store failed during the warm-up.", Counter: true, V: float64(c.WarmLookupsFailed)},
		{Name: "spine_first_sync_seconds", Help: "How long the first sync took after a warm-up began (0 without a warm-up, or until it is applied).", V: c.FirstSyncSeconds},
		{Name: "spine_store_checks_total", Help: "Periodic checks of every service in the store against what this node applied, one service at a time (every 10 resync intervals while nothing changed).", Counter: true, V: float64(c.StoreChecks)},
		{Name: "spine_store_checks_differed_total", Help: "Periodic checks that found the store holding something else than what was applied (a write behind Spine's back): every service was then read and applied.", Counter: true, V: float64(c.StoreChecksDiffered)},
		{Name: "spine_background_held_seconds_total", Help: "Seconds background work (the snapshot's write, the start's sealing of plaintext secrets) waited while handshakes loaded certificates from the store.", Counter: true, V: c.BackgroundHeldSeconds},
		{Name: "spine_certificate_events_dropped_total", Help: "Certificate events dropped from a full queue (store away too long).", Counter: true, V: float64(c.CertificateEventsDropped)},
	}
}
