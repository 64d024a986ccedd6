// Package offline is the terminal's durable store: the journal of every card
// operation (written ahead of any command that changes a card), the outbox of
// rows owed to the host, the load completions owed to the host, the cache of
// pending credits and the deny list pulled from the host, cursors, and the
// e-purse terminal transaction serial.
//
// It is one SQLite file in WAL mode with synchronous=FULL, so that a commit
// that returned survives a crash or a power cut (DESIGN.md, money rule 2).
// Every connection the pool opens has its effective pragmas read back and is
// refused when any is weaker than synchronous=FULL, journal_mode=WAL,
// busy_timeout>=1000 ms, foreign_keys=on: the driver silently ignores a
// misspelt setting and would fall back to synchronous=NORMAL, which can lose
// the newest commits on power loss. Every transaction is BEGIN IMMEDIATE, so
// writers queue on the busy timeout instead of failing with "database is
// locked".
//
// How a money operation uses it:
//
//	row, err := st.Begin(ctx, offline.Row{Kind: offline.KindLoad, ...}) // durable before the card sees anything
//	// send CREDIT FOR LOAD; then, by what the card answered:
//	st.Finish(ctx, row.ID, offline.StateDone, tac, "")     // or StateUnknown when no answer came
//	st.FinishNotApplied(ctx, row.ID, probe, "")            // the card showed it did not change
//
// and on every tap, before changing a card, Unresolved(card) lists what the
// card must first settle (money rule 3). At daemon start RecoverInterrupted
// turns the intent rows of a process that died into unknown ones.
//
// Decisions worth knowing:
//
//   - Unacked uploads every row not in intent, unknown ones included, and a
//     row that changes after it was acknowledged (unknown, later settled)
//     is owed again, with the same id: the host must keep the newest state
//     of an id. Each row carries a revision; Ack covers the revision that
//     Unacked handed out, so a row settled while its older version was on
//     the wire is not lost.
//   - Finish outlives its caller's cancellation (bounded by a timeout): the
//     card already answered, and a lost answer would need the card back.
//   - CreditsFor leaves out credits with a load row in intent, unknown or
//     done, so the terminal never even asks to load a credit twice.
//   - Row ids keep the terminal id they were made with, even if terminal.id
//     is reconfigured later; sequences come from AUTOINCREMENT and are never
//     reused, even after Purge removed the newest rows.
//   - Purge never removes a row that is unacked, unsettled, or owes a load
//     completion.
//
// Card numbers are stored in full (the host needs them) but are masked in
// every error message, since errors end up in logs. No key, PIN or secret
// passes through this package.
package offline
