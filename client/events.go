package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Events returns a page of the project's events with an ID above after,
// oldest first; limit 0 asks for the server's default page.
func (c *Client) Events(ctx context.Context, after int64, limit int) (EventPage, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p EventPage
	return p, c.do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &p)
}

// Stream bounds.
const (
	// streamIdle is how long a stream may stay silent (the server sends a
	// comment every 15 s) before the client takes it for dead and reconnects.
	streamIdle = time.Minute
	// maxStreamLine bounds one line of the stream.
	maxStreamLine = 1 << 20
)

// StreamEvents follows the project's events as they are recorded, from the
// one after after (after < 0: from the next one recorded), and calls handle
// for each, in order. It reconnects when the stream breaks, resuming after
// the last event handled, so handle sees each event once. It returns when
// ctx ends (nil) or handle returns an error (that error); an error answer
// of the API (bad token, too many streams) is returned as well.
func (c *Client) StreamEvents(ctx context.Context, after int64, handle func(Event) error) error {
	httpc := &http.Client{Transport: c.HTTP.Transport} // no overall timeout: the stream is long; streamIdle bounds silence
	retry := 2 * time.Second
	for {
		err := c.streamOnce(ctx, httpc, &after, &retry, handle)
		var hErr handlerError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &hErr):
			return hErr.err
		}
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status != http.StatusServiceUnavailable {
			return err
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

func (c *Client) streamOnce(ctx context.Context, httpc *http.Client, after *int64, retry *time.Duration, handle func(Event) error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/v1/events/stream"
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *after >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*after, 10))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return fmt.Errorf("spine API at %s is not answering: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), "the API answered "+resp.Status
		}
		return e
	}
	// Silence for streamIdle ends the connection.
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	var (
		id   string
		data strings.Builder
	)
	for sc.Scan() {
		idle.Reset(streamIdle)
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 && id != "" {
				// The stream's start, before any event: resume there.
				if n, err := strconv.ParseInt(id, 10, 64); err == nil && n >= 0 && n > *after {
					*after = n
				}
			}
			if data.Len() > 0 {
				var e Event
				if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
					return fmt.Errorf("event stream: event %s: %w", id, err)
				}
				data.Reset()
				if e.ID > *after || *after < 0 {
					if err := handle(e); err != nil {
						return handlerError{err}
					}
					*after = e.ID
				}
			}
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			case "retry":
				if ms, err := strconv.Atoi(value); err == nil && ms > 0 && ms <= 60_000 {
					*retry = time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
