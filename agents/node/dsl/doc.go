// Package dsl is the node's Elasticsearch query DSL: it parses the
// _search and _count bodies and URL parameters (ParseSearch), runs them on
// bleve indices laid out as docs/architecture.md describes ("How documents
// are laid out in bleve"), and builds Elasticsearch's responses: hits with
// BM25 scores, sort values and highlights, totals, aggregations, scroll
// pages (Scrolls) and _msearch answers (MultiSearch). Matching walks every
// hit for _delete_by_query and _update_by_query.
//
// It owns the meaning of queries, sorts and aggregations. It does not own
// the mapping, the bleve documents or the stored sources: a Target brings
// the mapping's view (Fields), the index at its last refresh and a source
// lookup, all from node-core (agents/node/mapping and agents/node/shard).
// Errors are *eserr.Error values shaped as Elasticsearch answers them.
//
// Execution: each target's query is compiled into bleve queries against
// its mapping, searched on a point-in-time reader with BM25 (set through
// the search context, whatever the index mapping's scoring model), and
// collected by bleve's top-N collector; aggregations are fed from doc
// values by facet builders plugged into that collector (never from
// _source), so one pass over the matching documents yields hits, total
// and aggregations. Hits of several targets are merged in sort order.
package dsl
