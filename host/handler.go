package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	gosync "sync"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/strictjson"
	"github.com/cardd/cardd/redact"
)

// MaxBodyBytes is the largest request body the host reads. A journal batch
// of a few hundred rows is tens of KiB; anything near this is a mistake.
const MaxBodyBytes = 1 << 20

// maxNonceLen bounds the nonce header before it is stored: the terminal
// sends 16 bytes as 32 hex digits, and a nonce is kept for 10 minutes.
const maxNonceLen = 128

// DefaultBalanceCap is the balance cap when Options leaves it 0: 1000.00
// yuan, the usual limit of an anonymous stored-value card.
const DefaultBalanceCap = 100000

// Options tune a Handler; the zero value is usable.
type Options struct {
	// BalanceCap is the most a purse may hold after a load, in fen;
	// 0 means DefaultBalanceCap.
	BalanceCap int64
	// LoadHold is how long a load authorization holds the card's counter
	// against other terminals; 0 means DefaultLoadHold.
	LoadHold time.Duration
	// Now is the host's clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Logger gets one line per refused request and every alarm; nil
	// discards. Card numbers are masked, keys and secrets never written.
	Logger *slog.Logger
	// MaxPullWait cuts the wait a pull may ask for; 0 means MaxPullWait.
	MaxPullWait time.Duration
	// Topups serves the kiosk top-up endpoints (hostapi.PathTopup*);
	// nil answers them 503 topup_unavailable.
	Topups *Topups
}

// Handler is the host's upstream API (package hostapi), an http.Handler.
// Every endpoint takes a POST with a JSON body of at most MaxBodyBytes and
// answers JSON; a body with an unknown field, a field named in another
// case, a key given twice, a second value or a field of the wrong type is
// 400 bad_request naming it, any other method 405, any other path 404.
// Every non-2xx answer is a hostapi.Error.
//
// Every request is authenticated before its body is looked at, with
// hostapi.Verify: the X-Cardd-* headers must name a registered terminal
// (its id is 12 hex digits, either case), carry a timestamp within
// hostapi.MaxSkew of the host's clock and a nonce the terminal never used,
// and sign method, path, timestamp, nonce and body hash with the terminal's
// secret. The secret is the text of the terminal's secret file (64 hex
// digits from 'cardhost terminal add'), used as it is as the HMAC key,
// which is what the terminal's config.ReadSecretFile gives it. Failures are
// 401 unauthorized with Verify's reason ("unknown terminal", "stale
// timestamp", "bad signature", "replayed request"). Nonces are committed to
// the database before the request runs, so a captured request is refused
// even after the host restarts; they are purged after 2*hostapi.MaxSkew.
// The verified terminal id is the terminal id of every MAC input.
//
// /v1/pull: the change feed since a cursor ("" is the beginning; otherwise
// the next_cursor of an earlier answer, opaque to the terminal): each credit
// change with the state the credit changed to (pending when added, consumed
// once a TAC proved it on a card, cancelled), and each deny-list change
// (denied true with its reason, or false when lifted), in the order they
// happened, and each identity class change of a card record (the class, or
// "" when cleared), at most limit (default DefaultPullLimit, at most MaxPullLimit);
// more says whether more are waiting. A terminal that applies them in order
// ends where the host is. A pull with wait_ms above 0 is held while nothing
// follows the cursor, up to wait_ms or Options.MaxPullWait, whichever is
// shorter, and answered as soon as a change arrives, whichever process
// wrote it (this one at once; another one sharing the database within
// feedPoll); its answer says held. EndWaits answers the held ones at once.
//
// /v1/card/credits: the pending credits of one card, oldest first, and
// whether it is denied. A card this host never issued is 404 not_found.
//
// /v1/load/authorize: the money rules of Rules.Authorize. In short: the
// credit exists, is the card's, is pending (a consumed one is 409
// credit_consumed) and has the request's amount; the card is not denied (409
// card_denied); old balance + amount is within the balance cap (409
// over_balance_cap); MAC1 verifies with the card's load key for the random,
// counter and this terminal (409 mac_invalid, nothing recorded); an open
// authorization of the credit at the same counter is void (the card did not
// move) unless another terminal was issued it less than Options.LoadHold ago
// (409 credit_busy: the credit waits for the card's next tap), at another
// counter it is 409 credit_in_flight until completed; then
// MAC2 over amount, type, terminal and the request's time (the terminal's
// wall clock, hostapi.TimeLayout, within a day of the host's clock, else
// 400) is recorded as an open authorization and answered.
//
// Any open authorization of the card's purse at a lower counter, of any
// credit, is 409 credit_in_flight too: the card keeps the proof of its last
// load only, so that load must be settled before another replaces it.
//
// /v1/load/complete: Rules.Complete. A TAC that verifies for the credit's
// authorization at that counter consumes the credit (once: the same TAC
// again answers consumed); one that does not is 409 tac_invalid and changes
// nothing. A TAC that verifies for another credit's authorization of the
// card at that counter settles that credit and answers this one's state.
// not_applied with a fresh INIT FOR LOAD probe whose MAC1 verifies at the
// authorization's counter voids the authorization and leaves the credit
// pending; a probe from a card that has moved on is 409 counter_mismatch,
// one that does not verify 409 mac_invalid. A credit is consumed only on a
// verified TAC.
//
// /v1/journal: journal rows, answered row by row (storeJournal): each is
// checked (kind, state, card id, purse, amount and balance within 0 and the
// larger of MaxJournalAmountFen and the balance cap, credit id, TAC form,
// an RFC 3339 time from 2000 to a day past the host's clock); a bad row is
// refused and the good ones of the batch are stored. A row stored done or
// failed is final: the same copy again is acked, a changed one refused 409
// row_settled and alarmed. The answer is 200 with acked ids and refused
// rows for any well-formed batch, even when every row is refused.
//
// /v1/shift: a closed shift (班结), stored once per terminal and shift id
// (shifts.go): the same copy again is acked, another 409 shift_differs.
//
// /v1/heartbeat: the terminal's version, queue depth, readers, printer and
// extras are stored with the time; the answer is the host's clock, RFC 3339
// UTC, for the terminal's skew check.
type Handler struct {
	store   *Store
	rules   *Rules
	now     func() time.Time
	log     *slog.Logger
	maxWait time.Duration
	ending  chan struct{} // closed by EndWaits
	endOnce gosync.Once
	routes  map[string]func(ctx context.Context, term string, body []byte, now time.Time) (any, error)
}

