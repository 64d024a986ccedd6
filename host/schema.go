package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cardd/cardd/internal/migrate"
)

// migrations are the schema, one step per version: migrations[i] takes the
// database from PRAGMA user_version i to i+1. Steps are only ever appended,
// never edited, so that every existing database can follow.
var migrations = []string{
	// 1: the whole first schema.
	`
CREATE TABLE terminals (
	id          TEXT PRIMARY KEY,          -- 12 upper-case hex digits
	secret      TEXT NOT NULL,             -- hex text; the HMAC key is this text, as the terminal's secret file holds it
	created     TEXT NOT NULL,
	last_seen   TEXT,
	version     TEXT,
	queue_depth INTEGER,
	readers     TEXT,                      -- JSON array
	printer     TEXT,
	extra       TEXT                       -- JSON object
);

CREATE TABLE cards (
	number              TEXT PRIMARY KEY,  -- 16 digits
	app_serial          TEXT NOT NULL,     -- 10 bytes hex: the keys are diversified from it
	holder              TEXT NOT NULL,
	issued              TEXT NOT NULL,
	initial_balance_fen INTEGER NOT NULL,
	start_date          TEXT NOT NULL,
	expiry_date         TEXT NOT NULL
);

CREATE TABLE credits (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT, -- order of creation: "oldest first"
	id            TEXT NOT NULL UNIQUE,
	card          TEXT NOT NULL REFERENCES cards(number),
	amount_fen    INTEGER NOT NULL CHECK (amount_fen > 0),
	note          TEXT NOT NULL DEFAULT '',
	state         TEXT NOT NULL CHECK (state IN ('pending', 'consumed', 'cancelled')),
	created       TEXT NOT NULL,
	consumed_at   TEXT,
	consumed_tac  TEXT,
	consumed_by   TEXT,                    -- the terminal that loaded it onto the card
	consumed_auth INTEGER                  -- the authorization whose TAC proved it
);
CREATE INDEX credits_by_card ON credits(card, state, seq);

CREATE TABLE authorizations (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	credit          TEXT NOT NULL REFERENCES credits(id),
	card            TEXT NOT NULL REFERENCES cards(number),
	purse           TEXT NOT NULL CHECK (purse IN ('EP', 'ED')),
	terminal        TEXT NOT NULL,
	counter         INTEGER NOT NULL,      -- the card's online counter before the load
	random          TEXT NOT NULL,         -- the card's random of that INIT
	old_balance_fen INTEGER NOT NULL,
	amount_fen      INTEGER NOT NULL,
	time            TEXT NOT NULL,         -- hostapi.TimeLayout, the terminal's wall clock: in MAC2 and TAC
	mac2            TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('open', 'applied', 'void')),
	created         TEXT NOT NULL,
	closed          TEXT,
	tac             TEXT
);
CREATE INDEX authorizations_by_credit ON authorizations(credit, counter);
CREATE INDEX authorizations_by_purse ON authorizations(card, purse, counter);
-- A credit has at most one authorization that may still be used: the rules
-- void the old one before they write a new one, and the schema holds them to it.
CREATE UNIQUE INDEX authorizations_one_open ON authorizations(credit) WHERE state = 'open';

-- The highest online counter the host has proof the card reached, per purse:
-- an INIT answer below it is old (replayed or held back) and proves nothing
-- about the card now.
CREATE TABLE purse_counters (
	card    TEXT NOT NULL REFERENCES cards(number),
	purse   TEXT NOT NULL,
	counter INTEGER NOT NULL,
	seen    TEXT NOT NULL,
	PRIMARY KEY (card, purse)
);

CREATE TABLE deny (
	card   TEXT PRIMARY KEY,               -- any 16-digit number, issued here or not
	reason TEXT NOT NULL,
	since  TEXT NOT NULL
);

-- The change feed behind /v1/pull: one row per change, with the state it
-- changed to, so a terminal replays history in order.
CREATE TABLE changes (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	kind   TEXT NOT NULL CHECK (kind IN ('credit', 'deny')),
	credit TEXT REFERENCES credits(id),
	state  TEXT,                           -- credit state after the change
	card   TEXT NOT NULL,
	denied INTEGER,                        -- deny: 1 added, 0 lifted
	reason TEXT,
	time   TEXT NOT NULL
);

CREATE TABLE journal (
	terminal    TEXT NOT NULL,
	id          TEXT NOT NULL,
	kind        TEXT NOT NULL,
	state       TEXT NOT NULL,
	card        TEXT NOT NULL,
	purse       TEXT NOT NULL,
	counter     INTEGER NOT NULL,
	balance_fen INTEGER NOT NULL,
	amount_fen  INTEGER NOT NULL,
	credit_id   TEXT NOT NULL,
	tac         TEXT NOT NULL,
	detail      TEXT NOT NULL,
	time        TEXT NOT NULL,
	received    TEXT NOT NULL,             -- first upload
	updated     TEXT NOT NULL,             -- last upload that changed the row
	versions    INTEGER NOT NULL DEFAULT 1,-- how many different versions arrived
	PRIMARY KEY (terminal, id)             -- per terminal: one cannot squat another's ids
);

CREATE TABLE nonces (
	terminal TEXT NOT NULL,
	nonce    TEXT NOT NULL,
	ts       INTEGER NOT NULL,             -- the request's timestamp, Unix seconds
	PRIMARY KEY (terminal, nonce)
);
CREATE INDEX nonces_by_ts ON nonces(ts);

-- Who did what to which credit, and when: never updated, never deleted.
CREATE TABLE ledger (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	time       TEXT NOT NULL,
	actor      TEXT NOT NULL,              -- "terminal 000000000001" or "operator root"
	event      TEXT NOT NULL,              -- added, authorized, voided, consumed, cancelled, denied, undenied, alarm
	credit     TEXT,
	card       TEXT NOT NULL,
	counter    INTEGER,
	amount_fen INTEGER,
	tac        TEXT,
	detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_by_card ON ledger(card, id);
`,
	// 2: a purchase's terminal transaction serial, which its TAC covers.
	`
ALTER TABLE journal ADD COLUMN term_serial INTEGER NOT NULL DEFAULT 0;
`,
	// 3: the door access list terminals pull (one list, content-versioned).
	`
CREATE TABLE access_list (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version TEXT NOT NULL,
	body    BLOB NOT NULL,                 -- package door's List, JSON
	updated TEXT NOT NULL,
	actor   TEXT NOT NULL
);
`,
	// 4: M1 wallets: cards known by their UID (number "uid:…", no app
	// serial: nothing on them is diversified), and their loads, which the
	// host authorizes to one terminal at the balance it read.
	`
ALTER TABLE cards ADD COLUMN kind TEXT NOT NULL DEFAULT 'epurse' CHECK (kind IN ('epurse', 'm1'));

CREATE TABLE m1_loads (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	credit          TEXT NOT NULL REFERENCES credits(id),
	card            TEXT NOT NULL REFERENCES cards(number),
	terminal        TEXT NOT NULL,
	ref             TEXT NOT NULL,         -- the terminal's name for it, journaled before it asked
	seq             INTEGER NOT NULL,      -- the wallet's transaction sequence before the load
	old_balance_fen INTEGER NOT NULL,
	amount_fen      INTEGER NOT NULL,
	time            TEXT NOT NULL,         -- hostapi.TimeLayout, the terminal's wall clock
	state           TEXT NOT NULL CHECK (state IN ('open', 'applied', 'void')),
	created         TEXT NOT NULL,
	closed          TEXT
);
CREATE UNIQUE INDEX m1_loads_ref ON m1_loads(credit, ref);
-- One open load per wallet: two would leave it in states it could not tell apart.
CREATE UNIQUE INDEX m1_loads_one_open ON m1_loads(card) WHERE state = 'open';
`,
	// 5: kiosk top-ups: payment orders a terminal asks for, which become
	// credits (with the order's id) once the provider says they are paid,
	// and the books of the simulated provider ("sim") cardhost ships.
	`
CREATE TABLE topup_orders (
	id           TEXT PRIMARY KEY,         -- "tp-" and 32 random hex digits; the credit's id once paid
	terminal     TEXT NOT NULL,            -- the terminal that asked; only it may query or close
	key          TEXT NOT NULL,            -- the terminal's idempotency key
	card         TEXT NOT NULL REFERENCES cards(number),
	amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
	provider     TEXT NOT NULL,
	qr           TEXT NOT NULL DEFAULT '', -- '' until the provider answered CreateOrder
	state        TEXT NOT NULL CHECK (state IN ('unpaid', 'paid', 'closed')),
	created      TEXT NOT NULL,
	expires      TEXT NOT NULL,
	closed_at    TEXT,
	paid_at      TEXT,
	paid_via     TEXT,                     -- notification or query: how the host learnt it
	provider_txn TEXT,                     -- the provider's transaction id
	late         INTEGER NOT NULL DEFAULT 0, -- 1: paid after the host had closed it
	UNIQUE (terminal, key)
);
CREATE INDEX topup_orders_unpaid ON topup_orders(state, expires);
CREATE INDEX topup_orders_by_card ON topup_orders(card, created);

CREATE TABLE paysim_orders (
	id          TEXT PRIMARY KEY,
	amount_fen  INTEGER NOT NULL,
	description TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('unpaid', 'paid', 'closed')),
	txn         TEXT,
	created     TEXT NOT NULL
);
`,
	// VOIDS: refunds of sales voided at a terminal (冲正): each a credit for
	// the sale's card, one per sale (per terminal's row, and per card's
	// purchase counter, whichever terminal asks).
	`
CREATE TABLE refunds (
	terminal   TEXT NOT NULL,              -- the terminal that voided, whose sale it was
	void_id    TEXT NOT NULL,              -- the terminal's id of the void
	sale_id    TEXT NOT NULL,              -- the sale's journal row id, of that terminal
	card       TEXT NOT NULL REFERENCES cards(number),
	purse      TEXT NOT NULL,
	counter    INTEGER NOT NULL,           -- the sale's purchase counter
	sale_tac   TEXT NOT NULL,
	sale_fen   INTEGER NOT NULL,
	amount_fen INTEGER NOT NULL CHECK (amount_fen > 0 AND amount_fen <= sale_fen),
	credit     TEXT NOT NULL UNIQUE REFERENCES credits(id),
	voided_at  TEXT NOT NULL,              -- the terminal's time of the void, RFC 3339
	created    TEXT NOT NULL,
	PRIMARY KEY (terminal, void_id),
	UNIQUE (terminal, sale_id)
);
-- A card's purchase counter names one debit: a second terminal's copy of it
-- gets no second refund.
CREATE UNIQUE INDEX refunds_one_per_debit ON refunds(card, purse, counter) WHERE purse IN ('EP', 'ED');
`,
	// subsidies (补助): a batch of credits, one per card, each bound to a
	// purse and a pick-up window.
	`
CREATE TABLE subsidies (
	id         TEXT PRIMARY KEY,           -- the operator's batch id, or "sb-" and 16 random hex digits
	amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
	purse      TEXT NOT NULL CHECK (purse IN ('EP', 'ED')),
	not_before TEXT NOT NULL,              -- the window: no load before not_before,
	expires    TEXT NOT NULL,              -- none from expires on; then the undelivered are withdrawn
	note       TEXT NOT NULL DEFAULT '',
	created    TEXT NOT NULL,
	actor      TEXT NOT NULL
);
ALTER TABLE credits ADD COLUMN subsidy TEXT REFERENCES subsidies(id);
ALTER TABLE credits ADD COLUMN purse TEXT CHECK (purse IN ('EP', 'ED')); -- NULL: whichever purse the terminal loads
ALTER TABLE credits ADD COLUMN not_before TEXT;
ALTER TABLE credits ADD COLUMN expires TEXT;
-- A batch reaches each card once: one credit per card and batch.
CREATE UNIQUE INDEX credits_one_per_subsidy ON credits(subsidy, card) WHERE subsidy IS NOT NULL;
CREATE INDEX credits_expiring ON credits(state, expires) WHERE expires IS NOT NULL;
`,
	// identity classes (身份): a card record's class, which reaches the
	// terminals through the change feed like the deny list, as changes of
	// kind 'class'. SQLite cannot alter a CHECK, so changes is rebuilt:
	// every seq kept (a terminal's pull cursor is one) and the
	// AUTOINCREMENT mark with them; changes has no index but its key. The
	// class column comes last, where PostgreSQL's ADD COLUMN puts it.
	`
ALTER TABLE cards ADD COLUMN class TEXT NOT NULL DEFAULT '';

CREATE TABLE changes_rebuilt (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	kind   TEXT NOT NULL CHECK (kind IN ('credit', 'deny', 'class')),
	credit TEXT REFERENCES credits(id),
	state  TEXT,                           -- credit state after the change
	card   TEXT NOT NULL,
	denied INTEGER,                        -- deny: 1 added, 0 lifted
	reason TEXT,
	time   TEXT NOT NULL,
	class  TEXT                            -- class: the card's class after the change, '' cleared
);
INSERT INTO changes_rebuilt (seq, kind, credit, state, card, denied, reason, time)
	SELECT seq, kind, credit, state, card, denied, reason, time FROM changes ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'changes_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes_rebuilt', seq FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE changes;
ALTER TABLE changes_rebuilt RENAME TO changes;
`,
	// SHIFTS: cashiers' closed shifts (班结) as terminals totalled them,
	// one per terminal and shift id, and the journal rows each counted,
	// which the host checks the totals against.
	`
CREATE TABLE shifts (
	terminal TEXT NOT NULL,
	shift    INTEGER NOT NULL,
	cashier  TEXT NOT NULL,
	opened   TEXT NOT NULL,             -- RFC 3339, as the terminal sent it
	closed   TEXT NOT NULL,
	count    INTEGER NOT NULL,
	sum_fen  INTEGER NOT NULL,
	body     TEXT NOT NULL,             -- the shift as received (JSON): a copy sent again must equal it
	received TEXT NOT NULL,
	PRIMARY KEY (terminal, shift)
);
CREATE TABLE shift_rows (
	terminal TEXT NOT NULL,
	shift    INTEGER NOT NULL,
	row_id   TEXT NOT NULL,             -- a journal row id of the terminal
	PRIMARY KEY (terminal, shift, row_id)
);
`,
	// APPROVE: operators' checks on credits. A credit above the host's
	// approval threshold waits for a second operator: approval 'awaiting',
	// then 'approved' ('' for a credit that never needed one); it stays
	// pending meanwhile, so the credits.state CHECK is left as it is. The
	// threshold is a host setting in the store, so every instance and every
	// operator's command reads the same one.
	`
ALTER TABLE credits ADD COLUMN approval TEXT NOT NULL DEFAULT '' CHECK (approval IN ('', 'awaiting', 'approved'));
CREATE TABLE settings (
	name    TEXT PRIMARY KEY,           -- approve_above_fen: the approval threshold, decimal fen
	value   TEXT NOT NULL,
	updated TEXT NOT NULL,
	actor   TEXT NOT NULL               -- the operator who set it
);
`,
	// RECON: reconciliation (对账). A purchase's PSAM terminal id (its TAC
	// covers it) and what the host made of a row's TAC; every done (or in doubt) e-purse
	// load and purchase once per card counter (recon_moves) and every PSAM
	// serial (recon_serials), checked for gaps as they arrive under the
	// card's or PSAM's lock; the gaps found; each purse's books (opening
	// balance, net of the moves, last balance reported); and operators'
	// acknowledgements of alarms (ledger rows of event 'alarm').
	`
ALTER TABLE journal ADD COLUMN psam_terminal TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN tac_check TEXT NOT NULL DEFAULT ''; -- '' not checked, 'ok', 'bad', 'none' (nothing to check it with)
CREATE INDEX journal_by_time ON journal(time);

CREATE TABLE recon_moves (
	card        TEXT NOT NULL,
	purse       TEXT NOT NULL,
	kind        TEXT NOT NULL,             -- load (online counter) or purchase (offline counter)
	counter     INTEGER NOT NULL,
	terminal    TEXT NOT NULL,
	row_id      TEXT NOT NULL,
	balance_fen INTEGER NOT NULL,           -- before the move
	amount_fen  INTEGER NOT NULL,
	time        TEXT NOT NULL,             -- the row's time, UTC
	state       TEXT NOT NULL,             -- done, or unknown: a row holds the counter, its outcome in doubt
	gapped      INTEGER NOT NULL DEFAULT 0, -- 1 once the gap check took it in
	booked      INTEGER NOT NULL DEFAULT 0, -- 1 once its purse's books took it in (done only)
	PRIMARY KEY (card, purse, kind, counter)
);
CREATE INDEX recon_moves_pending ON recon_moves(card) WHERE gapped = 0 OR (state = 'done' AND booked = 0);

CREATE TABLE recon_serials (
	psam     TEXT NOT NULL,                -- the PSAM's terminal id
	serial   INTEGER NOT NULL,
	terminal TEXT NOT NULL,
	row_id   TEXT NOT NULL,
	checked  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (psam, serial)
);
CREATE INDEX recon_serials_unchecked ON recon_serials(psam) WHERE checked = 0;

CREATE TABLE recon_gaps (
	seq    TEXT NOT NULL,                  -- "card N EP purchase", "psam T"
	lo     INTEGER NOT NULL,                -- the missing values lo..hi
	hi     INTEGER NOT NULL,
	alarm  INTEGER NOT NULL,                -- the ledger row of its alarm
	filled TEXT,                           -- when the last missing value arrived
	PRIMARY KEY (seq, lo)
);

CREATE TABLE purse_books (
	card           TEXT NOT NULL,
	purse          TEXT NOT NULL,
	first_time     TEXT NOT NULL,          -- the earliest move's time, UTC
	opening_fen    INTEGER NOT NULL,        -- the balance before it
	net_fen        INTEGER NOT NULL,        -- loads minus purchases
	last_time      TEXT NOT NULL,          -- the newest move's time, UTC
	last_after_fen INTEGER NOT NULL,        -- the balance after it: what the card last reported
	alarm          INTEGER,                 -- the open balance alarm's ledger row
	PRIMARY KEY (card, purse)
);

CREATE TABLE alarm_acks (
	alarm    INTEGER PRIMARY KEY,           -- a ledger row of event 'alarm'
	operator TEXT NOT NULL,
	note     TEXT NOT NULL,
	time     TEXT NOT NULL
);
CREATE INDEX ledger_alarms ON ledger(id) WHERE event = 'alarm';
`,
	// PRODUCT: card products (卡种): named and anonymous cards and the
	// operators' own, each with a balance cap, whether a card of it can be
	// replaced or refunded on closing, and a last valid day ('' none).
	// Every card gets one: named where it has a holder, else anonymous.
	// A terminal learns a card's product with each of its credits, and a
	// change of it on the change feed as kind 'product' (a product edit is
	// one with card ''); SQLite cannot alter a CHECK, so changes is
	// rebuilt as for identity classes, every seq and the AUTOINCREMENT
	// mark kept.
	`
CREATE TABLE products (
	name        TEXT PRIMARY KEY,
	cap_fen     INTEGER NOT NULL CHECK (cap_fen > 0),
	replaceable INTEGER NOT NULL CHECK (replaceable IN (0, 1)),
	refundable  INTEGER NOT NULL CHECK (refundable IN (0, 1)),
	valid_until TEXT NOT NULL DEFAULT '', -- the last valid day, YYYY-MM-DD; '' no end
	updated     TEXT NOT NULL,
	actor       TEXT NOT NULL
);
INSERT INTO products (name, cap_fen, replaceable, refundable, updated, actor) VALUES
	('named', 500000, 1, 1, '1970-01-01T00:00:00.000000Z', 'schema'),
	('anonymous', 100000, 0, 0, '1970-01-01T00:00:00.000000Z', 'schema');
ALTER TABLE cards ADD COLUMN product TEXT NOT NULL DEFAULT 'named';
UPDATE cards SET product = CASE WHEN holder <> '' THEN 'named' ELSE 'anonymous' END;

CREATE TABLE changes_rebuilt (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	kind    TEXT NOT NULL CHECK (kind IN ('credit', 'deny', 'class', 'product')),
	credit  TEXT REFERENCES credits(id),
	state   TEXT,                           -- credit state after the change
	card    TEXT NOT NULL,
	denied  INTEGER,                        -- deny: 1 added, 0 lifted
	reason  TEXT,
	time    TEXT NOT NULL,
	class   TEXT,                           -- class: the card's class after the change, '' cleared
	product TEXT                            -- product: the card's product after the change, or the product edited (card '')
);
INSERT INTO changes_rebuilt (seq, kind, credit, state, card, denied, reason, time, class)
	SELECT seq, kind, credit, state, card, denied, reason, time, class FROM changes ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'changes_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes_rebuilt', seq FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE changes;
ALTER TABLE changes_rebuilt RENAME TO changes;
`,
	// Balance alerts (issue 17 item 6): the per-card thresholds and the
	// webhook queue, filled in the same transaction as the journal row.
	`
CREATE TABLE card_alerts (
	card      TEXT PRIMARY KEY,             -- a card's own threshold, over the default
	below_fen INTEGER NOT NULL,             -- 0: no alerts for this card
	actor     TEXT NOT NULL,
	updated   TEXT NOT NULL
);

CREATE TABLE alerts (
	id            TEXT PRIMARY KEY,         -- the idempotency key: one per journal row
	card          TEXT NOT NULL,
	terminal      TEXT NOT NULL,
	row_id        TEXT NOT NULL,
	body          TEXT NOT NULL,            -- the JSON the webhook posts
	created       TEXT NOT NULL,
	state         TEXT NOT NULL,            -- queued, sent, failed
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_at       TEXT NOT NULL,            -- when it is due again
	lease_until   TEXT NOT NULL DEFAULT '', -- a sender holds it until then
	last_error    TEXT NOT NULL DEFAULT '',
	done          TEXT NOT NULL DEFAULT ''  -- when it was sent or given up
);
CREATE INDEX alerts_due ON alerts(next_at) WHERE state = 'queued';
`,
	// Merchants in the daily report (issue 17 item 4): the merchant a
	// terminal sells for, '' for none.
	`
ALTER TABLE terminals ADD COLUMN merchant TEXT NOT NULL DEFAULT '';
`,
	// REPLACE: lost-card replacement (挂失补办). A replacement carries a
	// deny-listed card's balance to a new card as one credit once its
	// settle window ends or every terminal proved it holds no more rows of
	// the old card; the terminals' last pull cursor (pulled_seq, what the
	// terminal has applied) and when the host got it are that proof's
	// half. Rows of the old card that arrive after the credit are recorded
	// as debt_fen owed by the replacement.
	`
ALTER TABLE terminals ADD COLUMN pulled_seq INTEGER;
ALTER TABLE terminals ADD COLUMN pulled_at TEXT;

CREATE TABLE replacements (
	old          TEXT PRIMARY KEY,         -- the lost card: replaced once, ever
	new          TEXT NOT NULL UNIQUE,     -- the card the balance goes to: the target of one replacement
	reported     TEXT NOT NULL,            -- when the old card went on the deny list
	deny_seq     INTEGER NOT NULL,           -- the change that put it there: a terminal that pulled past it knows
	replaced     TEXT NOT NULL,
	settle_until TEXT NOT NULL,            -- the settle window's end
	state        TEXT NOT NULL CHECK (state IN ('settling', 'settled')),
	reported_fen INTEGER NOT NULL,           -- the old card's balance known when it was replaced
	credit       TEXT UNIQUE,              -- the one credit of the carried balance; NULL until settled, or with nothing to carry
	credited_fen INTEGER,                    -- what the credit carried
	settled      TEXT,
	settled_why  TEXT,                     -- 'window' or 'certain'
	debt_fen     INTEGER NOT NULL DEFAULT 0, -- old card's purchases uploaded after the credit: owed
	actor        TEXT NOT NULL,
	reason       TEXT NOT NULL
);
CREATE INDEX replacements_settling ON replacements(settle_until) WHERE state = 'settling';
`,
	// CLOSE: closing a card (销户): an operator's close, pending until
	// a terminal's closing debit (a purchase of the whole balance, its
	// row's credit_id the close id) is uploaded, then closed with the
	// refund due. Pending closes reach the terminals through the change
	// feed as changes of kind 'close': SQLite cannot alter a CHECK, so
	// changes is rebuilt as in the identity-class step, every seq and
	// column kept.
	`
CREATE TABLE closes (
	card       TEXT PRIMARY KEY REFERENCES cards(number), -- a card closes once
	state      TEXT NOT NULL CHECK (state IN ('pending', 'closed')),
	operator   TEXT NOT NULL,              -- who asked
	reason     TEXT NOT NULL,
	requested  TEXT NOT NULL,
	refund_fen INTEGER,                      -- closed: the balance the closing debit took, owed to the holder
	terminal   TEXT,                       -- closed: the terminal and journal row that closed it
	journal_id TEXT,
	closed     TEXT,                       -- closed: when the host recorded it
	tac_check  TEXT                        -- closed: the closing debit's TAC check (ok, or none: nothing to check it with)
);
CREATE INDEX closes_state ON closes(state, requested);

CREATE TABLE changes_rebuilt (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	kind    TEXT NOT NULL CHECK (kind IN ('credit', 'deny', 'class', 'product', 'close')),
	credit  TEXT REFERENCES credits(id),
	state   TEXT,                           -- credit state after the change
	card    TEXT NOT NULL,
	denied  INTEGER,                        -- deny: 1 added, 0 lifted
	reason  TEXT,
	time    TEXT NOT NULL,
	class   TEXT,                           -- class: the card's class after the change, '' cleared
	product TEXT                            -- product: the card's product after the change, or the product edited (card '')
);
INSERT INTO changes_rebuilt (seq, kind, credit, state, card, denied, reason, time, class, product)
	SELECT seq, kind, credit, state, card, denied, reason, time, class, product FROM changes ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'changes_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes_rebuilt', seq FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE changes;
ALTER TABLE changes_rebuilt RENAME TO changes;
`,
	// CLOSE CREDITS: the pending credits a close cancelled, never
	// loaded, are the holder's money: the refund due carries them.
	`ALTER TABLE closes ADD COLUMN credits_fen INTEGER NOT NULL DEFAULT 0;`,
}

