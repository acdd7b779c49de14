/*
 * select: PromQL series selectors (select.h), parsed and matched as
 * Prometheus does. Written from Prometheus' promql/parser (lex.go,
 * generated_parser.y, parse.go), util/strutil/quote.go, model/labels
 * (matcher.go, regexp.go) and Go's regexp/syntax.
 *
 * The selector, as Prometheus' lexer and grammar take a lone vector selector:
 *
 *   selector = [metric] ["{" [matcher {"," matcher} [","]] "}"]   (one of the two at least)
 *   metric   = [a-zA-Z_:][a-zA-Z0-9_:]*, except the words Prometheus lexes as
 *              other tokens: bool, on, ignoring, group_left, group_right, atan2,
 *              inf and nan, in any case (its other keywords, sum, by, offset ...,
 *              are fine as metric names)
 *   matcher  = label op string | string           (a string alone names the metric)
 *   label    = [a-zA-Z_][a-zA-Z0-9_]* | string
 *   op       = "=" | "!=" | "=~" | "!~"
 *   string   = "..." or '...' with Go's escapes (\a \b \f \n \r \t \v \\, the
 *              string's own quote, \ooo and \xhh bytes, \uhhhh and \Uhhhhhhhh
 *              code points); `...` raw. No raw newline in a quoted string, no
 *              invalid UTF-8 and no U+FFFD in either (Prometheus' lexer takes
 *              utf8.RuneError for an encoding error, even when spelled out).
 *
 * Space, tab, CR, LF and "#" comments to the end of the line may stand
 * between any two tokens. After parsing, as Prometheus' checkAST: with a
 * metric name before the braces no matcher may name __name__ ("metric name
 * must not be set twice"); without one, at least one matcher must fail to
 * match "" ("vector selector must contain at least one non-empty matcher";
 * `{x!="a"}` alone is such an error too, since it matches "").
 *
 * Regular expressions are Go's RE2 syntax (regexp/syntax with Perl flags),
 * anchored at both ends and with `.` matching "\n", as
 * labels.NewFastRegexMatcher compiles them: "^(?s:" + re + ")$". They are
 * parsed here, with Go's rules and error messages, into a small tree, which
 * is then written out as a PCRE2 pattern built only of constructs whose
 * meaning is the same in both (\x{..} for every non-alphanumeric character,
 * explicit classes for \d \s \w and [:posix:], \A \z and (?m:^) (?m:$) for
 * the anchors), so that PCRE2 never sees its own extensions. A value that
 * is not valid UTF-8 is matched as Go's engine reads it: each bad byte is
 * U+FFFD. Where the result can still differ from Go's:
 *   - (?i) does not widen \p{..} classes to other cases (PCRE2's rule);
 *   - Unicode tables are PCRE2's (Unicode 14 in Debian 12's 10.42): the scripts
 *     Go knows and PCRE2 does not (Kawi, Nag_Mundari) are SNAPARC_UNSUPPORTED,
 *     and \P{C} also excludes unassigned code points;
 *   - a pattern beyond PCRE2's compiled-size limit is SNAPARC_UNSUPPORTED;
 *   - PCRE2 backtracks: a match over its limits is retried with its DFA
 *     matcher, and only if that fails too is the answer "could not decide";
 *   - (?<name>re) is accepted, as Go 1.22 and later do (Prometheus built with
 *     an older Go rejects it); a regex holding invalid UTF-8 is rejected, as
 *     Go does (recent Prometheus compares a metacharacter-free one bytewise).
 *
 * For the index planner each regex also yields, when it has one, its finite
 * set of literal values ("GET|PUT") and its literal prefix ("/v1/.*"); the
 * matcher uses them too (bytewise, as Prometheus' own fast paths do).
 */
#include "select.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "bytes.h"

#define RUNE_ERROR 0xFFFDu
#define MAX_RUNE 0x10FFFFu
#define MAX_SET 256          /* Prometheus' maxSetMatches */
#define RX_MAX_DEPTH 1000    /* Go's maxHeight: a deeper tree is an error */
#define NONE ((size_t)-1)

/* ---- UTF-8 as Go's unicode/utf8 decodes it ---- */

/* Decodes the rune at p[0..n) (n > 0). Returns its length, or 1 with
 * *r = RUNE_ERROR for an encoding error (utf8.DecodeRune's rules). */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *r)
{
	uint8_t b0 = p[0], lo = 0x80, hi = 0xBF;
	size_t len;
	uint32_t c;

	if (b0 < 0x80) {
		*r = b0;
		return 1;
	}
	if (b0 >= 0xC2 && b0 <= 0xDF) {
		len = 2, c = b0 & 0x1F;
	} else if (b0 >= 0xE0 && b0 <= 0xEF) {
		len = 3, c = b0 & 0x0F;
		if (b0 == 0xE0)
			lo = 0xA0;
		else if (b0 == 0xED)
			hi = 0x9F;   /* no surrogates */
	} else if (b0 >= 0xF0 && b0 <= 0xF4) {
		len = 4, c = b0 & 0x07;
		if (b0 == 0xF0)
			lo = 0x90;
		else if (b0 == 0xF4)
			hi = 0x8F;
	} else {
		goto bad;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		goto bad;
	c = c << 6 | (p[1] & 0x3Fu);
	for (size_t i = 2; i < len; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			goto bad;
		c = c << 6 | (p[i] & 0x3Fu);
	}
	*r = c;
	return len;
bad:
	*r = RUNE_ERROR;
	return 1;
}

/* Whether the rune at p is an encoding error (not a real U+FFFD). */
static int utf8_bad(const uint8_t *p, size_t n, uint32_t *r, size_t *len)
{
	*len = utf8_decode(p, n, r);
	return *r == RUNE_ERROR && *len == 1;
}

static size_t utf8_encode(uint8_t *out, uint32_t r)
{
	if (r < 0x80) {
		out[0] = (uint8_t)r;
		return 1;
	}
	if (r < 0x800) {
		out[0] = (uint8_t)(0xC0 | r >> 6);
		out[1] = (uint8_t)(0x80 | (r & 0x3F));
		return 2;
	}
	if (r < 0x10000) {
		out[0] = (uint8_t)(0xE0 | r >> 12);
		out[1] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
		out[2] = (uint8_t)(0x80 | (r & 0x3F));
		return 3;
	}
	out[0] = (uint8_t)(0xF0 | r >> 18);
	out[1] = (uint8_t)(0x80 | (r >> 12 & 0x3F));
	out[2] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
	out[3] = (uint8_t)(0x80 | (r & 0x3F));
	return 4;
}

static int utf8_valid(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, len;
	uint32_t r;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (utf8_bad(p + i, n - i, &r, &len))
			return 0;
		i += len;
	}
	return 1;
}

static int is_surrogate(uint32_t r) { return r >= 0xD800 && r <= 0xDFFF; }

/* Appends s as Go's %q would show it, cut after about 60 bytes. */
static void quote_go(struct buf *b, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	char tmp[16];
	size_t i = 0, len;
	uint32_t r;

	buf_put_byte(b, '"');
	while (i < n) {
		if (i >= 60) {
			buf_put(b, "...", 3);
			break;
		}
		if (utf8_bad(p + i, n - i, &r, &len)) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
			buf_put(b, tmp, strlen(tmp));
		} else if (r == '"' || r == '\\') {
			buf_put_byte(b, '\\');
			buf_put_byte(b, (uint8_t)r);
		} else if (r == '\n') {
			buf_put(b, "\\n", 2);
		} else if (r == '\t') {
			buf_put(b, "\\t", 2);
		} else if (r < 0x20 || r == 0x7F) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned)r);
			buf_put(b, tmp, strlen(tmp));
		} else {
			buf_put(b, p + i, len);
		}
		i += len;
	}
	buf_put_byte(b, '"');
}

/* ---- the selector's lexer and parser ---- */

struct parser {
	const char *s;
	size_t len, pos;
	struct err *e;
};

/* A parsed string: its bytes and, for each byte (and one past the end),
 * where in the selector it came from, to place regex errors. */
struct qstr {
	char *p;
	size_t len;
	size_t *src;
	size_t start;   /* offset of the opening quote */
};

static void qstr_free(struct qstr *q)
{
	free(q->p);
	free(q->src);
	q->p = NULL;
	q->src = NULL;
}

/* "column C" or "line L, column C" of byte offset pos; columns count
 * characters (UTF-8 lead bytes) from 1. */
static void where(const char *s, size_t len, size_t pos, char *out, size_t cap)
{
	size_t line = 1, col = 1;

	if (pos > len)
		pos = len;
	for (size_t i = 0; i < pos; i++) {
		if (s[i] == '\n')
			line++, col = 1;
		else if (((uint8_t)s[i] & 0xC0) != 0x80)
			col++;
	}
	if (line > 1)
		snprintf(out, cap, "line %zu, column %zu", line, col);
	else
		snprintf(out, cap, "column %zu", col);
}

static int fail_at(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
	char at[64], what[ERR_MSG_MAX];
	va_list ap;

	where(p->s, p->len, pos, at, sizeof(at));
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(p->e, SNAPARC_INVALID, "%s: %s", at, what);
}

static int nomem(struct parser *p)
{
	return err_set(p->e, SNAPARC_NOMEM, "selector: out of memory");
}

static int is_alpha(int c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_metric_char(int c) { return is_alpha(c) || is_digit(c) || c == ':'; }
static int at_end(const struct parser *p) { return p->pos >= p->len; }
static int peek(const struct parser *p) { return at_end(p) ? -1 : (uint8_t)p->s[p->pos]; }

static void skip_space(struct parser *p)
{
	while (!at_end(p)) {
		char c = p->s[p->pos];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			p->pos++;
		} else if (c == '#') {
			while (!at_end(p) && p->s[p->pos] != '\n' && p->s[p->pos] != '\r')
				p->pos++;
		} else {
			break;
		}
	}
}

