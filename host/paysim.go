package host

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/strictjson"
	"github.com/cardd/cardd/money"
)

// SimProviderName is the simulated provider's name and the path of its
// pages, /pay/sim/ORDER.
const SimProviderName = "sim"

// HeaderSimSignature carries the simulated provider's signature of a
// notification: HMAC-SHA256 of the body with its secret, in hex.
const HeaderSimSignature = "X-Paysim-Signature"

// MaxSimDelay bounds the delay a pay request may ask for its notification.
const MaxSimDelay = 10 * time.Minute

// SimProvider is the simulated payment provider cardhost ships for tests
// and demonstrations: its QR code opens its own pay page on the host
// (/pay/sim/ORDER?sig=...), whose button "pays" and sends a signed
// notification to the host's PathNotify, as a real provider's server would.
// Its books are a table of the host's database. Anyone who can open the
// pay page can pay without money: never run it where cards hold real value.
type SimProvider struct {
	store  *Store
	secret []byte
	base   string // the host's URL as a phone reaches it, no trailing slash
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	delayed map[string]bool // orders with a delayed notification pending: one each, however often the page is posted
}

// NewSimProvider returns the simulated provider. secret signs the pay
// pages' links and the notifications; base is the host's URL as phones and
// the provider reach it (http://192.168.1.10:8710).
func NewSimProvider(store *Store, secret []byte, base string, log *slog.Logger) (*SimProvider, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("sim provider secret of %d bytes: want at least 16", len(secret))
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("public URL %q: want http://HOST:PORT", base)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SimProvider{store: store, secret: secret, base: strings.TrimSuffix(base, "/"), log: log,
		client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Name is "sim".
func (p *SimProvider) Name() string { return SimProviderName }

func (p *SimProvider) mac(kind string, b []byte) string {
	m := hmac.New(sha256.New, p.secret)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// PayURL is the pay page of an order: what its QR code holds.
func (p *SimProvider) PayURL(id string) string {
	return p.base + "/pay/sim/" + url.PathEscape(id) + "?sig=" + p.mac("page", []byte(id))
}

// CreateOrder opens the order in the simulator's books (once per id) and
// returns its pay page.
func (p *SimProvider) CreateOrder(ctx context.Context, o PayOrder) (string, error) {
	_, err := p.store.db.ExecContext(ctx, `INSERT INTO paysim_orders (id, amount_fen, description, state, created) VALUES (?, ?, ?, 'unpaid', ?)
		ON CONFLICT (id) DO NOTHING`, o.ID, o.AmountFen, o.Description, dbTime(time.Now()))
	if err != nil {
		return "", err
	}
	return p.PayURL(o.ID), nil
}

// simOrder is an order in the simulator's books.
type simOrder struct {
	ID, Description, State, Txn string
	AmountFen                   int64
}

func (p *SimProvider) order(ctx context.Context, id string) (simOrder, error) {
	o := simOrder{ID: id}
	err := p.store.db.QueryRowContext(ctx, `SELECT amount_fen, description, state, coalesce(txn, '') FROM paysim_orders WHERE id = ?`, id).
		Scan(&o.AmountFen, &o.Description, &o.State, &o.Txn)
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrUnknownOrder
	}
	return o, err
}

func (o simOrder) payment() Payment {
	return Payment{OrderID: o.ID, State: o.State, AmountFen: o.AmountFen, TxnID: o.Txn}
}

// Query answers from the simulator's books.
func (p *SimProvider) Query(ctx context.Context, id string) (Payment, error) {
	o, err := p.order(ctx, id)
	return o.payment(), err
}

// Close closes an unpaid order; a paid one stays paid (the host's query
// after the close sees it).
func (p *SimProvider) Close(ctx context.Context, id string) error {
	res, err := p.store.db.ExecContext(ctx, `UPDATE paysim_orders SET state = 'closed' WHERE id = ? AND state = 'unpaid'`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := p.order(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// simNotification is the body of the simulator's notification.
type simNotification struct {
	Order     string `json:"order"`
	State     string `json:"state"`
	AmountFen int64  `json:"amount_fen"`
	Txn       string `json:"txn"`
}

// SignNotification builds a signed notification request to url for p; a
// test forges one with another secret or another amount through it.
func (p *SimProvider) SignNotification(ctx context.Context, url string, pay Payment) (*http.Request, error) {
	b, err := json.Marshal(simNotification{Order: pay.OrderID, State: pay.State, AmountFen: pay.AmountFen, Txn: pay.TxnID})
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(HeaderSimSignature, p.mac("notify", b))
	return r, nil
}

// ParseNotification verifies the signature of the body and reads it.
func (p *SimProvider) ParseNotification(r *http.Request, body []byte) (Payment, error) {
	sig, err := hex.DecodeString(r.Header.Get(HeaderSimSignature))
	want, _ := hex.DecodeString(p.mac("notify", body))
	if err != nil || !hmac.Equal(sig, want) {
		return Payment{}, ErrBadSignature
	}
	var n simNotification
	if err := strictjson.Unmarshal(body, &n); err != nil {
		return Payment{}, fmt.Errorf("notification body: %w", err)
	}
	if n.State != hostapi.TopupPaid && n.State != hostapi.TopupClosed {
		return Payment{}, fmt.Errorf("notification state %q: want paid or closed", n.State)
	}
	return Payment{OrderID: n.Order, State: n.State, AmountFen: n.AmountFen, TxnID: n.Txn}, nil
}

// AnswerNotification answers as WeChat Pay v3 expects: the status, and a
// JSON code SUCCESS or FAIL with a message.
func (p *SimProvider) AnswerNotification(w http.ResponseWriter, status int, reason string) {
	code := "SUCCESS"
	if status != http.StatusOK {
		code = "FAIL"
	}
	writeJSON(w, status, map[string]string{"code": code, "message": reason})
}

// notify sends the notification of a paid order to the host, once.
func (p *SimProvider) notify(ctx context.Context, pay Payment) error {
	r, err := p.SignNotification(ctx, p.base+PathNotify, pay)
	if err != nil {
		return err
	}
	res, err := p.client.Do(r)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("host answered the notification %s", res.Status)
	}
	return nil
}

// pay marks an unpaid order paid, with a new transaction id; a paid one
// keeps its own. A closed one cannot be paid.
func (p *SimProvider) pay(ctx context.Context, id string) (simOrder, error) {
	var b [8]byte
	rand.Read(b[:])
	if _, err := p.store.db.ExecContext(ctx, `UPDATE paysim_orders SET state = 'paid', txn = ? WHERE id = ? AND state = 'unpaid'`,
		"sim-"+hex.EncodeToString(b[:]), id); err != nil {
		return simOrder{}, err
	}
	return p.order(ctx, id)
}

// ServeHTTP serves the pay page of an order, /pay/sim/ORDER?sig=...: GET
// shows it, POST pays. The sig proves the link came from CreateOrder. A
// POST may ask, for tests and demonstrations, for the notification to be
// sent twice=1, after delay=2s (at most MaxSimDelay), or with notify=0 not
// at all (the host learns it by querying).
func (p *SimProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/pay/sim/")
	sig, err := hex.DecodeString(r.URL.Query().Get("sig"))
	want, _ := hex.DecodeString(p.mac("page", []byte(id)))
	if err != nil || !hmac.Equal(sig, want) {
		http.Error(w, "链接无效 / This payment link is not valid.", http.StatusNotFound)
		return
	}
	o, err := p.order(r.Context(), id)
	if err != nil {
		http.Error(w, "订单不存在 / No such order.", http.StatusNotFound)
		return
	}
	page := simPage{Amount: money.Format(o.AmountFen), Description: o.Description, State: o.State}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if err := p.payPost(r, &o, &page); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := simPageTemplate.Execute(w, page); err != nil {
		p.log.Warn("sim pay page", "err", err)
	}
}

// payPost pays the order and sends the notification as the form asks.
func (p *SimProvider) payPost(r *http.Request, o *simOrder, page *simPage) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	times := 1
	switch r.PostForm.Get("notify") {
	case "", "1":
	case "0":
		times = 0
	default:
		return fmt.Errorf("notify = %q: want 0 or 1", r.PostForm.Get("notify"))
	}
	if r.PostForm.Get("twice") == "1" && times == 1 {
		times = 2
	}
	var delay time.Duration
	if d := r.PostForm.Get("delay"); d != "" {
		var err error
		if delay, err = time.ParseDuration(d); err != nil || delay < 0 || delay > MaxSimDelay {
			return fmt.Errorf("delay = %q: want a duration from 0s to %s", d, MaxSimDelay)
		}
	}
	if o.State == hostapi.TopupClosed {
		page.Message = "订单已关闭，未付款。/ The order was closed; nothing was paid."
		return nil
	}
	paid, err := p.pay(r.Context(), o.ID)
	if err != nil {
		return err
	}
	*o, page.State = paid, paid.State
	if paid.State != hostapi.TopupPaid {
		page.Message = "订单已关闭，未付款。/ The order was closed; nothing was paid."
		return nil
	}
	page.Message = "已付款。/ Paid."
	send := func(ctx context.Context) {
		for i := 0; i < times; i++ {
			if err := p.notify(ctx, paid.payment()); err != nil {
				p.log.Warn("sim notification not taken", "order", paid.ID, "err", err)
			}
		}
	}
	if delay == 0 {
		send(r.Context())
		return nil
	}
	p.mu.Lock()
	pending := p.delayed[paid.ID]
	if !pending {
		if p.delayed == nil {
			p.delayed = map[string]bool{}
		}
		p.delayed[paid.ID] = true
	}
	p.mu.Unlock()
	if pending {
		page.Message += " 通知已在等待发送。/ A notification is waiting to be sent already."
		return nil
	}
	page.Message += fmt.Sprintf(" 通知将于 %s 后发送。/ The notification follows in %s.", delay, delay)
	time.AfterFunc(delay, func() {
		defer func() {
			p.mu.Lock()
			delete(p.delayed, paid.ID)
			p.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(times)*p.client.Timeout)
		defer cancel()
		send(ctx)
	})
	return nil
}

// simPage is what the pay page shows.
type simPage struct {
	Amount, Description, State, Message string
}

var simPageTemplate = template.Must(template.New("pay").Parse(`<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>模拟支付 / Simulated payment</title>
<style>body{font-family:sans-serif;max-width:28em;margin:2em auto;padding:0 1em}.amount{font-size:2.5em;margin:.3em 0}
button{font-size:1.4em;padding:.5em 2em}.note{color:#a00}</style></head>
<body>
<h1>模拟支付 <small>Simulated payment</small></h1>
<p class="note">测试用，不收取真实款项。/ For tests: no real money moves.</p>
<p>{{.Description}}</p>
<p class="amount" id="amount">¥{{.Amount}}</p>
<p id="state">{{if eq .State "paid"}}已付款 / Paid{{else if eq .State "closed"}}已关闭 / Closed{{else}}待付款 / Unpaid{{end}}</p>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if eq .State "unpaid"}}<form method="post"><button type="submit" id="pay">付款 / Pay</button></form>{{end}}
</body></html>
`))
