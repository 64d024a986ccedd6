// Package door holds the two pure pieces of cardd's dorm-door mode: the
// offline access decision and the relay that unlocks the door.
//
// # Access decisions
//
// The host publishes an access [List] as JSON: groups with their weekly
// time windows, and entries (cards) with the groups they belong to and the
// dates they are valid. A door admits some of the groups (the door.groups
// key, see [Config]). [NewIndex] validates a list and compiles it, for one
// door, into an [Index] on which [Decide] answers in constant time whatever
// the list's size:
//
//	{
//	  "version": "42",
//	  "groups": [
//	    {"name": "residents-a", "windows": [
//	      {"days": ["mon","tue","wed","thu","fri","sat","sun"], "from": "00:00", "until": "24:00"}]},
//	    {"name": "cleaners", "windows": [
//	      {"days": ["mon","tue","wed","thu","fri"], "from": "07:00", "until": "11:30"},
//	      {"days": ["sun"], "from": "22:00", "until": "06:00"}]}
//	  ],
//	  "entries": [
//	    {"card": "3101000000800000", "groups": ["residents-a"], "valid_from": "2026-09-01", "valid_until": "2027-07-31"},
//	    {"uid": "04A1B2C3D4E5F6", "groups": ["cleaners"]}
//	  ]
//	}
//
// The deny list (lost and stolen cards, kept by package offline) wins over
// everything; then the card must be on the list, valid today, in a group
// this door admits, and inside one of that group's windows now. Dates and
// clock times are the terminal's local ones: the location of the time given
// to Decide.
//
// # The relay
//
// [Relay] drives a USB relay board on a serial port (LCUS-1 and its kin):
// Open unlocks the door for the hold time and locks it again after, once,
// however many people tap meanwhile. It reopens a port that vanished, and
// never leaves the door unlocked on its own account: the close is written
// by a timer the Relay owns, retried while the port is away, and written by
// Close when the daemon stops.
package door
