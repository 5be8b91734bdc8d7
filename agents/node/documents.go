package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"paddock/agents/node/meta"
	"reflect"
	"strconv"
	"strings"
	"time"

	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
	"paddock/agents/node/shard"
)

// writeParams are a write's URL (or bulk metadata) parameters.
type writeParams struct {
	refresh     string // "", "true", "wait_for", "false"
	routing     string
	opType      string
	version     int64
	versionType string
	ifSeqNo     *int64
	ifTerm      *int64
}

func parseWriteParams(q url.Values) (writeParams, error) {
	wp := writeParams{routing: q.Get("routing"), opType: q.Get("op_type")}
	var err error
	if wp.refresh, err = refreshParam(q); err != nil {
		return wp, err
	}
	get := func(k string) (*int64, error) {
		v := q.Get(k)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, eserr.BadRequest("[%s] must be a non-negative number, got [%s]", k, v)
		}
		return &n, nil
	}
	if wp.ifSeqNo, err = get("if_seq_no"); err != nil {
		return wp, err
	}
	if wp.ifTerm, err = get("if_primary_term"); err != nil {
		return wp, err
	}
	v, err := get("version")
	if err != nil {
		return wp, err
	}
	if v != nil {
		wp.version = *v
	}
	wp.versionType = q.Get("version_type")
	return wp, wp.check()
}

func refreshParam(q url.Values) (string, error) {
	if !q.Has("refresh") {
		return "", nil
	}
	switch v := q.Get("refresh"); v {
	case "", "true":
		return "true", nil
	case "false", "wait_for":
		return v, nil
	default:
		return "", eserr.BadRequest("Unknown value for refresh: [%s].", v)
	}
}

func (wp writeParams) check() error {
	switch wp.opType {
	case "", "index", "create":
	default:
		return eserr.BadRequest("opType must be 'create' or 'index', found: [%s]", wp.opType)
	}
	if (wp.ifSeqNo == nil) != (wp.ifTerm == nil) {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: if_seq_no and if_primary_term must be set together;")
	}
	switch wp.versionType {
	case "", shard.VersionInternal:
		if wp.version != 0 {
			return eserr.New(http.StatusBadRequest, "action_request_validation_exception",
				"Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;")
		}
	case shard.VersionExternal, shard.VersionExternalGTE:
		if wp.version == 0 && wp.versionType != "" {
			return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: an external version is required with version_type [%s];", wp.versionType)
		}
		if wp.ifSeqNo != nil {
			return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: compare and write operations can not be used with version type [%s];", wp.versionType)
		}
	default:
		return eserr.BadRequest("No version type match [%s]", wp.versionType)
	}
	return nil
}

func (wp writeParams) op(kind shard.Kind, id string, src []byte) shard.Op {
	if kind == shard.OpIndex && wp.opType == "create" {
		kind = shard.OpCreate
	}
	return shard.Op{Kind: kind, ID: id, Source: src, Routing: wp.routing, IfSeqNo: wp.ifSeqNo, IfPrimaryTerm: wp.ifTerm,
		Version: wp.version, VersionType: wp.versionType}
}

// afterWrite applies the refresh policy of a write.
func afterWrite(ctx context.Context, sh *shard.Shard, refresh string, seq int64) (forced bool, err error) {
	switch refresh {
	case "true":
		return true, sh.Refresh(ctx)
	case "wait_for":
		return false, sh.WaitRefreshed(ctx, seq)
	}
	return false, nil
}

// docResult is one write's answer: a bulk item encodes it as it is
// (Status set), a single write through writeResponse. Fields are in
// name order, the order the maps it replaces were encoded in.
type docResult struct {
	ID          string     `json:"_id"`
	Index       string     `json:"_index"`
	PrimaryTerm int64      `json:"_primary_term"`
	SeqNo       int64      `json:"_seq_no"`
	Shards      shardCount `json:"_shards"`
	Version     int64      `json:"_version"`
	Result      string     `json:"result"`
	Status      int        `json:"status,omitempty"`
}

type shardCount struct {
	Failed     int `json:"failed"`
	Successful int `json:"successful"`
	Total      int `json:"total"`
}

func newDocResult(index, id string, res shard.Result, rep replication) docResult {
	d := docResult{Index: index, ID: id, Version: res.Version, Result: res.Result,
		Shards: shardCount{Failed: rep.failed, Successful: rep.ok, Total: rep.total}, SeqNo: res.SeqNo, PrimaryTerm: res.PrimaryTerm}
	if res.Result == "noop" {
		d.Shards = shardCount{}
	}
	return d
}

