//go:build linux

package sim

import (
	"context"
	"errors"
	"fmt"

	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cardd/cardd/internal/pty"
)

// State is what the printer's sensors report. The zero value is a printer
// that is ready: paper in, cover closed, online.
type State struct {
	// PaperOut: the roll is empty. The printer does not print and is offline.
	PaperOut bool
	// PaperNearEnd: the roll is nearly empty. The printer still prints;
	// only the paper sensor status (DLE EOT 4) says so.
	PaperNearEnd bool
	// CoverOpen: the roll cover is open. The printer does not print and is
	// offline.
	CoverOpen bool
	// Offline: offline for another cause, reported as an automatically
	// recoverable error (as for a print head that is too hot). The printer
	// does not print.
	Offline bool

	// stopped: something that prints came while the paper was out, so the
	// printer "stopped printing at paper end" with data in hand. Set by the
	// printer, cleared when it is ready again.
	stopped bool
}

// Ready reports whether a printer in state s prints what it receives.
func (s State) Ready() bool { return !s.PaperOut && !s.CoverOpen && !s.Offline }

// String lists the state's conditions, or returns "ready".
func (s State) String() string {
	var out []byte
	add := func(on bool, name string) {
		if on {
			if len(out) > 0 {
				out = append(out, ", "...)
			}
			out = append(out, name...)
		}
	}
	add(s.PaperOut, "paper out")
	add(s.PaperNearEnd, "paper near end")
	add(s.CoverOpen, "cover open")
	add(s.Offline, "offline")
	if len(out) == 0 {
		return "ready"
	}
	return string(out)
}

// Real-time status bits (DLE EOT n), Epson ESC/POS. Every status byte has
// bit 1 and bit 4 on and bits 0 and 7 off, which is how a host tells it
// from other data. Checked against Epson's tables:
//   - TM-U220A manual, DLE EOT n (n = 1 printer status, n = 2 offline cause):
//     https://www.easymanua.ls/epson/tm-u220a/manual?p=54
//   - TM-T88III series specification (STANDARD) rev. B, sheets 73-74 (n = 3
//     error cause, n = 4 roll paper sensor):
//     https://www.easymanua.ls/epson/tm-t88iii-series/manual?p=84
//   - Epson ESC/POS Application Programming Guide (TM-T88III) Ver. 10.01
//     p. 304, n = 4: http://office.manualsonline.com/manuals/mfg/epson/epson_tm_t88iii_tmt88iii.html?p=304
//   - ESC/POS TM-L60II technical information Ver. 4.0 p. 1217, n = 2:
//     https://manualshive.com/en/manual/epson/esc-pos-tm-l60ii/esc-pos-tm-l60ii_technical-information_109143-280.html
const (
	statusFixed = 0x12 // bits 1 and 4 on, bits 0 and 7 off

	// n = 1, printer status
	status1Offline = 0x08 // bit 3 (bit 2, drawer kick-out connector pin 3, stays LOW)
	// n = 2, offline cause
	status2CoverOpen = 0x04 // bit 2
	status2PaperEnd  = 0x20 // bit 5: printing stopped by paper end
	status2Error     = 0x40 // bit 6: an error occurred
	// n = 3, error cause
	status3AutoRecoverable = 0x40 // bit 6 (bit 3 autocutter, bit 5 unrecoverable: never set here)
	// n = 4, roll paper sensor
	status4NearEnd = 0x0C // bits 2 and 3: near-end sensor, paper near end
	status4End     = 0x60 // bits 5 and 6: end sensor, no paper
)

// Status returns the byte a printer in state s answers to DLE EOT n, and
// false when n is not 1 to 4 (a printer ignores DLE EOT with another n).
//
//	state          n=1   n=2   n=3   n=4
//	ready          0x12  0x12  0x12  0x12
//	paper near end 0x12  0x12  0x12  0x1E
//	paper out      0x1A  0x32  0x12  0x7E   (paper end also trips near end)
//	cover open     0x1A  0x16  0x12  0x12
//	offline        0x1A  0x52  0x52  0x12
//
// Conditions together set their bits together (paper out with the cover
// open is 0x1A 0x36 0x12 0x7E).
func (s State) Status(n byte) (byte, bool) {
	b := byte(statusFixed)
	switch n {
	case 1:
		if !s.Ready() {
			b |= status1Offline
		}
	case 2:
		if s.CoverOpen {
			b |= status2CoverOpen
		}
		if s.PaperOut && s.stopped {
			// Epson: "printing is being stopped due to paper end", which a
			// printer reports only when paper ran out with data to print.
			// A roll that ends just after a whole receipt leaves it clear,
			// so a host can tell a torn receipt from a whole one.
			b |= status2PaperEnd
		}
		if s.Offline {
			b |= status2Error
		}
	case 3:
		if s.Offline {
			b |= status3AutoRecoverable
		}
	case 4:
		if s.PaperNearEnd || s.PaperOut {
			b |= status4NearEnd
		}
		if s.PaperOut {
			b |= status4End
		}
	default:
		return 0, false
	}
	return b, true
}