/* What stands at pos, for "found ..." in messages. */
static void describe(const struct parser *p, size_t pos, char *out, size_t cap)
{
	const uint8_t *s = (const uint8_t *)p->s;
	size_t end = pos, len;
	uint32_t r;

	if (pos >= p->len) {
		snprintf(out, cap, "end of input");
		return;
	}
	if (is_alpha(s[pos])) {
		while (end < p->len && end - pos < 40 && is_metric_char(s[end]))
			end++;
		snprintf(out, cap, "identifier \"%.*s\"", (int)(end - pos), p->s + pos);
	} else if (s[pos] == '"' || s[pos] == '\'' || s[pos] == '`') {
		snprintf(out, cap, "string");
	} else if (s[pos] > 0x20 && s[pos] < 0x7F) {
		snprintf(out, cap, "'%c'", s[pos]);
	} else if (utf8_bad(s + pos, p->len - pos, &r, &len)) {
		snprintf(out, cap, "byte 0x%02x", s[pos]);
	} else {
		snprintf(out, cap, "character U+%04X", (unsigned)r);
	}
}

static int expected(struct parser *p, const char *what)
{
	char found[96];

	describe(p, p->pos, found, sizeof(found));
	return fail_at(p, p->pos, "expected %s, found %s", what, found);
}

/* Go's %#U: U+0067 'g', or U+000A for what does not print. */
static void rune_name(uint32_t r, char *out, size_t cap)
{
	if (r >= 0x20 && r < 0x7F)
		snprintf(out, cap, "U+%04X '%c'", (unsigned)r, (char)r);
	else
		snprintf(out, cap, "U+%04X", (unsigned)r);
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 16;
}

/*
 * One escape in a quoted string, at p->pos (the backslash): checks it as
 * lexEscape does and decodes it as strutil.Unquote does, appending to q.
 */
static int lex_escape(struct parser *p, char quote, struct qstr *q)
{
	size_t at = p->pos, digits = 0;
	uint32_t base = 0, max = 0, x = 0;
	char name[40];
	int c;

	p->pos++;
	c = peek(p);
	switch (c) {
	case 'a': x = '\a'; break;
	case 'b': x = '\b'; break;
	case 'f': x = '\f'; break;
	case 'n': x = '\n'; break;
	case 'r': x = '\r'; break;
	case 't': x = '\t'; break;
	case 'v': x = '\v'; break;
	case '\\': x = '\\'; break;
	case -1:
		return fail_at(p, at, "escape sequence not terminated");
	default:
		if (c == quote) {
			x = (uint32_t)c;
		} else if (c >= '0' && c <= '7') {
			digits = 3, base = 8, max = 255;
		} else if (c == 'x') {
			digits = 2, base = 16, max = 255;
		} else if (c == 'u') {
			digits = 4, base = 16, max = MAX_RUNE;
		} else if (c == 'U') {
			digits = 8, base = 16, max = MAX_RUNE;
		} else {
			uint32_t r;

			utf8_decode((const uint8_t *)p->s + p->pos, p->len - p->pos, &r);
			rune_name(r, name, sizeof(name));
			return fail_at(p, at, "unknown escape sequence %s", name);
		}
	}
	if (!digits) {
		p->pos++;
		q->src[q->len] = at;
		q->p[q->len++] = (char)x;
		return 0;
	}
	if (base == 16)
		p->pos++;   /* past x, u or U */
	for (size_t i = 0; i < digits; i++) {
		int d;

		c = peek(p);
		d = c < 0 ? 16 : hex_value(c);
		if (d >= (int)base) {
			uint32_t r = 0;

			if (c < 0)
				return fail_at(p, at, "escape sequence not terminated");
			utf8_decode((const uint8_t *)p->s + p->pos, p->len - p->pos, &r);
			rune_name(r, name, sizeof(name));
			return fail_at(p, at, "illegal character %s in escape sequence", name);
		}
		x = x * base + (uint32_t)d;
		p->pos++;
	}
	if (x > max || is_surrogate(x))
		return fail_at(p, at, "escape sequence is an invalid Unicode code point");
	if (max == 255) {   /* \ooo and \xhh are bytes, maybe not UTF-8 */
		q->src[q->len] = at;
		q->p[q->len++] = (char)x;
	} else {
		size_t n = utf8_encode((uint8_t *)q->p + q->len, x);

		for (size_t i = 0; i < n; i++)
			q->src[q->len + i] = at;
		q->len += n;
	}
	return 0;
}

/* A string token at p->pos (a quote character), unquoted into q. */
static int lex_string(struct parser *p, struct qstr *q)
{
	char quote = p->s[p->pos];
	size_t room = p->len - p->pos + 1;
	int rc;

	q->start = p->pos;
	q->len = 0;
	q->p = malloc(room);
	q->src = malloc(room * sizeof(*q->src));
	if (!q->p || !q->src) {
		qstr_free(q);
		return nomem(p);
	}
	p->pos++;
	for (;;) {
		uint32_t r;
		size_t len;
		int c = peek(p);

		if (c < 0 || (c == '\n' && quote != '`')) {
			p->pos = q->start;
			rc = fail_at(p, q->start, quote == '`' ? "unterminated raw string" : "unterminated quoted string");
			goto fail;
		}
		if (c == quote) {
			q->src[q->len] = p->pos;
			q->p[q->len] = '\0';
			p->pos++;
			return 0;
		}
		if (c == '\\' && quote != '`') {
			if ((rc = lex_escape(p, quote, q)) != 0)
				goto fail;
			continue;
		}
		len = utf8_decode((const uint8_t *)p->s + p->pos, p->len - p->pos, &r);
		if (r == RUNE_ERROR) {
			rc = fail_at(p, p->pos, "invalid UTF-8 rune");
			goto fail;
		}
		for (size_t i = 0; i < len; i++) {
			q->src[q->len] = p->pos;
			q->p[q->len++] = p->s[p->pos++];
		}
	}
fail:
	qstr_free(q);
	return rc;
}

/* ---- Go regular expressions: syntax tree ---- */

enum rkind {
	RK_LIT, RK_CLASS, RK_ANY, RK_ANYNL, RK_BOT, RK_EOT, RK_BOL, RK_EOL, RK_WB, RK_NWB,
	RK_GROUP, RK_CONCAT, RK_ALT, RK_REPEAT,
};

#define RXF_FOLD 1      /* (?i) */
#define RXF_ONELINE 2   /* not (?m): ^ and $ are the text's ends */
#define RXF_DOTNL 4     /* (?s) */
#define RXF_UNGREEDY 8  /* (?U): no effect on whether a whole value matches */

struct rrange {
	uint32_t lo, hi;
};

struct rprop {
	const char *name;   /* a Unicode category or script, from the tables below */
	int negated;
};

struct rnode {
	enum rkind kind;
	int fold;                    /* LIT, CLASS */
	int negated;                 /* CLASS */
	int counted;                 /* REPEAT written {n,m}: Go bounds those */
	uint32_t rune;               /* LIT */
	int min, max;                /* REPEAT; max -1: unbounded */
	struct rrange *ranges;       /* CLASS */
	size_t nranges, cap_ranges;
	struct rprop *props;         /* CLASS */
	size_t nprops, cap_props;
	struct rnode **sub;          /* GROUP, CONCAT, ALT, REPEAT */
	size_t nsub, cap_sub;
	struct rnode *all_next;
};

struct rx {
	const char *s;
	size_t len;
	struct rnode *all;   /* every node, for freeing */
	int nomem;
	const char *code;    /* Go's error code text, NULL while none */
	size_t frag, frag_end;
};

static struct rnode *rx_node(struct rx *x, enum rkind kind)
{
	struct rnode *n = calloc(1, sizeof(*n));

	if (!n) {
		x->nomem = 1;
		return NULL;
	}
	n->kind = kind;
	n->all_next = x->all;
	x->all = n;
	return n;
}

static void rx_free_all(struct rx *x)
{
	struct rnode *n = x->all, *next;

	for (; n; n = next) {
		next = n->all_next;
		free(n->ranges);
		free(n->props);
		free(n->sub);
		free(n);
	}
	x->all = NULL;
}

static int rx_add_sub(struct rx *x, struct rnode *n, struct rnode *sub)
{
	if (n->nsub == n->cap_sub) {
		size_t cap = n->cap_sub ? 2 * n->cap_sub : 4;
		struct rnode **p = realloc(n->sub, cap * sizeof(*p));

		if (!p) {
			x->nomem = 1;
			return -1;
		}
		n->sub = p;
		n->cap_sub = cap;
	}
	n->sub[n->nsub++] = sub;
	return 0;
}

static int rx_add_range(struct rx *x, struct rnode *n, uint32_t lo, uint32_t hi)
{
	if (n->nranges == n->cap_ranges) {
		size_t cap = n->cap_ranges ? 2 * n->cap_ranges : 8;
		struct rrange *p = realloc(n->ranges, cap * sizeof(*p));

		if (!p) {
			x->nomem = 1;
			return -1;
		}
		n->ranges = p;
		n->cap_ranges = cap;
	}
	n->ranges[n->nranges].lo = lo;
	n->ranges[n->nranges].hi = hi;
	n->nranges++;
	return 0;
}

static int rx_add_prop(struct rx *x, struct rnode *n, const char *name, int negated)
{
	if (n->nprops == n->cap_props) {
		size_t cap = n->cap_props ? 2 * n->cap_props : 4;
		struct rprop *p = realloc(n->props, cap * sizeof(*p));

		if (!p) {
			x->nomem = 1;
			return -1;
		}
		n->props = p;
		n->cap_props = cap;
	}
	n->props[n->nprops].name = name;
	n->props[n->nprops].negated = negated;
	n->nprops++;
	return 0;
}

/* Records the first error: Go's code and the fragment [frag, end) it quotes. */
static struct rnode *rx_fail(struct rx *x, const char *code, size_t frag, size_t end)
{
	if (!x->code && !x->nomem) {
		x->code = code;
		x->frag = frag;
		x->frag_end = end > x->len ? x->len : end;
	}
	return NULL;
}