func writeResponse(index, id string, res shard.Result, rep replication) map[string]any {
	d := newDocResult(index, id, res, rep)
	return map[string]any{"_index": d.Index, "_id": d.ID, "_version": d.Version, "result": d.Result,
		"_shards": d.Shards, "_seq_no": d.SeqNo, "_primary_term": d.PrimaryTerm}
}

func statusOf(res shard.Result) int {
	switch res.Result {
	case "created":
		return http.StatusCreated
	case "not_found":
		return http.StatusNotFound
	}
	return http.StatusOK
}

func (s *Server) createDoc(w http.ResponseWriter, r *http.Request, p params) error {
	return s.writeDoc(w, r, p, true)
}

func (s *Server) indexDoc(w http.ResponseWriter, r *http.Request, p params) error {
	return s.writeDoc(w, r, p, false)
}

func (s *Server) writeDoc(w http.ResponseWriter, r *http.Request, p params, create bool) error {
	index, id := p["index"], p["id"]
	if err := validIndex(index); err != nil {
		return err
	}
	wp, err := parseWriteParams(r.URL.Query())
	if err != nil {
		return err
	}
	if create {
		wp.opType = "create"
	}
	if id == "" {
		if wp.opType == "" {
			wp.opType = "create"
		}
		id = randomID()
	}
	if len(id) > 512 {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: id [%s...] is too long, must be no longer than 512 bytes but was: %d;", id[:20], len(id))
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	src := bytes.TrimSpace(body)
	sh, err := s.writeIndex(index)
	if err != nil {
		return err
	}
	index = sh.Name() // an alias's write index
	res, rep, err := s.writeShard(r.Context(), sh, []shard.Op{wp.op(shard.OpIndex, id, src)}, wp.refresh)
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	forced, err := afterWrite(r.Context(), sh, wp.refresh, res[0].SeqNo)
	if err != nil {
		return err
	}
	extra := url.Values{}
	if wp.routing != "" {
		extra.Set("routing", wp.routing)
	}
	out := writeResponse(index, id, res[0], rep)
	if forced {
		out["forced_refresh"] = true
	}
	writeJSON(w, statusOf(res[0]), out)
	return nil
}

func (s *Server) getDoc(w http.ResponseWriter, r *http.Request, p params) error {
	return s.get(w, r, p, false)
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request, p params) error {
	return s.get(w, r, p, true)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, p params, sourceOnly bool) error {
	index, id := p["index"], p["id"]
	sh := s.index(index)
	if sh == nil {
		return eserr.IndexNotFound(index)
	}
	q := r.URL.Query()
	if q.Get("refresh") == "true" {
		if err := sh.Refresh(r.Context()); err != nil {
			return err
		}
	}
	src, meta, ok, err := sh.Get(id)
	if err != nil {
		return err
	}
	if !ok {
		if sourceOnly {
			return errf(http.StatusNotFound, "resource_not_found_exception", "Document not found [%s]/[%s]", index, id)
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"_index": index, "_id": id, "found": false})
		return nil
	}
	filter, err := sourceFilterOf(q)
	if err != nil {
		return err
	}
	if sourceOnly {
		out, _ := filter.apply(src)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return nil
	}
	writeJSON(w, http.StatusOK, getResponse(index, id, src, meta, filter))
	return nil
}

func getResponse(index, id string, src []byte, meta shard.Meta, filter sourceFilter) map[string]any {
	out := map[string]any{"_index": index, "_id": id, "_version": meta.Version, "_seq_no": meta.SeqNo,
		"_primary_term": meta.PrimaryTerm, "found": true}
	if meta.Routing != "" {
		out["_routing"] = meta.Routing
	}
	if b, ok := filter.apply(src); ok {
		out["_source"] = json.RawMessage(b)
	}
	return out
}

// sourceFilter is _source / _source_includes / _source_excludes of a GET.
type sourceFilter struct {
	off                bool
	includes, excludes []string
}

