package host

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// Refusal is a request the host answers with a reason the terminal can act
// on: an HTTP status and a hostapi error code. Every other error is the
// host's own trouble and is answered 500.
type Refusal struct {
	Status int    // HTTP status
	Code   string // a hostapi.Code* constant
	Reason string // for the person reading the terminal's log
}

// Error is the code and the reason; the status goes in the HTTP answer.
func (r *Refusal) Error() string { return r.Code + ": " + r.Reason }

func refuse(status int, code, format string, a ...any) *Refusal {
	return &Refusal{Status: status, Code: code, Reason: fmt.Sprintf(format, a...)}
}

func badRequest(format string, a ...any) *Refusal {
	return refuse(http.StatusBadRequest, hostapi.CodeBadRequest, format, a...)
}

// badCard refuses 400 a card id that hostapi.CheckCardID turned down.
func badCard(err error) *Refusal { return badRequest("%s", maskedCardError(err)) }

// maskedCardError is err, an error of hostapi.CheckCardID, with the id
// masked: the reason is logged, and a mistyped number is still most of a
// cardholder's real one.
func maskedCardError(err error) string {
	var bad *hostapi.CardIDError
	if errors.As(err, &bad) {
		return fmt.Sprintf("card %s: %s", redact.CardNumber(bad.ID), bad.Reason)
	}
	return err.Error()
}

func conflict(code, format string, a ...any) *Refusal {
	return refuse(http.StatusConflict, code, format, a...)
}

func notFound(format string, a ...any) *Refusal {
	return refuse(http.StatusNotFound, hostapi.CodeNotFound, format, a...)
}

// codeInternal is the code of a 500 answer. hostapi names none, since the
// terminal can do nothing about it but retry; it is not one of its constants.
const codeInternal = "internal_error"

// codeBusy is the code of a 503 answer when the store lost to concurrent
// transactions on every attempt (ErrBusy): nothing changed, and the same
// request may be sent again, to this instance or another.
const codeBusy = "busy"