static const char ERR_INVALID_CHAR_RANGE[] = "invalid character class range";
static const char ERR_INVALID_ESCAPE[] = "invalid escape sequence";
static const char ERR_INVALID_NAMED_CAPTURE[] = "invalid named capture";
static const char ERR_INVALID_PERL_OP[] = "invalid or unsupported Perl syntax";
static const char ERR_INVALID_REPEAT_OP[] = "invalid nested repetition operator";
static const char ERR_INVALID_REPEAT_SIZE[] = "invalid repeat count";
static const char ERR_INVALID_UTF8[] = "invalid UTF-8";
static const char ERR_MISSING_BRACKET[] = "missing closing ]";
static const char ERR_MISSING_PAREN[] = "missing closing )";
static const char ERR_MISSING_REPEAT_ARG[] = "missing argument to repetition operator";
static const char ERR_TRAILING_BACKSLASH[] = "trailing backslash at end of expression";
static const char ERR_UNEXPECTED_PAREN[] = "unexpected )";
static const char ERR_NESTING_DEPTH[] = "expression nests too deeply";

/* Go's nextRune: the rune at *pos, or an ErrInvalidUTF8 error quoting the
 * rest of the expression. At the end it gives RUNE_ERROR and stays put, as
 * utf8.DecodeRuneInString("") does. */
static int rx_next_rune(struct rx *x, size_t *pos, uint32_t *r)
{
	size_t len;

	if (*pos >= x->len) {
		*r = RUNE_ERROR;
		return 0;
	}
	if (utf8_bad((const uint8_t *)x->s + *pos, x->len - *pos, r, &len)) {
		rx_fail(x, ERR_INVALID_UTF8, *pos, x->len);
		return -1;
	}
	*pos += len;
	return 0;
}

static int rx_check_utf8(struct rx *x, size_t from, size_t to)
{
	size_t i = from, len;
	uint32_t r;

	while (i < to) {
		if (utf8_bad((const uint8_t *)x->s + i, to - i, &r, &len)) {
			rx_fail(x, ERR_INVALID_UTF8, i, x->len);
			return -1;
		}
		i += len;
	}
	return 0;
}

static int is_alnum(uint32_t c) { return c < 0x80 && (is_digit((int)c) || (c | 0x20) - 'a' < 26); }

/* Go's parseEscape: a single-character escape at *pos (a backslash). */
static int rx_escape(struct rx *x, size_t *pos, uint32_t *out)
{
	size_t start = *pos, t = *pos + 1;
	uint32_t c, r = 0;

	if (t >= x->len) {
		rx_fail(x, ERR_TRAILING_BACKSLASH, start, start);
		return -1;
	}
	if (rx_next_rune(x, &t, &c))
		return -1;
	switch (c) {
	case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
		/* A lone non-zero digit is a backreference, which Go does not have. */
		if (c != '0' && (t >= x->len || x->s[t] < '0' || x->s[t] > '7'))
			break;
		r = c - '0';
		for (int i = 1; i < 3 && t < x->len && x->s[t] >= '0' && x->s[t] <= '7'; i++)
			r = r * 8 + (uint32_t)(x->s[t++] - '0');
		*out = r, *pos = t;
		return 0;
	case 'x': {
		int nhex = 0, hx, lx;

		if (t >= x->len)
			break;
		if (rx_next_rune(x, &t, &c))
			return -1;
		if (c == '{') {
			for (;;) {
				if (t >= x->len)
					goto bad;
				if (rx_next_rune(x, &t, &c))
					return -1;
				if (c == '}')
					break;
				if (c > 0x7F || (hx = hex_value((int)c)) > 15)
					goto bad;
				r = r * 16 + (uint32_t)hx;
				if (r > MAX_RUNE)
					goto bad;
				nhex++;
			}
			if (nhex == 0)
				goto bad;
			*out = r, *pos = t;
			return 0;
		}
		hx = c > 0x7F ? 16 : hex_value((int)c);
		if (rx_next_rune(x, &t, &c))
			return -1;
		lx = c > 0x7F ? 16 : hex_value((int)c);
		if (hx > 15 || lx > 15)
			break;
		*out = (uint32_t)(hx * 16 + lx), *pos = t;
		return 0;
	}
	case 'a': *out = '\a', *pos = t; return 0;
	case 'f': *out = '\f', *pos = t; return 0;
	case 'n': *out = '\n', *pos = t; return 0;
	case 'r': *out = '\r', *pos = t; return 0;
	case 't': *out = '\t', *pos = t; return 0;
	case 'v': *out = '\v', *pos = t; return 0;
	default:
		/* Escaped punctuation is itself; escaped letters other than the
		 * above are errors (Go is stricter than PCRE here). */
		if (c < 0x80 && !is_alnum(c)) {
			*out = c, *pos = t;
			return 0;
		}
	}
bad:
	rx_fail(x, ERR_INVALID_ESCAPE, start, t);
	return -1;
}

/* ---- character classes ---- */

struct group {
	const char *name;
	int negated;
	const struct rrange *ranges;
	size_t n;
};

static const struct rrange R_DIGIT[] = {{'0', '9'}};
static const struct rrange R_SPACE_PERL[] = {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
static const struct rrange R_WORD[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
static const struct rrange R_ALNUM[] = {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}};
static const struct rrange R_ALPHA[] = {{'A', 'Z'}, {'a', 'z'}};
static const struct rrange R_ASCII[] = {{0, 0x7F}};
static const struct rrange R_BLANK[] = {{'\t', '\t'}, {' ', ' '}};
static const struct rrange R_CNTRL[] = {{0, 0x1F}, {0x7F, 0x7F}};
static const struct rrange R_GRAPH[] = {{'!', '~'}};
static const struct rrange R_LOWER[] = {{'a', 'z'}};
static const struct rrange R_PRINT[] = {{' ', '~'}};
static const struct rrange R_PUNCT[] = {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}};
static const struct rrange R_SPACE[] = {{'\t', '\r'}, {' ', ' '}};
static const struct rrange R_UPPER[] = {{'A', 'Z'}};
static const struct rrange R_XDIGIT[] = {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};

#define G(name, neg, r) {name, neg, r, sizeof(r) / sizeof(r[0])}
static const struct group PERL_GROUPS[] = {
	G("\\d", 0, R_DIGIT), G("\\D", 1, R_DIGIT),
	G("\\s", 0, R_SPACE_PERL), G("\\S", 1, R_SPACE_PERL),
	G("\\w", 0, R_WORD), G("\\W", 1, R_WORD),
};
static const struct group POSIX_GROUPS[] = {
	G("[:alnum:]", 0, R_ALNUM), G("[:^alnum:]", 1, R_ALNUM),
	G("[:alpha:]", 0, R_ALPHA), G("[:^alpha:]", 1, R_ALPHA),
	G("[:ascii:]", 0, R_ASCII), G("[:^ascii:]", 1, R_ASCII),
	G("[:blank:]", 0, R_BLANK), G("[:^blank:]", 1, R_BLANK),
	G("[:cntrl:]", 0, R_CNTRL), G("[:^cntrl:]", 1, R_CNTRL),
	G("[:digit:]", 0, R_DIGIT), G("[:^digit:]", 1, R_DIGIT),
	G("[:graph:]", 0, R_GRAPH), G("[:^graph:]", 1, R_GRAPH),
	G("[:lower:]", 0, R_LOWER), G("[:^lower:]", 1, R_LOWER),
	G("[:print:]", 0, R_PRINT), G("[:^print:]", 1, R_PRINT),
	G("[:punct:]", 0, R_PUNCT), G("[:^punct:]", 1, R_PUNCT),
	G("[:space:]", 0, R_SPACE), G("[:^space:]", 1, R_SPACE),
	G("[:upper:]", 0, R_UPPER), G("[:^upper:]", 1, R_UPPER),
	G("[:word:]", 0, R_WORD), G("[:^word:]", 1, R_WORD),
	G("[:xdigit:]", 0, R_XDIGIT), G("[:^xdigit:]", 1, R_XDIGIT),
};
#undef G

/* Go's unicode.Categories and unicode.Scripts (Go 1.21+, Unicode 15), which
 * are what regexp's \p{...} accepts besides "Any"; sorted for bsearch. */
static const char *const CATEGORIES[] = {
	"C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me",
	"Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S",
	"Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
};
static const char *const SCRIPTS[] = {
	"Adlam", "Ahom", "Anatolian_Hieroglyphs", "Arabic", "Armenian", "Avestan",
	"Balinese", "Bamum", "Bassa_Vah", "Batak", "Bengali", "Bhaiksuki", "Bopomofo",
	"Brahmi", "Braille", "Buginese", "Buhid", "Canadian_Aboriginal", "Carian",
	"Caucasian_Albanian", "Chakma", "Cham", "Cherokee", "Chorasmian", "Common",
	"Coptic", "Cuneiform", "Cypriot", "Cypro_Minoan", "Cyrillic", "Deseret",
	"Devanagari", "Dives_Akuru", "Dogra", "Duployan", "Egyptian_Hieroglyphs",
	"Elbasan", "Elymaic", "Ethiopic", "Georgian", "Glagolitic", "Gothic", "Grantha",
	"Greek", "Gujarati", "Gunjala_Gondi", "Gurmukhi", "Han", "Hangul",
	"Hanifi_Rohingya", "Hanunoo", "Hatran", "Hebrew", "Hiragana", "Imperial_Aramaic",
	"Inherited", "Inscriptional_Pahlavi", "Inscriptional_Parthian", "Javanese",
	"Kaithi", "Kannada", "Katakana", "Kawi", "Kayah_Li", "Kharoshthi",
	"Khitan_Small_Script", "Khmer", "Khojki", "Khudawadi", "Lao", "Latin", "Lepcha",
	"Limbu", "Linear_A", "Linear_B", "Lisu", "Lycian", "Lydian", "Mahajani",
	"Makasar", "Malayalam", "Mandaic", "Manichaean", "Marchen", "Masaram_Gondi",
	"Medefaidrin", "Meetei_Mayek", "Mende_Kikakui", "Meroitic_Cursive",
	"Meroitic_Hieroglyphs", "Miao", "Modi", "Mongolian", "Mro", "Multani", "Myanmar",
	"Nabataean", "Nag_Mundari", "Nandinagari", "New_Tai_Lue", "Newa", "Nko", "Nushu",
	"Nyiakeng_Puachue_Hmong", "Ogham", "Ol_Chiki", "Old_Hungarian", "Old_Italic",
	"Old_North_Arabian", "Old_Permic", "Old_Persian", "Old_Sogdian",
	"Old_South_Arabian", "Old_Turkic", "Old_Uyghur", "Oriya", "Osage", "Osmanya",
	"Pahawh_Hmong", "Palmyrene", "Pau_Cin_Hau", "Phags_Pa", "Phoenician",
	"Psalter_Pahlavi", "Rejang", "Runic", "Samaritan", "Saurashtra", "Sharada",
	"Shavian", "Siddham", "SignWriting", "Sinhala", "Sogdian", "Sora_Sompeng",
	"Soyombo", "Sundanese", "Syloti_Nagri", "Syriac", "Tagalog", "Tagbanwa",
	"Tai_Le", "Tai_Tham", "Tai_Viet", "Takri", "Tamil", "Tangsa", "Tangut", "Telugu",
	"Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto", "Ugaritic", "Vai",
	"Vithkuqi", "Wancho", "Warang_Citi", "Yezidi", "Yi", "Zanabazar_Square",
};

