package daemon

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/reader"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// recorder is an observer that writes down what it is told, in a log
// shared with the others.
type recorder struct {
	name string
	log  *[]string
	mu   *sync.Mutex
}

func (r recorder) note(what string) {
	r.mu.Lock()
	*r.log = append(*r.log, r.name+" "+what)
	r.mu.Unlock()
}

func (r recorder) ReaderEvent(ev reader.Event) { r.note("event " + ev.Reader) }
func (r recorder) Balance(res tap.Result)      { r.note("balance " + res.Reader) }
func (r recorder) Leave(res tap.Result)        { r.note("leave " + res.Reader) }
func (r recorder) Tap(res tap.Result)          { r.note("tap " + res.Reader) }

func recorders(names ...string) (fanOut, *[]string, *sync.Mutex) {
	var log []string
	mu := new(sync.Mutex)
	var f fanOut
	for _, n := range names {
		f = append(f, recorder{name: n, log: &log, mu: mu})
	}
	return f, &log, mu
}

// The fan-out set on the runner tells every observer of each call, in the
// order of the list, one call after the other.
func TestFanOutOrder(t *testing.T) {
	f, log, _ := recorders("a", "b", "c")
	r := &tap.Runner{}
	(&Daemon{runner: r}).observe(f)
	r.OnEvent(reader.Event{Reader: "R1"})
	r.OnBalance(tap.Result{Reader: "R1"})
	r.OnLeave(tap.Result{Reader: "R1"})
	r.OnTap(tap.Result{Reader: "R1"})
	want := "a event R1,b event R1,c event R1,a balance R1,b balance R1,c balance R1,a leave R1,b leave R1,c leave R1,a tap R1,b tap R1,c tap R1"
	if got := strings.Join(*log, ","); got != want {
		t.Errorf("told %s\nwant %s", got, want)
	}
}

// The daemon's list, in its documented order: the sync kick (with a host
// link only), then the API's event stream, then the metrics. Each tap goes
// to all three, as the chained hooks did.
func TestDaemonObserversInOrder(t *testing.T) {
	m := metrics.New(metrics.Gauges{})
	d := &Daemon{runner: &tap.Runner{}, api: &localapi.Server{}, metrics: m}
	if got := fmt.Sprintf("%T", d.observers()); got != "daemon.fanOut" {
		t.Fatalf("observers: %s", got)
	}
	names := func(f fanOut) string {
		var s []string
		for _, o := range f {
			s = append(s, fmt.Sprintf("%T", o))
		}
		return strings.Join(s, ",")
	}
	if got, want := names(d.observers()), "daemon.apiEvents,daemon.tapMetrics"; got != want {
		t.Errorf("without a host: %s, want %s", got, want)
	}
	d.link = &hostLink{syncer: &hostsync.Syncer{}}
	if got, want := names(d.observers()), "daemon.syncKick,daemon.apiEvents,daemon.tapMetrics"; got != want {
		t.Errorf("with a host: %s, want %s", got, want)
	}
}

// A panicking observer is not caught (the daemon stops, as a panicking hook
// always stopped it), and the observers after it are not told.
func TestFanOutPanicPropagates(t *testing.T) {
	f, log, _ := recorders("a")
	f = append(f, panicker{})
	more, _, _ := recorders("c")
	f = append(f, more...)
	defer func() {
		if recover() == nil {
			t.Error("the panic was swallowed")
		}
		if got := strings.Join(*log, ","); got != "a tap R1" {
			t.Errorf("told before the panic: %q, want a alone", got)
		}
	}()
	f.Tap(tap.Result{Reader: "R1"})
}

type panicker struct{ ignore }

func (panicker) Tap(tap.Result) { panic("observer failed") }

// A slow observer holds the tap loop up (the runner calls the fan-out on
// its goroutine): the observer after it is told only once it returns, and
// the fan-out returns after both.
func TestFanOutWaitsForASlowObserver(t *testing.T) {
	f, log, mu := recorders("a")
	entered, release := make(chan struct{}), make(chan struct{})
	f = append(f, slow{entered: entered, release: release})
	f = append(f, recorder{name: "c", log: log, mu: mu})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Tap(tap.Result{Reader: "R1"})
	}()
	<-entered
	mu.Lock()
	told := strings.Join(*log, ",")
	mu.Unlock()
	select {
	case <-done:
		t.Error("the fan-out returned while an observer was still busy")
	default:
	}
	if told != "a tap R1" {
		t.Errorf("told while the slow observer works: %q, want a alone", told)
	}
	close(release)
	<-done
	if got := strings.Join(*log, ","); got != "a tap R1,c tap R1" {
		t.Errorf("told: %q, want a then c", got)
	}
}

type slow struct {
	ignore
	entered, release chan struct{}
}

func (s slow) Tap(tap.Result) {
	close(s.entered)
	<-s.release
}
