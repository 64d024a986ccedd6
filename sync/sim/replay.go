package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	gosync "sync"

	"github.com/cardd/cardd/hostapi"
)

// Captured is one signed request as a terminal sent it: enough to send it
// again byte for byte.
type Captured struct {
	Host   int         // index in Config.Hosts of the instance it went to
	Path   string      // hostapi.Path*
	Header http.Header // the X-Cardd-* signature headers and Content-Type
	Body   []byte
}

// capture is an http.RoundTripper that records up to max signed requests
// before passing them on.
type capture struct {
	next http.RoundTripper
	mu   gosync.Mutex
	max  int
	got  []Captured
}

// hostKey is the context key under which a request carries its instance.
type hostKey struct{}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	full := len(c.got) >= c.max
	c.mu.Unlock()
	if full || r.GetBody == nil {
		return c.next.RoundTrip(r)
	}
	body, err := r.GetBody()
	if err != nil {
		return c.next.RoundTrip(r)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return c.next.RoundTrip(r)
	}
	idx, _ := r.Context().Value(hostKey{}).(int)
	c.mu.Lock()
	if len(c.got) < c.max {
		c.got = append(c.got, Captured{Host: idx, Path: r.URL.Path, Header: r.Header.Clone(), Body: b})
	}
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// Replay sends each captured request again, verbatim (same headers, same
// signature, same nonce, same body), to another instance than the one it
// went to (the next in hosts), and counts the answers: every one must be
// refused 401 for its reused nonce. hc bounds each request (its Timeout);
// ctx bounds them all.
func Replay(ctx context.Context, hc *http.Client, hosts []string, reqs []Captured) (*ReplayReport, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("replay: no host to send to")
	}
	rep := &ReplayReport{Other: map[string]int64{}}
	for _, c := range reqs {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		to := hosts[(c.Host+1)%len(hosts)]
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(to, "/")+c.Path, bytes.NewReader(c.Body))
		if err != nil {
			return rep, fmt.Errorf("replay to %s: %w", to, err)
		}
		r.Header = c.Header.Clone()
		rep.Sent++
		res, err := hc.Do(r)
		if err != nil {
			rep.Other[CodeUnreachable]++
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		var he hostapi.Error
		switch {
		case res.StatusCode/100 == 2:
			rep.Accepted++
		case res.StatusCode == http.StatusUnauthorized && json.Unmarshal(b, &he) == nil &&
			he.Code == hostapi.CodeUnauthorized && strings.Contains(he.Reason, "nonce already used"):
			rep.Refused++
		default:
			rep.Other[fmt.Sprintf("%d %s", res.StatusCode, he.Code)]++
		}
	}
	if len(rep.Other) == 0 {
		rep.Other = nil
	}
	return rep, nil
}