/* The table entry equal to name[0..n) (which may hold NUL bytes), or NULL. */
static const char *lookup_name(const char *const *table, size_t count, const char *name, size_t n)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, len = strlen(table[mid]);
		int c = memcmp(table[mid], name, len < n ? len : n);

		if (c == 0)
			c = len < n ? -1 : len > n;
		if (c == 0)
			return table[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Adds group g to class n as Go's appendGroup does. A positive group is
 * added as is (PCRE2 folds it when the class is (?i), as Go would). A
 * negated one is the complement of the group, folded first under (?i): the
 * groups are ASCII, whose case partners are ASCII letters plus U+017F (s)
 * and U+212A (k), so the complement is computed here, closed under folding.
 */
static int rx_add_group(struct rx *x, struct rnode *n, const struct group *g, int fold)
{
	uint8_t in[128] = {0};
	uint32_t c, from;

	if (!g->negated) {
		for (size_t i = 0; i < g->n; i++)
			if (rx_add_range(x, n, g->ranges[i].lo, g->ranges[i].hi))
				return -1;
		return 0;
	}
	for (size_t i = 0; i < g->n; i++)
		for (c = g->ranges[i].lo; c <= g->ranges[i].hi && c < 128; c++)
			in[c] = 1;
	if (fold)
		for (c = 'A'; c <= 'Z'; c++)
			if (in[c] || in[c | 0x20])
				in[c] = in[c | 0x20] = 1;
	for (c = 0; c < 128; c = from) {
		for (; c < 128 && in[c]; c++)
			;
		for (from = c; from < 128 && !in[from]; from++)
			;
		if (c < 128 && rx_add_range(x, n, c, from == 128 ? 0x7F : from - 1))
			return -1;
	}
	if (!fold || (!in['s'] && !in['k']))
		return rx_add_range(x, n, 0x80, MAX_RUNE);
	if (in['s'] && in['k'])
		return rx_add_range(x, n, 0x80, 0x17E) || rx_add_range(x, n, 0x180, 0x2129) ||
		       rx_add_range(x, n, 0x212B, MAX_RUNE);
	if (in['s'])
		return rx_add_range(x, n, 0x80, 0x17E) || rx_add_range(x, n, 0x180, MAX_RUNE);
	return rx_add_range(x, n, 0x80, 0x2129) || rx_add_range(x, n, 0x212B, MAX_RUNE);
}

/* A \d-style escape at *pos: 1 (added to n), 0 (not one), -1 (error). */
static int rx_perl_class(struct rx *x, size_t *pos, struct rnode *n, int fold)
{
	if (x->len - *pos < 2 || x->s[*pos] != '\\')
		return 0;
	for (size_t i = 0; i < sizeof(PERL_GROUPS) / sizeof(PERL_GROUPS[0]); i++) {
		if (memcmp(x->s + *pos, PERL_GROUPS[i].name, 2) == 0) {
			if (rx_add_group(x, n, &PERL_GROUPS[i], fold))
				return -1;
			*pos += 2;
			return 1;
		}
	}
	return 0;
}

/* Go's parseUnicodeClass: \pN, \p{Name}, \PN, \P{^Name} at *pos. */
static int rx_unicode_class(struct rx *x, size_t *pos, struct rnode *n)
{
	size_t start = *pos, t = *pos + 2, name, name_end, seq_end;
	int negated;
	uint32_t c;
	const char *known;

	if (x->len - *pos < 2 || x->s[*pos] != '\\' || (x->s[*pos + 1] != 'p' && x->s[*pos + 1] != 'P'))
		return 0;
	negated = x->s[*pos + 1] == 'P';
	if (rx_next_rune(x, &t, &c))
		return -1;
	if (c != '{') {
		name = start + 2, name_end = seq_end = t;
	} else {
		const char *close = memchr(x->s + start, '}', x->len - start);

		if (!close) {
			if (rx_check_utf8(x, start, x->len))
				return -1;
			rx_fail(x, ERR_INVALID_CHAR_RANGE, start, x->len);
			return -1;
		}
		name = start + 3;
		name_end = (size_t)(close - x->s);
		seq_end = name_end + 1;
		if (rx_check_utf8(x, name, name_end))
			return -1;
	}
	if (name < name_end && x->s[name] == '^')
		negated = !negated, name++;
	if (name_end - name == 3 && memcmp(x->s + name, "Any", 3) == 0) {
		if (!negated && rx_add_range(x, n, 0, MAX_RUNE))
			return -1;
		*pos = seq_end;
		return 1;
	}
	known = lookup_name(CATEGORIES, sizeof(CATEGORIES) / sizeof(CATEGORIES[0]), x->s + name, name_end - name);
	if (!known)
		known = lookup_name(SCRIPTS, sizeof(SCRIPTS) / sizeof(SCRIPTS[0]), x->s + name, name_end - name);
	if (!known) {
		rx_fail(x, ERR_INVALID_CHAR_RANGE, start, seq_end);
		return -1;
	}
	if (rx_add_prop(x, n, known, negated))
		return -1;
	*pos = seq_end;
	return 1;
}

/* Go's parseClass: a bracketed class at *pos ('['). */
static struct rnode *rx_class(struct rx *x, size_t *pos, int flags)
{
	size_t start = *pos, t = *pos + 1;
	int first = 1, fold = (flags & RXF_FOLD) != 0, rc;
	struct rnode *n = rx_node(x, RK_CLASS);

	if (!n)
		return NULL;
	n->fold = fold;
	if (t < x->len && x->s[t] == '^')
		n->negated = 1, t++;
	while (t >= x->len || x->s[t] != ']' || first) {
		size_t rng = t;
		uint32_t lo, hi;

		first = 0;
		/* [:alpha:]: the ":]" is looked for to the end, as Go does. */
		if (x->len - t > 2 && x->s[t] == '[' && x->s[t + 1] == ':') {
			const char *close = NULL;

			for (size_t i = t + 2; i + 1 < x->len; i++)
				if (x->s[i] == ':' && x->s[i + 1] == ']') {
					close = x->s + i;
					break;
				}
			if (close) {
				size_t end = (size_t)(close - x->s) + 2, i;

				for (i = 0; i < sizeof(POSIX_GROUPS) / sizeof(POSIX_GROUPS[0]); i++)
					if (strlen(POSIX_GROUPS[i].name) == end - t &&
					    memcmp(POSIX_GROUPS[i].name, x->s + t, end - t) == 0)
						break;
				if (i == sizeof(POSIX_GROUPS) / sizeof(POSIX_GROUPS[0]))
					return rx_fail(x, ERR_INVALID_CHAR_RANGE, t, end);
				if (rx_add_group(x, n, &POSIX_GROUPS[i], fold))
					return NULL;
				t = end;
				continue;
			}
		}
		if ((rc = rx_unicode_class(x, &t, n)) != 0) {
			if (rc < 0)
				return NULL;
			continue;
		}
		if ((rc = rx_perl_class(x, &t, n, fold)) != 0) {
			if (rc < 0)
				return NULL;
			continue;
		}
		if (t >= x->len)
			return rx_fail(x, ERR_MISSING_BRACKET, start, x->len);
		if (x->s[t] == '\\' ? rx_escape(x, &t, &lo) : rx_next_rune(x, &t, &lo))
			return NULL;
		hi = lo;
		/* [a-] is a and -, so a range needs something other than ] after -. */
		if (x->len - t >= 2 && x->s[t] == '-' && x->s[t + 1] != ']') {
			t++;
			if (t >= x->len)
				return rx_fail(x, ERR_MISSING_BRACKET, start, x->len);
			if (x->s[t] == '\\' ? rx_escape(x, &t, &hi) : rx_next_rune(x, &t, &hi))
				return NULL;
			if (hi < lo)
				return rx_fail(x, ERR_INVALID_CHAR_RANGE, rng, t);
		}
		if (rx_add_range(x, n, lo, hi))
			return NULL;
	}
	*pos = t + 1;
	return n;
}

/* ---- Go regular expressions: the parser ---- */

static struct rnode *rx_alt(struct rx *x, size_t *pos, int flags, int depth);

/* Go's parseInt for repeat counts: no sign, no leading zeros; -1 when too big. */
static int rx_int(const struct rx *x, size_t *t, long *out)
{
	size_t s = *t;
	long n = 0;

	if (s >= x->len || !is_digit(x->s[s]))
		return 0;
	if (x->len - s >= 2 && x->s[s] == '0' && is_digit(x->s[s + 1]))
		return 0;
	for (; s < x->len && is_digit(x->s[s]); s++) {
		if (n >= 100000000)
			n = -1;
		else if (n >= 0)
			n = n * 10 + (x->s[s] - '0');
	}
	*out = n;
	*t = s;
	return 1;
}

/* Go's parseRepeat: {n}, {n,} or {n,m} at *t; 0 when it is not one (then {
 * is a literal). */
static int rx_repeat_counts(const struct rx *x, size_t *t, long *min, long *max)
{
	size_t s = *t + 1;

	if (!rx_int(x, &s, min) || s >= x->len)
		return 0;
	if (x->s[s] != ',') {
		*max = *min;
	} else {
		s++;
		if (s >= x->len)
			return 0;
		if (x->s[s] == '}') {
			*max = -1;
		} else {
			if (!rx_int(x, &s, max))
				return 0;
			if (*max < 0)
				*min = -1;   /* too big */
		}
	}
	if (s >= x->len || x->s[s] != '}')
		return 0;
	*t = s + 1;
	return 1;
}

/* Go's repeatIsValid: nested {n,m} may not multiply past n copies. */
static int repeat_is_valid(const struct rnode *re, long n)
{
	if (re->kind == RK_REPEAT && re->counted) {
		long m = re->max;

		if (m == 0)
			return 1;
		if (m < 0)
			m = re->min;
		if (m > n)
			return 0;
		if (m > 0)
			n /= m;
	}
	for (size_t i = 0; i < re->nsub; i++)
		if (!repeat_is_valid(re->sub[i], n))
			return 0;
	return 1;
}

/* A group after "(" or "(?:" or a named capture's ">", at *pos. */
static struct rnode *rx_group(struct rx *x, size_t *pos, int flags, int depth)
{
	struct rnode *g = rx_node(x, RK_GROUP), *body;

	if (!g)
		return NULL;
	/* Go stops at a tree 1000 deep: 999 groups around a literal pass. */
	if (depth + 1 >= RX_MAX_DEPTH)
		return rx_fail(x, ERR_NESTING_DEPTH, 0, x->len);
	body = rx_alt(x, pos, flags, depth + 1);
	if (!body)
		return NULL;
	if (*pos >= x->len)
		return rx_fail(x, ERR_MISSING_PAREN, 0, x->len);
	(*pos)++;
	if (rx_add_sub(x, g, body))
		return NULL;
	return g;
}

static int is_capture_name(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_' && !is_alnum((uint8_t)s[i]))
			return 0;
	return 1;
}

/*
 * "(?" at *pos: a named capture, a flags group "(?i:re)", or flags for the
 * rest of the current group "(?i)" (then *out stays NULL and *flags
 * changes). Go's parsePerlFlags.
 */
static int rx_perl_group(struct rx *x, size_t *pos, int *flags, int depth, struct rnode **out)
{
	size_t start = *pos, t = *pos + 2;
	int nf = *flags, negate = 0, saw = 0;
	size_t name_at = 0;
	uint32_t c;

	*out = NULL;
	if (x->len - start > 4 && x->s[start + 2] == 'P' && x->s[start + 3] == '<')
		name_at = start + 4;
	else if (x->len - start > 3 && x->s[start + 2] == '<')
		name_at = start + 3;
	if (name_at) {
		const char *gt = memchr(x->s + start, '>', x->len - start);
		size_t end;

		if (!gt) {
			if (rx_check_utf8(x, start, x->len) == 0)
				rx_fail(x, ERR_INVALID_NAMED_CAPTURE, start, x->len);
			return -1;
		}
		end = (size_t)(gt - x->s);
		if (rx_check_utf8(x, name_at, end))
			return -1;
		if (!is_capture_name(x->s + name_at, end - name_at)) {
			rx_fail(x, ERR_INVALID_NAMED_CAPTURE, start, end + 1);
			return -1;
		}
		*pos = end + 1;
		*out = rx_group(x, pos, *flags, depth);
		return *out ? 0 : -1;
	}
	while (t < x->len) {
		if (rx_next_rune(x, &t, &c))
			return -1;
		switch (c) {
		case 'i':
			nf = negate ? nf & ~RXF_FOLD : nf | RXF_FOLD;
			saw = 1;
			continue;
		case 'm':
			nf = negate ? nf | RXF_ONELINE : nf & ~RXF_ONELINE;
			saw = 1;
			continue;
		case 's':
			nf = negate ? nf & ~RXF_DOTNL : nf | RXF_DOTNL;
			saw = 1;
			continue;
		case 'U':
			nf = negate ? nf & ~RXF_UNGREEDY : nf | RXF_UNGREEDY;
			saw = 1;
			continue;
		case '-':
			if (negate)
				break;
			negate = 1, saw = 0;
			continue;
		case ':':
		case ')':
			if (negate && !saw)
				break;
			*pos = t;
			if (c == ')') {
				*flags = nf;
				return 0;
			}
			*out = rx_group(x, pos, nf, depth);
			return *out ? 0 : -1;
		default:
			break;
		}
		break;
	}
	rx_fail(x, ERR_INVALID_PERL_OP, start, t);
	return -1;
}

static struct rnode *rx_lit(struct rx *x, uint32_t r, int flags)
{
	struct rnode *n = rx_node(x, RK_LIT);

	if (n) {
		n->rune = r;
		n->fold = (flags & RXF_FOLD) != 0;
	}
	return n;
}

/* A concatenation, up to "|", ")" or the end. *flags may change ("(?i)"). */
static struct rnode *rx_concat(struct rx *x, size_t *pos, int *flags, int depth)
{
	struct rnode *cat = rx_node(x, RK_CONCAT), *item, *last = NULL;
	size_t prev_repeat = NONE;

	if (!cat)
		return NULL;
	while (*pos < x->len && x->s[*pos] != '|' && x->s[*pos] != ')') {
		size_t tok = *pos;
		uint32_t r;
		int rc;

		item = NULL;
		switch (x->s[tok]) {
		case '(':
			if (x->len - tok >= 2 && x->s[tok + 1] == '?') {
				if (rx_perl_group(x, pos, flags, depth, &item))
					return NULL;
			} else {
				(*pos)++;
				if (!(item = rx_group(x, pos, *flags, depth)))
					return NULL;
			}
			break;
		case '^':
			(*pos)++;
			item = rx_node(x, *flags & RXF_ONELINE ? RK_BOT : RK_BOL);
			break;
		case '$':
			(*pos)++;
			item = rx_node(x, *flags & RXF_ONELINE ? RK_EOT : RK_EOL);
			break;
		case '.':
			(*pos)++;
			item = rx_node(x, *flags & RXF_DOTNL ? RK_ANY : RK_ANYNL);
			break;
		case '[':
			item = rx_class(x, pos, *flags);
			if (!item)
				return NULL;
			break;
		case '*':
		case '+':
		case '?':
		case '{': {
			long min = 0, max = -1;
			int counted = x->s[tok] == '{';
			struct rnode *rep;

			if (counted) {
				size_t after = tok;

				if (!rx_repeat_counts(x, &after, &min, &max)) {
					(*pos)++;
					item = rx_lit(x, '{', *flags);
					break;
				}
				if (min < 0 || min > 1000 || max > 1000 || (max >= 0 && min > max))
					return rx_fail(x, ERR_INVALID_REPEAT_SIZE, tok, after);
				*pos = after;
			} else {
				if (x->s[tok] == '+')
					min = 1;
				else if (x->s[tok] == '?')
					max = 1;
				(*pos)++;
			}
			if (*pos < x->len && x->s[*pos] == '?')
				(*pos)++;   /* non-greedy: the same answer for a whole-value match */
			if (prev_repeat != NONE)
				return rx_fail(x, ERR_INVALID_REPEAT_OP, prev_repeat, *pos);
			if (!last)
				return rx_fail(x, ERR_MISSING_REPEAT_ARG, tok, *pos);
			if (!(rep = rx_node(x, RK_REPEAT)) || rx_add_sub(x, rep, last))
				return NULL;
			rep->min = (int)min;
			rep->max = (int)max;
			rep->counted = counted;
			if (counted && (min >= 2 || max >= 2) && !repeat_is_valid(rep, 1000))
				return rx_fail(x, ERR_INVALID_REPEAT_SIZE, tok, *pos);
			cat->sub[cat->nsub - 1] = rep;
			last = rep;
			prev_repeat = tok;
			continue;
		}
		case '\\':
			if (x->len - tok >= 2) {
				char e = x->s[tok + 1];

				if (e == 'A' || e == 'z' || e == 'b' || e == 'B') {
					*pos += 2;
					item = rx_node(x, e == 'A' ? RK_BOT : e == 'z' ? RK_EOT : e == 'b' ? RK_WB : RK_NWB);
					break;
				}
				if (e == 'C')
					return rx_fail(x, ERR_INVALID_ESCAPE, tok, tok + 2);
				if (e == 'Q') {
					/* \Q...\E: literal text, to \E or the end. */
					size_t t = tok + 2, end = x->len, next = x->len;

					for (size_t i = t; i + 1 < x->len; i++)
						if (x->s[i] == '\\' && x->s[i + 1] == 'E') {
							end = i, next = i + 2;
							break;
						}
					while (t < end) {
						size_t len;

						if (utf8_bad((const uint8_t *)x->s + t, end - t, &r, &len))
							return rx_fail(x, ERR_INVALID_UTF8, t, x->len);
						t += len;
						if (!(item = rx_lit(x, r, *flags)) || rx_add_sub(x, cat, item))
							return NULL;
						last = item;
					}
					*pos = next;
					prev_repeat = NONE;
					continue;
				}
			}
			if (!(item = rx_node(x, RK_CLASS)))
				return NULL;
			item->fold = (*flags & RXF_FOLD) != 0;
			if ((rc = rx_unicode_class(x, pos, item)) == 0)
				rc = rx_perl_class(x, pos, item, item->fold);
			if (rc < 0)
				return NULL;
			if (rc == 0) {
				if (rx_escape(x, pos, &r))
					return NULL;
				item = rx_lit(x, r, *flags);
			}
			break;
		default:
			if (rx_next_rune(x, pos, &r))
				return NULL;
			item = rx_lit(x, r, *flags);
			break;
		}
		if (x->nomem)
			return NULL;
		if (item) {
			if (rx_add_sub(x, cat, item))
				return NULL;
			last = item;
		}
		prev_repeat = NONE;
	}
	return cat;
}

/* Alternatives up to ")" or the end; flags set inside last to the group's end. */
static struct rnode *rx_alt(struct rx *x, size_t *pos, int flags, int depth)
{
	struct rnode *alt = NULL, *branch;

	for (;;) {
		if (!(branch = rx_concat(x, pos, &flags, depth)))
			return NULL;
		if (*pos < x->len && x->s[*pos] == '|') {
			(*pos)++;
			if (!alt && !(alt = rx_node(x, RK_ALT)))
				return NULL;
			if (rx_add_sub(x, alt, branch))
				return NULL;
			continue;
		}
		if (!alt)
			return branch;
		return rx_add_sub(x, alt, branch) ? NULL : alt;
	}
}

/* Parses the whole regex; NULL with x->code or x->nomem set on failure. */
static struct rnode *rx_parse(struct rx *x)
{
	size_t pos = 0;
	struct rnode *root = rx_alt(x, &pos, RXF_ONELINE | RXF_DOTNL, 0);

	if (root && pos < x->len)
		return rx_fail(x, ERR_UNEXPECTED_PAREN, 0, x->len);
	return root;
}

/* ---- PCRE2 pattern ---- */

static const char NOTHING[] = "[^\\x{0}-\\x{10ffff}]";

static void emit_str(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void emit_cp(struct buf *b, uint32_t c)
{
	char tmp[16];

	if (is_alnum(c)) {
		buf_put_byte(b, (uint8_t)c);
		return;
	}
	snprintf(tmp, sizeof(tmp), "\\x{%x}", (unsigned)c);
	emit_str(b, tmp);
}

static void emit_range(struct buf *b, uint32_t lo, uint32_t hi)
{
	emit_cp(b, lo);
	if (hi > lo) {
		buf_put_byte(b, '-');
		emit_cp(b, hi);
	}
}

static void emit_class(struct buf *b, const struct rnode *n)
{
	size_t ranges = 0;

	for (size_t i = 0; i < n->nranges; i++)
		if (n->ranges[i].lo < 0xD800 || n->ranges[i].hi > 0xDFFF)
			ranges++;
	if (ranges == 0 && n->nprops == 0) {
		emit_str(b, n->negated ? "(?s:.)" : NOTHING);
		return;
	}
	if (n->fold)
		emit_str(b, "(?i:");
	emit_str(b, n->negated ? "[^" : "[");
	for (size_t i = 0; i < n->nranges; i++) {
		/* Surrogates are not characters: PCRE2 refuses them, and no UTF-8
		 * text holds one. */
		uint32_t lo = n->ranges[i].lo, hi = n->ranges[i].hi;

		if (lo < 0xD800)
			emit_range(b, lo, hi < 0xD800 ? hi : 0xD7FF);
		if (hi > 0xDFFF)
			emit_range(b, lo > 0xE000 ? lo : 0xE000, hi);
	}
	for (size_t i = 0; i < n->nprops; i++) {
		const struct rprop *p = &n->props[i];

		/* Go's C is Cc|Cf|Co|Cs; PCRE2's also holds the unassigned Cn. */
		if (!p->negated && strcmp(p->name, "C") == 0) {
			emit_str(b, "\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}");
			continue;
		}
		emit_str(b, p->negated ? "\\P{" : "\\p{");
		emit_str(b, p->name);
		buf_put_byte(b, '}');
	}
	buf_put_byte(b, ']');
	if (n->fold)
		buf_put_byte(b, ')');
}

static void emit(struct buf *b, const struct rnode *n)
{
	char tmp[32];

	switch (n->kind) {
	case RK_LIT:
		if (is_surrogate(n->rune)) {
			emit_str(b, NOTHING);
		} else if (n->fold) {
			emit_str(b, "(?i:");
			emit_cp(b, n->rune);
			buf_put_byte(b, ')');
		} else {
			emit_cp(b, n->rune);
		}
		break;
	case RK_CLASS: emit_class(b, n); break;
	case RK_ANY: emit_str(b, "(?s:.)"); break;
	case RK_ANYNL: emit_str(b, "[^\\x{a}]"); break;
	case RK_BOT: emit_str(b, "\\A"); break;
	case RK_EOT: emit_str(b, "\\z"); break;
	case RK_BOL: emit_str(b, "(?m:^)"); break;   /* with PCRE2_ALT_CIRCUMFLEX */
	case RK_EOL: emit_str(b, "(?m:$)"); break;
	case RK_WB: emit_str(b, "\\b"); break;
	case RK_NWB: emit_str(b, "\\B"); break;
	case RK_GROUP:
	case RK_REPEAT:
		/* "(" and not "(?:": with PCRE2_NO_AUTO_CAPTURE they capture
		 * nothing either, and PCRE2 nests them about three times deeper. */
		buf_put_byte(b, '(');
		emit(b, n->sub[0]);
		buf_put_byte(b, ')');
		if (n->kind == RK_GROUP)
			break;
		if (n->max < 0)
			snprintf(tmp, sizeof(tmp), "{%d,}", n->min);
		else if (n->min == n->max)
			snprintf(tmp, sizeof(tmp), "{%d}", n->min);
		else
			snprintf(tmp, sizeof(tmp), "{%d,%d}", n->min, n->max);
		emit_str(b, tmp);
		break;
	case RK_CONCAT:
		for (size_t i = 0; i < n->nsub; i++)
			emit(b, n->sub[i]);
		break;
	case RK_ALT:
		buf_put_byte(b, '(');
		for (size_t i = 0; i < n->nsub; i++) {
			if (i)
				buf_put_byte(b, '|');
			emit(b, n->sub[i]);
		}
		buf_put_byte(b, ')');
		break;
	}
}

/* ---- what the planner gets: finite literal sets and prefixes ---- */

struct strset {
	struct select_literal *v;
	size_t n, cap;
};

static void set_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free((char *)s->v[i].value);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* Appends a+b (b may be NULL); -1 when out of memory. */
static int set_add2(struct strset *s, const char *a, size_t alen, const char *b, size_t blen)
{
	char *p;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct select_literal *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	if (!(p = malloc(alen + blen + 1)))
		return -1;
	if (alen)
		memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
	p[alen + blen] = '\0';
	s->v[s->n].value = p;
	s->v[s->n].len = alen + blen;
	s->n++;
	return 0;
}

/* out += a x b; 1, 0 when it grows past MAX_SET, -1 out of memory. */
static int set_product(const struct strset *a, const struct strset *b, struct strset *out)
{
	if (out->n + a->n * b->n > MAX_SET)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		for (size_t j = 0; j < b->n; j++)
			if (set_add2(out, a->v[i].value, a->v[i].len, b->v[j].value, b->v[j].len))
				return -1;
	return 1;
}

static int rx_set(const struct rnode *n, struct strset *out);

/* The concatenation of list[0..k) as a finite set: 1, 0 (not finite), -1. */
static int rx_set_list(const struct rnode *const *list, size_t k, struct strset *out)
{
	struct strset acc = {0}, part, next;
	int rc = 1;

	if (set_add2(&acc, "", 0, NULL, 0))
		return -1;
	for (size_t i = 0; i < k; i++) {
		memset(&part, 0, sizeof(part));
		memset(&next, 0, sizeof(next));
		if ((rc = rx_set(list[i], &part)) == 1)
			rc = set_product(&acc, &part, &next);
		set_free(&part);
		set_free(&acc);
		acc = next;
		if (rc != 1)
			goto out;
	}
	for (size_t i = 0; i < acc.n && rc == 1; i++)
		if (set_add2(out, acc.v[i].value, acc.v[i].len, NULL, 0))
			rc = -1;
	if (rc == 1 && out->n > MAX_SET)
		rc = 0;
out:
	set_free(&acc);
	return rc;
}

/*
 * Whether node n matches a finite set of strings, case-sensitively, and
 * which (appended to out): literals, concatenations, alternations, small
 * classes and bounded repeats of those, as Prometheus' findSetMatches and a
 * little more. 1, 0 (not finite or too large), -1 out of memory.
 */
static int rx_set(const struct rnode *n, struct strset *out)
{
	uint8_t tmp[4];
	size_t count = 0;
	int rc;

	switch (n->kind) {
	case RK_LIT:
		if (n->fold || is_surrogate(n->rune))
			return 0;
		return set_add2(out, (char *)tmp, utf8_encode(tmp, n->rune), NULL, 0) ? -1 : 1;
	case RK_CLASS:
		if (n->fold || n->negated || n->nprops)
			return 0;
		for (size_t i = 0; i < n->nranges; i++) {
			count += n->ranges[i].hi - n->ranges[i].lo + 1;
			if (count > MAX_SET)
				return 0;
		}
		for (size_t i = 0; i < n->nranges; i++)
			for (uint32_t c = n->ranges[i].lo; c <= n->ranges[i].hi; c++)
				if (!is_surrogate(c) && set_add2(out, (char *)tmp, utf8_encode(tmp, c), NULL, 0))
					return -1;
		return out->n > MAX_SET ? 0 : 1;
	case RK_GROUP:
		return rx_set(n->sub[0], out);
	case RK_CONCAT:
		return rx_set_list((const struct rnode *const *)n->sub, n->nsub, out);
	case RK_ALT:
		for (size_t i = 0; i < n->nsub; i++)
			if ((rc = rx_set(n->sub[i], out)) != 1 || out->n > MAX_SET)
				return rc < 0 ? -1 : 0;
		return 1;
	case RK_REPEAT: {
		struct strset one = {0}, power = {0}, next;

		if (n->max < 0)
			return 0;
		if ((rc = rx_set(n->sub[0], &one)) != 1)
			goto repeat_out;
		if ((rc = set_add2(&power, "", 0, NULL, 0) ? -1 : 1) != 1)
			goto repeat_out;
		for (int k = 0; k <= n->max && rc == 1; k++) {
			for (size_t i = 0; k >= n->min && i < power.n && rc == 1; i++) {
				if (out->n >= MAX_SET)
					rc = 0;
				else if (set_add2(out, power.v[i].value, power.v[i].len, NULL, 0))
					rc = -1;
			}
			if (k == n->max || rc != 1)
				break;
			memset(&next, 0, sizeof(next));
			rc = set_product(&power, &one, &next);
			set_free(&power);
			power = next;
		}
repeat_out:
		set_free(&one);
		set_free(&power);
		return rc;
	}
	default:
		return 0;
	}
}

static int literal_cmp(const void *a, const void *b)
{
	const struct select_literal *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = n ? memcmp(x->value, y->value, n) : 0;

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void set_sort_unique(struct strset *s)
{
	size_t out = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), literal_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (literal_cmp(&s->v[i], &s->v[out]) == 0)
			free((char *)s->v[i].value);
		else
			s->v[++out] = s->v[i];
	}
	s->n = out + 1;
}

/* The top-level concatenation, through groups. */
static void flatten(const struct rnode *n, const struct rnode **list, size_t *k)
{
	if (n->kind == RK_GROUP) {
		flatten(n->sub[0], list, k);
	} else if (n->kind == RK_CONCAT) {
		for (size_t i = 0; i < n->nsub; i++)
			flatten(n->sub[i], list, k);
	} else {
		list[(*k)++] = n;
	}
}

static int is_dot_star(const struct rnode *n)
{
	if (n->kind != RK_REPEAT || n->min != 0 || n->max != -1)
		return 0;
	for (n = n->sub[0]; n->kind == RK_GROUP || (n->kind == RK_CONCAT && n->nsub == 1); n = n->sub[0])
		;
	return n->kind == RK_ANY;
}

/* ---- compiled matchers ---- */

struct select_regex {
	pcre2_code *code;              /* NULL for = and != */
	int matches_empty;
	struct select_literal *lits;   /* sorted, unique; NULL when not finite */
	size_t nlits;
	int owns_lits;
	struct select_literal self;    /* = and !=: the value */
	char *prefix;
	size_t prefix_len;
	int has_prefix, prefix_exact;
};

struct select {
	struct select_matcher *m;
	size_t n, cap;
};

/* Fills the planner's set and prefix from the tree; -1 out of memory. */
static int analyse(struct select_regex *re, const struct rx *x, const struct rnode *root)
{
	const struct rnode **list;
	struct strset set = {0};
	size_t nodes = 0, k = 0, first = 0, last, i;
	struct buf prefix = {0};
	int rc;

	for (const struct rnode *n = x->all; n; n = n->all_next)
		nodes++;
	if (!(list = malloc((nodes + 1) * sizeof(*list))))
		return -1;
	flatten(root, list, &k);
	/* Anchors at the very ends are always true: the match is whole. */
	while (first < k && (list[first]->kind == RK_BOT || list[first]->kind == RK_BOL))
		first++;
	last = k;
	while (last > first && (list[last - 1]->kind == RK_EOT || list[last - 1]->kind == RK_EOL))
		last--;
	if ((rc = rx_set_list(list + first, last - first, &set)) < 0)
		goto out;
	if (rc == 1) {
		set_sort_unique(&set);
		re->lits = set.v, re->nlits = set.n, re->owns_lits = 1;
		set.v = NULL, set.n = 0;
	}
	for (i = first; i < last && list[i]->kind == RK_LIT && !list[i]->fold && !is_surrogate(list[i]->rune); i++) {
		uint8_t tmp[4];

		buf_put(&prefix, tmp, utf8_encode(tmp, list[i]->rune));
	}
	re->prefix_exact = i + 1 == last && is_dot_star(list[i]);
	re->has_prefix = prefix.len > 0 || re->prefix_exact;
	rc = 0;
	if (prefix.oom) {
		rc = -1;
	} else if (re->has_prefix) {
		if (!(re->prefix = malloc(prefix.len + 1))) {
			rc = -1;
		} else {
			if (prefix.len)
				memcpy(re->prefix, prefix.p, prefix.len);
			re->prefix[prefix.len] = '\0';
			re->prefix_len = prefix.len;
		}
	}
out:
	buf_free(&prefix);
	set_free(&set);
	free(list);
	return rc < 0 ? -1 : 0;
}

static pthread_key_t match_data_key;
static pthread_once_t match_data_once = PTHREAD_ONCE_INIT;
static int match_data_key_ok;

static void match_data_destroy(void *md) { pcre2_match_data_free(md); }
static void match_data_init(void) { match_data_key_ok = pthread_key_create(&match_data_key, match_data_destroy) == 0; }

/* This thread's match data (any pattern can use it: only the whole match
 * is asked for), or NULL when it cannot be had. */
static pcre2_match_data *thread_match_data(void)
{
	pcre2_match_data *md;

	pthread_once(&match_data_once, match_data_init);
	if (!match_data_key_ok)
		return NULL;
	if ((md = pthread_getspecific(match_data_key)) != NULL)
		return md;
	if (!(md = pcre2_match_data_create(1, NULL)))
		return NULL;
	if (pthread_setspecific(match_data_key, md) != 0) {
		pcre2_match_data_free(md);
		return NULL;
	}
	return md;
}

/* PCRE2's DFA matcher, which does not backtrack: for a match the
 * backtracking one gave up on. */
static int run_dfa(const pcre2_code *code, const char *s, size_t len, pcre2_match_data *md)
{
	int rc = PCRE2_ERROR_DFA_WSSIZE;

	for (size_t ws = 4096; rc == PCRE2_ERROR_DFA_WSSIZE && ws <= (1u << 22); ws *= 4) {
		int *w = malloc(ws * sizeof(*w));

		if (!w)
			return SNAPARC_NOMEM;
		rc = pcre2_dfa_match(code, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK, md, NULL, w, ws);
		free(w);
	}
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : SNAPARC_UNSUPPORTED;
}

static int run_pcre2(const pcre2_code *code, const char *v, size_t len)
{
	pcre2_match_data *md = thread_match_data(), *own = NULL;
	char small[256], *copy = NULL;
	const char *s = v;
	int rc;

	if (!utf8_valid(v, len)) {
		/* Go reads each bad byte as U+FFFD: so does the copy. */
		const uint8_t *p = (const uint8_t *)v;
		size_t i = 0, n = 0, step;
		uint32_t r;

		copy = len * 3 <= sizeof(small) ? small : malloc(len * 3);
		if (!copy)
			return SNAPARC_NOMEM;
		while (i < len) {
			if (utf8_bad(p + i, len - i, &r, &step)) {
				memcpy(copy + n, "\xEF\xBF\xBD", 3);
				n += 3;
			} else {
				memcpy(copy + n, v + i, step);
				n += step;
			}
			i += step;
		}
		s = copy, len = n;
	}
	if (!md && !(md = own = pcre2_match_data_create(1, NULL))) {
		rc = SNAPARC_NOMEM;
		goto out;
	}
	rc = pcre2_match(code, (PCRE2_SPTR)(len ? s : ""), len, 0, PCRE2_NO_UTF_CHECK, md, NULL);
	if (rc >= 0)
		rc = 1;
	else if (rc == PCRE2_ERROR_NOMATCH)
		rc = 0;
	else if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
		 rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY)
		rc = run_dfa(code, len ? s : "", len, md);
	else
		rc = SNAPARC_UNSUPPORTED;
out:
	pcre2_match_data_free(own);
	if (copy != small)
		free(copy);
	return rc;
}

