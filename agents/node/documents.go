package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// validIndex applies Elasticsearch's index name rules.
func validIndex(name string) error {
	bad := func(why string) error {
		e := errf(http.StatusBadRequest, "invalid_index_name_exception", "Invalid index name [%s], %s", name, why)
		e.Index = name
		return e
	}
	switch {
	case name == "" || name == "." || name == "..":
		return bad("must not be empty, '.' or '..'")
	case len(name) > 255:
		return bad("index name is too long")
	case strings.ToLower(name) != name:
		return bad("must be lowercase")
	case strings.ContainsAny(name[:1], "_-+"):
		return bad("must not start with '_', '-', or '+'")
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return bad(`must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`)
	}
	return nil
}

// indexRoute handles /{index}[/...].
func (s *Server) indexRoute(w http.ResponseWriter, r *http.Request, parts []string) error {
	index, m := parts[0], r.Method
	if len(parts) == 1 {
		switch m {
		case http.MethodPut:
			return s.createIndex(w, r, index)
		case http.MethodDelete:
			return s.deleteIndex(w, r, index)
		case http.MethodGet, http.MethodHead:
			names, err := s.resolve(index)
			if err != nil {
				return err
			}
			out := map[string]any{}
			for _, n := range names {
				out[n] = map[string]any{"aliases": map[string]any{}, "mappings": map[string]any{}, "settings": map[string]any{
					"index": map[string]any{"number_of_shards": "1", "number_of_replicas": "0", "provided_name": n}}}
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		return methodNotAllowed(r)
	}
	switch parts[1] {
	case "_doc", "_create":
		create := parts[1] == "_create"
		if len(parts) == 2 && m == http.MethodPost && !create {
			return s.indexDoc(w, r, index, "", false)
		}
		if len(parts) == 3 {
			id, _ := url.PathUnescape(parts[2])
			switch m {
			case http.MethodPut, http.MethodPost:
				return s.indexDoc(w, r, index, id, create || r.URL.Query().Get("op_type") == "create")
			case http.MethodGet, http.MethodHead:
				if !create {
					return s.getDoc(w, index, id)
				}
			case http.MethodDelete:
				if !create {
					return s.deleteDoc(w, r, index, id)
				}
			}
			return methodNotAllowed(r)
		}
	case "_count":
		if len(parts) == 2 && (m == http.MethodGet || m == http.MethodPost) {
			return s.count(w, r, index)
		}
	case "_search":
		if len(parts) == 2 && (m == http.MethodGet || m == http.MethodPost) {
			return s.search(w, r, index)
		}
	case "_bulk":
		if len(parts) == 2 && (m == http.MethodPost || m == http.MethodPut) {
			return s.bulk(w, r, index)
		}
	case "_refresh", "_flush":
		if _, err := s.resolve(index); err != nil {
			return err
		}
		return s.ack(w, r, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	}
	return errf(http.StatusNotFound, "resource_not_found_exception", "no handler for [%s %s]", m, r.URL.Path)
}

// resolve expands an index expression (a,b / * / _all / prefix*) into
// existing index names; a named index that is missing is an error.
func (s *Server) resolve(expr string) ([]string, error) {
	all, err := s.db.indices()
	if err != nil {
		return nil, err
	}
	if expr == "" || expr == "_all" || expr == "*" {
		return all, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(expr, ",") {
		if strings.HasSuffix(part, "*") {
			pre := strings.TrimSuffix(part, "*")
			for _, n := range all {
				if strings.HasPrefix(n, pre) && !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
			continue
		}
		if s.db.docCount(part) < 0 {
			return nil, indexNotFound(part)
		}
		if !seen[part] {
			seen[part] = true
			out = append(out, part)
		}
	}
	return out, nil
}

func (s *Server) createIndex(w http.ResponseWriter, r *http.Request, index string) error {
	if err := validIndex(index); err != nil {
		return err
	}
	if _, err := readBody(r); err != nil { // mappings/settings are accepted and ignored
		return err
	}
	created, err := s.db.createIndex(index)
	if err != nil {
		return err
	}
	if !created {
		e := errf(http.StatusBadRequest, "resource_already_exists_exception", "index [%s] already exists", index)
		e.Index = index
		return e
	}
	s.replicate(r, http.MethodPut, "/"+index, nil)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": index})
	return nil
}

func (s *Server) deleteIndex(w http.ResponseWriter, r *http.Request, index string) error {
	if err := s.db.deleteIndex(index); err != nil {
		return err
	}
	s.replicate(r, http.MethodDelete, "/"+index, nil)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func normalizeSource(b []byte) (json.RawMessage, error) {
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || v == nil {
		return nil, errf(http.StatusBadRequest, "mapper_parsing_exception", "failed to parse: the document must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, errf(http.StatusBadRequest, "mapper_parsing_exception", "failed to parse: %v", err)
	}
	return buf.Bytes(), nil
}

func (s *Server) indexDoc(w http.ResponseWriter, r *http.Request, index, id string, create bool) error {
	if err := validIndex(index); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	src, err := normalizeSource(body)
	if err != nil {
		return err
	}
	if id == "" {
		id = randomID()
	}
	res, err := s.db.apply([]docOp{{index: index, id: id, source: src, create: create}})
	if err != nil {
		return err
	}
	if res[0].err != nil {
		return res[0].err
	}
	path := "/" + index + "/_doc/" + url.PathEscape(id)
	if create {
		path = "/" + index + "/_create/" + url.PathEscape(id)
	}
	okN, failed := s.replicate(r, http.MethodPut, path, src)
	status := http.StatusOK
	if res[0].result == "created" {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"_index": index, "_id": id, "_version": 1, "result": res[0].result,
		"_shards": shards(okN, failed), "_seq_no": 0, "_primary_term": 1})
	return nil
}

func (s *Server) getDoc(w http.ResponseWriter, index, id string) error {
	src, err := s.db.get(index, id)
	if err != nil {
		return err
	}
	if src == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"_index": index, "_id": id, "found": false})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"_index": index, "_id": id, "_version": 1, "_seq_no": 0,
		"_primary_term": 1, "found": true, "_source": src})
	return nil
}

func (s *Server) deleteDoc(w http.ResponseWriter, r *http.Request, index, id string) error {
	if s.db.docCount(index) < 0 {
		return indexNotFound(index)
	}
	res, err := s.db.apply([]docOp{{index: index, id: id}})
	if err != nil {
		return err
	}
	okN, failed := 0, 0
	if res[0].result == "deleted" {
		okN, failed = s.replicate(r, http.MethodDelete, "/"+index+"/_doc/"+url.PathEscape(id), nil)
	}
	status := http.StatusOK
	if res[0].result == "not_found" {
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]any{"_index": index, "_id": id, "_version": 1, "result": res[0].result,
		"_shards": shards(okN, failed)})
	return nil
}

// bulk applies NDJSON index/create/delete actions.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defIndex string) error {
	start := time.Now()
	body, err := readBody(r)
	if err != nil {
		return err
	}
	type item struct {
		action string
		index  string
		id     string
		err    *esError
	}
	var items []item
	var ops []docOp
	var opItem []int
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), maxBody)
	line := 0
	next := func() ([]byte, bool) {
		for sc.Scan() {
			line++
			if b := bytes.TrimSpace(sc.Bytes()); len(b) > 0 {
				return append([]byte(nil), b...), true
			}
		}
		return nil, false
	}
	for {
		act, ok := next()
		if !ok {
			break
		}
		var a map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(act, &a); err != nil || len(a) != 1 {
			return errf(http.StatusBadRequest, "illegal_argument_exception", "Malformed action/metadata line [%d], expected a single action such as {\"index\":{...}}", line)
		}
		for name, meta := range a {
			it := item{action: name, index: meta.Index, id: meta.ID}
			if it.index == "" {
				it.index = defIndex
			}
			switch name {
			case "index", "create", "update":
				src, ok := next()
				if !ok {
					return errf(http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline: source missing after line [%d]", line)
				}
				if name == "update" {
					it.err = errf(http.StatusBadRequest, "illegal_argument_exception", "update is not supported by the paddock node: send the whole document with index")
					break
				}
				if it.index == "" {
					it.err = errf(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
					break
				}
				if e := validIndex(it.index); e != nil {
					it.err = e.(*esError)
					break
				}
				norm, e := normalizeSource(src)
				if e != nil {
					it.err = e.(*esError)
					break
				}
				if it.id == "" {
					it.id = randomID()
				}
				ops = append(ops, docOp{index: it.index, id: it.id, source: norm, create: name == "create"})
				opItem = append(opItem, len(items))
			case "delete":
				if it.index == "" || it.id == "" {
					it.err = errf(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index and id are required for delete;")
					break
				}
				ops = append(ops, docOp{index: it.index, id: it.id})
				opItem = append(opItem, len(items))
			default:
				return errf(http.StatusBadRequest, "illegal_argument_exception", "Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", line, name)
			}
			items = append(items, it)
		}
	}
	res, err := s.db.apply(ops)
	if err != nil {
		return err
	}
	results := make([]opResult, len(items))
	for i, ix := range opItem {
		results[ix] = res[i]
	}
	// Replicate what succeeded, with explicit ids so peers hold the same.
	var fwd bytes.Buffer
	for i, op := range ops {
		if res[i].err != nil || res[i].result == "not_found" {
			continue
		}
		kind := "index"
		if op.source == nil {
			kind = "delete"
		}
		meta, _ := json.Marshal(map[string]any{kind: map[string]string{"_index": op.index, "_id": op.id}})
		fwd.Write(meta)
		fwd.WriteByte('\n')
		if op.source != nil {
			fwd.Write(op.source)
			fwd.WriteByte('\n')
		}
	}
	okN, failed := 0, 0
	if fwd.Len() > 0 {
		okN, failed = s.replicate(r, http.MethodPost, "/_bulk", fwd.Bytes())
	}
	anyErr := false
	out := make([]any, len(items))
	for i, it := range items {
		e := it.err
		if e == nil {
			e = results[i].err
		}
		entry := map[string]any{"_index": it.index, "_id": it.id}
		if e != nil {
			anyErr = true
			entry["status"] = e.Status
			entry["error"] = map[string]any{"type": e.Type, "reason": e.Reason, "index": it.index}
		} else {
			entry["result"] = results[i].result
			entry["_version"] = 1
			entry["_shards"] = shards(okN, failed)
			switch results[i].result {
			case "created":
				entry["status"] = http.StatusCreated
			case "not_found":
				entry["status"] = http.StatusNotFound
			default:
				entry["status"] = http.StatusOK
			}
		}
		out[i] = map[string]any{it.action: entry}
	}
	writeJSON(w, http.StatusOK, map[string]any{"took": time.Since(start).Milliseconds(), "errors": anyErr, "items": out})
	return nil
}

func (s *Server) catIndices(w http.ResponseWriter, r *http.Request) error {
	names, err := s.db.indices()
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "json" {
		var out []map[string]any
		for _, n := range names {
			out = append(out, map[string]any{"health": "green", "status": "open", "index": n, "docs.count": s.db.docCount(n)})
		}
		if out == nil {
			out = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	var b strings.Builder
	for _, n := range names {
		b.WriteString("green open " + n + " 1 0 ")
		b.WriteString(itoa(s.db.docCount(n)))
		b.WriteString("\n")
	}
	_, _ = w.Write([]byte(b.String()))
	return nil
}
