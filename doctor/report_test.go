package doctor

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var sample = []Result{
	{Check: CheckConfig, Status: Pass, Detail: "/etc/cardd/cardd.yaml: valid"},
	{Check: CheckPCSCD, Status: Fail, Detail: "pcscd is not running", Fix: "systemctl start pcscd"},
	{Check: CheckStoreFiles, Status: Warn, Detail: "cardd.db 0640", Fix: "chmod 600 cardd.db"},
	{Check: CheckHost, Status: Skip, Detail: "host.url is not set", Fix: "ignored for a skip"},
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sample); err != nil {
		t.Fatal(err)
	}
	want := `CHECK        RESULT  DETAIL
config       PASS    /etc/cardd/cardd.yaml: valid
pcscd        FAIL    pcscd is not running
                     fix: systemctl start pcscd
store-files  WARN    cardd.db 0640
                     fix: chmod 600 cardd.db
host         SKIP    host.url is not set

4 checks: 1 passed, 1 warned, 1 failed, 1 skipped
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := NewReport("/etc/cardd/cardd.yaml", sample).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK         bool           `json:"ok"`
		ConfigFile string         `json:"config_file"`
		Checks     []Result       `json:"checks"`
		Counts     map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || got.ConfigFile != "/etc/cardd/cardd.yaml" || !reflect.DeepEqual(got.Checks, sample) ||
		!reflect.DeepEqual(got.Counts, map[string]int{"PASS": 1, "WARN": 1, "FAIL": 1, "SKIP": 1}) {
		t.Errorf("report %s", b.String())
	}
	if !bytes.Contains(b.Bytes(), []byte(`"result": "FAIL"`)) {
		t.Errorf("the status is not under \"result\": %s", b.String())
	}
	if !NewReport("", sample[:1]).OK {
		t.Error("a report without failures is not OK")
	}
}