static int regex_matches(const struct select_regex *re, const char *v, size_t len)
{
	if (re->lits) {
		struct select_literal key = {v, len};

		return bsearch(&key, re->lits, re->nlits, sizeof(key), literal_cmp) != NULL;
	}
	if (re->prefix_len && (len < re->prefix_len || memcmp(v, re->prefix, re->prefix_len) != 0))
		return 0;
	if (re->prefix_exact)
		return 1;
	return run_pcre2(re->code, v, len);
}

/* Appends a regex fragment for a message, bad bytes and controls escaped. */
static void put_fragment(struct buf *b, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	char tmp[8];
	size_t i = 0, len;
	uint32_t r;

	while (i < n && b->len < 160) {
		if (utf8_bad(p + i, n - i, &r, &len) || r < 0x20 || r == 0x7F) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
			buf_put(b, tmp, strlen(tmp));
			len = 1;
		} else {
			buf_put(b, p + i, len);
		}
		i += len;
	}
	if (i < n)
		buf_put(b, "...", 3);
}

/* Parses, translates and compiles the regex of m, whose value came from q. */
static int compile_regex(struct parser *p, const struct select_matcher *m, const struct qstr *q,
			 struct select_regex *re)
{
	struct rx x = {.s = m->value, .len = m->value_len};
	struct rnode *root = rx_parse(&x);
	struct buf pat = {0}, msg = {0};
	pcre2_compile_context *cc = NULL;
	PCRE2_SIZE erroff;
	int rc, errcode;

