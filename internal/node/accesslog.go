package node

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spine-platform/spine/internal/accesslog"
)

// Values of Config.AccessLog other than a file's path.
const (
	AccessLogOff    = "off"
	AccessLogStderr = "stderr"
)

// openAccessLog opens Config.AccessLog, if any; a file that cannot be
// opened is a *FieldError of AccessLog.
func (n *Node) openAccessLog() error {
	switch where := n.cfg.AccessLog; where {
	case "", AccessLogOff:
		return nil
	case AccessLogStderr:
		n.accessLog = accesslog.New(os.Stderr, n.accessLogConfig())
	default:
		l, err := accesslog.OpenFile(where, n.accessLogConfig())
		if err != nil {
			return &FieldError{Field: "AccessLog", Value: strconv.Quote(where), Err: fmt.Errorf("%w; give a file Spine may append to, stderr or off", err)}
		}
		n.accessLog = l
	}
	return nil
}

func (n *Node) accessLogConfig() accesslog.Config {
	return accesslog.Config{Format: n.cfg.AccessLogFormat, Logger: n.log}
}

// accessLogFunc is the edge's Config.AccessLog: nil without an access log,
// so that the edge makes no entries.
func (n *Node) accessLogFunc() func(*accesslog.Entry) {
	if n.accessLog == nil {
		return nil
	}
	return n.accessLog.Log
}

// ReopenAccessLog opens the access log's file again, after logrotate moved
// it (spine does on SIGUSR1). Without a file there is nothing to do.
func (n *Node) ReopenAccessLog() error {
	if n.accessLog == nil {
		return nil
	}
	return n.accessLog.Reopen()
}

// AccessLogStats returns the access log's counts of lines written, dropped
// (the writer was behind) and lost to failed writes; zero without one.
func (n *Node) AccessLogStats() accesslog.Stats {
	if n.accessLog == nil {
		return accesslog.Stats{}
	}
	return n.accessLog.Stats()
}
