// Package cat writes the node's _cat answers as Elasticsearch writes
// them: aligned text columns for people at a terminal (`v` for a header,
// `h=` to choose columns by name, alias or pattern, `s=` to sort,
// `help` to list the columns, `bytes=` for a unit) and `format=json`
// for scripts (every value a string, keyed by the column names asked
// for).
package cat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"paddock/agents/node/eserr"
	"paddock/agents/node/meta"
)

// Kind says how a column's values print and sort.
type Kind int

const (
	Text   Kind = iota // left-aligned, sorted as strings
	Number             // right-aligned, sorted numerically
	Bytes              // a size in bytes: printed with bytes= (human by default), sorted numerically
)

// Column is one column of a _cat table.
type Column struct {
	Name    string
	Aliases []string
	Desc    string
	Default bool // shown when h= is not given
	Kind    Kind
}

// Row is one line: column name → value (string, integers, floats, or
// nil for an empty cell).
type Row map[string]any

// Write answers a _cat request: rows under cols, shaped by q.
func Write(w http.ResponseWriter, q url.Values, cols []Column, rows []Row) error {
	body, ctype, err := Render(q, cols, rows)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// selected is a column as asked for (its display name is the name or
// alias the request used, as Elasticsearch shows it).
type selected struct {
	col  Column
	name string
}

// Render is Write without the ResponseWriter: the body and its type.
func Render(q url.Values, cols []Column, rows []Row) ([]byte, string, error) {
	if _, ok := q["help"]; ok {
		var b bytes.Buffer
		cells := make([][]string, len(cols))
		for i, c := range cols {
			cells[i] = []string{c.Name, strings.Join(c.Aliases, ","), c.Desc}
		}
		writeAligned(&b, cells, []bool{false, false, false}, " | ")
		return b.Bytes(), "text/plain; charset=UTF-8", nil
	}
	sel, err := choose(q.Get("h"), cols)
	if err != nil {
		return nil, "", err
	}
	unit := q.Get("bytes")
	if _, err := formatBytes(0, unit); err != nil {
		return nil, "", err
	}
	rows = append([]Row(nil), rows...)
	if s := q.Get("s"); s != "" {
		if err := sortRows(rows, s, cols); err != nil {
			return nil, "", err
		}
	}
	cells := make([][]string, 0, len(rows)+1)
	verbose := flag(q, "v")
	if verbose {
		head := make([]string, len(sel))
		for i, s := range sel {
			head[i] = s.name
		}
		cells = append(cells, head)
	}
	for _, r := range rows {
		line := make([]string, len(sel))
		for i, s := range sel {
			line[i], _ = cell(r[s.col.Name], s.col.Kind, unit)
		}
		cells = append(cells, line)
	}
	switch f := q.Get("format"); f {
	case "json":
		out := make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			m := make(map[string]any, len(sel))
			for _, s := range sel {
				if v := r[s.col.Name]; v == nil {
					m[s.name] = nil
				} else {
					m[s.name], _ = cell(v, s.col.Kind, unit)
				}
			}
			out = append(out, m)
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, "", err
		}
		return b, "application/json; charset=UTF-8", nil
	case "", "text", "txt":
	default:
		return nil, "", eserr.BadRequest("_cat does not answer format [%s]: use text (the default) or json", f)
	}
	right := make([]bool, len(sel))
	for i, s := range sel {
		right[i] = s.col.Kind != Text
	}
	var b bytes.Buffer
	writeAligned(&b, cells, right, " ")
	return b.Bytes(), "text/plain; charset=UTF-8", nil
}

// flag reads a boolean URL parameter given bare (?v) or with a value.
func flag(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok {
		return false
	}
	if len(v) == 0 || v[0] == "" {
		return true
	}
	b, err := strconv.ParseBool(v[0])
	return err == nil && b
}

