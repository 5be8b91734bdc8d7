package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"paddock/engine/testenv"
)

// TestRecoveryRefusedCopyMarked: the primary's view marks "refused" a
// recovering copy whose answers retrying will not change (403: it does
// not let the primary in; 400: another contract version), and not one
// that is only unavailable (503), so the authority can stop waiting for
// the first at once.
func TestRecoveryRefusedCopyMarked(t *testing.T) {
	g := newGroup(t, "a", "b")
	a := g.node("a")
	do(t, a.url, call{"PUT", "/logs/_doc/0", `{"n":0}`, 201, nil})
	answer := func(code int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"error":"test"}`)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	forbidden, bad, busy := answer(http.StatusForbidden), answer(http.StatusBadRequest), answer(http.StatusServiceUnavailable)
	g.mu.Lock()
	rt := g.rt
	g.mu.Unlock()
	rt.Version += 10
	rt.Self = "a"
	rt.Copies = append(append([]CopyAddr{}, rt.Copies...),
		CopyAddr{ID: "forbidden", URL: forbidden.URL}, CopyAddr{ID: "bad", URL: bad.URL}, CopyAddr{ID: "busy", URL: busy.URL})
	b, _ := json.Marshal(rt)
	req, _ := http.NewRequest(http.MethodPut, a.url+ReplicationPath, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push: %s", resp.Status)
	}
	type copyView struct {
		State   string `json:"state"`
		Error   string `json:"error"`
		Refused bool   `json:"refused"`
	}
	var view struct {
		Copies map[string]copyView `json:"copies"`
	}
	testenv.Eventually(t, 20*time.Second, "every recovering copy to have failed once", func() bool {
		view.Copies = nil
		r, err := http.Get(a.url + ReplicationPath)
		if err != nil {
			return false
		}
		defer r.Body.Close()
		if json.NewDecoder(r.Body).Decode(&view) != nil {
			return false
		}
		return view.Copies["forbidden"].Error != "" && view.Copies["bad"].Error != "" && view.Copies["busy"].Error != ""
	})
	for id, want := range map[string]bool{"forbidden": true, "bad": true, "busy": false} {
		if c := view.Copies[id]; c.Refused != want {
			t.Errorf("copy %s: refused %v, want %v (%+v)", id, c.Refused, want, c)
		}
	}
	if c := view.Copies["b"]; c.Refused || c.Error != "" {
		t.Errorf("in-sync copy b: %+v", c)
	}
}

// TestRestoreIntoNodeThatLeftTheGroup: the platform's restore
// (paddock_replace) into a node taken out of its group (a new copy whose
// recovery fell back to snapshot and restore) runs on that node; it
// used to be forwarded to the group's primary, whose serving index the
// older snapshot then replaced (acknowledged writes lost). A restore
// without paddock_replace is still the group's.
func TestRestoreIntoNodeThatLeftTheGroup(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	a, c := g.node("a"), g.node("c")
	do(t, a.url, call{"PUT", "/_snapshot/" + "r1", `{"type":"fs","settings":{"location":"/snapshots/r1"}}`, 200, nil})
	do(t, a.url, call{"PUT", "/books/_doc/1", `{"t":"one"}`, 201, nil})
	do(t, a.url, call{"PUT", "/_snapshot/r1/s1?wait_for_completion=true", "", 200, []string{`"SUCCESS"`}})
	do(t, a.url, call{"PUT", "/books/_doc/2", `{"t":"two"}`, 201, []string{`"successful":3`}})
	// c leaves the group (the routing no longer lists it).
	g.mu.Lock()
	g.order = []string{"a", "b"}
	g.mu.Unlock()
	g.change(func(rt *Routing) { rt.InSync = []string{"a", "b"} })
	g.mu.Lock()
	rt := g.rt
	g.mu.Unlock()
	rt.Self = "c"
	b, _ := json.Marshal(rt)
	req, _ := http.NewRequest(http.MethodPut, c.url+ReplicationPath, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !c.srv.repl.leftGroup() {
		t.Logf("push: %s %s", resp.Status, msg)
		t.Fatalf("c holds %+v and has not left the group", c.srv.repl.routing())
	}
	do(t, c.url, call{"POST", "/_snapshot/r1/s1/_restore?paddock_replace=true", "", 200, []string{`"books"`}})
	if _, _, ok := localDoc(a, "books", "2"); !ok {
		t.Fatal("the primary lost a document written after the snapshot: the restore into c reached it")
	}
	if _, _, ok := localDoc(c, "books", "1"); !ok {
		t.Fatal("c lacks the restored document")
	}
	if _, _, ok := localDoc(c, "books", "2"); ok {
		t.Fatal("c holds a document the snapshot does not: not restored locally")
	}
}
