/*
 * PromQL series selectors (plugin/select.[ch]).
 *
 * - Parsing: every field of every matcher for selectors of each form
 *   Prometheus accepts (metric name, braces, both; quoted names; keywords as
 *   names; trailing comma; whitespace and comments between tokens), the
 *   metric name before the braces being the last matcher as in Prometheus.
 * - Errors: every kind, with its exact message and column (line and column
 *   on later lines), including regex errors placed through escapes.
 * - The "at least one non-empty matcher" and "metric name set twice" rules,
 *   with the cases of Prometheus' promql/parser/parse_test.go (TestExpressions,
 *   "Test Vector selector") copied as they are, and more of our own.
 * - Go escapes in quoted strings, raw strings, and the strings Prometheus'
 *   lexer rejects (a raw newline, invalid UTF-8, even a real U+FFFD).
 * - Semantics: selectors against ten label sets (missing labels, an explicit
 *   empty value, a newline, UTF-8), and regexes against nineteen values. The
 *   expected answers are Prometheus' own: `promtool test rules` of Debian's
 *   Prometheus 2.42 ran each selector over the same series, every regex
 *   wrapped in (?s:...) because 2.42's `.` did not yet match "\n" (Prometheus
 *   3's does, and so do we). One regex answer differs between 2.42 and 3 and
 *   is noted where it is.
 * - The planner's literal sets and prefixes, and the matcher's use of them.
 * - Eight threads matching against one selector at once; a regex that makes
 *   PCRE2's backtracking give up still gets an answer; nesting past Go's
 *   limit is Go's error.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "record.h"
#include "select.h"

/* ---- helpers ---- */

static struct select *parse_ok(const char *text)
{
	struct select *s = NULL;
	struct err e = {0};
	int rc = select_parse(text, &s, &e);

	cr_assert_eq(rc, 0, "%s: %s (%d)", text, e.msg, rc);
	cr_assert_not_null(s);
	return s;
}

static void parse_fails(const char *text, int code, const char *msg)
{
	struct select *const untouched = (struct select *)&untouched;
	struct select *s = untouched;
	struct err e = {0};
	int rc = select_parse(text, &s, &e);

	cr_expect_eq(rc, code, "%s: got %d, %s", text, rc, e.msg);
	cr_expect_str_eq(e.msg, msg, "%s", text);
	cr_expect_eq(s, untouched, "%s: *out changed on failure", text);
}

static const char *op_name(enum select_op op)
{
	static const char *const names[] = {"=", "!=", "=~", "!~"};

	return names[op];
}

/* ---- parsing ---- */

struct want {
	const char *name;
	enum select_op op;
	const char *value;
	size_t value_len;   /* 0: strlen(value) */
};

struct parse_case {
	const char *text;
	size_t n;
	struct want m[6];
};

#define EQ SELECT_EQ
#define NE SELECT_NE
#define RE SELECT_RE
#define NRE SELECT_NRE

static const struct parse_case parse_cases[] = {
	{"app_requests_total{job=\"api\", path=~\"/v1/.*\", code!=\"200\", method!~\"GET|PUT\"}", 5,
	 {{"job", EQ, "api", 0}, {"path", RE, "/v1/.*", 0}, {"code", NE, "200", 0}, {"method", NRE, "GET|PUT", 0},
	  {"__name__", EQ, "app_requests_total", 0}}},
	/* From Prometheus' parse_test.go. */
	{"foo", 1, {{"__name__", EQ, "foo", 0}}},
	{"min", 1, {{"__name__", EQ, "min", 0}}},
	{"foo:bar{a=\"bc\"}", 2, {{"a", EQ, "bc", 0}, {"__name__", EQ, "foo:bar", 0}}},
	{"{\"foo\"}", 1, {{"__name__", EQ, "foo", 0}}},
	{"{'foo\\'bar', 'a\\\\dos\\\\path'='boo\\\\urns'}", 2,
	 {{"__name__", EQ, "foo'bar", 0}, {"a\\dos\\path", EQ, "boo\\urns", 0}}},
	{"{'foo\\'bar', `a\\dos\\path`=\"boo\"}", 2, {{"__name__", EQ, "foo'bar", 0}, {"a\\dos\\path", EQ, "boo", 0}}},
	{"{\"foo\", a=\"bc\"}", 2, {{"__name__", EQ, "foo", 0}, {"a", EQ, "bc", 0}}},
	{"foo{NaN='bc'}", 2, {{"NaN", EQ, "bc", 0}, {"__name__", EQ, "foo", 0}}},
	{"foo{bar='}'}", 2, {{"bar", EQ, "}", 0}, {"__name__", EQ, "foo", 0}}},
	{"foo{a=\"b\", foo!=\"bar\", test=~\"test\", bar!~\"baz\"}", 5,
	 {{"a", EQ, "b", 0}, {"foo", NE, "bar", 0}, {"test", RE, "test", 0}, {"bar", NRE, "baz", 0},
	  {"__name__", EQ, "foo", 0}}},
	{"{a=\"b\", foo!=\"bar\", \"foo\", test=~\"test\", bar!~\"baz\"}", 5,
	 {{"a", EQ, "b", 0}, {"foo", NE, "bar", 0}, {"__name__", EQ, "foo", 0}, {"test", RE, "test", 0},
	  {"bar", NRE, "baz", 0}}},
	{"foo{a=\"b\", foo!=\"bar\", test=~\"test\", bar!~\"baz\",}", 5,
	 {{"a", EQ, "b", 0}, {"foo", NE, "bar", 0}, {"test", RE, "test", 0}, {"bar", NRE, "baz", 0},
	  {"__name__", EQ, "foo", 0}}},
	{"{__name__=~\"bar\", __name__!~\"baz\"}", 2, {{"__name__", RE, "bar", 0}, {"__name__", NRE, "baz", 0}}},
	{"{__name__=\"bar\", __name__=\"baz\"}", 2, {{"__name__", EQ, "bar", 0}, {"__name__", EQ, "baz", 0}}},
	{"{\"bar\", __name__=\"baz\"}", 2, {{"__name__", EQ, "bar", 0}, {"__name__", EQ, "baz", 0}}},
	/* Our own. */
	{" \t\n foo \n { a \t = \n \"b\" , } \n", 2, {{"a", EQ, "b", 0}, {"__name__", EQ, "foo", 0}}},
	{"foo # the metric\n{a=\"b\", # first\n c=~'d' # last\n}# done", 3,
	 {{"a", EQ, "b", 0}, {"c", RE, "d", 0}, {"__name__", EQ, "foo", 0}}},
	{"{a=\"x\", b='y', c=`z\n\\\"`}", 3, {{"a", EQ, "x", 0}, {"b", EQ, "y", 0}, {"c", EQ, "z\n\\\"", 0}}},
	{"sum{by=\"x\", on=\"y\", bool=\"z\", offset!=\"w\"}", 5,
	 {{"by", EQ, "x", 0}, {"on", EQ, "y", 0}, {"bool", EQ, "z", 0}, {"offset", NE, "w", 0},
	  {"__name__", EQ, "sum", 0}}},
	{"offset", 1, {{"__name__", EQ, "offset", 0}}},
	{"start{}", 1, {{"__name__", EQ, "start", 0}}},
	{":", 1, {{"__name__", EQ, ":", 0}}},
	{"a:b:{_=\"1\"}", 2, {{"_", EQ, "1", 0}, {"__name__", EQ, "a:b:", 0}}},
	{"infinity", 1, {{"__name__", EQ, "infinity", 0}}},
	{"{x!=\"\"}", 1, {{"x", NE, "", 0}}},
	{"{x!~\"\"}", 1, {{"x", NRE, "", 0}}},
	{"{\"http.method\"=\"GET\", \"\xc3\xa9t\xc3\xa9\"!~\"x\"}", 2,
	 {{"http.method", EQ, "GET", 0}, {"\xc3\xa9t\xc3\xa9", NRE, "x", 0}}},
	{"{a=\"\\x00b\"}", 1, {{"a", EQ, "\0b", 2}}},
};

