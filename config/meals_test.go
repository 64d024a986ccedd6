package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestPeriodsBadValues: each bad pos.periods value is refused with a line
// naming the entry's key and the value, and nothing loads.
func TestPeriodsBadValues(t *testing.T) {
	const lunch = `{name: lunch, start: "11:00", end: "13:00", mode: fixed, price: "12.00"}`
	cases := []struct {
		name, periods string
		env           bool // give the periods through CARDD_POS_PERIODS
		key, value    string
		in            string
	}{
		{name: "no name", periods: `[{start: "11:00", end: "13:00", mode: keyed}]`, key: "pos.periods[1].name", value: "", in: "must name the period"},
		{name: "same name", periods: `[` + lunch + `, {name: lunch, start: "17:00", end: "19:00", mode: keyed}]`, key: "pos.periods[2].name", value: "lunch", in: "repeats the name of pos.periods[1]"},
		{name: "start not a time", periods: `[{name: a, start: "11h", end: "13:00", mode: keyed}]`, key: "pos.periods[1].start", value: "11h", in: "HH:MM"},
		{name: "start 24:00", periods: `[{name: a, start: "24:00", end: "24:00", mode: keyed}]`, key: "pos.periods[1].start", value: "24:00", in: "00:00 to 23:59"},
		{name: "minute 60", periods: `[{name: a, start: "11:60", end: "13:00", mode: keyed}]`, key: "pos.periods[1].start", value: "11:60", in: "HH:MM"},
		{name: "end before start", periods: `[{name: late, start: "21:00", end: "02:00", mode: keyed}]`, key: "pos.periods[1].end", value: "02:00", in: "must be after start (21:00)"},
		{name: "end equals start", periods: `[{name: a, start: "11:00", end: "11:00", mode: keyed}]`, key: "pos.periods[1].end", value: "11:00", in: "after start"},
		{name: "overlap", periods: `[` + lunch + `, {name: late_lunch, start: "12:59", end: "14:00", mode: keyed}]`, key: "pos.periods[2].start", value: "12:59-14:00", in: "overlaps pos.periods[1] (lunch 11:00-13:00)"},
		{name: "bad mode", periods: `[{name: a, start: "11:00", end: "13:00", mode: free}]`, key: "pos.periods[1].mode", value: "free", in: "keyed, fixed, menu"},
		{name: "fixed without price", periods: `[{name: a, start: "11:00", end: "13:00", mode: fixed}]`, key: "pos.periods[1].price", value: "", in: "required in a fixed period"},
		{name: "fixed price three decimals", periods: `[{name: a, start: "11:00", end: "13:00", mode: fixed, price: "12.005"}]`, key: "pos.periods[1].price", value: "12.005", in: "yuan above 0"},
		{name: "fixed price zero", periods: `[{name: a, start: "11:00", end: "13:00", mode: fixed, price: "0"}]`, key: "pos.periods[1].price", value: "0", in: "yuan above 0"},
		{name: "fixed price over max_purchase", periods: `[{name: a, start: "11:00", end: "13:00", mode: fixed, price: "600.00"}]`, key: "pos.periods[1].price", value: "600.00", in: "over pos.max_purchase (500.00)"},
		{name: "price as a YAML number", periods: `[{name: a, start: "11:00", end: "13:00", mode: fixed, price: 12.5}]`, key: "pos.periods", value: "", in: "price must be a string, got a number (quote it in YAML)"},
		{name: "keyed with price", periods: `[{name: a, start: "11:00", end: "13:00", mode: keyed, price: "12.00"}]`, key: "pos.periods[1].price", value: "12.00", in: "only a fixed period"},
		{name: "menu without prices", periods: `[{name: a, start: "11:00", end: "13:00", mode: menu}]`, key: "pos.periods[1].prices", value: "", in: "1 to 16 prices"},
		{name: "menu price twice", periods: `[{name: a, start: "11:00", end: "13:00", mode: menu, prices: ["8.00", "8"]}]`, key: "pos.periods[1].prices", value: "8", in: "repeats an earlier price"},
		{name: "menu bad price", periods: `[{name: a, start: "11:00", end: "13:00", mode: menu, prices: ["8.00", "-1"]}]`, key: "pos.periods[1].prices", value: "-1", in: "yuan above 0"},
		{name: "max_count negative", periods: `[{name: a, start: "11:00", end: "13:00", mode: keyed, max_count: -1}]`, key: "pos.periods[1].max_count", value: "-1", in: "0 (no limit) or more"},
		{name: "max_amount bad", periods: `[{name: a, start: "11:00", end: "13:00", mode: keyed, max_amount: "ten"}]`, key: "pos.periods[1].max_amount", value: "ten", in: "amount in yuan"},
		{name: "unknown key", periods: `[{name: a, start: "11:00", end: "13:00", mode: keyed, prise: "1"}]`, key: "pos.periods", value: "", in: `entry 1: unknown key "prise"`},
		{name: "not a list", periods: `lunch`, key: "pos.periods", value: "lunch", in: "must be a list of periods"},
		{name: "env overlap", env: true, periods: `[{name: b, start: "07:00", end: "09:00", mode: keyed}, {name: c, start: "06:00", end: "07:01", mode: keyed}]`, key: "pos.periods[2].start", value: "06:00-07:01", in: "overlaps pos.periods[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			var args []string
			if tc.env {
				t.Setenv("CARDD_POS_PERIODS", tc.periods)
			} else {
				args = []string{"--config", writeFile(t, "pos:\n  periods: "+tc.periods+"\n")}
			}
			c, err := Load(flags(t, args...))
			var ve *ValidationError
			if !errors.As(err, &ve) || c != nil {
				t.Fatalf("Load = %+v, %v; want a *ValidationError", c, err)
			}
			if ve.Key != tc.key || (tc.value != "" && ve.Value != tc.value) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("error %q (key %q value %q), want key %q value %q and %q", err, ve.Key, ve.Value, tc.key, tc.value, tc.in)
			}
		})
	}
}