// NewHandler returns the upstream API over store, with keys as the
// issuer's key box.
func NewHandler(store *Store, keys *Keys, opt Options) *Handler {
	h := &Handler{store: store, now: opt.Now, log: opt.Logger, maxWait: opt.MaxPullWait, ending: make(chan struct{})}
	if h.maxWait <= 0 {
		h.maxWait = MaxPullWait
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	balanceCap := opt.BalanceCap
	if balanceCap == 0 {
		balanceCap = DefaultBalanceCap
	}
	h.rules = &Rules{Store: store, Keys: keys, BalanceCap: balanceCap, Logger: h.log, LoadHold: opt.LoadHold}
	h.routes = map[string]func(context.Context, string, []byte, time.Time) (any, error){
		hostapi.PathPull:          h.pull,
		hostapi.PathCardCredits:   h.cardCredits,
		hostapi.PathLoadAuthorize: h.authorize,
		hostapi.PathLoadComplete:  h.complete,
		hostapi.PathJournal:       h.journal,
		hostapi.PathHeartbeat:     h.heartbeat,
		hostapi.PathAccess:        h.access,
		hostapi.PathVoid:          h.void,
		hostapi.PathShift:         h.shift, // shifts.go
	}
	h.routes[hostapi.PathCardBlock] = h.cardBlock // chipblock.go
	h.addTopupRoutes(opt.Topups)
	return h
}

// ServeHTTP authenticates the request, runs its endpoint and answers JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, ok := h.routes[r.URL.Path]
	if !ok {
		writeError(w, notFound("no endpoint %s", r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, refuse(http.StatusMethodNotAllowed, hostapi.CodeBadRequest, "%s takes POST, not %s", r.URL.Path, r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			writeError(w, refuse(http.StatusRequestEntityTooLarge, hostapi.CodeBadRequest, "body over %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, badRequest("reading body: %v", err))
		return
	}
	now := h.now()
	term, err := h.verify(r, body, now)
	if err != nil {
		h.answerError(w, r, "", err)
		return
	}
	resp, err := route(r.Context(), term, body, now)
	if err != nil {
		h.answerError(w, r, term, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// verify runs hostapi.Verify against the store. Verify's callbacks cannot
// return an error, so a database failure is kept aside and answered 500
// rather than passed off as an unknown terminal or a replay.
func (h *Handler) verify(r *http.Request, body []byte, now time.Time) (string, error) {
	if n := len(r.Header.Get(hostapi.HeaderNonce)); n > maxNonceLen {
		return "", refuse(http.StatusUnauthorized, hostapi.CodeUnauthorized, "%v: nonce of %d characters, at most %d", hostapi.ErrAuth, n, maxNonceLen)
	}
	ctx := r.Context()
	var storeErr error
	secretOf := func(term string) ([]byte, bool) {
		id, err := CanonicalTerminalID(term)
		if err != nil {
			return nil, false
		}
		secret, ok, err := h.store.terminalSecret(ctx, id)
		if err != nil {
			storeErr = err
			return nil, false
		}
		return secret, ok
	}
	seen := func(term, nonce string, ts time.Time) bool {
		id, _ := CanonicalTerminalID(term) // secretOf accepted it
		used, err := h.store.spendNonce(ctx, id, nonce, ts, now)
		if err != nil {
			storeErr = err
			return true // fail closed
		}
		return used
	}
	term, err := hostapi.Verify(r, body, now, secretOf, seen)
	if storeErr != nil {
		return "", fmt.Errorf("authenticating request: %w", storeErr)
	}
	if err != nil {
		return "", refuse(http.StatusUnauthorized, hostapi.CodeUnauthorized, "%s", err.Error())
	}
	return CanonicalTerminalID(term)
}

// decode reads a request body strictly (package strictjson): one JSON
// object, no unknown field, no field named in another case, no key twice,
// nothing after it.
func decode(body []byte, v any) error {
	if err := strictjson.Unmarshal(body, v); err != nil {
		return badRequest("body: %v", err)
	}
	return nil
}

func (h *Handler) pull(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.PullRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	cursor, err := parseCursor(req.Cursor)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	limit := req.Limit
	switch {
	case limit < 0:
		return nil, badRequest("limit %d: want 0 (the host's default) or more", limit)
	case limit == 0:
		limit = DefaultPullLimit
	case limit > MaxPullLimit:
		limit = MaxPullLimit
	}
	if req.WaitMS < 0 {
		return nil, badRequest("wait_ms %d: want 0 (answer at once) or more", req.WaitMS)
	}
	if err := h.store.notePull(ctx, term, cursor, now); err != nil {
		return nil, err
	}
	r, err := h.store.pull(ctx, cursor, limit)
	if err != nil || req.WaitMS == 0 {
		return r, err
	}
	r.Held = true
	// Measured on the real clock, not h.now: it is a wait, not a rule.
	end := time.Now().Add(min(time.Duration(req.WaitMS)*time.Millisecond, h.maxWait))
	// Held until the cursor moves: any change ends the wait, whatever its
	// kind (a product edit or a close carries no credit, deny or class).
	for r.NextCursor == strconv.FormatInt(cursor, 10) {
		left := time.Until(end)
		if left <= 0 || !h.store.feed.wait(ctx, cursor, left, h.ending) {
			break
		}
		next, err := h.store.pull(ctx, cursor, limit)
		if err != nil {
			if ctx.Err() != nil {
				// The terminal left as the change came: nothing to
				// answer, nothing failed.
				return r, nil
			}
			return next, err
		}
		r = next
		r.Held = true
	}
	return r, nil
}

// EndWaits answers every held pull now, and every later one at once: for
// http.Server.RegisterOnShutdown, so that a shutdown does not wait out
// the terminals' waits.
func (h *Handler) EndWaits() {
	h.endOnce.Do(func() { close(h.ending) })
}

func (h *Handler) cardCredits(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.CardCreditsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := hostapi.CheckCardID(req.Card); err != nil {
		return nil, badCard(err)
	}
	resp, err := h.store.pendingCredits(ctx, req.Card)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("card %s was not issued by this host", redact.CardNumber(req.Card))
	}
	return resp, err
}

func (h *Handler) authorize(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.LoadAuthorizeRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	resp, err := h.rules.Authorize(ctx, term, req, now)
	if err == nil {
		h.log.Info("load authorized", "terminal", term, "card", redact.CardNumber(req.Card), "credit", req.CreditID, "counter", req.OnlineCounter)
	}
	return resp, err
}

func (h *Handler) complete(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.LoadCompleteRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	resp, err := h.rules.Complete(ctx, term, req, now)
	if err == nil {
		h.log.Info("load completed", "terminal", term, "card", redact.CardNumber(req.Card), "credit", req.CreditID, "counter", req.Counter, "state", resp.State)
	}
	return resp, err
}

func (h *Handler) journal(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.JournalRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	res, err := h.store.storeJournal(ctx, term, req.Rows, h.rowChecker(now))
	if err != nil {
		return nil, err
	}
	h.logJournal(term, res)
	return res.JournalResponse, nil
}

// rowChecker checks journal rows at now against the host's amount cap.
func (h *Handler) rowChecker(now time.Time) rowChecker {
	return rowChecker{now: now, amountCap: max(MaxJournalAmountFen, h.rules.BalanceCap), keys: h.rules.Keys}
}

// logJournal logs what storeJournal alarmed and refused.
func (h *Handler) logJournal(term string, res JournalResult) {
	for _, a := range res.Alarms {
		h.log.Error("ALARM: journal upload", "terminal", term, "detail", a)
	}
	if res.ReconErr != nil {
		h.log.Error("reconciliation after a journal upload failed; the next upload of the card or PSAM checks its rows", "terminal", term, "err", res.ReconErr)
	}
	for _, rf := range res.Refused {
		h.log.Warn("journal row refused", "terminal", term, "index", rf.Index, "id", rf.ID, "code", rf.Code, "reason", rf.Reason)
	}
}

func (h *Handler) heartbeat(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.HeartbeatRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := h.store.heartbeat(ctx, term, req, now); err != nil {
		return nil, err
	}
	// An empty queue may be the last proof a replacement waits for
	// (balanceCertain); the minute's sweep settles what this misses.
	if req.QueueDepth == 0 {
		h.settleReplacements(ctx, term, now)
	}
	return hostapi.HeartbeatResponse{Time: now.UTC().Format(time.RFC3339)}, nil
}

// answerError answers a refusal with its status and code, and anything
// else as 500 without details, which go to the host's log instead.
// access sends the door access list when the terminal's version differs.
func (h *Handler) access(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.AccessRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	version, list, err := h.store.AccessList(ctx)
	if err != nil {
		return nil, err
	}
	resp := hostapi.AccessResponse{Version: version}
	if version != req.Version {
		resp.Changed, resp.List = true, list
	}
	return resp, nil
}

func (h *Handler) answerError(w http.ResponseWriter, r *http.Request, term string, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		h.log.Info("request refused", "path", r.URL.Path, "terminal", term, "status", rf.Status, "code", rf.Code, "reason", rf.Reason)
		writeError(w, rf)
		return
	}
	if errors.Is(err, ErrBusy) {
		h.log.Warn("request failed: store busy", "path", r.URL.Path, "terminal", term, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, refuse(http.StatusServiceUnavailable, codeBusy, "the host is busy with concurrent requests; nothing changed, ask again"))
		return
	}
	h.log.Error("request failed", "path", r.URL.Path, "terminal", term, "err", err)
	writeError(w, refuse(http.StatusInternalServerError, codeInternal, "the host failed to answer; see its log"))
}

func writeError(w http.ResponseWriter, rf *Refusal) {
	writeJSON(w, rf.Status, hostapi.Error{Code: rf.Code, Reason: rf.Reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(hostapi.Error{Code: codeInternal, Reason: "encoding the answer failed"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
