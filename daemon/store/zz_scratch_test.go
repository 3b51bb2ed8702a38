package store

import (
	"context"
	"testing"
)

func BenchmarkScratch(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	seed(b, s, manyJobs(tenK))
	rows, _ := s.r.Query("EXPLAIN QUERY PLAN SELECT " + jobCols + " FROM jobs ORDER BY created_at DESC, id")
	for rows.Next() {
		var a, c, d any
		var txt string
		rows.Scan(&a, &c, &d, &txt)
		b.Log(txt)
	}
	rows.Close()
	for i, q := range []string{
		"SELECT id FROM jobs",
		"SELECT " + jobCols + " FROM jobs",
		"SELECT " + jobCols + " FROM jobs ORDER BY created_at DESC, id",
		"SELECT " + jobCols + " FROM jobs NOT INDEXED ORDER BY created_at DESC, id",
	} {
		b.Run(string(rune('a'+i)), func(b *testing.B) {
			for b.Loop() {
				rows, err := s.r.QueryContext(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
			}
		})
	}
	b.Run("List", func(b *testing.B) {
		for b.Loop() {
			s.List(ctx, Filter{})
		}
	})
}
