package dsl

import (
	"strconv"
	"strings"
	"unicode"
)

// The query_string syntax in its common forms (Lucene's classic parser):
//
//	quick brown           terms, joined by the default operator
//	title:quick           a term in a field; title*:x searches matching fields
//	"quick brown"         a phrase; title:"quick brown"
//	a AND b, a && b, a OR b, a || b, NOT a, !a, +a, -a
//	( ... )               grouping; title:(quick OR brown)
//	qu?ck bro*            wildcards
//	quikc~ quikc~1        fuzzy terms
//	age:[1 TO 5] age:{1 TO 5] age:>=10 date:<now-1d
//	_exists_:title
//	term^2                boosts
//
// Clauses without a field carry field "" and search the query's default
// fields when compiled. parseQS returns the tree with defaultAnd unset; the
// caller wraps it.

type qsToken struct {
	kind  byte // 'w' word, 'p' phrase, '(' ')' , 'A' AND, 'O' OR, 'N' NOT, '+', '-', ':', 'r' range, 'c' comparison
	text  string
	boost float64
	fuzzy string
}

type qsClause struct {
	occur byte // '+' must, '-' must not, ' ' default
	q     Query
}

// qsQ is a parsed query string: clauses whose default occurrence is decided
// by default_operator when compiled.
type qsQ struct {
	clauses []qsClause
	boost   float64
}

func (qsQ) name() string { return "query_string" }

type qsParser struct {
	src    []rune
	pos    int
	simple bool
	depth  int
}

// parseQS parses a query string into a qsQ.
func parseQS(s string, simple bool) (Query, error) {
	p := &qsParser{src: []rune(s), simple: simple}
	q, err := p.parseGroup("", false)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, qsErr(s, "unexpected [%s] at position %d", string(p.src[p.pos]), p.pos)
	}
	return q, nil
}

func qsErr(src, format string, args ...any) error {
	args = append([]any{src}, args...)
	return parsingErr("Failed to parse query ["+"%s"+"]: "+format, args...)
}

func (p *qsParser) skipSpace() {
	for p.pos < len(p.src) && unicode.IsSpace(p.src[p.pos]) {
		p.pos++
	}
}

func (p *qsParser) peekWord(w string) bool {
	r := []rune(w)
	if p.pos+len(r) > len(p.src) || string(p.src[p.pos:p.pos+len(r)]) != w {
		return false
	}
	end := p.pos + len(r)
	return end == len(p.src) || unicode.IsSpace(p.src[end]) || p.src[end] == '(' || p.src[end] == ')'
}

// parseGroup parses clauses until the end or a closing parenthesis. field is
// the field a group applies to (title:(a b)).
func (p *qsParser) parseGroup(field string, inParens bool) (qsQ, error) {
	p.depth++
	if p.depth > maxQueryDepth {
		return qsQ{}, qsErr(string(p.src), "too deeply nested")
	}
	defer func() { p.depth-- }()
	g := qsQ{boost: 1}
	pendingAnd := false
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			if inParens {
				return g, qsErr(string(p.src), "missing closing parenthesis")
			}
			break
		}
		c := p.src[p.pos]
		if c == ')' {
			if !inParens {
				return g, qsErr(string(p.src), "unexpected ')' at position %d", p.pos)
			}
			p.pos++
			break
		}
		// binary operators
		if p.peekWord("AND") || (!p.simple && strings.HasPrefix(string(p.src[p.pos:]), "&&")) {
			if p.peekWord("AND") {
				p.pos += 3
			} else {
				p.pos += 2
			}
			if len(g.clauses) == 0 {
				return g, qsErr(string(p.src), "AND without a clause before it")
			}
			if last := &g.clauses[len(g.clauses)-1]; last.occur == ' ' {
				last.occur = '+'
			}
			pendingAnd = true
			continue
		}
		if p.peekWord("OR") || strings.HasPrefix(string(p.src[p.pos:]), "||") || (p.simple && c == '|') {
			switch {
			case p.peekWord("OR"):
				p.pos += 2
			case c == '|' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '|':
				p.pos += 2
			default:
				p.pos++
			}
			if len(g.clauses) == 0 {
				return g, qsErr(string(p.src), "OR without a clause before it")
			}
			if last := &g.clauses[len(g.clauses)-1]; last.occur == '+' && !pendingAnd {
				last.occur = 'o'
			} else if last.occur == ' ' {
				last.occur = 'o'
			}
			pendingAnd = false
			continue
		}
		occur := byte(' ')
		if pendingAnd {
			occur = '+'
			pendingAnd = false
		}
		if p.peekWord("NOT") {
			p.pos += 3
			occur = '-'
		} else if c == '!' && !p.simple {
			p.pos++
			occur = '-'
		} else if c == '+' {
			p.pos++
			if !p.simple {
				occur = '+'
			}
		} else if c == '-' {
			p.pos++
			occur = '-'
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return g, qsErr(string(p.src), "operator at the end of the query")
		}
		q, err := p.parseClause(field)
		if err != nil {
			return g, err
		}
		g.clauses = append(g.clauses, qsClause{occur: occur, q: q})
	}
	return g, nil
}

