package dsl

import (
	"fmt"
	"paddock/agents/node/mapping"
	"strconv"
	"strings"
	"time"
)

// Dates in queries: the formats strict_date_optional_time and epoch_millis
// (the node's date formats), and date math ("now-1d/d",
// "2024-01-01||+1M/d").

// parseTimeZone reads "+01:00", "-0530", "Z" or an IANA name.
func parseTimeZone(s string) (*time.Location, error) {
	if s == "" || s == "Z" || s == "UTC" || s == "utc" {
		return time.UTC, nil
	}
	if s[0] == '+' || s[0] == '-' {
		v := strings.ReplaceAll(s[1:], ":", "")
		if len(v) == 2 {
			v += "00"
		}
		if len(v) != 4 {
			return nil, fmt.Errorf("invalid time zone [%s]", s)
		}
		h, err1 := strconv.Atoi(v[:2])
		m, err2 := strconv.Atoi(v[2:])
		if err1 != nil || err2 != nil || h > 18 || m > 59 {
			return nil, fmt.Errorf("invalid time zone [%s]", s)
		}
		off := h*3600 + m*60
		if s[0] == '-' {
			off = -off
		}
		return time.FixedZone(s, off), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone [%s]", s)
	}
	return loc, nil
}

// dateLayouts are the shapes strict_date_optional_time accepts: the
// mapping's, so a query reads dates as documents are indexed.
var dateLayouts = mapping.ISOLayouts

// parseDateValue parses a date in one of the given formats ("" means the
// node's default, strict_date_optional_time||epoch_millis), in loc when the
// value has no offset.
func parseDateValue(s, format string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	formats := []string{"strict_date_optional_time", "epoch_millis"}
	if format != "" {
		formats = strings.Split(format, "||")
	}
	for _, f := range formats {
		switch f {
		case "epoch_millis":
			if ms, err := strconv.ParseFloat(s, 64); err == nil {
				return time.UnixMilli(int64(ms)).UTC(), nil
			}
		case "epoch_second":
			if sec, err := strconv.ParseFloat(s, 64); err == nil {
				return time.Unix(int64(sec), 0).UTC(), nil
			}
		case "strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos",
			"date_time", "strict_date_time", "date", "strict_date", "yyyy-MM-dd", "basic_date":
			for _, l := range dateLayouts {
				if t, err := time.ParseInLocation(l, s, loc); err == nil {
					return t, nil
				}
			}
		default:
			if l := javaLayout(f); l != "" {
				if t, err := time.ParseInLocation(l, s, loc); err == nil {
					return t, nil
				}
			}
		}
	}
	return time.Time{}, fmt.Errorf("failed to parse date field [%s] with format [%s]", s, strings.Join(formats, "||"))
}

// javaLayout translates the common Java date patterns to Go layouts.
func javaLayout(f string) string {
	r := strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05",
		"SSS", "000", "'T'", "T", "XXX", "Z07:00", "Z", "Z0700")
	l := r.Replace(f)
	if strings.ContainsAny(l, "yMdHmsS") {
		return ""
	}
	return l
}

// parseDateMath resolves a date or date-math expression. roundUp rounds
// "/unit" to the end of the unit (for gt and lte bounds).
func parseDateMath(expr, format string, loc *time.Location, now time.Time, roundUp bool) (time.Time, error) {
	var t time.Time
	var math string
	if strings.HasPrefix(expr, "now") {
		t = now.In(loc)
		math = expr[3:]
	} else {
		base, rest, hasMath := strings.Cut(expr, "||")
		var err error
		t, err = parseDateValue(base, format, loc)
		if err != nil {
			return time.Time{}, err
		}
		t = t.In(loc)
		if hasMath {
			math = rest
		}
	}
	for len(math) > 0 {
		op := math[0]
		math = math[1:]
		switch op {
		case '+', '-':
			i := 0
			for i < len(math) && math[i] >= '0' && math[i] <= '9' {
				i++
			}
			n := 1
			if i > 0 {
				n, _ = strconv.Atoi(math[:i])
			}
			if i >= len(math) {
				return time.Time{}, fmt.Errorf("date math [%s]: missing unit after %c%d", expr, op, n)
			}
			unit := math[i]
			math = math[i+1:]
			if op == '-' {
				n = -n
			}
			var err error
			if t, err = addUnit(t, unit, n); err != nil {
				return time.Time{}, fmt.Errorf("date math [%s]: %v", expr, err)
			}
		case '/':
			if len(math) == 0 {
				return time.Time{}, fmt.Errorf("date math [%s]: missing unit after /", expr)
			}
			unit := math[0]
			math = math[1:]
			r, err := roundDown(t, unit)
			if err != nil {
				return time.Time{}, fmt.Errorf("date math [%s]: %v", expr, err)
			}
			if roundUp {
				next, _ := addUnit(r, unit, 1)
				r = next.Add(-time.Millisecond)
			}
			t = r
		default:
			return time.Time{}, fmt.Errorf("date math [%s]: unexpected [%c], use +, - or /", expr, op)
		}
	}
	return t, nil
}

func addUnit(t time.Time, unit byte, n int) (time.Time, error) {
	switch unit {
	case 'y':
		return t.AddDate(n, 0, 0), nil
	case 'M':
		return t.AddDate(0, n, 0), nil
	case 'w':
		return t.AddDate(0, 0, 7*n), nil
	case 'd':
		return t.AddDate(0, 0, n), nil
	case 'h', 'H':
		return t.Add(time.Duration(n) * time.Hour), nil
	case 'm':
		return t.Add(time.Duration(n) * time.Minute), nil
	case 's':
		return t.Add(time.Duration(n) * time.Second), nil
	}
	return t, fmt.Errorf("unknown unit [%c], use y, M, w, d, h, H, m or s", unit)
}

func roundDown(t time.Time, unit byte) (time.Time, error) {
	y, mo, d := t.Date()
	loc := t.Location()
	switch unit {
	case 'y':
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc), nil
	case 'M':
		return time.Date(y, mo, 1, 0, 0, 0, 0, loc), nil
	case 'w':
		wd := (int(t.Weekday()) + 6) % 7 // Monday first
		return time.Date(y, mo, d-wd, 0, 0, 0, 0, loc), nil
	case 'd':
		return time.Date(y, mo, d, 0, 0, 0, 0, loc), nil
	case 'h', 'H':
		return time.Date(y, mo, d, t.Hour(), 0, 0, 0, loc), nil
	case 'm':
		return time.Date(y, mo, d, t.Hour(), t.Minute(), 0, 0, loc), nil
	case 's':
		return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), 0, loc), nil
	}
	return t, fmt.Errorf("unknown unit [%c], use y, M, w, d, h, H, m or s", unit)
}