Test(select_parse, fields_of_every_matcher)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct select *s = parse_ok(c->text);

		cr_assert_eq(select_count(s), c->n, "%s: %zu matchers", c->text, select_count(s));
		for (size_t j = 0; j < c->n; j++) {
			const struct select_matcher *m = select_matcher(s, j);
			const struct want *w = &c->m[j];
			size_t vlen = w->value_len ? w->value_len : strlen(w->value);

			cr_expect_eq(m->name_len, strlen(w->name), "%s #%zu", c->text, j);
			cr_expect_str_eq(m->name, w->name, "%s #%zu", c->text, j);
			cr_expect_eq(m->op, w->op, "%s #%zu: %s", c->text, j, op_name(m->op));
			cr_expect_eq(m->value_len, vlen, "%s #%zu", c->text, j);
			cr_expect(memcmp(m->value, w->value, vlen) == 0, "%s #%zu: value", c->text, j);
			cr_expect_eq(m->value[vlen], '\0', "%s #%zu: NUL after the value", c->text, j);
		}
		cr_expect_null(select_matcher(s, c->n));
		select_free(s);
	}
}

Test(select_parse, select_parse_n_takes_a_length)
{
	const char text[] = "foo{a=\"b\"}garbage";
	struct select *s = NULL;
	struct err e = {0};

	cr_assert_eq(select_parse_n(text, 10, &s, &e), 0, "%s", e.msg);
	cr_expect_eq(select_count(s), 2);
	select_free(s);
	cr_expect_eq(select_parse_n(text, 9, &s, &e), SNAPARC_INVALID);
	cr_expect_str_eq(e.msg, "column 10: expected ',' or '}', found end of input");
	select_free(NULL);
}

/* ---- errors ---- */

struct error_case {
	const char *text;
	const char *msg;
};