func isSpecial(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(`()"^~:[]{}`, r)
}

// readWord reads a term, honouring backslash escapes.
func (p *qsParser) readWord() string {
	var b strings.Builder
	for p.pos < len(p.src) {
		r := p.src[p.pos]
		if r == '\\' && p.pos+1 < len(p.src) {
			b.WriteRune(p.src[p.pos+1])
			p.pos += 2
			continue
		}
		if isSpecial(r) {
			break
		}
		if p.simple && (r == '|' || r == '+') {
			break
		}
		b.WriteRune(r)
		p.pos++
	}
	return b.String()
}

func (p *qsParser) parseClause(field string) (Query, error) {
	src := string(p.src)
	c := p.src[p.pos]
	switch {
	case c == '(':
		p.pos++
		g, err := p.parseGroup(field, true)
		if err != nil {
			return nil, err
		}
		g.boost = p.readBoost(g.boost)
		return g, nil
	case c == '"':
		p.pos++
		var b strings.Builder
		closed := false
		for p.pos < len(p.src) {
			r := p.src[p.pos]
			p.pos++
			if r == '\\' && p.pos < len(p.src) {
				b.WriteRune(p.src[p.pos])
				p.pos++
				continue
			}
			if r == '"' {
				closed = true
				break
			}
			b.WriteRune(r)
		}
		if !closed {
			return nil, qsErr(src, "unterminated phrase")
		}
		slop := 0
		if p.pos < len(p.src) && p.src[p.pos] == '~' {
			p.pos++
			n := p.readWord()
			slop, _ = strconv.Atoi(n)
		}
		q := phraseQ{field: field, text: b.String(), slop: slop, boost: 1}
		q.boost = p.readBoost(1)
		return q, nil
	case c == '[' || c == '{':
		if p.simple {
			break
		}
		return p.parseRange(field)
	}
	if !p.simple && field == "" && p.pos < len(p.src) && strings.ContainsRune("><", c) {
		return nil, qsErr(src, "comparison without a field")
	}
	if !p.simple && (c == '>' || c == '<') {
		op := string(c)
		p.pos++
		if p.pos < len(p.src) && p.src[p.pos] == '=' {
			op += "="
			p.pos++
		}
		v := p.readWord()
		if v == "" {
			return nil, qsErr(src, "comparison %s without a value", op)
		}
		q := rangeQ{field: field, boost: 1}
		switch op {
		case ">":
			q.gt = v
		case ">=":
			q.gte = v
		case "<":
			q.lt = v
		default:
			q.lte = v
		}
		return q, nil
	}
	w := p.readWord()
	if w == "" {
		return nil, qsErr(src, "unexpected [%s] at position %d", string(c), p.pos)
	}
	// field:...
	if !p.simple && p.pos < len(p.src) && p.src[p.pos] == ':' {
		if field != "" {
			return nil, qsErr(src, "nested field [%s] inside field [%s]", w, field)
		}
		p.pos++
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, qsErr(src, "field [%s] without a value", w)
		}
		if w == "*" && p.src[p.pos] == '*' && (p.pos+1 == len(p.src) || isSpecial(p.src[p.pos+1])) {
			p.pos++
			return matchAllQ{boost: p.readBoost(1)}, nil
		}
		if w == "_exists_" {
			f := p.readWord()
			if f == "" {
				return nil, qsErr(src, "_exists_ without a field")
			}
			return existsQ{field: f}, nil
		}
		return p.parseClause(w)
	}
	fuzzy := ""
	if p.pos < len(p.src) && p.src[p.pos] == '~' {
		p.pos++
		fuzzy = "AUTO"
		if n := p.readWord(); n != "" {
			f, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return nil, qsErr(src, "invalid fuzziness [%s]", n)
			}
			if f > 2 {
				f = 2
			}
			fuzzy = strconv.Itoa(int(f))
		}
	}
	boost := p.readBoost(1)
	switch {
	case fuzzy != "":
		return fuzzyQ{field: field, value: w, fuzziness: fuzzy, boost: boost}, nil
	case w == "*" && field == "":
		return matchAllQ{boost: boost}, nil
	case w == "*":
		return existsQ{field: field}, nil
	case strings.ContainsAny(w, "*?"):
		if p.simple {
			if !strings.HasSuffix(w, "*") {
				break
			}
			return prefixQ{field: field, value: strings.TrimSuffix(w, "*"), boost: boost, caseInsensitive: true}, nil
		}
		return wildcardQ{field: field, value: w, boost: boost, caseInsensitive: true}, nil
	}
	return matchQ{field: field, text: w, boost: boost}, nil
}

