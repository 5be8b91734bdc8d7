package cat

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"

	"paddock/agents/node/eserr"
)

var indexCols = []Column{
	{Name: "health", Aliases: []string{"h"}, Default: true},
	{Name: "index", Aliases: []string{"i", "idx"}, Default: true},
	{Name: "docs.count", Aliases: []string{"dc", "docsCount"}, Default: true, Kind: Number},
	{Name: "store.size", Aliases: []string{"ss"}, Default: true, Kind: Bytes},
	{Name: "uuid", Aliases: []string{"id"}},
}

var indexRows = []Row{
	{"health": "green", "index": "logs", "docs.count": int64(1000), "store.size": int64(4718592), "uuid": "u1"},
	{"health": "yellow", "index": "a-much-longer-name", "docs.count": int64(7), "store.size": int64(208), "uuid": "u2"},
	{"health": "green", "index": "empty", "docs.count": nil, "store.size": int64(1536), "uuid": "u3"},
}

func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		want  string
		err   string
	}{
		{name: "default columns, no header", query: "",
			want: "green  logs               1000 4.5mb\n" +
				"yellow a-much-longer-name    7  208b\n" +
				"green  empty                   1.5kb\n"},
		{name: "header, chosen columns by alias", query: "v&h=i,dc",
			want: "i                    dc\n" +
				"logs               1000\n" +
				"a-much-longer-name    7\n" +
				"empty\n"},
		{name: "sort numeric descending, bytes unit", query: "h=index,store.size&s=store.size:desc&bytes=kb",
			want: "logs               4608\n" +
				"empty                 1\n" +
				"a-much-longer-name    0\n"},
		{name: "sort by name", query: "h=index&s=index",
			want: "a-much-longer-name\nempty\nlogs\n"},
		{name: "pattern", query: "h=docs*,index&s=docs.count",
			want: "   7 a-much-longer-name\n1000 logs\n     empty\n"},
		{name: "unknown column", query: "h=nope", err: "illegal_argument_exception"},
		{name: "unknown sort key", query: "s=nope", err: "illegal_argument_exception"},
		{name: "bad sort order", query: "s=index:up", err: "illegal_argument_exception"},
		{name: "bad unit", query: "bytes=kib", err: "illegal_argument_exception"},
		{name: "bad format", query: "format=xml", err: "illegal_argument_exception"},
		{name: "help", query: "help",
			want: "health     | h            |\n" +
				"index      | i,idx        |\n" +
				"docs.count | dc,docsCount |\n" +
				"store.size | ss           |\n" +
				"uuid       | id           |\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			body, _, err := Render(q, indexCols, indexRows)
			if tt.err != "" {
				var e *eserr.Error
				if !errors.As(err, &e) || e.Type != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", body, tt.want)
			}
		})
	}
}

func TestRenderJSON(t *testing.T) {
	t.Parallel()
	q, _ := url.ParseQuery("format=json&h=index,dc,store.size&bytes=b&s=index")
	body, ctype, err := Render(q, indexCols, indexRows)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "application/json; charset=UTF-8" {
		t.Fatalf("content type %q", ctype)
	}
	var got []map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"index": "a-much-longer-name", "dc": "7", "store.size": "208"},
		{"index": "empty", "dc": nil, "store.size": "1536"},
		{"index": "logs", "dc": "1000", "store.size": "4718592"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0b", 1023: "1023b", 1024: "1kb", 1536: "1.5kb", 5 << 30: "5gb", 1<<20 + 1<<19: "1.5mb"} {
		if got, _ := formatBytes(n, ""); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