// Options tunes the virtual printer. The zero value is a ready printer that
// answers status queries, keeps its receipts in memory only, makes no link
// and does not log.
type Options struct {
	// Link, when set, is made a symbolic link to the pty's slave side
	// (/dev/pts/N), so a configuration can name a stable port such as
	// /tmp/cardd-printer. A symbolic link already there is replaced;
	// anything else there is an error. Close removes the link.
	Link string

	// Dir, when set, receives each printed receipt as a UTF-8 text file,
	// receipt-0001.txt and so on, holding Receipt.Text. Numbering goes on
	// after the highest receipt-NNNN.txt already in Dir. The directory is
	// created if needed.
	Dir string

	// Model is the printer's make: its default international set, its
	// paper width, whether its font takes GB18030's 4-byte codes.
	Model Model

	// Initial is the state the printer starts in.
	Initial State

	// Silent never answers DLE EOT: a printer on a one-way link (only TxD
	// wired), or one that does not speak real-time status.
	Silent bool

	// AlwaysOffline answers every DLE EOT as if the printer were offline
	// (State.Offline set as well as the real state) while it goes on
	// printing as its real state allows: a printer whose status lies.
	AlwaysOffline bool

	// BaudDelay, when positive, paces the printer's reading to a serial line
	// of that many baud with 8N1 framing (baud/10 bytes a second), so that
	// benchmarks see the throughput of a real link: a 9600 baud line carries
	// 960 bytes a second. The pty buffers several KiB, so a writer is held
	// back only once that buffer is full, as with a real UART's transmit
	// buffer; tcdrain on the pty does not wait for the pacing. 0 does not
	// pace.
	BaudDelay int

	// Logger receives the opening and closing, state changes and lost
	// receipts at Info or Warn, each printed receipt and status query at
	// Debug. nil discards.
	Logger *slog.Logger

	// OnReceipt, when set, is called with each printed receipt, after its
	// file is written. It runs on the printer's goroutine: while it runs the
	// printer reads nothing, so keep it quick, and do not call Close from it.
	OnReceipt func(Receipt)

	// OnLost, when set, is called with each receipt the printer received
	// but did not print because it was not ready (see Printer). Seq is 0.
	// Same goroutine as OnReceipt.
	OnLost func(Receipt)
}

// Stats counts what the printer has done.
type Stats struct {
	Printed       int   // receipts printed
	Lost          int   // receipts received while not ready, not printed
	StatusQueries int   // DLE EOT 1-4 received (answered unless Silent)
	BytesIn       int64 // bytes read from the line
	BytesNotReady int64 // of those, bytes received while not ready
}

// ErrClosed is returned by WaitReceipts when the printer was closed.
var ErrClosed = errors.New("printer/sim: printer closed")

// paceSlack is how late after the emulated line went idle a read may come
// and still be taken as the line having stayed busy.
const paceSlack = 20 * time.Millisecond

// statusWriteTimeout bounds the write of a status answer. The pty holds
// KiBs of answers; a host that queries and never reads fills it, and then
// the answers are dropped rather than stopping the printer.
const statusWriteTimeout = time.Second