func sourceFilterOf(q url.Values) (sourceFilter, error) {
	var f sourceFilter
	switch v := q.Get("_source"); v {
	case "", "true":
	case "false":
		f.off = true
	default:
		f.includes = strings.Split(v, ",")
	}
	if v := q.Get("_source_includes"); v != "" {
		f.includes = strings.Split(v, ",")
	}
	if v := q.Get("_source_excludes"); v != "" {
		f.excludes = strings.Split(v, ",")
	}
	return f, nil
}

func sourceFilterFromJSON(v any) sourceFilter {
	var f sourceFilter
	switch x := v.(type) {
	case bool:
		f.off = !x
	case string:
		f.includes = []string{x}
	case []any:
		for _, e := range x {
			f.includes = append(f.includes, fmt.Sprint(e))
		}
	case map[string]any:
		list := func(v any) []string {
			switch y := v.(type) {
			case string:
				return []string{y}
			case []any:
				var out []string
				for _, e := range y {
					out = append(out, fmt.Sprint(e))
				}
				return out
			}
			return nil
		}
		f.includes, f.excludes = list(x["includes"]), list(x["excludes"])
	}
	return f
}

// apply filters a source; false when _source is off.
func (f sourceFilter) apply(src []byte) ([]byte, bool) {
	if f.off {
		return nil, false
	}
	if len(f.includes) == 0 && len(f.excludes) == 0 {
		return src, true
	}
	doc, err := mapping.DecodeSource(src)
	if err != nil {
		return src, true
	}
	out := filterMap(doc, "", f)
	b, _ := json.Marshal(out)
	return b, true
}

func filterMap(m map[string]any, prefix string, f sourceFilter) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		full := k
		if prefix != "" {
			full = prefix + "." + k
		}
		if matchAny(f.excludes, full) {
			continue
		}
		if sub, ok := v.(map[string]any); ok {
			if len(f.includes) == 0 || matchAny(f.includes, full) {
				if len(f.excludes) == 0 {
					out[k] = sub
					continue
				}
				out[k] = filterMap(sub, full, sourceFilter{excludes: f.excludes})
				continue
			}
			if inner := filterMap(sub, full, f); len(inner) > 0 {
				out[k] = inner
			}
			continue
		}
		if len(f.includes) == 0 || matchAny(f.includes, full) {
			out[k] = v
		}
	}
	return out
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if meta.Match(pat, p) || strings.HasPrefix(p, pat+".") {
			return true
		}
	}
	return false
}

func (s *Server) deleteDoc(w http.ResponseWriter, r *http.Request, p params) error {
	index, id := p["index"], p["id"]
	sh := s.index(index)
	if sh == nil {
		return eserr.IndexNotFound(index)
	}
	wp, err := parseWriteParams(r.URL.Query())
	if err != nil {
		return err
	}
	res, rep, err := s.writeShard(r.Context(), sh, []shard.Op{wp.op(shard.OpDelete, id, nil)}, wp.refresh)
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	forced := false
	if res[0].Result == "deleted" {
		if forced, err = afterWrite(r.Context(), sh, wp.refresh, res[0].SeqNo); err != nil {
			return err
		}
	}
	out := writeResponse(index, id, res[0], rep)
	if forced {
		out["forced_refresh"] = true
	}
	writeJSON(w, statusOf(res[0]), out)
	return nil
}

// updateRequest is the body of _update (and of a bulk update).
type updateRequest struct {
	Doc         map[string]any `json:"doc"`
	DocAsUpsert bool           `json:"doc_as_upsert"`
	Upsert      map[string]any `json:"upsert"`
	DetectNoop  *bool          `json:"detect_noop"`
	Script      any            `json:"script"`
	Source      any            `json:"_source"`
	raw         map[string]any
}

func parseUpdate(body []byte) (*updateRequest, error) {
	var raw map[string]any
	if err := decodeJSON(body, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
	}
	u := &updateRequest{raw: raw}
	for k, v := range raw {
		switch k {
		case "doc", "upsert":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[%s] must be an object", k)
			}
			if k == "doc" {
				u.Doc = m
			} else {
				u.Upsert = m
			}
		case "doc_as_upsert", "detect_noop", "scripted_upsert":
			b, ok := v.(bool)
			if !ok {
				return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[%s] must be true or false", k)
			}
			switch k {
			case "doc_as_upsert":
				u.DocAsUpsert = b
			case "detect_noop":
				u.DetectNoop = &b
			}
		case "script":
			return nil, eserr.BadRequest("scripts are not supported by the paddock node (no scripting engine): send a partial document with \"doc\" (and \"doc_as_upsert\" or \"upsert\" to create it)")
		case "_source":
			u.Source = v
		default:
			return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[UpdateRequest] unknown field [%s]", k)
		}
	}
	if u.Doc == nil {
		return nil, eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
	}
	return u, nil
}

