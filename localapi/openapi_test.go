package localapi

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// apiDoc is docs/local-api.yaml, loaded and checked against the OpenAPI
// 3.0 rules.
func apiDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/local-api.yaml")
	if err != nil {
		t.Fatalf("loading docs/local-api.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/local-api.yaml does not validate: %v", err)
	}
	return doc
}

// The API description is a valid OpenAPI document.
func TestOpenAPIValid(t *testing.T) {
	// Validation refuses what YAML made of an unquoted ", " in a flow
	// mapping: a stray key beside a schema's.
	apiDoc(t)
}

// Every route the server serves is in docs/local-api.yaml, with its
// method, and every operation there is served.
func TestOpenAPIRoutesMatch(t *testing.T) {
	doc := apiDoc(t)
	var served, documented []string
	for _, rt := range routes {
		served = append(served, rt.method+" "+rt.path)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in docs/local-api.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("%s is in docs/local-api.yaml but not served", r)
		}
	}
}

// status is the status of method path with the token given (none if
// empty), without reading the body: the event stream does not end.
func status(t *testing.T, url, method, tok string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The security docs/local-api.yaml declares is the server's: a route that
// answers 401 without a token declares no anonymous access, one that does
// not declares it; a route the page's credential may call lists it. Every
// operation documents the guard's 403, 405 and 421, and a route that takes
// a token its 401.
func TestOpenAPISecurityTrue(t *testing.T) {
	doc := apiDoc(t)
	s, srv, _ := newServer(t)
	s.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })
	for _, rt := range routes {
		var op *openapi3.Operation
		if item := doc.Paths.Find(rt.path); item != nil {
			op = item.GetOperation(rt.method)
		}
		if op == nil {
			t.Errorf("%s %s: not in docs/local-api.yaml", rt.method, rt.path)
			continue
		}
		sec := doc.Security
		if op.Security != nil {
			sec = *op.Security
		}
		if len(sec) == 0 {
			// Valid OpenAPI, but it says nothing: a reader cannot tell
			// "no credential" from "forgot".
			t.Errorf("%s %s: declares no security, not even none ({})", rt.method, rt.path)
		}
		anonymous, page := false, false
		for _, req := range sec {
			anonymous = anonymous || len(req) == 0
			_, ok := req["page"]
			page = page || ok
		}
		code, _ := status(t, srv.URL+rt.path, rt.method, "")
		needsToken := code == http.StatusUnauthorized
		if anonymous == needsToken {
			t.Errorf("%s %s: %d without a token, but the document says anonymous=%v", rt.method, rt.path, code, anonymous)
		}
		codes := []int{http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusMisdirectedRequest}
		if needsToken {
			codes = append(codes, http.StatusUnauthorized)
			code, body := status(t, srv.URL+rt.path, rt.method, pageToken)
			pageMay := !strings.Contains(body, "the kiosk page's credential cannot")
			if pageMay != page {
				t.Errorf("%s %s: with the page's credential %d %s, but the document lists it: %v", rt.method, rt.path, code, body, page)
			}
		}
		for _, c := range codes {
			if op.Responses.Status(c) == nil {
				t.Errorf("%s %s: no %d documented", rt.method, rt.path, c)
			}
		}
	}
	if _, ok := s.Till.View(nil); ok {
		t.Error("a probe armed a sale")
	}
}