// Printer is a virtual ESC/POS receipt printer on a pseudo-terminal. The
// host (cardd) opens Path, or Options.Link, as a serial port. Open starts a
// goroutine that serves the printer until Close.
//
// What it does with the bytes it reads:
//   - DLE EOT n (10 04 n, n = 1 to 4) is answered at once with one status
//     byte (State.Status), unless Options.Silent. Like a real printer it
//     looks for DLE EOT in the raw stream, so 10 04 n inside other data
//     (a raster image, a command's parameters) is answered too. The answer
//     is written after everything read with the query has been processed:
//     once the host has the answer, every receipt it sent before the query
//     is in Receipts (or counted lost).
//   - Everything else goes to a Decoder. Each receipt it completes is
//     printed: numbered (Seq), written to Options.Dir, kept for Receipts,
//     given to Options.OnReceipt.
//   - A receipt is printed only if the printer was ready (State.Ready)
//     whenever it received a part of the receipt that prints: a text byte,
//     a line end or feed, a barcode, QR code or image, the cut. A receipt
//     any such part of which arrived while the paper was out, the cover
//     open or the printer offline is lost: not printed, not numbered, not in
//     Receipts, counted in Stats.Lost and given to Options.OnLost. So a
//     receipt sent while the printer was not ready is never printed, even
//     the part of it that came after the paper was back. Commands that print
//     nothing (ESC @, settings, status queries) may come in any state; the
//     printer keeps decoding while not ready, so the next receipt sent once
//     it is ready prints whole. The state is sampled once per read from the
//     pty (a few KiB at most; about 10 ms of the line when paced). (A real printer may instead hold the data and print it
//     late, or print a fragment; a print worker that checks the status
//     before and after sending and treats a receipt sent while not ready
//     as not printed is right either way, up to a duplicate.) Status
//     queries are answered in every state.
//
// What the host sees of the pty: the slave side is set raw (no echo, no
// CR/LF translation, 8 bits), so bytes pass both ways exactly; a serial
// library that sets its own termios (go.bug.st/serial sets raw 8N1 at the
// asked speed) changes nothing that matters. The printer holds the slave
// side open itself, so the host may close and reopen the port. Close hangs
// the line up: the host's reads then fail (EOF or EIO) and so do its
// writes, as when a USB serial adapter is pulled.
type Printer struct {
	opt    Options
	log    *slog.Logger
	master *os.File
	slave  *os.File // held open: the pty stays usable while the host reopens
	path   string
	link   string
	bps    int // bytes a second, 0 unpaced

	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	state    State
	receipts []Receipt
	stats    Stats
	changed  chan struct{} // closed and replaced when receipts grows
	err      error

	// serving goroutine only
	dec      Decoder
	seq      int
	tainted  bool      // the unfinished receipt got ink while not ready
	rt       int       // real-time scanner: bytes of "10 04" seen
	lineFree time.Time // pacing: when the emulated line is idle again
}

// Open creates the pty pair, sets it raw, makes opt.Link and starts serving.
func Open(opt Options) (*Printer, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.BaudDelay < 0 {
		return nil, fmt.Errorf("printer/sim: BaudDelay %d is negative", opt.BaudDelay)
	}
	seq := 0
	if opt.Dir != "" {
		if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("printer/sim: receipts directory: %w", err)
		}
		var err error
		if seq, err = lastSeq(opt.Dir); err != nil {
			return nil, fmt.Errorf("printer/sim: receipts directory: %w", err)
		}
	}
	master, slave, path, err := pty.Open()
	if err != nil {
		return nil, err
	}
	p := &Printer{
		opt:     opt,
		log:     log.With("port", path),
		master:  master,
		slave:   slave,
		path:    path,
		bps:     opt.BaudDelay / 10,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		state:   opt.Initial,
		changed: make(chan struct{}),
		seq:     seq,
	}
	p.dec.Model = opt.Model
	if opt.BaudDelay > 0 && p.bps == 0 {
		p.bps = 1
	}
	if opt.Link != "" {
		if err := pty.Link(path, opt.Link); err != nil {
			master.Close()
			slave.Close()
			return nil, err
		}
		p.link = opt.Link
	}
	p.log.Info("printer open", "link", opt.Link, "dir", opt.Dir, "state", p.state.String(),
		"silent", opt.Silent, "always_offline", opt.AlwaysOffline, "baud", opt.BaudDelay)
	go p.serve()
	return p, nil
}

var receiptName = regexp.MustCompile(`^receipt-(\d+)\.txt$`)

// lastSeq returns the highest receipt number among dir's receipt files.
func lastSeq(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	last := 0
	for _, e := range ents {
		if m := receiptName.FindStringSubmatch(e.Name()); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n > last {
				last = n
			}
		}
	}
	return last, nil
}

// Path returns the slave side of the pty, /dev/pts/N: the port to open.
func (p *Printer) Path() string { return p.path }