// apply is the shard.Op.Update function of this request.
func (u *updateRequest) apply(index, id string) func([]byte, bool) ([]byte, bool, error) {
	return func(cur []byte, exists bool) ([]byte, bool, error) {
		if !exists {
			switch {
			case u.DocAsUpsert:
				b, err := json.Marshal(u.Doc)
				return b, false, err
			case u.Upsert != nil:
				b, err := json.Marshal(u.Upsert)
				return b, false, err
			}
			return nil, false, errf(http.StatusNotFound, "document_missing_exception", "[%s]: document missing", id).WithIndex(index)
		}
		doc, err := mapping.DecodeSource(cur)
		if err != nil {
			return nil, false, err
		}
		changed := merge(doc, u.Doc)
		if !changed && (u.DetectNoop == nil || *u.DetectNoop) {
			return cur, true, nil
		}
		b, err := json.Marshal(doc)
		return b, false, err
	}
}

// merge merges src into dst as Elasticsearch's partial update does
// (objects recursively, anything else replaced) and reports a change.
func merge(dst, src map[string]any) bool {
	changed := false
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				if merge(dm, sm) {
					changed = true
				}
				continue
			}
		}
		if old, ok := dst[k]; !ok || !reflect.DeepEqual(old, v) {
			changed = true
		}
		dst[k] = v
	}
	return changed
}

