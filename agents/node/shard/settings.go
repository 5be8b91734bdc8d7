package shard

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"paddock/agents/node/eserr"
)

// DefaultRefreshInterval is index.refresh_interval's default.
const DefaultRefreshInterval = time.Second

// Settings are an index's settings the node honours.
type Settings struct {
	Shards   int `json:"number_of_shards"`
	Replicas int `json:"number_of_replicas"`
	// RefreshInterval is how often new writes become searchable; negative
	// disables periodic refresh (only explicit refreshes).
	RefreshInterval time.Duration `json:"refresh_interval"`
	CreationDate    int64         `json:"creation_date"`
	UUID            string        `json:"uuid"`
}

// DefaultSettings are a new index's settings before the request's.
func DefaultSettings() Settings {
	return Settings{Shards: 1, Replicas: 1, RefreshInterval: DefaultRefreshInterval}
}

// JSON is the settings as GET /idx/_settings shows them (strings, as
// Elasticsearch does), under "index".
func (s Settings) JSON(name string) map[string]any {
	ri := "-1"
	if s.RefreshInterval >= 0 {
		ri = formatDuration(s.RefreshInterval)
	}
	return map[string]any{"index": map[string]any{
		"number_of_shards":   strconv.Itoa(s.Shards),
		"number_of_replicas": strconv.Itoa(s.Replicas),
		"refresh_interval":   ri,
		"creation_date":      strconv.FormatInt(s.CreationDate, 10),
		"uuid":               s.UUID,
		"provided_name":      name,
		"version":            map[string]any{"created": "8512000"},
	}}
}

func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d > 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0 && d > 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// ParseDuration reads an Elasticsearch time value ("1s", "500ms", "2m",
// "-1").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "-1" {
		return -1, nil
	}
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"nanos", time.Nanosecond}, {"micros", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n < 0 {
				break
			}
			return time.Duration(n) * u.d, nil
		}
	}
	return 0, fmt.Errorf("failed to parse setting [index.refresh_interval] with value [%s] as a time value: use a unit such as 1s, 500ms or -1", s)
}

// Apply reads settings from a request body's "settings" object (nested
// {"index":{...}} or flat "index.x" keys) onto s. creating is false for
// PUT _settings, where number_of_shards cannot change.
func (s Settings) Apply(raw map[string]any, creating bool) (Settings, error) {
	flat := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok {
				walk(key, sub)
				continue
			}
			flat[strings.TrimPrefix(key, "index.")] = v
		}
	}
	walk("", raw)
	for k, v := range flat {
		str := fmt.Sprint(v)
		if n, ok := v.(json.Number); ok {
			str = n.String()
		} else if f, ok := v.(float64); ok {
			str = strconv.FormatFloat(f, 'f', -1, 64)
		}
		switch k {
		case "number_of_shards":
			if !creating {
				return s, eserr.BadRequest("Can't update non dynamic settings [[index.number_of_shards]] for open indices")
			}
			n, err := strconv.Atoi(str)
			if err != nil || n < 1 || n > 1024 {
				return s, eserr.BadRequest("Failed to parse value [%s] for setting [index.number_of_shards] must be between 1 and 1024", str)
			}
			s.Shards = n
		case "number_of_replicas":
			n, err := strconv.Atoi(str)
			if err != nil || n < 0 {
				return s, eserr.BadRequest("Failed to parse value [%s] for setting [index.number_of_replicas] must be >= 0", str)
			}
			s.Replicas = n
		case "refresh_interval":
			if v == nil {
				s.RefreshInterval = DefaultRefreshInterval
				continue
			}
			d, err := ParseDuration(str)
			if err != nil {
				return s, eserr.BadRequest("%v", err)
			}
			s.RefreshInterval = d
		case "provided_name", "creation_date", "uuid", "version.created":
			if !creating {
				return s, eserr.BadRequest("final index setting [index.%s], not updateable", k)
			}
		default:
			return s, eserr.BadRequest("unknown setting [index.%s] please check that any required plugins are installed, or check the breaking changes documentation for removed settings (the paddock node supports number_of_shards, number_of_replicas and refresh_interval)", k)
		}
	}
	return s, nil
}