// Link returns Options.Link ("" when none was made).
func (p *Printer) Link() string { return p.link }

// FileName returns the name of receipt seq's file in Options.Dir.
func FileName(seq int) string { return fmt.Sprintf("receipt-%04d.txt", seq) }

// State returns the printer's state.
func (p *Printer) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// SetState sets all of the printer's conditions at once.
func (p *Printer) SetState(s State) { p.update(func(st *State) { *st = s }) }

func (p *Printer) update(f func(*State)) {
	p.mu.Lock()
	old := p.state
	f(&p.state)
	if p.state.Ready() {
		p.state.stopped = false
	}
	s := p.state
	p.mu.Unlock()
	if old != s {
		p.log.Info("printer state", "state", s.String(), "was", old.String())
	}
}

// SetPaperOut empties (true) or refills (false) the paper roll.
func (p *Printer) SetPaperOut(on bool) { p.update(func(s *State) { s.PaperOut = on }) }

// SetPaperNearEnd sets the paper near-end sensor.
func (p *Printer) SetPaperNearEnd(on bool) { p.update(func(s *State) { s.PaperNearEnd = on }) }

// SetCoverOpen opens (true) or closes (false) the roll cover.
func (p *Printer) SetCoverOpen(on bool) { p.update(func(s *State) { s.CoverOpen = on }) }

// SetOffline takes the printer offline (true) or back online (false).
func (p *Printer) SetOffline(on bool) { p.update(func(s *State) { s.Offline = on }) }

// Receipts returns the receipts printed so far, oldest first. The receipts
// share their slices with the printer's: do not modify them.
func (p *Printer) Receipts() []Receipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cloneSlice(p.receipts)
}

// WaitReceipts waits until at least n receipts have been printed and returns
// them all. It returns what there is with ctx's error when ctx ends first, or
// with ErrClosed when the printer stops.
func (p *Printer) WaitReceipts(ctx context.Context, n int) ([]Receipt, error) {
	for {
		p.mu.Lock()
		if len(p.receipts) >= n {
			r := cloneSlice(p.receipts)
			p.mu.Unlock()
			return r, nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return p.Receipts(), ctx.Err()
		case <-p.done:
			if r := p.Receipts(); len(r) >= n {
				return r, nil
			}
			return p.Receipts(), ErrClosed
		}
	}
}

// Stats returns the printer's counters.
func (p *Printer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Done is closed when the printer has stopped serving: after Close, or
// after a read error (see Err).
func (p *Printer) Done() <-chan struct{} { return p.done }

// Err returns the error that stopped the printer before Close, if any.
func (p *Printer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close stops the printer: it closes the pty, which hangs up the host's
// side, waits for the serving goroutine, and removes Options.Link if it
// still points at this printer. An unfinished receipt (no cut yet) is
// dropped. Close can be called more than once.
func (p *Printer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.closing)
		err = p.master.Close()
		<-p.done
		if e := p.slave.Close(); err == nil {
			err = e
		}
		if p.link != "" {
			if t, e := os.Readlink(p.link); e == nil && t == p.path {
				if e := os.Remove(p.link); e != nil && err == nil {
					err = e
				}
			}
		}
		if p.dec.ink > p.dec.inkAtCut {
			u := p.dec.Unfinished()
			p.log.Info("unfinished receipt dropped at close", "bytes", u.Bytes, "lines", len(u.Lines))
		}
		p.log.Info("printer closed", "printed", p.seq)
	})
	return err
}

// serve reads the line until Close.
func (p *Printer) serve() {
	defer close(p.done)
	size := 4096
	if p.bps > 0 {
		size = max(1, min(size, p.bps/100)) // about 10 ms of the line per read
	}
	buf := make([]byte, size)
	for {
		n, err := p.master.Read(buf)
		if n > 0 {
			if !p.pace(n) {
				return
			}
			p.process(buf[:n])
		}
		if err == nil {
			continue
		}
		select {
		case <-p.closing:
			return
		default:
		}
		if errors.Is(err, unix.EIO) {
			// No slave open: cannot happen while p.slave is held, but
			// poll rather than spin if it does.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		p.log.Error("printer stopped: reading the pty", "err", err)
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		return
	}
}

// pace waits until n more bytes would have crossed the emulated line. It
// returns false when the printer is closing.
func (p *Printer) pace(n int) bool {
	if p.bps == 0 {
		return true
	}
	// Timer wake-ups are late by a little; counting from lineFree rather
	// than now while the line is busy keeps that from adding up. A line
	// idle for longer than paceSlack starts afresh.
	now := time.Now()
	if now.Sub(p.lineFree) > paceSlack {
		p.lineFree = now
	}
	p.lineFree = p.lineFree.Add(time.Duration(n) * time.Second / time.Duration(p.bps))
	t := time.NewTimer(time.Until(p.lineFree))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.closing:
		return false
	}
}