func (s *Server) updateDoc(w http.ResponseWriter, r *http.Request, p params) error {
	index, id := p["index"], p["id"]
	if err := validIndex(index); err != nil {
		return err
	}
	q := r.URL.Query()
	wp, err := parseWriteParams(q)
	if err != nil {
		return err
	}
	if wp.version != 0 {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: can't provide version in update request; use if_seq_no and if_primary_term;")
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	u, err := parseUpdate(body)
	if err != nil {
		return err
	}
	sh := s.index(index)
	if sh == nil && s.meta.IsAlias(index) {
		if sh, err = s.writeIndex(index); err != nil {
			return err
		}
	}
	if sh == nil {
		if !u.DocAsUpsert && u.Upsert == nil {
			return eserr.IndexNotFound(index)
		}
		if sh, err = s.writeIndex(index); err != nil {
			return err
		}
	}
	index = sh.Name() // an alias's write index
	op := wp.op(shard.OpUpdate, id, nil)
	op.Update = u.apply(index, id)
	res, rep, err := s.writeShard(r.Context(), sh, []shard.Op{op}, wp.refresh)
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	forced := false
	if res[0].Result != "noop" {
		if forced, err = afterWrite(r.Context(), sh, wp.refresh, res[0].SeqNo); err != nil {
			return err
		}
	}
	out := writeResponse(index, id, res[0], rep)
	if forced {
		out["forced_refresh"] = true
	}
	filter := sourceFilterFromJSON(u.Source)
	if q.Has("_source") {
		filter, _ = sourceFilterOf(q)
	} else if u.Source == nil {
		filter.off = true
	}
	if b, ok := filter.apply(res[0].Source); ok {
		out["get"] = map[string]any{"_seq_no": res[0].SeqNo, "_primary_term": res[0].PrimaryTerm, "found": true, "_source": json.RawMessage(b)}
	}
	writeJSON(w, statusOf(res[0]), out)
	return nil
}

func (s *Server) mget(w http.ResponseWriter, r *http.Request, p params) error {
	var body struct {
		Docs []map[string]any `json:"docs"`
		IDs  []any            `json:"ids"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	defIndex := p["index"]
	q := r.URL.Query()
	defFilter, _ := sourceFilterOf(q)
	for _, id := range body.IDs {
		body.Docs = append(body.Docs, map[string]any{"_id": fmt.Sprint(id)})
	}
	if len(body.Docs) == 0 {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no documents to get;")
	}
	out := make([]any, 0, len(body.Docs))
	for _, d := range body.Docs {
		index, _ := d["_index"].(string)
		if index == "" {
			index = defIndex
		}
		id := ""
		switch v := d["_id"].(type) {
		case string:
			id = v
		case json.Number:
			id = v.String()
		}
		if index == "" || id == "" {
			return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing for doc 0;2: id is missing for doc 0;")
		}
		filter := defFilter
		if sv, ok := d["_source"]; ok {
			filter = sourceFilterFromJSON(sv)
		}
		sh := s.index(index)
		if sh == nil {
			out = append(out, map[string]any{"_index": index, "_id": id, "error": eserr.IndexNotFound(index).Item()})
			continue
		}
		src, meta, ok, err := sh.Get(id)
		if err != nil {
			return err
		}
		if !ok {
			out = append(out, map[string]any{"_index": index, "_id": id, "found": false})
			continue
		}
		out = append(out, getResponse(index, id, src, meta, filter))
	}
	writeJSON(w, http.StatusOK, map[string]any{"docs": out})
	return nil
}

// bulkItem is one action of a bulk request.
type bulkItem struct {
	action string // index, create, update, delete
	index  string
	id     string
	op     shard.Op
	err    error
	res    shard.Result
	rep    replication
}

var bulkActions = map[string]bool{"index": true, "create": true, "update": true, "delete": true}

// parseBulk reads the NDJSON body. A line that is not JSON is an error
// for its item only; an unknown action fails the request, as in
// Elasticsearch.
func parseBulk(body []byte, defIndex string, defaults writeParams) ([]*bulkItem, error) {
	// Lines are slices of the body (read for this request only), as
	// bufio.ScanLines cuts them: without "\n" and a "\r" before it.
	lines := make([][]byte, 0, bytes.Count(body, []byte{'\n'})+1)
	for rest := body; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		lines = append(lines, bytes.TrimSuffix(line, []byte{'\r'}))
	}
	var items []*bulkItem
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		lineNo := i + 1
		var action map[string]map[string]any
		if err := decodeJSON(line, &action); err != nil || len(action) != 1 {
			it := &bulkItem{action: "index", index: defIndex,
				err: eserr.New(http.StatusBadRequest, "parse_exception", "Malformed action/metadata line [%d]: expected {\"action\":{...}}, got %.80q", lineNo, line)}
			items = append(items, it)
			// Skip its source line unless the next line is an action.
			if i+1 < len(lines) && !isActionLine(lines[i+1]) {
				i++
			}
			continue
		}
		var name string
		var meta map[string]any
		for name, meta = range action {
		}
		if !bulkActions[name] {
			return nil, eserr.BadRequest("Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", lineNo, name)
		}
		it := &bulkItem{action: name, index: defIndex}
		wp := defaults
		wp.opType, wp.version, wp.versionType, wp.ifSeqNo, wp.ifTerm, wp.routing = "", 0, "", nil, nil, ""
		for k, v := range meta {
			sv := fmt.Sprint(v)
			switch k {
			case "_index":
				it.index = sv
			case "_id":
				it.id = sv
			case "routing":
				wp.routing = sv
			case "version":
				n, err := strconv.ParseInt(sv, 10, 64)
				if err != nil {
					it.err = eserr.BadRequest("[version] must be a number, got [%s]", sv)
				}
				wp.version = n
			case "version_type":
				wp.versionType = sv
			case "if_seq_no", "if_primary_term":
				n, err := strconv.ParseInt(sv, 10, 64)
				if err != nil {
					it.err = eserr.BadRequest("[%s] must be a number, got [%s]", k, sv)
				}
				if k == "if_seq_no" {
					wp.ifSeqNo = &n
				} else {
					wp.ifTerm = &n
				}
			case "require_alias", "pipeline", "dynamic_templates", "retry_on_conflict", "_source", "op_type":
				// Accepted: nothing to do for them here.
			default:
				it.err = eserr.BadRequest("Action/metadata line [%d] contains an unknown parameter [%s]", lineNo, k)
			}
		}
		var src []byte
		if name != "delete" {
			if i+1 >= len(lines) {
				return nil, eserr.BadRequest("The bulk request must be terminated by a newline [\\n]: source missing after line [%d]", lineNo)
			}
			i++
			src = bytes.TrimSpace(lines[i])
		}
		if it.err == nil {
			it.err = wp.check()
		}
		if it.err == nil && it.index == "" {
			it.err = eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
		}
		if it.err == nil {
			it.err = validIndex(it.index)
		}
		if it.err == nil && it.id == "" && (name == "update" || name == "delete") {
			it.err = eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
		}
		if it.id == "" {
			it.id = randomID()
			if name == "index" {
				wp.opType = "create"
			}
		}
		switch name {
		case "index":
			it.op = wp.op(shard.OpIndex, it.id, src)
		case "create":
			it.op = wp.op(shard.OpCreate, it.id, src)
		case "delete":
			it.op = wp.op(shard.OpDelete, it.id, nil)
		case "update":
			it.op = wp.op(shard.OpUpdate, it.id, nil)
			if it.err == nil {
				u, err := parseUpdate(src)
				if err != nil {
					it.err = err
				} else {
					it.op.Update = u.apply(it.index, it.id)
				}
			}
		}
		items = append(items, it)
	}
	return items, nil
}

func isActionLine(b []byte) bool {
	var a map[string]json.RawMessage
	if json.Unmarshal(b, &a) != nil || len(a) != 1 {
		return false
	}
	for k := range a {
		return bulkActions[k]
	}
	return false
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, p params) error {
	start := time.Now()
	bq := url.Values{}
	for _, k := range []string{"refresh", "routing"} {
		if v, ok := r.URL.Query()[k]; ok {
			bq[k] = v
		}
	}
	defaults, err := parseWriteParams(bq)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	items, err := parseBulk(body, p["index"], defaults)
	if err != nil {
		return err
	}
	// One group commit per index, items in their order.
	byIndex := map[string][]*bulkItem{}
	var order []string
	for _, it := range items {
		if it.err != nil {
			continue
		}
		if _, ok := byIndex[it.index]; !ok {
			order = append(order, it.index)
		}
		byIndex[it.index] = append(byIndex[it.index], it)
	}
	for _, index := range order {
		group := byIndex[index]
		sh := s.index(index)
		if sh == nil {
			if sh, err = s.writeIndex(index); err != nil {
				for _, it := range group {
					it.err = err
				}
				continue
			}
		}
		ops := make([]shard.Op, len(group))
		for i, it := range group {
			ops[i] = it.op
			it.index = sh.Name() // an alias's write index
		}
		res, rep, err := s.writeShard(r.Context(), sh, ops, defaults.refresh)
		if err != nil {
			return err
		}
		for _, it := range group {
			it.rep = rep
		}
		maxSeq := int64(-1)
		for i, it := range group {
			it.res, it.err = res[i], res[i].Err
			if it.err != nil || res[i].Result == "noop" || res[i].Result == "not_found" {
				continue
			}
			maxSeq = max(maxSeq, res[i].SeqNo)
		}
		if maxSeq >= 0 {
			if _, err := afterWrite(r.Context(), sh, defaults.refresh, maxSeq); err != nil {
				return err
			}
		}
	}
	resp := bulkResponse{Items: make([]bulkEntry, len(items))}
	for i, it := range items {
		var entry any
		if it.err != nil {
			resp.Errors = true
			e := eserr.From(it.err)
			item := e.Item()
			if _, ok := item["index"]; !ok && it.index != "" {
				item["index"] = it.index
			}
			entry = &bulkFailure{Index: it.index, ID: it.id, Status: e.Status, Error: item}
		} else {
			d := newDocResult(it.index, it.id, it.res, it.rep)
			d.Status = statusOf(it.res)
			entry = &d
		}
		switch it.action {
		case "index":
			resp.Items[i].Index = entry
		case "create":
			resp.Items[i].Create = entry
		case "update":
			resp.Items[i].Update = entry
		default:
			resp.Items[i].Delete = entry
		}
	}
	resp.Took = time.Since(start).Milliseconds()
	writeJSON(w, http.StatusOK, &resp)
	return nil
}

// bulkResponse is the answer to _bulk: typed, so that a thousand items
// encode without a map per item (fields in name order, as the maps were).
type bulkResponse struct {
	Errors bool        `json:"errors"`
	Items  []bulkEntry `json:"items"`
	Took   int64       `json:"took"`
}

// bulkEntry is one item under its action's name.
type bulkEntry struct {
	Create any `json:"create,omitempty"`
	Delete any `json:"delete,omitempty"`
	Index  any `json:"index,omitempty"`
	Update any `json:"update,omitempty"`
}

type bulkFailure struct {
	ID     string         `json:"_id"`
	Index  string         `json:"_index"`
	Error  map[string]any `json:"error"`
	Status int            `json:"status"`
}