// schemaVersion is the version this binary writes, the same on both
// stores.
var schemaVersion = len(migrations)

// migrate applies the missing steps, each in its own transaction with the
// version bump, so a crash leaves the database at a whole version.
func (s *Store) migrate() error {
	ctx := context.Background()
	var err error
	if s.postgres {
		err = migrate.RunVersioned(ctx, migrate.WithDB(s.db), pgVersion{}, postgresMigrations)
	} else {
		err = migrate.Run(ctx, migrate.WithDB(s.db), migrations)
	}
	if _, ok := errors.AsType[*migrate.NewerError](err); ok {
		return fmt.Errorf("%w: use a newer cardhost", err)
	}
	return err
}

// pgVersion keeps the schema version in a one-row table. Its Get first
// takes a transaction advisory lock: host instances started together on a
// new database wait for each other instead of both running step 1.
type pgVersion struct{}

// migrateLock is the advisory lock key of schema migrations.
const migrateLock = 7301990002

func (pgVersion) Get(ctx context.Context, tx *sql.Tx) (int, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrateLock); err != nil {
		return 0, fmt.Errorf("migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return 0, fmt.Errorf("schema_version: %w", err)
	}
	var v int
	err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema_version: %w", err)
	}
	return v, nil
}

func (pgVersion) Set(ctx context.Context, tx *sql.Tx, v int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v)
	return err
}
