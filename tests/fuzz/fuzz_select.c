/*
 * fuzz_select: the input is a PromQL selector; or, when its first byte is
 * 0xff, a regular expression (the rest of the input) put into
 * `m{a=~"..."}` with every byte escaped, so that the Go-regexp parser and
 * its translation to PCRE2 are fuzzed without first finding the selector
 * syntax; or, when it is 0xfe, a list of tokens, one per byte (TOKENS), so
 * that the selector grammar is (run.sh has no seeds for this target).
 *
 * A selector that fails to parse must say where: its message starts with
 * "column N" or "line L, column N", N within the input. One that parses is
 * walked: every matcher's fields, matches_empty against matching "", every
 * literal of the planner's set against the matcher, the prefix against the
 * matcher; then every regex matcher's answer on a set of values (some cut
 * from the input) must equal PCRE2's alone, without the literal-set and
 * prefix shortcuts; and the whole selector is matched against label sets
 * built from its own matchers. A violation traps, which libFuzzer reports
 * as a crash with the input.
 *
 * select.c is included rather than linked, to reach its PCRE2-only matcher
 * (run_pcre2) and so check the shortcuts against it, and so that its code is
 * instrumented for coverage.
 */
#include "../../plugin/select.c"
#include "fuzz.h"

#include <string.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct value {
	const char *p;
	size_t len;
};

/* The selector's pieces, for the 0xfe mode: each input byte picks one. */
static const char *const TOKENS[] = {
	"{", "}", ",", "=", "!=", "=~", "!~", "==", "!", "~", " ", "\n", "\t", "#c\n", "foo", "job", "__name__",
	"a:b", ":", "_", "on", "bool", "Inf", "nan", "sum", "offset", "1", "\"x\"", "\"\"", "'y'", "`z`", "`\n`",
	"\".*\"", "\".+\"", "\"a|b\"", "\"(a\"", "\"a**\"", "\"\\\\d+\"", "\"\\x41\"", "\"\\u00e9\"",
	"\"\\q\"", "\"\\ud800\"", "\"\\377\"", "\"\xc3\xa9\"", "\"\xef\xbf\xbd\"", "\"\xff\"",
	"\"unterminated", "\"(?i)x\"", "\"^$\"", "\"[a-\"", "\"x?\"", "\"\\\\p{Greek}\"", "\"/v1/.*\"",
	"\"GET|PUT\"", "\"(a|a)*\"", "\"\\\\b\"", "[", "(", "5m", "\"\\\"\"", "'\\''", "\"a\nb\"",
	"\"x{2}\"", "\"\\\\\"",
};

/* Whether a shortcut of re (its literal set, its prefix) holds U+FFFD. */
static int shortcut_has_fffd(const struct select_regex *re)
{
	for (size_t i = 0; re->lits && i < re->nlits; i++)
		if (memmem(re->lits[i].value, re->lits[i].len, "\xef\xbf\xbd", 3))
			return 1;
	return re->prefix_len && memmem(re->prefix, re->prefix_len, "\xef\xbf\xbd", 3);
}

/* The PCRE2 answer equals the answer with shortcuts, where PCRE2 decides.
 * Not on a value that is not valid UTF-8 when a shortcut holds U+FFFD: the
 * shortcuts compare bytes (as Prometheus 3 does, select.c), where Go's
 * engine, and PCRE2 as select.c runs it, reads each bad byte as U+FFFD
 * (`{a=~"\xef\xbf\xbd"}` and "\xff"). */
static void check_value(const struct select_matcher *m, const char *v, size_t len)
{
	int fast = select_matcher_matches(m, v, len), slow;

	CHECK(fast == 0 || fast == 1 || fast == SNAPARC_UNSUPPORTED || fast == SNAPARC_NOMEM);
	if (m->op != SELECT_RE && m->op != SELECT_NRE)
		return;
	if (!utf8_valid(v, len) && shortcut_has_fffd(m->re))
		return;
	slow = run_pcre2(m->re->code, v, len);
	if (slow < 0 || fast < 0)
		return;
	CHECK((m->op == SELECT_RE ? slow : !slow) == fast);
}

static void check_matcher(const struct select_matcher *m, const struct value *extra, size_t nextra)
{
	const struct select_literal *lits = NULL;
	const char *prefix = NULL;
	size_t n, plen = 0;
	int exact = -1, take = m->op == SELECT_EQ || m->op == SELECT_RE;
	char buf[64];

	CHECK(m->op >= SELECT_EQ && m->op <= SELECT_NRE);
	CHECK(m->name && m->name[m->name_len] == '\0');
	CHECK(m->value && m->value[m->value_len] == '\0');
	CHECK(select_matcher_matches_empty(m) == select_matcher_matches(m, "", 0));
	n = select_matcher_literals(m, &lits);
	CHECK(n <= 256);
	for (size_t i = 0; i < n; i++) {
		CHECK(select_matcher_matches(m, lits[i].value, lits[i].len) == take);
		check_value(m, lits[i].value, lits[i].len);
		if (i)
			CHECK(literal_cmp(&lits[i - 1], &lits[i]) < 0);
	}
	if (select_matcher_prefix(m, &prefix, &plen, &exact)) {
		CHECK(m->op == SELECT_RE || m->op == SELECT_NRE);
		CHECK(exact == 0 || exact == 1);
		check_value(m, prefix, plen);
		if (plen + 2 <= sizeof(buf)) {
			memcpy(buf, prefix, plen);
			memcpy(buf + plen, "a\n", 2);
			check_value(m, buf, plen + 2);
			if (exact)
				CHECK(select_matcher_matches(m, buf, plen + 2) == take);
		}
	}
	check_value(m, m->value, m->value_len);
	for (size_t i = 0; i < nextra; i++)
		check_value(m, extra[i].p, extra[i].len);
}

