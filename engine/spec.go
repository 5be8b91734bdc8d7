package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Limits of a deployment's topology.
const (
	MinSizeMB       = 256
	MaxSizeMB       = 64 * 1024
	MaxKibanaSizeMB = 8 * 1024
	MaxZones        = 3
)

// FieldError names one invalid field of a request and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func fieldErr(name, format string, args ...any) FieldError {
	return FieldError{Field: name, Message: fmt.Sprintf(format, args...)}
}

// SpecError joins the field errors of an invalid spec.
func SpecError(fe []FieldError) error {
	if len(fe) == 0 {
		return nil
	}
	errs := make([]error, len(fe))
	for i, f := range fe {
		errs[i] = fmt.Errorf("%s: %s", f.Field, f.Message)
	}
	return errors.Join(errs...)
}

// ValidateSpec checks a (normalized) deployment spec against the
// platform: offered versions, sizes, zone counts, allocator filters. It
// is the one rule: the service layer checks requests with it and the
// constructor checks plans with it again before placing. zones is the
// platform's number of zones; 0 when the caller does not know it (the
// constructor), then only MaxZones bounds the zone counts and placement
// decides the rest.
func ValidateSpec(cfg PlatformConfig, zones int, spec DeploymentSpec) []FieldError {
	var fe []FieldError
	if !slices.Contains(cfg.Versions, spec.Version) {
		fe = append(fe, fieldErr("spec.version", "version %q is not offered: use one of %s", spec.Version, strings.Join(cfg.Versions, ", ")))
	}
	maxZones := MaxZones
	if zones > 0 {
		maxZones = min(MaxZones, zones)
	}
	es := spec.Elasticsearch
	if es.SizeMB < MinSizeMB || es.SizeMB > MaxSizeMB {
		fe = append(fe, fieldErr("spec.elasticsearch.size_mb", "must be between %d and %d (MB), got %d", MinSizeMB, MaxSizeMB, es.SizeMB))
	}
	if es.Zones < 1 || es.Zones > maxZones {
		fe = append(fe, fieldErr("spec.elasticsearch.zones", "must be between 1 and %d (the platform has %s zones), got %d", maxZones, zoneCount(zones), es.Zones))
	}
	fe = append(fe, CheckFilter("spec.elasticsearch.allocator_filter", es.Filter)...)
	kb := spec.Kibana
	if kb.SizeMB != 0 {
		if kb.SizeMB < MinSizeMB || kb.SizeMB > MaxKibanaSizeMB {
			fe = append(fe, fieldErr("spec.kibana.size_mb", "must be 0 (no Kibana) or between %d and %d (MB), got %d", MinSizeMB, MaxKibanaSizeMB, kb.SizeMB))
		}
		if kb.Zones < 1 || kb.Zones > maxZones {
			fe = append(fe, fieldErr("spec.kibana.zones", "must be between 1 and %d, got %d", maxZones, kb.Zones))
		}
	} else if kb.Zones != 0 {
		fe = append(fe, fieldErr("spec.kibana.zones", "must be 0 when kibana.size_mb is 0"))
	}
	fe = append(fe, CheckFilter("spec.kibana.allocator_filter", kb.Filter)...)
	return fe
}

func zoneCount(zones int) string {
	if zones <= 0 {
		return "an unknown number of"
	}
	return fmt.Sprint(zones)
}

// CheckFilter checks allocator tags (a filter or an allocator's tags).
func CheckFilter(name string, f map[string]string) []FieldError {
	var fe []FieldError
	if len(f) > 16 {
		fe = append(fe, fieldErr(name, "at most 16 tags"))
	}
	for k, v := range f {
		if k == "" || len(k) > 64 || len(v) > 256 {
			fe = append(fe, fieldErr(name, "tag %q: keys are 1..64 characters, values at most 256", k))
		}
	}
	return fe
}
