package host

import (
	"context"
	"database/sql"
	gosync "sync"
	"time"
)

// MaxPullWait is the longest the host holds a pull that asked to wait
// (hostapi.PullRequest.WaitMS is cut to it): under cardhost serve's write
// timeout, and under the minute after which proxies commonly drop an idle
// request.
const MaxPullWait = 25 * time.Second

// feedPoll is how often a host process looks at the end of the change feed
// while a pull waits: a change another process wrote (`cardhost credit
// add`, a second `cardhost serve` on the same file) reaches the waiting
// terminals within it. A change this process writes wakes them at once.
const feedPoll = 200 * time.Millisecond

// feed tells the pulls held in this process that the change feed has grown.
// One watcher goroutine per Store reads the feed's last seq, once per
// feedPoll and once after each of the Store's own commits, and only while
// some pull waits: one query per tick however many terminals wait.
type feed struct {
	db   *sql.DB
	poll time.Duration

	mu       gosync.Mutex
	last     int64         // the highest seq the watcher has seen
	grew     chan struct{} // closed when last grows, then replaced
	waiters  int
	watching bool

	poked  chan struct{} // this process committed a write
	closed chan struct{} // the Store is closed
	close  gosync.Once
}

func newFeed(db *sql.DB) *feed {
	return &feed{db: db, poll: feedPoll, grew: make(chan struct{}), poked: make(chan struct{}, 1), closed: make(chan struct{})}
}

// poke has the watcher, if one runs, read the feed now: this process has
// just committed something that may be a change.
func (f *feed) poke() {
	select {
	case f.poked <- struct{}{}:
	default:
	}
}

// shut ends every wait and the watcher; the Store is closing.
func (f *feed) shut() { f.close.Do(func() { close(f.closed) }) }

// wait returns true once the feed holds a change after seq `after`, false
// when d has passed, ctx ended or stop closed first.
func (f *feed) wait(ctx context.Context, after int64, d time.Duration, stop <-chan struct{}) bool {
	f.mu.Lock()
	f.waiters++
	if !f.watching {
		f.watching = true
		go f.watch()
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiters--
		f.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		f.mu.Lock()
		last, grew := f.last, f.grew
		f.mu.Unlock()
		if last > after {
			return true
		}
		select {
		case <-grew:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		case <-f.closed:
			return false
		}
	}
}

// watch reads the feed's last seq while anyone waits and wakes them all
// when it grew. A failed read wakes nobody: the waits end at their time
// and the terminals ask again.
func (f *feed) watch() {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		var last int64
		err := f.db.QueryRow(`SELECT coalesce(max(seq), 0) FROM changes`).Scan(&last)
		f.mu.Lock()
		if err == nil && last > f.last {
			f.last = last
			close(f.grew)
			f.grew = make(chan struct{})
		}
		if f.waiters == 0 {
			f.watching = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		select {
		case <-t.C:
		case <-f.poked:
		case <-f.closed:
			f.mu.Lock()
			f.watching = false
			f.mu.Unlock()
			return
		}
	}
}
