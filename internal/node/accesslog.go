package node

import (
	"fmt"
	"strconv"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/node/config"
)

// openAccessLog opens Config.AccessLog, if any (nil: none); a file that
// cannot be opened is a *FieldError of AccessLog.
func (n *Node) openAccessLog() error {
	l, err := accesslog.Open(n.cfg.AccessLog, accesslog.Config{Format: n.cfg.AccessLogFormat, Logger: n.log})
	if err != nil {
		return &config.FieldError{Field: "AccessLog", Value: strconv.Quote(n.cfg.AccessLog), Err: fmt.Errorf("%w; give a file Spine may append to, stderr or off", err)}
	}
	n.accessLog = l
	return nil
}

// ReopenAccessLog opens the access log's file again, after logrotate moved
// it (spine does on SIGUSR1). Without a file there is nothing to do.
func (n *Node) ReopenAccessLog() error { return n.accessLog.Reopen() }

// AccessLogStats returns the access log's counts of lines written, dropped
// (the writer was behind) and lost to failed writes; zero without one.
func (n *Node) AccessLogStats() accesslog.Stats { return n.accessLog.Stats() }
