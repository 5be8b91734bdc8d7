package node

import "testing"

func TestPlanGC(t *testing.T) {
	noEnv := func(string) string { return "" }
	tests := []struct {
		name      string
		memoryMax string
		env       map[string]string
		want      gcPlan
	}{
		{"container of 2 GiB", "2147483648\n", nil, gcPlan{percent: 200, limit: 1 << 30}},
		{"no limit", "max\n", nil, gcPlan{keep: "no container memory limit"}},
		{"no cgroup file", "", nil, gcPlan{keep: "no container memory limit"}},
		{"garbage", "lots\n", nil, gcPlan{keep: `unreadable container memory limit "lots"`}},
		{"GOGC set by the operator", "2147483648\n", map[string]string{"GOGC": "50"}, gcPlan{keep: "GOGC or GOMEMLIMIT is set"}},
		{"GOMEMLIMIT set by the operator", "2147483648\n", map[string]string{"GOMEMLIMIT": "1GiB"}, gcPlan{keep: "GOGC or GOMEMLIMIT is set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := noEnv
			if tc.env != nil {
				env = func(k string) string { return tc.env[k] }
			}
			if got := planGC(tc.memoryMax, env); got != tc.want {
				t.Fatalf("planGC(%q) = %+v, want %+v", tc.memoryMax, got, tc.want)
			}
		})
	}
}
