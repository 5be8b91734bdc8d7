package mapping

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultDateFormat is a date field's format when the mapping names none.
const DefaultDateFormat = "strict_date_optional_time||epoch_millis"

// dateFormat parses one of a field's formats.
type dateFormat func(s string) (time.Time, bool)

// ISOLayouts are strict_date_optional_time's forms as Go layouts, most
// specific first (the query DSL parses dates in queries with them too).
var ISOLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02T15Z07:00",
	"2006-01-02T15",
	"2006-01-02",
	"2006-01",
	"2006",
}

func isoDate(s string) (time.Time, bool) {
	for _, l := range ISOLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func epoch(unit time.Duration) dateFormat {
	return func(s string) (time.Time, bool) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(0, 0).Add(time.Duration(n) * unit).UTC(), true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Unix(0, int64(f*float64(unit))).UTC(), true
		}
		return time.Time{}, false
	}
}

var namedFormats = map[string]dateFormat{
	"strict_date_optional_time":       isoDate,
	"date_optional_time":              isoDate,
	"strict_date_optional_time_nanos": isoDate,
	"strict_date_time":                isoDate,
	"date_time":                       isoDate,
	"strict_date":                     layout("2006-01-02"),
	"date":                            layout("2006-01-02"),
	"epoch_millis":                    epoch(time.Millisecond),
	"epoch_second":                    epoch(time.Second),
}

func layout(l string) dateFormat {
	return func(s string) (time.Time, bool) {
		t, err := time.Parse(l, s)
		return t.UTC(), err == nil
	}
}

// javaTokens maps the Java date pattern letters the node understands to Go
// layout elements, longest first.
var javaTokens = []struct{ java, gol string }{
	{"yyyy", "2006"}, {"uuuu", "2006"}, {"MM", "01"}, {"dd", "02"}, {"HH", "15"}, {"mm", "04"},
	{"ss", "05"}, {"SSSSSSSSS", "000000000"}, {"SSSSSS", "000000"}, {"SSS", "000"}, {"XXX", "Z07:00"}, {"Z", "-0700"},
}

// javaLayout converts a custom pattern such as "yyyy/MM/dd HH:mm:ss".
func javaLayout(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\'' {
			j := strings.IndexByte(p[i+1:], '\'')
			if j < 0 {
				return "", fmt.Errorf("unterminated quote in [%s]", p)
			}
			b.WriteString(p[i+1 : i+1+j])
			i += j + 2
			continue
		}
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			found := false
			for _, t := range javaTokens {
				if strings.HasPrefix(p[i:], t.java) {
					b.WriteString(t.gol)
					i += len(t.java)
					found = true
					break
				}
			}
			if !found {
				return "", fmt.Errorf("unsupported pattern letter [%c] in [%s] (supported: yyyy MM dd HH mm ss SSS Z XXX and the named formats)", c, p)
			}
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), nil
}

// dateFormats parses a format such as "strict_date_optional_time||epoch_millis".
func dateFormats(spec string) ([]dateFormat, error) {
	if spec == "" {
		spec = DefaultDateFormat
	}
	var out []dateFormat
	for _, name := range strings.Split(spec, "||") {
		if f, ok := namedFormats[name]; ok {
			out = append(out, f)
			continue
		}
		l, err := javaLayout(name)
		if err != nil {
			return nil, err
		}
		out = append(out, layout(l))
	}
	return out, nil
}

func parseDate(formats []dateFormat, v any) (time.Time, error) {
	var s string
	switch val := v.(type) {
	case string:
		s = val
	case json.Number:
		s = string(val)
	case float64:
		s = strconv.FormatFloat(val, 'f', -1, 64)
	default:
		return time.Time{}, fmt.Errorf("expected a date string or epoch number, got %s", jsonKind(v))
	}
	for _, f := range formats {
		if t, ok := f(s); ok {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("failed to parse date field [%s] with the field's format", s)
}

// ParseDate parses a value with a date field's format ("" for the
// default), for queries on date fields.
func ParseDate(format string, v any) (time.Time, error) {
	formats, err := dateFormats(format)
	if err != nil {
		return time.Time{}, err
	}
	return parseDate(formats, v)
}

// looksLikeDate is dynamic date detection: a string in
// strict_date_optional_time form with at least a full date.
func looksLikeDate(s string) bool {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	_, ok := isoDate(s)
	return ok
}
