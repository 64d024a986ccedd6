package localapi

import (
	"sync"
	"time"
)

// clientBuffer is how many events a stream client may fall behind before it
// is cut off. A screen that cannot keep up for 64 events is stuck, and a tap
// never waits for a screen.
const clientBuffer = 64

// Hub fans events out to the stream clients. Publish never blocks: a client
// whose buffer is full is dropped (its stream ends; an EventSource
// reconnects by itself and gets a fresh hello).
type Hub struct {
	mu      sync.Mutex
	nextID  int64
	clients map[*client]struct{}
	dropped int64
	now     func() time.Time
}

type client struct {
	ch       chan Event
	gone     chan struct{} // closed when the hub dropped it
	reserved bool          // counted against the reserved streams
}

// Publish stamps e with the next id and the time, and queues it for every
// client. It returns the stamped event.
func (h *Hub) Publish(e Event) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	e.ID = h.nextID
	if h.now != nil {
		e.Time = h.now()
	} else {
		e.Time = time.Now().UTC()
	}
	for c := range h.clients {
		select {
		case c.ch <- e:
		default:
			delete(h.clients, c)
			close(c.gone)
			h.dropped++
		}
	}
	return e
}

// subscribeWithin adds a client (cancel removes it) unless limit clients of
// its kind, reserved or not, are subscribed already; a limit below 0 is no
// limit. Counting and adding under one lock keeps the limit when many
// arrive at once.
func (h *Hub) subscribeWithin(reserved bool, limit int) (c *client, cancel func(), ok bool) {
	c = &client{ch: make(chan Event, clientBuffer), gone: make(chan struct{}), reserved: reserved}
	h.mu.Lock()
	if h.clients == nil {
		h.clients = map[*client]struct{}{}
	}
	if limit >= 0 {
		n := 0
		for o := range h.clients {
			if o.reserved == reserved {
				n++
			}
		}
		if n >= limit {
			h.mu.Unlock()
			return nil, nil, false
		}
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		if _, ok := h.clients[c]; ok {
			delete(h.clients, c)
			close(c.gone)
		}
		h.mu.Unlock()
	}, true
}

// Clients is the number of connected stream clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped is how many slow clients were cut off so far.
func (h *Hub) Dropped() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}
