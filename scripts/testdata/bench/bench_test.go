// Package bench holds two benchmarks for scripts' own test of
// scripts/benchlib.sh: one fails, one reports a figure.
package bench

import "testing"

func BenchmarkFails(b *testing.B) {
	b.Fatal("this benchmark fails on purpose")
}

func BenchmarkPasses(b *testing.B) {
	for b.Loop() {
	}
	b.ReportMetric(42, "figures")
}