// choose picks the columns h= names (names, aliases or '*' patterns),
// or the default ones.
func choose(h string, cols []Column) ([]selected, error) {
	var out []selected
	if h == "" {
		for _, c := range cols {
			if c.Default {
				out = append(out, selected{c, c.Name})
			}
		}
		return out, nil
	}
	for _, want := range strings.Split(h, ",") {
		want = strings.TrimSpace(want)
		found := false
		for _, c := range cols {
			if name, ok := matches(c, want); ok {
				out = append(out, selected{c, name})
				found = true
				if !strings.Contains(want, "*") {
					break
				}
			}
		}
		if !found && !strings.Contains(want, "*") {
			names := make([]string, len(cols))
			for i, c := range cols {
				names[i] = c.Name
			}
			return nil, eserr.BadRequest("unknown column [%s]: the columns are %s (ask with ?help)", want, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// matches reports whether want names c, and the name to show.
func matches(c Column, want string) (string, bool) {
	if want == c.Name || glob(want, c.Name) {
		return c.Name, true
	}
	for _, a := range c.Aliases {
		if want == a {
			return a, true
		}
	}
	return "", false
}

// glob matches a column pattern with '*' wildcards (as index patterns).
func glob(pattern, s string) bool { return strings.Contains(pattern, "*") && meta.Match(pattern, s) }

// sortRows applies s=col[:asc|:desc],… (names or aliases).
func sortRows(rows []Row, spec string, cols []Column) error {
	type key struct {
		col  Column
		desc bool
	}
	var keys []key
	for _, part := range strings.Split(spec, ",") {
		name, dir, _ := strings.Cut(part, ":")
		var k *key
		for _, c := range cols {
			if _, ok := matches(c, name); ok && !strings.Contains(name, "*") {
				k = &key{col: c}
				break
			}
		}
		if k == nil {
			return eserr.BadRequest("unable to sort by unknown sort key [%s]", name)
		}
		switch dir {
		case "", "asc":
		case "desc":
			k.desc = true
		default:
			return eserr.BadRequest("invalid sort order [%s] for [%s]: use asc or desc", dir, name)
		}
		keys = append(keys, *k)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, k := range keys {
			c := compare(rows[i][k.col.Name], rows[j][k.col.Name], k.col.Kind)
			if c == 0 {
				continue
			}
			if k.desc {
				return c > 0
			}
			return c < 0
		}
		return false
	})
	return nil
}

func compare(a, b any, kind Kind) int {
	if kind != Text {
		x, okx := number(a)
		y, oky := number(b)
		switch {
		case okx && oky:
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		case okx:
			return -1 // empty cells last
		case oky:
			return 1
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

// cell formats one value.
func cell(v any, kind Kind, unit string) (string, error) {
	if v == nil {
		return "", nil
	}
	if kind == Bytes {
		if n, ok := number(v); ok {
			return formatBytes(int64(n), unit)
		}
	}
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(n), 'f', -1, 32), nil
	}
	return fmt.Sprint(v), nil
}

// formatBytes prints n in unit (b, kb, mb, gb, tb, pb), truncated as
// Elasticsearch does, or human-readable when unit is empty ("4.5mb").
func formatBytes(n int64, unit string) (string, error) {
	units := []string{"b", "kb", "mb", "gb", "tb", "pb"}
	if unit != "" {
		for i, u := range units {
			if u == unit {
				div := int64(1)
				for range i {
					div *= 1024
				}
				return strconv.FormatInt(n/div, 10), nil
			}
		}
		return "", eserr.BadRequest("failed to parse [bytes] with value [%s]: use b, kb, mb, gb, tb or pb", unit)
	}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + "b", nil
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + units[i], nil
}

// writeAligned writes cells in columns padded to their widest cell,
// right-aligned where right says, separated by sep; trailing spaces of
// a line are trimmed.
func writeAligned(b *bytes.Buffer, cells [][]string, right []bool, sep string) {
	if len(cells) == 0 {
		return
	}
	width := make([]int, len(cells[0]))
	for _, line := range cells {
		for i, c := range line {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, line := range cells {
		var l strings.Builder
		for i, c := range line {
			if i > 0 {
				l.WriteString(sep)
			}
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if right[i] {
				l.WriteString(pad + c)
			} else {
				l.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
}
