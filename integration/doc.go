// Package integration holds the tests that run cardd through the real stack:
// pcscd with the vsmartcard vpcd driver, a simulated card connected over the
// vpcd socket, and cardd's reader and epurse code on github.com/ebfe/scard.
//
// A vpcd slot holds one card at a time and pcscd is one per machine, so every
// test that uses a slot lives in this package, runs sequentially, and holds
// an exclusive lock on /tmp/cardd-vpcd.lock against other processes (a
// developer's demo, a second test run). Under CI=true a missing pcscd or
// virtual reader fails the tests instead of skipping them.
package integration
