package tap

// afterCard is the work a tap's money steps leave for after the card's
// leave point: what needs the card no more (the PSAM's check of the card's
// MAC2, the journal's last commit of a load or a purchase and its receipt).
// Each piece runs once, in the order added.
//
// Deferring a commit keeps the money rules: the write-ahead row is durable
// before the command that changes the card (rule 2), and a crash before
// the deferred commit leaves that row in intent, which the card's next tap
// settles from its counter (rule 3), as a crash right after the card's
// answer always did. A money step that follows on the same tap runs the
// earlier work first (flush) before its own write-ahead, so that at most
// one row of a card is waiting for its last commit: the card's counter
// settles one unfinished row, not two in a row. A load's last commit that
// fails leaves its row in intent (unrecorded): no other load follows on
// that tap, nor a sale on an M1 wallet, whose one balance and sequence
// settle the load only while nothing else has changed them.
//
// Reports to the host (a load's completion) run last, after every commit.
// A purchase's write-ahead flushes the commits only (a load's report can
// wait for the card's leave); a second credit's load runs everything left,
// reports too, since the host authorizes a card's next load only once its
// last one is completed.
type afterCard struct {
	work    []func() error
	reports []func()
	// unrecorded is why a load's row could not be recorded done: until
	// the card's next tap settles it from its counter, no other load of
	// the card may begin (the counter settles one row, not two).
	unrecorded error
}

// add leaves f for after the card.
func (a *afterCard) add(f func() error) { a.work = append(a.work, f) }

// report leaves f, a report to the host, for after the card and its
// commits.
func (a *afterCard) report(f func()) { a.reports = append(a.reports, f) }

// run does the work left, in order, then the reports, and returns the
// work's first error; the rest runs all the same.
func (a *afterCard) run() error {
	first := a.flush()
	for len(a.reports) > 0 {
		f := a.reports[0]
		a.reports = a.reports[1:]
		f()
	}
	return first
}

// flush does the work left (not the reports), before another money
// step's write-ahead. Its error, if any, belongs to the step that left
// the work.
func (a *afterCard) flush() error {
	var first error
	for len(a.work) > 0 {
		f := a.work[0]
		a.work = a.work[1:]
		if err := f(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
