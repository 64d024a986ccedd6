package daemon

import (
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/tap"
)

// hookAPI feeds the API and the metrics from the tap runner, after the
// hooks already set.
func hookAPI(api *localapi.Server, m *metrics.Metrics, runner *tap.Runner) {
	runner.OnAPDU = m.APDU
	roles := runner.Roles
	prevEvent, prevBalance, prevTap := runner.OnEvent, runner.OnBalance, runner.OnTap
	runner.OnEvent = func(ev reader.Event) {
		if prevEvent != nil {
			prevEvent(ev)
		}
		api.ReaderEvent(ev, roles.Of(ev.Reader).String())
	}
	runner.OnBalance = func(res tap.Result) {
		if prevBalance != nil {
			prevBalance(res)
		}
		api.Balance(res)
	}
	runner.OnTap = func(res tap.Result) {
		if prevTap != nil {
			prevTap(res)
		}
		api.Tap(res)
		m.Tap(string(res.Outcome()), res.ToDone)
		if res.Load != nil {
			for _, l := range res.Load.Loads {
				if l.Applied {
					m.Load("applied")
				} else {
					m.Load("refused")
				}
			}
			for _, r := range res.Load.Recovered {
				if r.Applied {
					m.Load("recovered_applied")
				} else {
					m.Load("recovered_not_applied")
				}
			}
		}
	}
}
