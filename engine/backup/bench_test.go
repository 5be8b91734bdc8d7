package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/backup"
)

// BenchmarkBackupRestore30k: a platform state of 30,000 znodes (10,000
// deployments, each with its plans and history parents, ~400 bytes of
// JSON on the deployment) backed up (two walks at least, ACLs read) and
// restored into the emptied ZooKeeper. Run with
//
//	go test ./engine/backup -run '^$' -bench BackupRestore30k -benchtime 1x
func BenchmarkBackupRestore30k(b *testing.B) {
	env.Fresh(b, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	su := env.Super(b)
	pad := strings.Repeat("x", 300)
	var ops []engine.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if err := su.Multi(ctx, ops...); err != nil {
			b.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range 10000 {
		id := fmt.Sprintf("%032x", i)
		ops = append(ops, engine.OpCreate(engine.DeploymentPath(id), engine.Deployment{ID: id, Name: "bench-" + pad[:i%300]}),
			engine.OpCreate(engine.PlansPath(id), nil), engine.OpCreate(engine.PlanHistoryPath(id), nil))
		if len(ops) >= 600 {
			flush()
		}
	}
	flush()
	for b.Loop() {
		start := time.Now()
		f, err := backup.Take(ctx, su, backup.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := f.Write(&buf); err != nil {
			b.Fatal(err)
		}
		took, size := time.Since(start), buf.Len()
		if err := su.DeleteTree(ctx, engine.Root); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		g, err := backup.Read(&buf)
		if err != nil {
			b.Fatal(err)
		}
		if err := backup.Restore(ctx, su, g, backup.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		restored := time.Since(start)
		b.ReportMetric(float64(len(f.Znodes)), "znodes")
		b.ReportMetric(float64(f.Walks), "walks")
		b.ReportMetric(took.Seconds(), "backup-s")
		b.ReportMetric(restored.Seconds(), "restore-s")
		b.ReportMetric(float64(size)/1e6, "file-MB")
	}
}
