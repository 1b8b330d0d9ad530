// Package docs holds the documentation's checked artefacts; its tests run
// the tools that check them.
package docs

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAlertRules checks docs/alerts.yml with promtool (Prometheus's own
// checker: syntax, PromQL, templates) and runs its unit tests,
// docs/alerts_test.yml, which feed each rule series and assert when it
// fires and with which labels and text.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus; .ci/run does this)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
