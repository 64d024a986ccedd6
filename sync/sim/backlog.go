package sim

import (
	"context"
	"time"

	hostsync "github.com/cardd/cardd/sync"
)

// KindBacklog names the uploads of the backlog terminal, kept apart from
// the fleet's journal uploads so that each has its own latencies.
const KindBacklog = "backlog"

// Backlog is a terminal back after a long time offline (a busy canteen POS
// after a week: 5,000 rows): as the run starts it uploads Rows journal rows
// in batches of BatchSize, each as soon as the last is acked, as the
// daemon's upload loop does, while the fleet keeps its rate.
type Backlog struct {
	// Terminal is its identity, registered like the fleet's but not one
	// of Config.Terminals.
	Terminal Terminal
	Rows     int
	// BatchSize is the rows of one upload; 0 means 500, the daemon's.
	BatchSize int
}

// BacklogReport is how the backlog drained.
type BacklogReport struct {
	Rows    int     `json:"rows"`
	Acked   int     `json:"acked"`
	Refused int     `json:"refused"` // rows the host refused: never sent again
	Batches int     `json:"batches"`
	Seconds float64 `json:"seconds"` // from the first upload to the last ack
	// Drained says every row was acked before the run ended.
	Drained bool `json:"drained"`
}

// drainBacklog uploads the backlog until every row is acked or acting
// ends; a batch that no instance decided on goes again.
func (t *terminal) drainBacklog(ctx, acting context.Context, b Backlog) *BacklogReport {
	size := or(b.BatchSize, 500)
	rep := &BacklogReport{Rows: b.Rows}
	start := time.Now()
	for rep.Acked+rep.Refused < b.Rows && acting.Err() == nil {
		rows := t.rows(min(size, b.Rows-rep.Acked-rep.Refused))
		for acting.Err() == nil {
			var acked int
			err := t.call(ctx, KindBacklog, func(ctx context.Context, c *hostsync.Client) error {
				var err error
				acked, err = upload(ctx, c, rows)
				return err
			})
			if !retryable(err) {
				// Acked or refused: a refused row is not worth sending
				// again, and is counted by the kind's refusals.
				rep.Acked += acked
				rep.Refused += len(rows) - acked
				rep.Batches++
				break
			}
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Drained = rep.Acked == b.Rows
	return rep
}