static const struct error_case error_cases[] = {
	/* Prometheus' parse_test.go cases (its messages differ; its columns are
	 * those of the token, ours of the character that is wrong). */
	{"{", "column 2: expected a label name or '}', found end of input"},
	{"}", "column 1: expected a metric name or '{', found '}'"},
	{"some{", "column 6: expected a label name or '}', found end of input"},
	{"some}", "column 5: expected '{' or end of input, found '}'"},
	{"some_metric{a=b}", "column 15: expected a quoted string, found identifier \"b\""},
	{"some_metric{a:b=\"b\"}", "column 14: expected '=', '!=', '=~' or '!~', found ':'"},
	{"foo{a*\"b\"}", "column 6: expected '=', '!=', '=~' or '!~', found '*'"},
	{"foo{a>=\"b\"}", "column 6: expected '=', '!=', '=~' or '!~', found '>'"},
	{"some_metric{a=\"\xff\"}", "column 16: invalid UTF-8 rune"},
	{"foo{gibberish}", "column 14: expected '=', '!=', '=~' or '!~', found '}'"},
	{"foo{1}", "column 5: expected a label name or '}', found '1'"},
	{"foo{__name__= =}", "column 15: expected a quoted string, found '='"},
	{"foo{,}", "column 5: expected a label name or '}', found ','"},
	{"foo{__name__ == \"bar\"}", "column 15: expected a quoted string, found '='"},
	{"foo{__name__=\"bar\" lol}", "column 20: expected ',' or '}', found identifier \"lol\""},
	{"foo{\"a\"=}", "column 9: expected a quoted string, found '}'"},
	/* Our own. */
	{"", "column 1: expected a metric name or '{', found end of input"},
	{"  # only a comment\n", "line 2, column 1: expected a metric name or '{', found end of input"},
	{"{job=\"api\",pa<\"x\"}", "column 14: expected '=', '!=', '=~' or '!~', found '<'"},
	{"{job=\"api\", path \"x\"}", "column 18: expected '=', '!=', '=~' or '!~', found string"},
	{"{a!b}", "column 3: expected '=', '!=', '=~' or '!~', found '!'"},
	{"{a= ~\"b\"}", "column 5: expected a quoted string, found '~'"},
	{"{a=\"b\",,}", "column 8: expected a label name or '}', found ','"},
	{"{a=\"b\" c=\"d\"}", "column 8: expected ',' or '}', found identifier \"c\""},
	{"{\"foo\" bar}", "column 8: expected ',' or '}', found identifier \"bar\""},
	{"foo bar", "column 5: expected '{' or end of input, found identifier \"bar\""},
	{"foo{a=\"b\"} x", "column 12: expected end of input, found identifier \"x\""},
	{"foo{a=\"b\"}[5m]", "column 11: expected end of input, found '['"},
	{"foo{a=\"b\"}{c=\"d\"}", "column 11: expected end of input, found '{'"},
	{"rate(foo[5m])", "column 5: expected '{' or end of input, found '('"},
	{"1foo", "column 1: expected a metric name or '{', found '1'"},
	{"\"foo\"", "column 1: expected a metric name or '{', found string"},
	{"{a.b=\"x\"}", "column 3: expected '=', '!=', '=~' or '!~', found '.'"},
	{"{\xc3\xa9=\"x\"}", "column 2: expected a label name or '}', found character U+00E9"},
	{"foo{\n  a=\"b\",\n  c ~ \"d\"\n}", "line 3, column 5: expected '=', '!=', '=~' or '!~', found '~'"},
	{"\xc3\xa9t\xc3\xa9{a=\"b\"}", "column 1: expected a metric name or '{', found character U+00E9"},
	/* Words Prometheus lexes as other tokens are not metric names. */
	{"on{a=\"b\"}", "column 1: expected a metric name or '{', found keyword \"on\""},
	{"bool", "column 1: expected a metric name or '{', found keyword \"bool\""},
	{"IGNORING{a=\"b\"}", "column 1: expected a metric name or '{', found keyword \"IGNORING\""},
	{"group_left", "column 1: expected a metric name or '{', found keyword \"group_left\""},
	{"group_right", "column 1: expected a metric name or '{', found keyword \"group_right\""},
	{"atan2{a=\"b\"}", "column 1: expected a metric name or '{', found keyword \"atan2\""},
	{" Inf{a=\"b\"}", "column 2: expected a metric name or '{', found number \"Inf\""},
	{"NaN", "column 1: expected a metric name or '{', found number \"NaN\""},
	/* Strings. */
	{"{a=\"unterminated}", "column 4: unterminated quoted string"},
	{"{a='x\ny'}", "column 4: unterminated quoted string"},
	{"{a=`raw}", "column 4: unterminated raw string"},
	{"{a=\"\\q\"}", "column 5: unknown escape sequence U+0071 'q'"},
	{"{a=\"\\'\"}", "column 5: unknown escape sequence U+0027 '''"},
	{"{a='\\\"'}", "column 5: unknown escape sequence U+0022 '\"'"},
	{"{a=\"\\x4g\"}", "column 5: illegal character U+0067 'g' in escape sequence"},
	{"{a=\"\\x4\"}", "column 5: illegal character U+0022 '\"' in escape sequence"},
	{"{a=\"\\u12\"}", "column 5: illegal character U+0022 '\"' in escape sequence"},
	{"{a=\"\\", "column 5: escape sequence not terminated"},
	{"{a=\"\\x", "column 5: escape sequence not terminated"},
	{"{a=\"\\ud800\"}", "column 5: escape sequence is an invalid Unicode code point"},
	{"{a=\"\\U00110000\"}", "column 5: escape sequence is an invalid Unicode code point"},
	{"{a=\"\\400\"}", "column 5: escape sequence is an invalid Unicode code point"},
	{"{a=\"x\xc3\"}", "column 6: invalid UTF-8 rune"},
	{"{a=`\xed\xa0\x80`}", "column 5: invalid UTF-8 rune"},
	/* Prometheus' lexer takes utf8.RuneError for an error even when it is a
	 * real U+FFFD; the escape \uFFFD is fine. */
	{"{a=\"\xef\xbf\xbd\"}", "column 5: invalid UTF-8 rune"},
	/* Regexes: Go's messages, at the column where the fragment starts. */
	{"{a=~\"a**\"}", "column 7: error parsing regexp: invalid nested repetition operator: `**`"},
	{"{a=~\"a*?+\"}", "column 7: error parsing regexp: invalid nested repetition operator: `*?+`"},
	{"{a=~\"a{2}{3}\"}", "column 7: error parsing regexp: invalid nested repetition operator: `{2}{3}`"},
	{"{a=~\"*a\"}", "column 6: error parsing regexp: missing argument to repetition operator: `*`"},
	{"{a=~\"a|?\"}", "column 8: error parsing regexp: missing argument to repetition operator: `?`"},
	{"{a=~\"(+)\"}", "column 7: error parsing regexp: missing argument to repetition operator: `+`"},
	{"{a=~\"x{1001}\"}", "column 7: error parsing regexp: invalid repeat count: `{1001}`"},
	{"{a=~\"x{2,1}\"}", "column 7: error parsing regexp: invalid repeat count: `{2,1}`"},
	{"{a=~\"(a{1000}){1000}\"}", "column 15: error parsing regexp: invalid repeat count: `{1000}`"},
	{"{a=~\"(a\"}", "column 6: error parsing regexp: missing closing ): `(a`"},
	{"{a=~\"a)b\"}", "column 6: error parsing regexp: unexpected ): `a)b`"},
	{"{a=~\"x[a\"}", "column 7: error parsing regexp: missing closing ]: `[a`"},
	{"{a=~\"[]\"}", "column 6: error parsing regexp: missing closing ]: `[]`"},
	{"{a=~\"[z-a]\"}", "column 7: error parsing regexp: invalid character class range: `z-a`"},
	{"{a=~\"[[:foo:]]\"}", "column 7: error parsing regexp: invalid character class range: `[:foo:]`"},
	{"{a=~\"\\\\p{greek}\"}", "column 6: error parsing regexp: invalid character class range: `\\p{greek}`"},
	{"{a=~\"\\\\p{Greek\"}", "column 6: error parsing regexp: invalid character class range: `\\p{Greek`"},
	/* found by fuzz_select: a NUL in a class name read past the name table */
	{"{a=~\"\\\\p{C\\x00}\"}", "column 6: error parsing regexp: invalid character class range: `\\p{C\\x00}`"},
	{"{a=~\"\\\\8\"}", "column 6: error parsing regexp: invalid escape sequence: `\\8`"},
	{"{a=~\"\\\\Z\"}", "column 6: error parsing regexp: invalid escape sequence: `\\Z`"},
	{"{a=~\"\\\\C\"}", "column 6: error parsing regexp: invalid escape sequence: `\\C`"},
	{"{a=~\"[\\\\b]\"}", "column 7: error parsing regexp: invalid escape sequence: `\\b`"},
	{"{a=~\"\\\\x{110000}\"}", "column 6: error parsing regexp: invalid escape sequence: `\\x{110000`"},
	{"{a=~\"\\\\\"}", "column 6: error parsing regexp: trailing backslash at end of expression: ``"},
	{"{a=~\"(?x)\"}", "column 6: error parsing regexp: invalid or unsupported Perl syntax: `(?x`"},
	{"{a=~\"(?i-)\"}", "column 6: error parsing regexp: invalid or unsupported Perl syntax: `(?i-)`"},
	{"{a=~\"(?=a)\"}", "column 6: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
	{"{a=~\"(?P<>a)\"}", "column 6: error parsing regexp: invalid named capture: `(?P<>`"},
	{"{a=~\"(?P=n)\"}", "column 6: error parsing regexp: invalid or unsupported Perl syntax: `(?P`"},
	{"{a=~\"(?<n\"}", "column 6: error parsing regexp: invalid named capture: `(?<n`"},
	/* The regex is the unquoted value: columns follow escapes back. */
	{"{a=~\"\\x41b\\\\8\"}", "column 11: error parsing regexp: invalid escape sequence: `\\8`"},
	{"{a=~'\\u00e9(' }", "column 6: error parsing regexp: missing closing ): `\xc3\xa9(`"},
	{"{a=~\"\\xff\"}", "column 6: error parsing regexp: invalid UTF-8: `\\xff`"},
	{"foo{b=\"x\",\n a=~`a\n b**`}", "line 3, column 3: error parsing regexp: invalid nested repetition operator: `**`"},
	/* After parsing: Prometheus' checkAST rules. */
	{"foo{__name__=\"bar\"}", "column 1: metric name must not be set twice: \"foo\" or \"bar\""},
	{"  foo{\"bar\"}", "column 3: metric name must not be set twice: \"foo\" or \"bar\""},
	{"foo{a=\"b\", __name__!~\"x\\n\"}", "column 1: metric name must not be set twice: \"foo\" or \"x\\n\""},
};

Test(select_parse, every_error_with_its_message_and_column)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
		parse_fails(error_cases[i].text, SNAPARC_INVALID, error_cases[i].msg);
}