	if (!root) {
		if (x.nomem) {
			rc = nomem(p);
		} else {
			put_fragment(&msg, x.s + x.frag, x.frag_end - x.frag);
			rc = msg.oom ? nomem(p) :
				fail_at(p, q->src[x.frag], "error parsing regexp: %s: `%.*s`", x.code, (int)msg.len, (const char *)msg.p);
		}
		goto out;
	}
	emit(&pat, root);
	if (pat.oom || !(cc = pcre2_compile_context_create(NULL))) {
		rc = nomem(p);
		goto out;
	}
	pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
	pcre2_set_parens_nest_limit(cc, 4 * RX_MAX_DEPTH + 16);
	re->code = pcre2_compile((PCRE2_SPTR)(pat.len ? (const char *)pat.p : ""), pat.len,
				 PCRE2_UTF | PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
				 PCRE2_ALT_CIRCUMFLEX | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_AUTO_CAPTURE,
				 &errcode, &erroff, cc);
	if (!re->code) {
		char text[160];
		char at[64];

		pcre2_get_error_message(errcode, (PCRE2_UCHAR *)text, sizeof(text));
		where(p->s, p->len, q->src[0], at, sizeof(at));
		rc = err_set(p->e, errcode == PCRE2_ERROR_NOMEMORY ? SNAPARC_NOMEM : SNAPARC_UNSUPPORTED,
			     "%s: regexp is valid but PCRE2 cannot compile it: %s", at, text);
		goto out;
	}
	pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);   /* without JIT it is only slower */
	if (analyse(re, &x, root)) {
		rc = nomem(p);
		goto out;
	}
	rc = 0;