// TestPeriodsLoad: good periods reach the Config from the file and from
// the environment, with their amounts in fen; touching windows are fine,
// "24:00" ends the day; and WriteEffective's output loads back the same.
func TestPeriodsLoad(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, `pos:
  periods:
    - {name: breakfast, start: "06:30", end: "09:00", mode: menu, prices: ["3.00", "5.5"]}
    - {name: 午餐, start: "11:00", end: "13:30", mode: fixed, price: "12.00", max_count: 1}
    - {name: dinner, start: "13:30", end: "24:00", mode: keyed, max_amount: "40.00"}
`)
	c, err := Load(flags(t, "--config", path))
	if err != nil {
		t.Fatal(err)
	}
	ps := c.POS.Periods
	if len(ps) != 3 || ps[1].Name != "午餐" || ps[1].PriceFen() != 1200 || ps[1].MaxCount != 1 ||
		!reflect.DeepEqual(ps[0].PricesFen(), []int64{300, 550}) || ps[2].MaxAmountFen() != 4000 ||
		ps[0].StartMinute() != 390 || ps[2].EndMinute() != 1440 {
		t.Fatalf("periods %+v", ps)
	}
	var buf bytes.Buffer
	if err := c.WriteEffective(&buf); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "effective.yaml")
	if err := os.WriteFile(back, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, err := Load(flags(t, "--config", back))
	if err != nil {
		t.Fatalf("loading WriteEffective's output: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(c2.POS.Periods, c.POS.Periods) {
		t.Fatalf("round trip: %+v, want %+v\n%s", c2.POS.Periods, c.POS.Periods, buf.String())
	}

	cleanEnv(t)
	t.Setenv("CARDD_POS_PERIODS", `[{name: lunch, start: "11:00", end: "13:00", mode: fixed, price: "9.50"}]`)
	c, err = Load(flags(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.POS.Periods) != 1 || c.POS.Periods[0].PriceFen() != 950 {
		t.Fatalf("periods from the environment: %+v", c.POS.Periods)
	}
	// None configured is none: today's keyed sales at any time.
	cleanEnv(t)
	if c, err = Load(flags(t)); err != nil || c.POS.Periods != nil {
		t.Fatalf("default periods %+v, %v; want none", c, err)
	}
}