Test(select_parse, no_text_is_invalid)
{
	struct select *s = NULL;
	struct err e = {0};

	cr_expect_eq(select_parse(NULL, &s, &e), SNAPARC_INVALID);
	cr_expect_null(s);
}

Test(select_parse, scripts_newer_than_pcre2_are_unsupported)
{
	/* Go (Unicode 15) knows Kawi; Debian 12's PCRE2 (Unicode 14) does not. */
	struct select *s = NULL;
	struct err e = {0};
	int rc = select_parse("{a=~\"\\\\p{Kawi}\"}", &s, &e);

	if (rc == 0) {   /* a newer PCRE2 */
		select_free(s);
		return;
	}
	cr_expect_eq(rc, SNAPARC_UNSUPPORTED, "%s", e.msg);
	cr_expect(strstr(e.msg, "column 6: regexp is valid but PCRE2 cannot compile it: ") == e.msg, "%s", e.msg);
}

/* ---- the non-empty matcher rule ---- */

Test(select_nonempty, prometheus_parse_test_cases)
{
	/* Copied from Prometheus' promql/parser/parse_test.go. */
	static const char *const bad[] = {"{}", "{x=\"\"}", "{x=~\".*\"}", "{x!~\".+\"}", "{x!=\"a\"}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], SNAPARC_INVALID, "column 1: vector selector must contain at least one non-empty matcher");
}

Test(select_nonempty, every_form)
{
	static const char *const bad[] = {
		"{x=~\"a?\"}", "{x=~\"|a\"}", "{x=~\"\"}", "{x!~\"a\"}", "{x!~\"(?s:.)+\"}", "{x=~\"x*\", y!=\"z\", z=\"\"}",
		"{__name__=\"\"}", "{__name__=~\"a?\"}", "{\"\"}", "{x=~\"(?i)\"}", "{x=~\"\\\\B\"}", "{x=~\"^$\"}",
		"{x=~\"\\\\Q\\\\E\"}", "{x=~\"a{0}\"}", "{x!~\"a+\"}",
	};
	static const char *const good[] = {
		"{x=\"a\"}", "{x!=\"\"}", "{x=~\".+\"}", "{x!~\"\"}", "{x!~\".*\"}", "{x=\"\", y=\"a\"}",
		"{x=~\".*\", y=~\"a\"}", "foo", "foo{x=\"\"}", "foo{x=~\".*\"}", "{\"foo\"}", "{__name__=~\".+\"}",
		"{x=~\"\\\\b\"}", "{x=~\"[^\\\\x00-\\\\x{10FFFF}]\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], SNAPARC_INVALID, "column 1: vector selector must contain at least one non-empty matcher");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		select_free(parse_ok(good[i]));
}

Test(select_nonempty, matches_empty_of_each_matcher)
{
	static const struct {
		const char *text;
		int empty[4];
	} cases[] = {
		{"foo{a=\"\", b!=\"\", c=~\"x?\", d!~\"x?\"}", {1, 0, 1, 0}},
		{"foo{a=\"x\", b!=\"x\", c=~\"x\", d!~\"x\"}", {0, 1, 0, 1}},
		{"foo{a=~\".*\", b=~\".+\", c!~\".*\", d!~\".+\"}", {1, 0, 0, 1}},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct select *s = parse_ok(cases[i].text);

		for (size_t j = 0; j < 4; j++)
			cr_expect_eq(select_matcher_matches_empty(select_matcher(s, j)), cases[i].empty[j], "%s #%zu",
				     cases[i].text, j);
		cr_expect_eq(select_matcher_matches_empty(select_matcher(s, 4)), 0, "the metric name");
		select_free(s);
	}
}

/* ---- Go escapes ---- */

Test(select_strings, go_escapes_raw_strings_and_utf8)
{
	static const struct {
		const char *text;
		const char *value;
		size_t len;
	} cases[] = {
		{"{a=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"}", "\a\b\f\n\r\t\v\\\"", 9},
		{"{a='\\a\\b\\f\\n\\r\\t\\v\\\\\\''}", "\a\b\f\n\r\t\v\\'", 9},
		{"{a=\"'\", b='\"'}", "'", 1},
		{"{a=\"\\x41\\101\\u00e9\\U0001F600\\377\\x00\\000\"}", "AA\xc3\xa9\xf0\x9f\x98\x80\xff\0\0", 11},
		{"{a=\"\\u00E9\\xC3\\xA9\\303\\251\"}", "\xc3\xa9\xc3\xa9\xc3\xa9", 6},
		{"{a=\"\\uFFFD\"}", "\xef\xbf\xbd", 3},
		{"{a=\"\\U0010FFFF\"}", "\xf4\x8f\xbf\xbf", 4},
		{"{a=`\\n\\x41\"'\n#`}", "\\n\\x41\"'\n#", 10},
		{"{a=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 #x\"}", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 #x", 12},
		{"{a=\"\"}", "", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct select *s;
		struct err e = {0};
		const struct select_matcher *m;
		char text[128];

		/* a metric name keeps a="" from being the only (empty) matcher */
		snprintf(text, sizeof(text), "x%s", cases[i].text);
		cr_assert_eq(select_parse(text, &s, &e), 0, "%s: %s", text, e.msg);
		m = select_matcher(s, 0);
		cr_expect_eq(m->value_len, cases[i].len, "%s: %zu bytes", text, m->value_len);
		cr_expect(memcmp(m->value, cases[i].value, cases[i].len) == 0, "%s", text);
		select_free(s);
	}
}

/* ---- semantics ---- */

struct label {
	const char *name, *value;
};

#define MAX_LABELS 6

/* The label sets: a missing label and an explicit empty one both read "". */
static const struct label label_sets[][MAX_LABELS] = {
	{{"__name__", "app_requests_total"}, {"code", "200"}, {"job", "api"}, {"method", "GET"}, {"path", "/v1/users"}},
	{{"__name__", "app_requests_total"}, {"code", "500"}, {"job", "api"}, {"method", "POST"}, {"path", "/v1/orders"}},
	{{"__name__", "app_requests_total"}, {"code", "404"}, {"job", "api"}, {"method", "PUT"}, {"path", "/v2/users"}},
	{{"__name__", "app_requests_total"}, {"code", "200"}, {"job", "web"}, {"method", "GET"}, {"path", "/"}},
	{{"__name__", "app_requests_total"}, {"code", "503"}, {"job", "api"}},
	{{"__name__", "up"}, {"instance", "a\nb"}, {"job", "api"}},
	{{"__name__", "up"}, {"instance", "\xc3\xa9"}, {"job", ""}},
	{{"__name__", "up"}, {"instance", "\xc5\xbf"}, {"job", "API"}},
	{{"__name__", "up"}, {"instance", "ab"}},
	{{"__name__", "up"}, {"instance", "a"}},
};
#define NSETS (sizeof(label_sets) / sizeof(label_sets[0]))

static void encode_labels(size_t i, struct buf *b, struct rec_labels *out)
{
	struct rec_label ls[MAX_LABELS];
	size_t n = 0;

	for (; n < MAX_LABELS && label_sets[i][n].name; n++) {
		ls[n].name = label_sets[i][n].name;
		ls[n].name_len = strlen(ls[n].name);
		ls[n].value = label_sets[i][n].value;
		ls[n].value_len = strlen(ls[n].value);
	}
	buf_reset(b);
	rec_labels_encode(b, ls, n);
	cr_assert(!b->oom);
	out->raw = b->p;
	out->raw_len = b->len;
	out->count = (uint32_t)n;
}

/* Which label sets each selector selects, as Prometheus answered (see the
 * top of this file): "1" at position i for label set i. */
static const struct {
	const char *text;
	const char *sets;
} semantics[] = {
	{"app_requests_total{job=\"api\", path=~\"/v1/.*\", code!=\"200\", method!~\"GET|PUT\"}", ".1........"},
	{"app_requests_total", "11111....."},
	{"{job=\"api\"}", "111.11...."},
	{"{job!=\"api\", __name__=~\".+\"}", "...1..1111"},
	{"{path=\"\", __name__!=\"\"}", "....111111"},
	{"{path!~\".+\", job=~\"api|web\"}", "....11...."},
	{"{path=~\"/v1/.*\"}", "11........"},
	{"{path=~\"/v1\"}", ".........."},
	{"{path=~\"/v.\"}", ".........."},
	{"{path=~\"/v./users\"}", "1.1......."},
	{"{method=~\"GET|PUT\"}", "1.11......"},
	{"{method=~\"get|put\"}", ".........."},
	{"{method=~\"(?i)get|put\"}", "1.11......"},
	{"{method=~\"(?i:get)|put\"}", "1..1......"},
	{"{method!~\"GET|PUT\", job=\"api\"}", ".1..11...."},
	{"{instance=~\"a\"}", ".........1"},
	{"{instance=~\"a.*\"}", ".....1..11"},
	{"{instance=~\"a.b\"}", ".....1...."},
	{"{instance=~\"(?-s)a.b\"}", ".........."},
	{"{instance=~\"a\\nb\"}", ".....1...."},
	{"{instance=~\"(?m)^b$\"}", ".........."},
	{"{instance=~\"(?m)a$\"}", ".........1"},
	{"{instance=~\"a$\"}", ".........1"},
	{"{instance=~\".\"}", "......11.1"},
	{"{instance=~\"..\"}", "........1."},
	{"{instance=~\"é|ſ\"}", "......11.."},
	{"{instance=~\"(?i)S\"}", ".......1.."},
	{"{instance=~\"(?i)É\"}", "......1..."},
	{"{instance=~\"\\\\w\"}", ".........1"},
	{"{instance=~\"\\\\pL\"}", "......11.1"},
	{"{instance=~\"[^a]\"}", "......11.."},
	{"{instance=~\"\\\\x{e9}\"}", "......1..."},
	{"{instance=~\"a\\\\b.*\"}", ".....1...1"},
	{"{job=~\"API\", instance!=\"\"}", ".......1.."},
	{"{job=~\"(?i)api\"}", "111.11.1.."},
	{"{job=\"\", instance=~\".+\"}", "......1.11"},
	{"{job!=\"\", instance=~\".+\"}", ".....1.1.."},
	{"{job=~\".*\", instance=~\".+\"}", ".....11111"},
	{"{job=~\".+\", instance=~\".+\"}", ".....1.1.."},
	{"{job!~\"api\", instance=~\".+\"}", "......1111"},
	{"{code=~\"[45]..\"}", ".11.1....."},
	{"{code=~\"5\\\\d\\\\d\"}", ".1..1....."},
	{"{code=~\"2.*|4.*\"}", "1.11......"},
	{"{code!~\"2..\", __name__=\"app_requests_total\"}", ".11.1....."},
	{"{nonexistent=\"\", job=\"web\"}", "...1......"},
	{"{nonexistent=~\"\", job=\"web\"}", "...1......"},
	{"{nonexistent!=\"x\", job=\"web\"}", "...1......"},
	{"{nonexistent=~\"x?\", job=\"web\"}", "...1......"},
	{"{nonexistent!~\"x\", job=\"web\"}", "...1......"},
	{"{nonexistent=\"x\", job=\"web\"}", ".........."},
	{"{__name__=~\"up|app_requests_total\", job=\"api\", path=~\"\"}", "....11...."},
};

Test(select_semantics, selectors_against_label_sets_as_prometheus_answers)
{
	struct buf b = {0};
	struct rec_labels ls;

	for (size_t i = 0; i < sizeof(semantics) / sizeof(semantics[0]); i++) {
		struct select *s = parse_ok(semantics[i].text);

		for (size_t j = 0; j < NSETS; j++) {
			encode_labels(j, &b, &ls);
			cr_expect_eq(select_matches(s, &ls), semantics[i].sets[j] == '1', "%s on label set %zu",
				     semantics[i].text, j);
		}
		select_free(s);
	}
	buf_free(&b);
}

/* The values the regex table runs on; "" is also every missing label. */
static const struct {
	const char *v;
	size_t len;
} values[] = {
	{"", 0}, {"a", 1}, {"A", 1}, {"ab", 2}, {"a\nb", 3}, {"\n", 1}, {"\xc3\xa9", 2}, {"\xc3\x89", 2},
	{"\xc5\xbf", 2}, {"\xe2\x84\xaa", 3}, {"k", 1}, {"s", 1}, {"\v", 1}, {" ", 1}, {"\xff", 1}, {"a\xff", 2},
	{"0", 1}, {"_", 1}, {"GET", 3},
};
#define NVALUES (sizeof(values) / sizeof(values[0]))

/* Regexes (as the unquoted value of =~) and which values they match, as
 * Prometheus answered: é É ſ (U+017F) K (U+212A, Kelvin) and the invalid
 * byte 0xff are the values at 6, 7, 8, 9 and 14. */
static const struct {
	const char *re;
	const char *matches;
} regexes[] = {
	{"a", ".1................."},
	{"ab|a", ".1.1..............."},
	{"a|ab", ".1.1..............."},
	{".", ".11..1111111111.11."},
	{".*", "1111111111111111111"},
	{"(?-s).*", "1111..1111111111111"},
	{"\\n", ".....1............."},
	{".+", ".111111111111111111"},
	{"\\s", ".....1.......1....."},
	{"[[:space:]]", ".....1......11....."},
	{"\\S", ".11...1111111.1.11."},
	{"\\w", ".11.......11....11."},
	{"\\W", ".....11111..111...."},
	{"(?i)\\W", ".....111....111...."},
	{"\\d", "................1.."},
	{"\\D", ".11..1111111111..1."},
	{"[^a]", "..1..1111111111.11."},
	{"(?i)[^a]", ".....1111111111.11."},
	{"(?i)k", ".........11........"},
	{"(?i)s", "........1..1......."},
	{"(?i)[k-s]", "........1111......."},
	{"\\pL", ".11...111111......."},
	{"\\PL", ".....1......111.11."},
	{"\\p{Latin}", ".11...111111......."},
	{"\\p{Greek}", "..................."},
	/* Prometheus 2.42 (Go's engine) also matches "\xff" here; Prometheus 3
	 * compares a lone literal bytewise, as we do. */
	{"\\x{FFFD}", "..................."},
	{"\\x{e9}", "......1............"},
	{"\\351", "......1............"},
	{"[\\x{e9}-\\x{ff}]", "......1............"},
	{"\\Qa.\\E*", ".1................."},
	{"^a$", ".1................."},
	{"\\Aa\\z", ".1................."},
	{"(?m)^a$\\n^b$", "....1.............."},
	{"a(?m)$\\n^b", "....1.............."},
	{"\\b", "..................."},
	{"\\ba\\b", ".1................."},
	{"a\\B", "..................."},
	{"(?U)a+", ".1................."},
	{"a{0}", "1.................."},
	{"a{1,}", ".1................."},
	{"x*", "1.................."},
	{"[[:^alpha:]]", ".....11111..111.11."},
	{"[[:word:]]+", ".111......11....111"},
	{"(?i)GET", "..................1"},
	{"(?i:g)ET", "..................1"},
	{"a.b", "....1.............."},
	{"a[^x]b", "....1.............."},
	{"(|a)+", "11................."},
	{"(a|)+b?", "11.1..............."},
	{"\\x{212A}", ".........1........."},
	{"(?i)\\x{212A}", ".........11........"},
};

/* Writes re as a Go double-quoted string. */
static void go_quote(char *out, size_t cap, const char *re)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *re && n + 3 < cap; re++) {
		if (*re == '"' || *re == '\\')
			out[n++] = '\\';
		out[n++] = *re;
	}
	out[n++] = '"';
	out[n] = '\0';
}

Test(select_semantics, regexes_against_values_as_prometheus_answers)
{
	for (size_t i = 0; i < sizeof(regexes) / sizeof(regexes[0]); i++) {
		char quoted[128], text[300];
		struct select *s;
		const struct select_matcher *re, *nre;

		go_quote(quoted, sizeof(quoted), regexes[i].re);
		snprintf(text, sizeof(text), "m{a=~%s, b!~%s}", quoted, quoted);
		s = parse_ok(text);
		re = select_matcher(s, 0);
		nre = select_matcher(s, 1);
		for (size_t j = 0; j < NVALUES; j++) {
			int want = regexes[i].matches[j] == '1';

			cr_expect_eq(select_matcher_matches(re, values[j].v, values[j].len), want, "%s on value %zu", text, j);
			cr_expect_eq(select_matcher_matches(nre, values[j].v, values[j].len), !want, "%s on value %zu",
				     text, j);
		}
		cr_expect_eq(select_matcher_matches(re, NULL, 0), regexes[i].matches[0] == '1', "NULL is \"\"");
		cr_expect_eq(select_matcher_matches_empty(re), regexes[i].matches[0] == '1', "%s", text);
		select_free(s);
	}
}

Test(select_semantics, equality_is_bytewise)
{
	struct select *s = parse_ok("{a=\"\\xff\\x00x\", b!=\"\\u00e9\"}");
	const struct select_matcher *a = select_matcher(s, 0), *b = select_matcher(s, 1);

	cr_expect_eq(select_matcher_matches(a, "\xff\0x", 3), 1);
	cr_expect_eq(select_matcher_matches(a, "\xff", 1), 0);
	cr_expect_eq(select_matcher_matches(a, "\xef\xbf\xbd\0x", 5), 0);
	cr_expect_eq(select_matcher_matches(b, "\xc3\xa9", 2), 0);
	cr_expect_eq(select_matcher_matches(b, "e\xcc\x81", 3), 1, "no Unicode normalisation");
	cr_expect_eq(select_matcher_matches(b, "", 0), 1);
	select_free(s);
}

Test(select_semantics, labels_not_sorted_and_repeated)
{
	/* Exemplar label sets need not be sorted; the first of a name counts. */
	struct rec_label l[3] = {
		{"z", "1", 1, 1}, {"a", "x", 1, 1}, {"a", "y", 1, 1},
	};
	struct buf b = {0};
	struct rec_labels ls;
	struct select *s = parse_ok("{a=\"x\", z=~\"1\"}");
	struct select *t = parse_ok("{a=\"y\"}");

	rec_labels_encode(&b, l, 3);
	ls.raw = b.p, ls.raw_len = b.len, ls.count = 3;
	cr_expect_eq(select_matches(s, &ls), 1);
	cr_expect_eq(select_matches(t, &ls), 0);
	ls.raw_len = 0, ls.count = 0;   /* no labels at all */
	cr_expect_eq(select_matches(s, &ls), 0);
	select_free(s);
	select_free(t);
	buf_free(&b);
}

/* ---- for the planner ---- */

static void expect_literals(const char *text, const char *const *want, size_t n)
{
	struct select *s = parse_ok(text);
	const struct select_matcher *m = select_matcher(s, 0);
	const struct select_literal *lits = NULL;
	size_t got = select_matcher_literals(m, &lits);

	cr_expect_eq(got, n, "%s: %zu literals", text, got);
	for (size_t j = 0; j < n && j < got; j++) {
		cr_expect_eq(lits[j].len, strlen(want[j]), "%s #%zu", text, j);
		cr_expect(memcmp(lits[j].value, want[j], lits[j].len) == 0, "%s #%zu: %.*s", text, j, (int)lits[j].len,
			  lits[j].value);
		/* the matcher agrees: each literal satisfies = and =~, fails != and !~ */
		cr_expect_eq(select_matcher_matches(m, lits[j].value, lits[j].len),
			     m->op == SELECT_RE || m->op == SELECT_EQ, "%s #%zu", text, j);
	}
	select_free(s);
}

Test(select_planner, literal_sets)
{
	static const char *const get_put[] = {"GET", "PUT"};
	static const char *const api[] = {"api-eu1", "api-eu2", "api-us1", "api-us2"};
	static const char *const one[] = {"a.b"};
	static const char *const xs[] = {"", "x", "xx"};
	static const char *const sorted[] = {"", "a", "ab", "b"};
	static const char *const empty[] = {""};
	static const char *const value[] = {"200"};
	static const char *const utf8[] = {"\xc3\xa9", "\xc3\xaa"};

	expect_literals("{method=~\"GET|PUT\"}", get_put, 2);
	expect_literals("{method!~\"PUT|GET|PUT\", a=\"b\"}", get_put, 2);
	expect_literals("{a=~\"api-(eu|us)[12]\"}", api, 4);
	expect_literals("{a=~\"^a\\\\.b$\"}", one, 1);
	expect_literals("{a=~\"\\\\Qa.b\\\\E\"}", one, 1);
	expect_literals("{a=~\"x{0,2}\", b=\"c\"}", xs, 3);
	expect_literals("{a=~\"b|ab?|\", b=\"c\"}", sorted, 4);
	expect_literals("{a=~\"(?:)\", b=\"c\"}", empty, 1);
	expect_literals("{a=~\"[\xc3\xa9-\xc3\xaa]\"}", utf8, 2);
	expect_literals("{code!=\"200\", a=\"b\"}", value, 1);
	expect_literals("{code=\"200\"}", value, 1);
	/* Not finite, folded, or too many. */
	expect_literals("{a=~\"a.*\"}", NULL, 0);
	expect_literals("{a=~\"(?i)get\"}", NULL, 0);
	expect_literals("{a=~\"a+\"}", NULL, 0);
	expect_literals("{a=~\"[^a]\"}", NULL, 0);
	expect_literals("{a=~\"\\\\d\\\\d\\\\d\"}", NULL, 0);   /* 1000 values, over 256 */
	expect_literals("{a=~\"\\\\bx\"}", NULL, 0);
}

static void expect_prefix(const char *text, int has, const char *prefix, int exact)
{
	struct select *s = parse_ok(text);
	const struct select_matcher *m = select_matcher(s, 0);
	const char *p = NULL;
	size_t len = 0;
	int ex = -1;

	cr_expect_eq(select_matcher_prefix(m, &p, &len, &ex), has, "%s", text);
	if (has) {
		cr_expect_eq(len, strlen(prefix), "%s", text);
		cr_expect(memcmp(p, prefix, len) == 0, "%s: %.*s", text, (int)len, p);
		cr_expect_eq(ex, exact, "%s", text);
	}
	select_free(s);
}

Test(select_planner, prefixes)
{
	expect_prefix("{path=~\"/v1/.*\"}", 1, "/v1/", 1);
	expect_prefix("{path=~\"^/v1/.*$\"}", 1, "/v1/", 1);
	expect_prefix("{path=~\"(/v1/)(.*)\"}", 1, "/v1/", 1);
	expect_prefix("{path=~\"/v1/.*?\"}", 1, "/v1/", 1);
	expect_prefix("{path=~\"/v1/.+\"}", 1, "/v1/", 0);
	expect_prefix("{path=~\"/v1/(a|b)\"}", 1, "/v1/", 0);
	expect_prefix("{path=~\"/v1/(?-s).*\"}", 1, "/v1/", 0);
	expect_prefix("m{path!~\"/v1/.*\"}", 1, "/v1/", 1);
	expect_prefix("{path=~\"\xc3\xa9t\xc3\xa9.*\"}", 1, "\xc3\xa9t\xc3\xa9", 1);
	expect_prefix("foo{path=~\".*\"}", 1, "", 1);
	expect_prefix("{path=~\"(?i)/v1/.*\"}", 0, NULL, 0);
	expect_prefix("{path=~\".*/v1/\"}", 0, NULL, 0);
	expect_prefix("{path=~\"/v1|/v2\"}", 0, NULL, 0);
	expect_prefix("{path=\"/v1/\"}", 0, NULL, 0);
}

Test(select_planner, prefix_match_is_exact)
{
	struct select *s = parse_ok("{path=~\"/v1/.*\", p2!~\"/v1/.*\"}");
	const struct select_matcher *re = select_matcher(s, 0), *nre = select_matcher(s, 1);
	static const struct {
		const char *v;
		size_t len;
		int match;
	} cases[] = {
		{"/v1/", 4, 1}, {"/v1/x\ny", 7, 1}, {"/v1/\xff", 5, 1}, {"/v1", 3, 0}, {"/v2/x", 5, 0}, {"", 0, 0},
		{"x/v1/", 5, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(select_matcher_matches(re, cases[i].v, cases[i].len), cases[i].match, "%zu", i);
		cr_expect_eq(select_matcher_matches(nre, cases[i].v, cases[i].len), !cases[i].match, "%zu", i);
	}
	select_free(s);
}

/* ---- threads and limits ---- */

struct worker {
	const struct select *s;
	int failures;
};

static void *match_many(void *arg)
{
	struct worker *w = arg;
	const struct select_matcher *m = select_matcher(w->s, 0);
	char v[32];

	for (int i = 0; i < 20000; i++) {
		int n = snprintf(v, sizeof(v), "host-%d.EXAMPLE\xff", i);

		if (select_matcher_matches(m, v, (size_t)n) != (i % 10 == 4))
			w->failures++;
	}
	return NULL;
}

Test(select_threads, many_readers_at_once)
{
	/* Hosts whose number ends in 4. The values end in an invalid byte, so
	 * every match also goes through the U+FFFD copy, and each thread has its
	 * own PCRE2 match data. */
	struct select *s = parse_ok("{host=~\"host-\\\\d*4\\\\.(?i:example).\"}");
	pthread_t t[8];
	struct worker w[8];

	for (int i = 0; i < 8; i++) {
		w[i].s = s;
		w[i].failures = 0;
		cr_assert_eq(pthread_create(&t[i], NULL, match_many, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(w[i].failures, 0, "thread %d", i);
	}
	select_free(s);
}

Test(select_limits, backtracking_blowup_still_answers)
{
	/* (a|a)* on forty a's and a ! takes PCRE2's backtracker 2^40 steps; it
	 * stops at its match limit and the DFA matcher answers instead. */
	struct select *s = parse_ok("m{a=~\"(a|a)*\"}");
	const struct select_matcher *m = select_matcher(s, 0);
	char v[64];
	struct timespec t0, t1;

	memset(v, 'a', 40);
	v[40] = '!';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_expect_eq(select_matcher_matches(m, v, 41), 0);
	cr_expect_eq(select_matcher_matches(m, v, 40), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_expect_lt(t1.tv_sec - t0.tv_sec, 10, "took %ld s", (long)(t1.tv_sec - t0.tv_sec));
	select_free(s);
}

Test(select_limits, nesting_past_go_s_limit_is_go_s_error)
{
	char text[2200], msg[512];
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "{a=~\"");
	for (int i = 0; i < 1000; i++)
		text[n++] = '(';
	text[n++] = 'a';
	for (int i = 0; i < 1000; i++)
		text[n++] = ')';
	memcpy(text + n, "\"}", 3);
	/* the fragment is the whole regex, cut in the message */
	n = (size_t)snprintf(msg, sizeof(msg), "column 6: error parsing regexp: expression nests too deeply: `");
	memset(msg + n, '(', 160);
	memcpy(msg + n + 160, "...`", 5);
	parse_fails(text, SNAPARC_INVALID, msg);
	/* 999 are fine: Go's tree is then 1000 deep, its limit */
	n = (size_t)snprintf(text, sizeof(text), "{a=~\"");
	for (int i = 0; i < 999; i++)
		text[n++] = '(';
	text[n++] = 'a';
	for (int i = 0; i < 999; i++)
		text[n++] = ')';
	memcpy(text + n, "\"}", 3);
	select_free(parse_ok(text));
}