/* Label sets from the selector's own matchers: their names with their
 * values, then with their first literals; and no labels at all. */
static void check_selector(const struct select *s)
{
	struct rec_label ls[8];
	struct buf b = {0};
	struct rec_labels set;
	size_t n = 0;
	int rc;

	for (int round = 0; round < 3; round++) {
		n = 0;
		for (size_t i = 0; i < select_count(s) && n < 8 && round < 2; i++) {
			const struct select_matcher *m = select_matcher(s, i);
			const struct select_literal *lits;

			ls[n].name = m->name;
			ls[n].name_len = m->name_len;
			ls[n].value = m->value;
			ls[n].value_len = m->value_len;
			if (round == 1 && select_matcher_literals(m, &lits)) {
				ls[n].value = lits[0].value;
				ls[n].value_len = lits[0].len;
			}
			n++;
		}
		buf_reset(&b);
		rec_labels_encode(&b, ls, n);
		if (b.oom)
			break;
		set.raw = b.p;
		set.raw_len = b.len;
		set.count = (uint32_t)n;
		rc = select_matches(s, &set);
		CHECK(rc == 0 || rc == 1 || rc == SNAPARC_UNSUPPORTED || rc == SNAPARC_NOMEM);
	}
	buf_free(&b);
}

/* "column N" or "line L, column N", with 1 <= N <= size + 1. */
static void check_message(const char *msg, size_t size)
{
	unsigned long line = 1, col = 0;
	char *end;

	if (strncmp(msg, "line ", 5) == 0) {
		line = strtoul(msg + 5, &end, 10);
		CHECK(line >= 2 && strncmp(end, ", ", 2) == 0);
		msg = end + 2;
	}
	CHECK(strncmp(msg, "column ", 7) == 0);
	col = strtoul(msg + 7, &end, 10);
	CHECK(col >= 1 && col <= size + 1 && line <= size + 1);
	CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct value fixed[] = {
		{"", 0}, {"a", 1}, {"A", 1}, {"\n", 1}, {"ab", 2}, {"a\nb", 3}, {"\xff", 1}, {"\xc3\xa9", 2},
		{"\xc5\xbf", 2}, {"\xe2\x84\xaa", 3}, {"k", 1}, {" ", 1}, {"0", 1}, {"_", 1}, {"\xed\xa0\x80", 3},
	};
	struct value extra[sizeof(fixed) / sizeof(fixed[0]) + 3];
	struct buf text = {0};
	struct select *s = NULL;
	struct err e = {0};
	size_t nextra = 0;
	int rc;

	if (size > 4096)
		return 0;
	if (size >= 1 && data[0] == 0xff) {
		/* m{a=~"<the rest, every byte escaped>"} */
		char hex[8];

		buf_put(&text, "m{a=~\"", 6);
		for (size_t i = 1; i < size; i++) {
			snprintf(hex, sizeof(hex), "\\x%02x", data[i]);
			buf_put(&text, hex, 4);
		}
		buf_put(&text, "\"}", 2);
		if (text.oom)
			goto out;
	} else if (size >= 1 && data[0] == 0xfe) {
		for (size_t i = 1; i < size; i++) {
			const char *t = TOKENS[data[i] % (sizeof(TOKENS) / sizeof(TOKENS[0]))];

			buf_put(&text, t, strlen(t));
		}
		if (text.oom)
			goto out;
	} else {
		buf_put(&text, data, size);
	}
	rc = select_parse_n(text.len ? (const char *)text.p : "", text.len, &s, &e);
	if (rc != 0) {
		CHECK(s == NULL);
		CHECK(rc == SNAPARC_INVALID || rc == SNAPARC_UNSUPPORTED || rc == SNAPARC_NOMEM);
		if (rc != SNAPARC_NOMEM)
			check_message(e.msg, text.len);
		goto out;
	}
	CHECK(select_count(s) >= 1);
	memcpy(extra, fixed, sizeof(fixed));
	nextra = sizeof(fixed) / sizeof(fixed[0]);
	/* pieces of the input as values too */
	extra[nextra].p = (const char *)data, extra[nextra++].len = size < 8 ? size : 8;
	extra[nextra].p = (const char *)data + size / 2, extra[nextra++].len = size - size / 2;
	extra[nextra].p = (const char *)data + (size > 3 ? size - 3 : 0), extra[nextra++].len = size > 3 ? 3 : size;
	for (size_t i = 0; i < select_count(s); i++)
		check_matcher(select_matcher(s, i), extra, nextra);
	check_selector(s);
out:
	select_free(s);
	buf_free(&text);
	return 0;
}
