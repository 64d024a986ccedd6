// Package boundary holds no code: its test checks that what runs in cardd
// (the daemon and the terminal packages it is built from) never links a
// simulator or the vpcd transport that serves one, so that a simulated card
// cannot end up in a kiosk, POS or door reader.
package boundary
