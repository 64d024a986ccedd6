// Package tap is what happens when a card touches a reader: it opens the
// session, reads the purse with as few APDUs as the card allows, publishes the
// balance the moment it is known, and reports the outcome of every tap.
package tap
