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

// TestClassesBadValues: each bad pos.classes or class_prices value is
// refused with a line naming its key and value, and nothing loads.
func TestClassesBadValues(t *testing.T) {
	const classes = `{student: ["01"], staff: ["02", "0301"]}`
	keyed := func(extra string) string {
		return `[{name: lunch, start: "11:00", end: "13:00", mode: keyed, ` + extra + `}]`
	}
	lunch := func(extra string) string {
		return `[{name: lunch, start: "11:00", end: "13:00", mode: fixed, price: "12.00", ` + extra + `}]`
	}
	cases := []struct {
		name, classes, periods string
		key, value, in         string
	}{
		{name: "type not hex", classes: `{staff: ["zz"]}`, key: "pos.classes.staff", value: "zz", in: "card type in hex"},
		{name: "type of 3 digits", classes: `{staff: ["021"]}`, key: "pos.classes.staff", value: "021", in: "2 digits for the type byte"},
		{name: "type of 6 digits", classes: `{staff: ["020100"]}`, key: "pos.classes.staff", value: "020100", in: "4 for bytes 28-29"},
		{name: "type in two classes", classes: `{staff: ["02"], teacher: ["02"]}`, key: "pos.classes.teacher", value: "02", in: "already a card type of pos.classes.staff"},
		{name: "class with 17 types", classes: `{staff: ["01","02","03","04","05","06","07","08","09","0A","0B","0C","0D","0E","0F","10","11"]}`, key: "pos.classes.staff", in: "at most 16 card types"},
		{name: "discount of an unknown class", classes: classes, periods: keyed(`discounts: {teacher: 80}`), key: "pos.periods[1].discounts.teacher", value: "80", in: `names class "teacher", not one of pos.classes (staff, student)`},
		{name: "discount without classes", periods: keyed(`discounts: {student: 80}`), key: "pos.periods[1].discounts.student", value: "80", in: "pos.classes defines none"},
		{name: "discount of 100", classes: classes, periods: keyed(`discounts: {student: 100}`), key: "pos.periods[1].discounts.student", value: "100", in: "1 to 99 (80: 八折, 20% off)"},
		{name: "discount of 0", classes: classes, periods: keyed(`discounts: {student: 0}`), key: "pos.periods[1].discounts.student", value: "0", in: "1 to 99"},
		{name: "discount negative", classes: classes, periods: keyed(`discounts: {student: -20}`), key: "pos.periods[1].discounts.student", value: "-20", in: "1 to 99"},
		{name: "discount as text", classes: classes, periods: keyed(`discounts: {student: "80%"}`), key: "pos.periods", in: "discounts student must be a whole number"},
		{name: "discount in a fixed period", classes: classes, periods: lunch(`discounts: {student: 80}`), key: "pos.periods[1].discounts", in: "a fixed period has class_prices, not discounts"},
		{name: "types as a string of a number", classes: `{staff: [2]}`, key: "pos.classes", value: "", in: "must be a string"},
		{name: "not a mapping", classes: `["02"]`, key: "pos.classes", value: "", in: "must be a mapping"},
		{name: "unknown class", classes: classes, periods: lunch(`class_prices: {teacher: "15.00"}`), key: "pos.periods[1].class_prices.teacher", value: "15.00", in: `names class "teacher", not one of pos.classes (staff, student)`},
		{name: "class price without classes", periods: lunch(`class_prices: {staff: "15.00"}`), key: "pos.periods[1].class_prices.staff", value: "15.00", in: "pos.classes defines none"},
		{name: "class price not yuan", classes: classes, periods: lunch(`class_prices: {staff: "15.001"}`), key: "pos.periods[1].class_prices.staff", value: "15.001", in: "yuan above 0"},
		{name: "class price zero", classes: classes, periods: lunch(`class_prices: {staff: "0"}`), key: "pos.periods[1].class_prices.staff", value: "0", in: "yuan above 0"},
		{name: "class price over max_purchase", classes: classes, periods: lunch(`class_prices: {staff: "501.00"}`), key: "pos.periods[1].class_prices.staff", value: "501.00", in: "over pos.max_purchase"},
		{name: "class price as a number", classes: classes, periods: lunch(`class_prices: {staff: 15}`), key: "pos.periods", value: "", in: "class_prices staff must be a string"},
		{name: "class prices in a keyed period", classes: classes, periods: `[{name: a, start: "11:00", end: "13:00", mode: keyed, class_prices: {staff: "15.00"}}]`, key: "pos.periods[1].class_prices", in: "only a fixed period has prices per class"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			file := "pos:\n"
			if tc.classes != "" {
				file += "  classes: " + tc.classes + "\n"
			}
			if tc.periods != "" {
				file += "  periods: " + tc.periods + "\n"
			}
			c, err := Load(flags(t, "--config", writeFile(t, file)))
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

// TestClassesLoad: classes and class prices reach the Config from the
// file and the environment, parsed; WriteEffective's output loads back
// the same.
func TestClassesLoad(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, `pos:
  classes: {student: ["01"], staff: ["02", "0301"], 教工: ["04"], visitor: []}
  periods:
    - {name: lunch, start: "11:00", end: "13:00", mode: fixed, price: "12.00", class_prices: {staff: "15.00", 教工: "14.5"}}
    - {name: dinner, start: "17:00", end: "19:00", mode: menu, prices: ["8.00", "12.00"], discounts: {student: 80, visitor: 95}}
    - {name: late, start: "21:00", end: "22:00", mode: keyed, discounts: {student: 1}}
`)
	c, err := Load(flags(t, "--config", path))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]CardType{"student": {{Value: 0x0100}}, "staff": {{Value: 0x0200}, {Value: 0x0301, Whole: true}}, "教工": {{Value: 0x0400}}}
	if got := c.POS.Periods[1].Discounts; !reflect.DeepEqual(got, map[string]int{"student": 80, "visitor": 95}) {
		t.Fatalf("dinner's discounts %v", got)
	}
	if got := c.POS.ClassTypes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("class types %+v, want %+v", got, want)
	}
	if got := c.POS.Periods[0].ClassPricesFen(); !reflect.DeepEqual(got, map[string]int64{"staff": 1500, "教工": 1450}) {
		t.Fatalf("class prices %v", got)
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
	if !reflect.DeepEqual(c2.POS.Classes, c.POS.Classes) || !reflect.DeepEqual(c2.POS.Periods, c.POS.Periods) {
		t.Fatalf("round trip: %+v %+v\n%s", c2.POS.Classes, c2.POS.Periods, buf.String())
	}

	cleanEnv(t)
	t.Setenv("CARDD_POS_CLASSES", `{staff: ["02"]}`)
	t.Setenv("CARDD_POS_PERIODS", `[{name: lunch, start: "11:00", end: "13:00", mode: fixed, price: "9.50", class_prices: {staff: "13.00"}},
		{name: late, start: "21:00", end: "22:00", mode: keyed, discounts: {staff: 90}}]`)
	if c, err = Load(flags(t)); err != nil {
		t.Fatal(err)
	}
	if c.POS.Classes["staff"][0] != "02" || c.POS.Periods[0].ClassPricesFen()["staff"] != 1300 || c.POS.Periods[1].Discounts["staff"] != 90 {
		t.Fatalf("from the environment: %+v %+v", c.POS.Classes, c.POS.Periods)
	}
	cleanEnv(t)
	if c, err = Load(flags(t)); err != nil || len(c.POS.Classes) != 0 {
		t.Fatalf("default classes %+v, %v; want none", c, err)
	}
}
