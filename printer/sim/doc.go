// Package sim is a virtual ESC/POS receipt printer, for tests, benchmarks
// and the cardsim tool.
//
// Decoder turns the byte stream a receipt printer receives back into
// receipts: text lines decoded from GB18030 (so from GBK too), the QR codes,
// barcodes and raster images, and the cut that ends each receipt. Layout
// (alignment, emphasis, character size) is understood and skipped: a
// receipt's text is what the customer reads. Feed it bytes split anywhere;
// the result does not depend on the split (FuzzDecoder checks it).
//
// Printer serves a Decoder on a pseudo-terminal, so cardd opens it exactly as
// it opens a serial printer (through go.bug.st/serial, or as a plain file):
//
//	p, err := sim.Open(sim.Options{Link: "/tmp/cardd-printer", Dir: "receipts"})
//	...
//	p.SetPaperOut(true) // DLE EOT answers change; what is sent now is lost
//	...
//	p.Close()           // the port vanishes: the host's reads and writes fail
//
// It answers the real-time status query DLE EOT n (n = 1 to 4) with Epson's
// status bytes (see State.Status), writes each printed receipt to
// Options.Dir as receipt-0001.txt and on, keeps it for Receipts and
// WaitReceipts, and passes it to Options.OnReceipt. While the paper is out,
// the cover open or the printer offline it prints nothing: a receipt any
// printing part of which arrives in such a state is lost whole (see
// Printer), which is what a print worker must detect by checking the status
// before and after sending.
//
// The simulator is Linux-only (it opens /dev/ptmx and sets termios through
// golang.org/x/sys/unix).
package sim