func (p *qsParser) readBoost(def float64) float64 {
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		p.pos++
		start := p.pos
		for p.pos < len(p.src) && (unicode.IsDigit(p.src[p.pos]) || p.src[p.pos] == '.') {
			p.pos++
		}
		if f, err := strconv.ParseFloat(string(p.src[start:p.pos]), 64); err == nil {
			return f
		}
	}
	return def
}

func (p *qsParser) parseRange(field string) (Query, error) {
	src := string(p.src)
	if field == "" {
		return nil, qsErr(src, "range without a field")
	}
	open := p.src[p.pos]
	p.pos++
	p.skipSpace()
	lo := p.readRangeValue()
	p.skipSpace()
	if !p.peekWord("TO") {
		return nil, qsErr(src, "range must be [a TO b]")
	}
	p.pos += 2
	p.skipSpace()
	hi := p.readRangeValue()
	p.skipSpace()
	if p.pos >= len(p.src) || (p.src[p.pos] != ']' && p.src[p.pos] != '}') {
		return nil, qsErr(src, "unterminated range")
	}
	closeC := p.src[p.pos]
	p.pos++
	q := rangeQ{field: field, boost: 1}
	if lo != "*" {
		if open == '[' {
			q.gte = lo
		} else {
			q.gt = lo
		}
	}
	if hi != "*" {
		if closeC == ']' {
			q.lte = hi
		} else {
			q.lt = hi
		}
	}
	return q, nil
}

func (p *qsParser) readRangeValue() string {
	if p.pos < len(p.src) && p.src[p.pos] == '"' {
		p.pos++
		start := p.pos
		for p.pos < len(p.src) && p.src[p.pos] != '"' {
			p.pos++
		}
		v := string(p.src[start:p.pos])
		if p.pos < len(p.src) {
			p.pos++
		}
		return v
	}
	start := p.pos
	for p.pos < len(p.src) && !unicode.IsSpace(p.src[p.pos]) && p.src[p.pos] != ']' && p.src[p.pos] != '}' {
		p.pos++
	}
	return string(p.src[start:p.pos])
}