// process handles bytes read from the line.
func (p *Printer) process(b []byte) {
	p.mu.Lock()
	st := p.state
	p.stats.BytesIn += int64(len(b))
	ready := st.Ready()
	if !ready {
		p.stats.BytesNotReady += int64(len(b))
	}
	p.mu.Unlock()

	// Real-time commands first, on the raw bytes.
	var asked []byte
	for _, c := range b {
		switch {
		case p.rt == 2:
			p.rt = 0
			if _, ok := st.Status(c); ok {
				asked = append(asked, c)
				continue
			}
			if c == dle {
				p.rt = 1
			}
		case c == dle:
			p.rt = 1
		case p.rt == 1 && c == 0x04:
			p.rt = 2
		default:
			p.rt = 0
		}
	}

	inkBefore := p.dec.ink
	stopped := false
	for i, r := range p.dec.Feed(b) {
		if !ready || (i == 0 && p.tainted) {
			p.lost(r)
			stopped = stopped || !ready
		} else {
			p.print(r)
		}
		p.tainted = false
	}
	if !ready && p.dec.ink > max(inkBefore, p.dec.inkAtCut) {
		p.tainted = true // the unfinished receipt got something that prints
		stopped = true
	}

	// Answers are made after the bytes before them were processed, so they
	// say whether those bytes printed.
	p.mu.Lock()
	if stopped && !p.state.Ready() {
		p.state.stopped = true
	}
	answerState := p.state
	p.mu.Unlock()
	if p.opt.AlwaysOffline {
		answerState.Offline = true
	}
	var answers []byte
	for _, c := range asked {
		s, _ := answerState.Status(c)
		answers = append(answers, s)
		p.log.Debug("status query", "n", c, "answer", fmt.Sprintf("%02X", s), "silent", p.opt.Silent)
	}
	queries := len(asked)
	if queries > 0 {
		p.mu.Lock()
		p.stats.StatusQueries += queries
		p.mu.Unlock()
	}
	if len(answers) > 0 && !p.opt.Silent {
		p.master.SetWriteDeadline(time.Now().Add(statusWriteTimeout))
		if _, err := p.master.Write(answers); err != nil {
			p.log.Warn("status answer not sent", "err", err)
		}
	}
}

// print numbers, files and keeps a printed receipt.
func (p *Printer) print(r Receipt) {
	p.seq++
	r.Seq = p.seq
	file := ""
	if p.opt.Dir != "" {
		file = filepath.Join(p.opt.Dir, FileName(r.Seq))
		if err := writeAtomic(file, []byte(r.Text())); err != nil {
			p.log.Warn("receipt file not written", "seq", r.Seq, "err", err)
			file = ""
		}
	}
	if r.ErrorCount > 0 {
		p.log.Warn("receipt printed with errors", "seq", r.Seq, "errors", r.ErrorCount, "first", r.Errors[0])
	}
	p.log.Debug("receipt printed", "seq", r.Seq, "lines", len(r.Lines), "bytes", r.Bytes, "file", file)
	p.mu.Lock()
	p.receipts = append(p.receipts, r)
	p.stats.Printed++
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if p.opt.OnReceipt != nil {
		p.opt.OnReceipt(r)
	}
}

// lost counts a receipt that came while the printer was not ready.
func (p *Printer) lost(r Receipt) {
	p.log.Warn("receipt lost: received while the printer was not ready", "lines", len(r.Lines), "bytes", r.Bytes)
	p.mu.Lock()
	p.stats.Lost++
	p.mu.Unlock()
	if p.opt.OnLost != nil {
		p.opt.OnLost(r)
	}
}

// writeAtomic writes data to name through a temporary file in the same
// directory and a rename, so a reader sees the whole file or none. It does
// not fsync: a simulator's receipts need not survive a power cut.
func writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".receipt-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if e := f.Chmod(0o644); err == nil {
		err = e
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
