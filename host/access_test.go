package host

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

const accessList = `{"version":"a","groups":[{"name":"residents","windows":[{"days":["mon"],"from":"00:00","until":"24:00"}]}],
"entries":[{"card":"3101000000000001","groups":["residents"]}]}`

func TestAccessList(t *testing.T) { eachStore(t, testAccessList) }

func testAccessList(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var r hostapi.AccessResponse
	e.mustCall(hostapi.PathAccess, hostapi.AccessRequest{}, &r)
	if r.Changed || r.Version != "" {
		t.Fatalf("before any list: %+v", r)
	}
	if _, err := e.st.SetAccessList(ctx, []byte(`{"groups":[{"name":"x","windows":[{"days":["mon"],"from":"25:00","until":"26:00"}]}]}`), "test", time.Now()); err == nil {
		t.Fatal("an invalid list was stored")
	}
	v, err := e.st.SetAccessList(ctx, []byte(accessList), "test", time.Now())
	if err != nil || v == "" {
		t.Fatalf("SetAccessList = %q, %v", v, err)
	}
	e.mustCall(hostapi.PathAccess, hostapi.AccessRequest{}, &r)
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(accessList)); err != nil {
		t.Fatal(err)
	}
	if !r.Changed || r.Version != v || !bytes.Equal(r.List, want.Bytes()) {
		t.Fatalf("first pull: %+v", r)
	}
	r = hostapi.AccessResponse{}
	e.mustCall(hostapi.PathAccess, hostapi.AccessRequest{Version: v}, &r)
	if r.Changed || r.Version != v || r.List != nil {
		t.Fatalf("pull at the same version: %+v", r)
	}
	// The same list again keeps its version: terminals fetch nothing.
	if v2, err := e.st.SetAccessList(ctx, []byte(accessList), "test", time.Now()); err != nil || v2 != v {
		t.Fatalf("same list: %q, %v", v2, err)
	}
}
