package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// moneyKeys hold an amount in yuan. The file may give them as a YAML number
// (balance_cap: 1000.5) as well as a string; either way the amount is read
// from the text as written, by money.Parse, never through a float.
var moneyKeys = []string{"load.balance_cap", "pos.daily_limit", "pos.max_purchase"}

// moneyLiterals returns, for each money key the file gives as a YAML number,
// the number as written: viper hands it over as a float64, in which 1000.123
// may already be another amount and 0.1000000000000000001 is 0.1. Keys given
// otherwise (a string, absent) are left out, and so is everything when the
// file does not parse, which the caller reports.
func moneyLiterals(file []byte) map[string]string {
	var doc yaml.Node
	if err := yaml.Unmarshal(file, &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, key := range moneyKeys {
		n := doc.Content[0]
		for _, part := range strings.Split(key, ".") {
			n = child(n, part)
		}
		if n != nil && n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
			out[key] = n.Value
		}
	}
	return out
}

// child is the value of key in the mapping n (keys compared as viper does,
// without case), following aliases; nil when there is none.
func child(n *yaml.Node, key string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var found *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if strings.EqualFold(n.Content[i].Value, key) {
			found = n.Content[i+1] // the last one wins, as in viper
		}
	}
	for found != nil && found.Kind == yaml.AliasNode {
		found = found.Alias
	}
	return found
}
