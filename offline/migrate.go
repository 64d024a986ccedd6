package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cardd/cardd/internal/migrate"
)

// migrations[i] takes the schema from version i to i+1 (PRAGMA user_version).
// Append only: a released migration is never edited, since databases in the
// field have already run it.
var migrations = []string{
	// 1: journal, credits cache, deny list, cursors, counters.
	`
CREATE TABLE journal (
	-- seq is the local sequence in row ids; AUTOINCREMENT so that a purged
	-- newest row never gives its number to another: ids are permanent.
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	-- terminal is kept per row so that the id of a row never changes, even
	-- if terminal.id is later reconfigured.
	terminal    TEXT    NOT NULL CHECK (length(terminal) = 12),
	kind        TEXT    NOT NULL CHECK (kind IN ('read', 'load', 'purchase', 'access', 'recovery')),
	state       TEXT    NOT NULL CHECK (state IN ('intent', 'done', 'unknown', 'failed')),
	card        TEXT    NOT NULL CHECK (card <> ''),
	purse       TEXT    NOT NULL DEFAULT '',
	counter     INTEGER NOT NULL CHECK (counter BETWEEN 0 AND 65535),
	balance_fen INTEGER NOT NULL,
	amount_fen  INTEGER NOT NULL CHECK (amount_fen >= 0),
	credit_id   TEXT    NOT NULL DEFAULT '',
	tac         TEXT    NOT NULL DEFAULT '',
	mac2        TEXT    NOT NULL DEFAULT '',
	proof       TEXT    NOT NULL DEFAULT '',
	time        TEXT    NOT NULL DEFAULT '',
	detail      TEXT    NOT NULL DEFAULT '',
	created     INTEGER NOT NULL, -- Unix nanoseconds
	updated     INTEGER NOT NULL,
	-- Outbox bookkeeping: rev counts changes to what the host is sent;
	-- sent_rev is the rev last handed out by Unacked; acked_rev the rev the
	-- host acknowledged. A row is owed to the host while acked_rev < rev.
	rev         INTEGER NOT NULL DEFAULT 1,
	sent_rev    INTEGER NOT NULL DEFAULT 0,
	acked_rev   INTEGER NOT NULL DEFAULT 0,
	completion_reported INTEGER NOT NULL DEFAULT 0 CHECK (completion_reported IN (0, 1))
);
CREATE INDEX journal_open ON journal (card, seq) WHERE state IN ('intent', 'unknown');
CREATE INDEX journal_outbox ON journal (seq) WHERE state <> 'intent' AND acked_rev < rev;
CREATE INDEX journal_owed ON journal (seq) WHERE kind = 'load' AND completion_reported = 0;
CREATE INDEX journal_credit ON journal (credit_id) WHERE kind = 'load';
CREATE INDEX journal_created ON journal (created);

CREATE TABLE credits (
	id         TEXT    PRIMARY KEY CHECK (id <> ''),
	card       TEXT    NOT NULL CHECK (card <> ''),
	amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
	note       TEXT    NOT NULL DEFAULT '',
	created    INTEGER NOT NULL
);
CREATE INDEX credits_card ON credits (card, created, id);

CREATE TABLE deny (
	card    TEXT    PRIMARY KEY CHECK (card <> ''),
	reason  TEXT    NOT NULL DEFAULT '',
	updated INTEGER NOT NULL
);

CREATE TABLE cursors (
	name    TEXT    PRIMARY KEY CHECK (name <> ''),
	value   TEXT    NOT NULL,
	updated INTEGER NOT NULL
);

CREATE TABLE counters (
	name  TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
);
`,
	// 2: the print queue.
	`
CREATE TABLE receipts (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	-- journal_seq is the journal row the receipt belongs to; NULL for a test
	-- page. No foreign key: the journal row may be purged first.
	journal_seq INTEGER,
	-- copy is 1 for a reprint asked by a person; the one original per
	-- journal row is what the unique index guards.
	copy        INTEGER NOT NULL DEFAULT 0 CHECK (copy IN (0, 1)),
	kind        TEXT    NOT NULL CHECK (kind <> ''),
	-- body is the receipt's facts (JSON), rendered at print time for the
	-- printer configured then.
	body        BLOB    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'printed', 'unknown')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT    NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL
);
CREATE UNIQUE INDEX receipts_original ON receipts (journal_seq) WHERE journal_seq IS NOT NULL AND copy = 0;
CREATE INDEX receipts_pending ON receipts (id) WHERE state IN ('queued', 'sending');
`,
	// 3: purchases record the PSAM's terminal transaction serial (it is in
	// the TAC, so the host needs it to verify one), and the daily limit
	// sums a card's purchases of a day.
	`
ALTER TABLE journal ADD COLUMN term_serial INTEGER NOT NULL DEFAULT 0 CHECK (term_serial BETWEEN 0 AND 4294967295);
CREATE INDEX journal_purchases ON journal (card, time) WHERE kind = 'purchase';
`,
	// 4: the door access list pulled from the host (one, replaced whole).
	`
CREATE TABLE access_list (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version TEXT    NOT NULL,
	body    BLOB    NOT NULL,
	updated INTEGER NOT NULL
);
`,
	// 5: rows the host refused (a malformed row, or a settled row it holds
	// otherwise): refused_rev is the rev it refused, host_refused its
	// reason. Such a version is not owed any more: sent again unchanged it
	// would be refused again, for ever.
	`
ALTER TABLE journal ADD COLUMN refused_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journal ADD COLUMN host_refused TEXT NOT NULL DEFAULT '';
CREATE INDEX journal_refused ON journal (seq) WHERE refused_rev > 0;
`,
	// 6: the completions one card owes, found by card: a load tap asks for
	// them with the card in the field, and journal_owed (by seq) would be
	// read whole to find one card's.
	`
CREATE INDEX journal_owed_card ON journal (card, seq) WHERE kind = 'load' AND completion_reported = 0;
`,
	// VOIDS: the cashier's voids (冲正) of this terminal's sales, journaled
	// before anything else, one per sale, and owed to the host, which makes
	// each the refund credit of its sale.
	`
CREATE TABLE voids (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	terminal    TEXT    NOT NULL CHECK (length(terminal) = 12),
	-- sale_seq is the purchase row voided; UNIQUE: a sale is voided once.
	-- No foreign key: the journal row may be purged first, long after.
	sale_seq    INTEGER NOT NULL UNIQUE,
	card        TEXT    NOT NULL CHECK (card <> ''),
	amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
	cashier     TEXT    NOT NULL DEFAULT '',
	-- owed: not yet answered by the host; refunded: the host made credit_id;
	-- refused: the host refused it for good (host_reason).
	state       TEXT    NOT NULL CHECK (state IN ('owed', 'refunded', 'refused')),
	credit_id   TEXT    NOT NULL DEFAULT '',
	host_reason TEXT    NOT NULL DEFAULT '',
	created     INTEGER NOT NULL, -- Unix nanoseconds
	updated     INTEGER NOT NULL
);
CREATE INDEX voids_owed ON voids (seq) WHERE state = 'owed';
CREATE INDEX voids_created ON voids (created);
`,
	// subsidies (补助): a cached credit's kind, batch, the purse it must be
	// loaded onto ('' any) and its pick-up window (UnixNano, 0 none).
	`
ALTER TABLE credits ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN subsidy TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN purse TEXT NOT NULL DEFAULT '';
ALTER TABLE credits ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credits ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;
`,
	// identity classes (身份) of the host's card records, pulled like the
	// deny list: a card here has the host's class, which wins over its
	// type byte's; a card the host gave none is not here.
	`
CREATE TABLE card_classes (
	card    TEXT    PRIMARY KEY CHECK (card <> ''),
	class   TEXT    NOT NULL CHECK (class <> ''),
	updated INTEGER NOT NULL
);
`,
	// the PSAM terminal id an e-purse purchase was made with, which its
	// TAC covers: the host verifies the TAC with it when the sale is
	// voided. '' for rows before it was kept.
	`
ALTER TABLE journal ADD COLUMN psam_terminal TEXT NOT NULL DEFAULT '';
`,
	// SHIFTS: shift close-out (班结). A purchase row records its meal
	// period, the card's identity class, whether the cardholder's PIN took
	// it over the daily limit, a split sale's rest to collect by other
	// means, and the cashier's shift it was sold in (0: none open); shifts
	// are the cashier's shifts, at most one open, with the totals the close
	// computed from the journal and whether the host has them.
	`
ALTER TABLE journal ADD COLUMN period TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN class TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN pin_verified INTEGER NOT NULL DEFAULT 0 CHECK (pin_verified IN (0, 1));
ALTER TABLE journal ADD COLUMN collect_fen INTEGER NOT NULL DEFAULT 0 CHECK (collect_fen >= 0);
ALTER TABLE journal ADD COLUMN shift INTEGER NOT NULL DEFAULT 0;
CREATE INDEX journal_shift ON journal (shift, seq) WHERE kind = 'purchase' AND shift > 0;

CREATE TABLE shifts (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	cashier  TEXT    NOT NULL CHECK (cashier <> ''),
	opened   INTEGER NOT NULL, -- Unix nanoseconds
	closed   INTEGER NOT NULL DEFAULT 0, -- 0 while open
	count    INTEGER NOT NULL DEFAULT 0,
	sum_fen  INTEGER NOT NULL DEFAULT 0,
	-- summary is the close's totals (JSON of offline.ShiftSummary).
	summary  BLOB    NOT NULL DEFAULT '',
	-- rows are the ids of the journal rows counted in count and sum_fen
	-- (JSON list), which the host checks the totals against.
	rows     TEXT    NOT NULL DEFAULT '[]',
	-- uploaded is whether the host acknowledged the closed shift, or
	-- refused it for good (refused says why).
	uploaded INTEGER NOT NULL DEFAULT 0 CHECK (uploaded IN (0, 1)),
	refused  TEXT    NOT NULL DEFAULT ''
);
-- At most one open shift: every open one has closed = 0.
CREATE UNIQUE INDEX shifts_one_open ON shifts (closed) WHERE closed = 0;
CREATE INDEX shifts_outbox ON shifts (id) WHERE closed > 0 AND uploaded = 0;
`,
	// PRODUCT: card products (卡种) as the host's pull gives them: each
	// product's cap and last valid day (the whole list, replaced on every
	// pull that carries it), and the product of each card the host named
	// one for. A card not here has only the terminal's own cap.
	`
CREATE TABLE products (
	name        TEXT    PRIMARY KEY CHECK (name <> ''),
	cap_fen     INTEGER NOT NULL CHECK (cap_fen > 0),
	valid_until TEXT    NOT NULL DEFAULT '', -- YYYY-MM-DD, '' no end
	updated     INTEGER NOT NULL
);
CREATE TABLE card_products (
	card    TEXT    PRIMARY KEY CHECK (card <> ''),
	product TEXT    NOT NULL CHECK (product <> ''),
	updated INTEGER NOT NULL
);
`,
	// CLOSE: cards the host asked to close (销户), pulled like the deny
	// list: the next tap of one at a terminal that closes cards debits its
	// balance, the journal row naming close_id (in credit_id).
	`
CREATE TABLE card_closes (
	card     TEXT    PRIMARY KEY CHECK (card <> ''),
	close_id TEXT    NOT NULL CHECK (close_id <> ''),
	updated  INTEGER NOT NULL
);
CREATE INDEX journal_closing ON journal (credit_id) WHERE kind <> 'load' AND credit_id <> '';
`,
}

// SchemaVersion is the user_version this code writes and understands; a
// database at a higher version is refused.
func SchemaVersion() int { return len(migrations) }

// migrate brings the schema to SchemaVersion through the store's own write
// path, so the migration waits for and holds the one writer like any write.
func (s *Store) migrate(ctx context.Context) error {
	err := migrate.Run(ctx, func(ctx context.Context, fn func(*sql.Tx) error) error {
		return s.write(ctx, "migrate schema", fn)
	}, migrations)
	if _, ok := errors.AsType[*migrate.NewerError](err); ok {
		return fmt.Errorf("%w: refusing to run an older cardd on it", err)
	}
	return err
}