out:
	pcre2_compile_context_free(cc);
	buf_free(&pat);
	buf_free(&msg);
	rx_free_all(&x);
	return rc;
}

static void regex_free(struct select_regex *re)
{
	if (!re)
		return;
	pcre2_code_free(re->code);
	if (re->owns_lits) {
		for (size_t i = 0; i < re->nlits; i++)
			free((char *)re->lits[i].value);
		free(re->lits);
	}
	free(re->prefix);
	free(re);
}

/* ---- the selector ---- */

void select_free(struct select *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free((char *)s->m[i].name);
		free((char *)s->m[i].value);
		regex_free(s->m[i].re);
	}
	free(s->m);
	free(s);
}

/*
 * Adds a matcher named name[0..nlen) with the value in val (taken over:
 * val is emptied either way).
 */
static int add_matcher(struct parser *p, struct select *s, const char *name, size_t nlen,
		       struct qstr *val, enum select_op op)
{
	struct select_matcher *m;
	struct select_regex *re;
	char *shrunk;
	int rc;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct select_matcher *v = realloc(s->m, cap * sizeof(*v));

		if (!v) {
			qstr_free(val);
			return nomem(p);
		}
		s->m = v;
		s->cap = cap;
	}
	m = &s->m[s->n];
	memset(m, 0, sizeof(*m));
	re = calloc(1, sizeof(*re));
	if (!re || !(m->name = malloc(nlen + 1))) {
		free(re);
		qstr_free(val);
		return nomem(p);
	}
	if (nlen)
		memcpy((char *)m->name, name, nlen);
	((char *)m->name)[nlen] = '\0';
	m->name_len = nlen;
	if ((shrunk = realloc(val->p, val->len + 1)) != NULL)
		val->p = shrunk;
	m->value = val->p;
	m->value_len = val->len;
	m->op = op;
	m->re = re;
	val->p = NULL;
	s->n++;   /* from here select_free frees it all */
	if (op == SELECT_EQ || op == SELECT_NE) {
		re->self.value = m->value;
		re->self.len = m->value_len;
		re->lits = &re->self;
		re->nlits = 1;
		re->matches_empty = (m->value_len == 0) == (op == SELECT_EQ);
		qstr_free(val);
		return 0;
	}
	rc = compile_regex(p, m, val, re);
	qstr_free(val);
	if (rc)
		return rc;
	if ((rc = regex_matches(re, "", 0)) < 0)
		return err_set(p->e, rc, "selector: matching the empty value failed");
	re->matches_empty = (rc == 1) == (op == SELECT_RE);
	return 0;
}

