package slurm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sacctRows builds n rows of pinned-format sacct output shaped like a busy cluster's: mostly
// finished jobs, some running or pending with Unknown times, array tasks and ranges,
// cancellations with the uid suffix, and a requeued job's earlier run now and then, so
// duplicates go through the last-line-wins path.
func sacctRows(n int) []byte {
	var b bytes.Buffer
	base := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	ts := func(sec int) string {
		return base.Add(time.Duration(sec) * time.Second).Format(TimeLayout)
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprint(4_000_000 + i)
		switch i % 10 {
		case 7:
			id = fmt.Sprintf("%d_%d", 3_900_000+i/10, i%10)
		case 9:
			id = fmt.Sprintf("%d_[%d-%d%%8]", 3_800_000+i/10, i%97, i%97+40)
		}
		name := fmt.Sprintf("qmd-%012x", i*2654435761%(1<<48))
		sub, start, end := ts(i), ts(i+30), ts(i+3600)
		state, exit := "COMPLETED", "0:0"
		switch i % 20 {
		case 1, 11:
			state, exit = "FAILED", "3:0"
		case 3:
			state, exit = "CANCELLED by 1001", "0:15"
		case 5, 9:
			state, end = "RUNNING", "Unknown"
		case 13:
			state, start, end = "PENDING", "Unknown", "Unknown"
		case 15:
			state = "TIMEOUT"
		case 17:
			state, exit = "OUT_OF_MEMORY", "0:125"
		case 19:
			state, start, end = "PENDING", "Unknown", "Unknown"
			if !strings.Contains(id, "[") {
				// The earlier run of a requeued job, then its current line.
				fmt.Fprintf(&b, "%s|REQUEUED|0:0|%s|%s|%s|%s\n", id, sub, ts(i+5), ts(i+60),
					name)
				i++
			}
		}
		fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s|%s\n", id, state, exit, sub, start, end, name)
	}
	return b.Bytes()
}

const benchRows = 100_000

// BenchmarkParseSacct reports rows/s and, as the style guide asks, a ratio to a baseline
// measured in the same run on the same buffer: strings.Split into lines and then into
// seven fields, the least any parser must do. ns/op moves between a laptop and a login
// node; the ratio should not.
func BenchmarkParseSacct(b *testing.B) {
	buf := sacctRows(benchRows)
	rows := bytes.Count(buf, []byte("\n"))
	if got := len(ParseSacctIn(buf, nil, 0, time.UTC)); got < benchRows*9/10 {
		b.Fatalf("only %d records from %d rows", got, rows)
	}
	base := splitBaseline(buf)

	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ParseSacctIn(buf, nil, 0, time.UTC)
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(rows)/perOp, "rows/s")
	b.ReportMetric(perOp/base, "x_split")
}

// BenchmarkSacctSplitBaseline is the baseline on its own, for benchstat.
func BenchmarkSacctSplitBaseline(b *testing.B) {
	buf := sacctRows(benchRows)
	rows := bytes.Count(buf, []byte("\n"))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		splitLines(buf)
	}
	b.ReportMetric(float64(rows)/(b.Elapsed().Seconds()/float64(b.N)), "rows/s")
}

// splitLines is the baseline work: lines, then fields, nothing read.
func splitLines(buf []byte) int {
	n := 0
	for _, line := range strings.Split(string(buf), "\n") {
		n += len(strings.SplitN(line, "|", sacctFields))
	}
	return n
}

// splitBaseline returns the seconds one splitLines call takes, timed by hand over at least
// 300 ms (testing.Benchmark cannot run inside a benchmark: both take the same lock).
func splitBaseline(buf []byte) float64 {
	start := time.Now()
	n := 0
	for time.Since(start) < 300*time.Millisecond || n < 3 {
		splitLines(buf)
		n++
	}
	return time.Since(start).Seconds() / float64(n)
}
