package proxy

import (
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// The access log is one JSON object per line, in slog's JSON shape
// (time, level, msg, then the fields), encoded by hand into the
// connection's scratch buffer: slog's handler cost a tenth of the
// proxy's CPU at full load.

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigit[c>>4], hexDigit[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

const hexDigit = "0123456789abcdef"

// stamp caches the formatted second of the last line (per connection).
type stamp struct {
	sec    int64
	prefix []byte // "2006-01-02T15:04:05"
}

// appendTime appends now in UTC as RFC 3339 with nanoseconds, formatting
// the date part once per second.
func (st *stamp) appendTime(b []byte, now time.Time) []byte {
	now = now.UTC()
	if sec := now.Unix(); sec != st.sec || st.prefix == nil {
		st.sec = sec
		st.prefix = now.AppendFormat(st.prefix[:0], "2006-01-02T15:04:05")
	}
	b = append(b, st.prefix...)
	var frac [10]byte
	frac[0] = '.'
	ns := now.Nanosecond()
	for i := 9; i >= 1; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	b = append(b, frac[:]...)
	return append(b, 'Z')
}

// accessLine appends one access log line.
func accessLine(b []byte, st *stamp, now time.Time, proxyID string, o outcome, d time.Duration, method, path, client string) []byte {
	b = append(b, `{"time":"`...)
	b = st.appendTime(b, now)
	b = append(b, `","level":"INFO","msg":"request","log":"access","proxy":`...)
	b = appendJSONString(b, proxyID)
	b = append(b, `,"deployment":`...)
	b = appendJSONString(b, o.id)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(o.code), 10)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, o.upstream)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, d.Microseconds(), 10)
	b = append(b, `,"client":`...)
	if o.client.IsValid() {
		b = append(o.client.AppendTo(append(b, '"')), '"')
	} else {
		b = appendJSONString(b, client)
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(o.attempts), 10)
	if o.err != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, o.err)
	}
	return append(b, "}\n"...)
}

func (p *Proxy) logAccess(cc *clientConn, o outcome, d time.Duration, method string, path []byte) {
	p.writeAccess(&cc.log, &cc.stamp, o, d, method, path, cc.remote)
}

// writeAccess writes one access log line, built in the connection's
// scratch buffer.
func (p *Proxy) writeAccess(buf *[]byte, st *stamp, o outcome, d time.Duration, method string, path []byte, remote string) {
	*buf = accessLine((*buf)[:0], st, time.Now(), p.cfg.ID, o, d, method, bstr(path), remote)
	_, _ = p.access.Write(*buf)
}

var _ io.Writer = (*BufferedWriter)(nil)