/* An operator at p->pos, or an error. */
static int lex_op(struct parser *p, enum select_op *op)
{
	int c = peek(p), n = p->pos + 1 < p->len ? (uint8_t)p->s[p->pos + 1] : -1;

	if (c == '=') {
		*op = n == '~' ? SELECT_RE : SELECT_EQ;
		p->pos += n == '~' ? 2 : 1;
		return 0;
	}
	if (c == '!' && (n == '=' || n == '~')) {
		*op = n == '=' ? SELECT_NE : SELECT_NRE;
		p->pos += 2;
		return 0;
	}
	return expected(p, "'=', '!=', '=~' or '!~'");
}

static int lex_value(struct parser *p, struct qstr *val)
{
	int c = peek(p);

	if (c != '"' && c != '\'' && c != '`')
		return expected(p, "a quoted string");
	return lex_string(p, val);
}

/* The matchers inside the braces; p->pos is past "{". */
static int parse_braces(struct parser *p, struct select *s)
{
	for (;;) {
		struct qstr name = {0}, val = {0};
		enum select_op op;
		int c, rc;

		skip_space(p);
		c = peek(p);
		if (c == '}') {
			p->pos++;
			return 0;
		}
		if (is_alpha(c)) {
			size_t start = p->pos, end;

			while (!at_end(p) && (is_alpha(peek(p)) || is_digit(peek(p))))
				p->pos++;
			end = p->pos;
			skip_space(p);
			if ((rc = lex_op(p, &op)) != 0)
				return rc;
			skip_space(p);
			if ((rc = lex_value(p, &val)) != 0)
				return rc;
			if ((rc = add_matcher(p, s, p->s + start, end - start, &val, op)) != 0)
				return rc;
		} else if (c == '"' || c == '\'' || c == '`') {
			if ((rc = lex_string(p, &name)) != 0)
				return rc;
			skip_space(p);
			c = peek(p);
			if (c == '=' || c == '!') {
				if ((rc = lex_op(p, &op)) != 0 || (skip_space(p), rc = lex_value(p, &val)) != 0) {
					qstr_free(&name);
					return rc;
				}
				rc = add_matcher(p, s, name.p, name.len, &val, op);
				qstr_free(&name);
			} else {
				/* A quoted name alone is the metric name (Prometheus 3). */
				rc = add_matcher(p, s, "__name__", 8, &name, SELECT_EQ);
			}
			if (rc)
				return rc;
		} else {
			return expected(p, "a label name or '}'");
		}
		skip_space(p);
		c = peek(p);
		if (c == ',') {
			p->pos++;
			continue;
		}
		if (c == '}') {
			p->pos++;
			return 0;
		}
		return expected(p, "',' or '}'");
	}
}

/* Words Prometheus' lexer turns into tokens a metric name cannot be. */
static const char *not_a_metric(const char *s, size_t n)
{
	static const char *const words[] = {"bool", "on", "ignoring", "group_left", "group_right", "atan2", "inf", "nan"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i]) == n && strncasecmp(words[i], s, n) == 0)
			return i >= 6 ? "number" : "keyword";
	return NULL;
}

static int validate(struct parser *p, const struct select *s, size_t at, int named_outside)
{
	struct buf msg = {0};
	int rc = 0;

	if (named_outside) {
		const struct select_matcher *name = &s->m[s->n - 1];

		for (size_t i = 0; i + 1 < s->n; i++) {
			if (s->m[i].name_len != 8 || memcmp(s->m[i].name, "__name__", 8) != 0)
				continue;
			quote_go(&msg, name->value, name->value_len);
			buf_put(&msg, " or ", 4);
			quote_go(&msg, s->m[i].value, s->m[i].value_len);
			rc = msg.oom ? nomem(p) :
				fail_at(p, at, "metric name must not be set twice: %.*s", (int)msg.len, (const char *)msg.p);
			break;
		}
	} else {
		size_t i;

		for (i = 0; i < s->n && s->m[i].re->matches_empty; i++)
			;
		if (i == s->n)
			rc = fail_at(p, at, "vector selector must contain at least one non-empty matcher");
	}
	buf_free(&msg);
	return rc;
}

int select_parse_n(const char *text, size_t len, struct select **out, struct err *e)
{
	struct parser p = {text, len, 0, e};
	struct select *s;
	size_t start, name_at = 0, name_len = 0;
	int rc, named = 0;

	if (!text || !out)
		return err_set(e, SNAPARC_INVALID, "select_parse: no text");
	if (!(s = calloc(1, sizeof(*s))))
		return nomem(&p);
	skip_space(&p);
	start = p.pos;
	if (is_alpha(peek(&p)) || peek(&p) == ':') {
		const char *kind;

		name_at = p.pos;
		while (!at_end(&p) && is_metric_char(peek(&p)))
			p.pos++;
		name_len = p.pos - name_at;
		if ((kind = not_a_metric(text + name_at, name_len)) != NULL) {
			rc = fail_at(&p, name_at, "expected a metric name or '{', found %s \"%.*s\"", kind,
				     (int)name_len, text + name_at);
			goto fail;
		}
		named = 1;
		skip_space(&p);
	}
	if (peek(&p) == '{') {
		p.pos++;
		if ((rc = parse_braces(&p, s)) != 0)
			goto fail;
		skip_space(&p);
		if (!at_end(&p)) {
			rc = expected(&p, "end of input");
			goto fail;
		}
	} else if (!named) {
		rc = expected(&p, "a metric name or '{'");
		goto fail;
	} else if (!at_end(&p)) {
		rc = expected(&p, "'{' or end of input");
		goto fail;
	}
	if (named) {
		struct qstr val = {0};

		if (!(val.p = malloc(name_len + 1))) {
			rc = nomem(&p);
			goto fail;
		}
		memcpy(val.p, text + name_at, name_len);
		val.p[name_len] = '\0';
		val.len = name_len;
		if ((rc = add_matcher(&p, s, "__name__", 8, &val, SELECT_EQ)) != 0)
			goto fail;
	}
	if ((rc = validate(&p, s, start, named)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	select_free(s);
	return rc;
}

int select_parse(const char *text, struct select **out, struct err *e)
{
	return select_parse_n(text, text ? strlen(text) : 0, out, e);
}

size_t select_count(const struct select *s)
{
	return s ? s->n : 0;
}

const struct select_matcher *select_matcher(const struct select *s, size_t i)
{
	return s && i < s->n ? &s->m[i] : NULL;
}

int select_matcher_matches(const struct select_matcher *m, const char *value, size_t len)
{
	int rc;

	if (!value)
		value = "", len = 0;
	switch (m->op) {
	case SELECT_EQ:
		return len == m->value_len && memcmp(value, m->value, len) == 0;
	case SELECT_NE:
		return !(len == m->value_len && memcmp(value, m->value, len) == 0);
	case SELECT_RE:
		return regex_matches(m->re, value, len);
	case SELECT_NRE:
		rc = regex_matches(m->re, value, len);
		return rc < 0 ? rc : !rc;
	}
	return SNAPARC_INVALID;
}

int select_matches(const struct select *s, const struct rec_labels *ls)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct select_matcher *m = &s->m[i];
		struct rec_label_iter it;
		struct rec_label l;
		const char *value = "";
		size_t len = 0;
		int rc;

		rec_labels_iter(&it, ls);
		while (rec_labels_next(&it, &l)) {
			if (l.name_len == m->name_len && memcmp(l.name, m->name, l.name_len) == 0) {
				value = l.value, len = l.value_len;
				break;
			}
		}
		if ((rc = select_matcher_matches(m, value, len)) <= 0)
			return rc;
	}
	return 1;
}

int select_matcher_matches_empty(const struct select_matcher *m)
{
	return m->re->matches_empty;
}

size_t select_matcher_literals(const struct select_matcher *m, const struct select_literal **out)
{
	if (!m->re->lits)
		return 0;
	*out = m->re->lits;
	return m->re->nlits;
}

int select_matcher_prefix(const struct select_matcher *m, const char **prefix, size_t *len, int *exact)
{
	const struct select_regex *re = m->re;

	if ((m->op != SELECT_RE && m->op != SELECT_NRE) || !re->has_prefix)
		return 0;
	*prefix = re->prefix;
	*len = re->prefix_len;
	*exact = re->prefix_exact;
	return 1;
}
