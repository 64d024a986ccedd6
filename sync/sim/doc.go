// Package sim is a fleet simulator for the host link: N terminal
// identities, each registered at the host with its own secret, driving the
// real signed protocol of package hostapi through package sync's Client
// (the terminal's own signing code) at a configurable rate: heartbeats,
// pulls with a cursor kept per terminal, journal uploads in batches as a
// POS writes them, and online loads (authorize then complete) onto
// simulated e-purse cards, whose MAC1 and TAC the card side of package
// epursesim computes with the card's own keys, so no pcscd is needed.
//
// Requests are spread over several host instances (round-robin or random
// per request); a request that finds its instance unreachable is sent again,
// newly signed, to the next one. Signed requests can be captured and sent
// again verbatim to another instance (Replay): the nonce rule must refuse
// every one. Everything is bounded: each request by Config.Timeout, the run
// by Config.Duration and the drain of unfinished completions by
// Config.Drain.
//
// It is a simulator (DESIGN.md: simulators live in sim packages): terminal
// code never imports it. Provisioning (NewTerminals, IssueCards,
// AddCredits) writes to the host's store directly, as cardhost's commands
// do; after that the fleet talks to the host only over HTTP.
package sim
