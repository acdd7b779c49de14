/*
 * select: PromQL series selectors, `app_requests_total{job="api",
 * path=~"/v1/.*", code!="200", method!~"GET|PUT"}`, parsed and matched
 * with Prometheus' semantics, for answering selections from the archive's
 * label postings.
 *
 * What is accepted and what it means is Prometheus' (promql/parser and
 * model/labels): an optional metric name, then optional braces holding
 * `name op "value"` matchers with an optional trailing comma; names may
 * also be quoted (`{"http.method"="GET"}`) and a quoted string alone in the
 * braces names the metric, as Prometheus 3 allows. Values are quoted with
 * " or ' (Go escapes) or ` (raw). A selector must hold at least one matcher
 * that does not match the empty string, unless it has a metric name before
 * the braces, and may not name the metric both before and inside them.
 * Regular expressions are Go's RE2 syntax, fully anchored, with `.`
 * matching a newline; they run on PCRE2 after being translated, so any
 * syntax Go rejects is rejected here. select.c lists the few places where
 * the match can differ from Go's (case folding of \p{...} classes, Unicode
 * table versions).
 *
 * Matching is thread-safe: a parsed selector is read-only, and any number
 * of threads may match against it at once.
 */
#ifndef SNAPARC_SELECT_H
#define SNAPARC_SELECT_H

#include <stddef.h>

#include "err.h"
#include "record.h"

enum select_op {
	SELECT_EQ,    /* =  */
	SELECT_NE,    /* != */
	SELECT_RE,    /* =~ */
	SELECT_NRE,   /* !~ */
};

struct select_regex;  /* private: the compiled regular expression */

/*
 * One matcher. name and value are the unquoted bytes (NUL-terminated for
 * convenience, but they may hold NUL bytes: use the lengths). op is the
 * operator as written; a metric name before the braces becomes the last
 * matcher, `__name__ = "<name>"`, as in Prometheus.
 */
struct select_matcher {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	enum select_op op;
	struct select_regex *re;   /* private; NULL for = and != */
};

/* One literal value of a matcher (see select_matcher_literals). */
struct select_literal {
	const char *value;
	size_t len;
};

struct select;

/*
 * Parses a selector. On success *out is a new selector (caller frees with
 * select_free) and 0 is returned. On failure *out is untouched and the
 * return is SNAPARC_INVALID with a message naming where and what, such as
 * "column 14: expected '=', '!=', '=~' or '!~', found '<'" ("line 2,
 * column 3: ..." when the text spans lines; columns count characters),
 * SNAPARC_UNSUPPORTED for a valid regex this build of PCRE2 cannot compile
 * (a script newer than its Unicode tables, a pattern over its size limit),
 * or SNAPARC_NOMEM.
 */
int select_parse(const char *text, struct select **out, struct err *e);

/* Same, for text that is not NUL-terminated (or holds NUL bytes). */
int select_parse_n(const char *text, size_t len, struct select **out, struct err *e);

/* Frees a selector and its matchers; NULL is ignored. */
void select_free(struct select *s);

/* The number of matchers, and matcher i (borrowed until select_free). */
size_t select_count(const struct select *s);
const struct select_matcher *select_matcher(const struct select *s, size_t i);

/*
 * Whether a value satisfies the matcher: 1 yes, 0 no. A series without the
 * label has the value "" (so `x=""` and `x!~".+"` match it). A regex that
 * PCRE2 cannot finish within its resource limits, where Go's engine would
 * have answered, gives SNAPARC_UNSUPPORTED, and SNAPARC_NOMEM is possible:
 * treat any negative return as "could not decide".
 */
int select_matcher_matches(const struct select_matcher *m, const char *value, size_t len);

/*
 * The whole selector against an encoded label set (a series' labels as
 * codec/record.h decodes them): 1 if every matcher is satisfied, 0 if not,
 * negative as above. A missing label has the empty value.
 */
int select_matches(const struct select *s, const struct rec_labels *ls);

/* ---- for the index planner ---- */

/* Whether the matcher is satisfied by the empty value, and so by every
 * series that lacks the label: 1 or 0. */
int select_matcher_matches_empty(const struct select_matcher *m);

/*
 * The finite set of values the matcher's value or regex matches exactly,
 * sorted by bytes (memcmp, shorter first) without duplicates: {value} for
 * = and !=; for =~ and !~ when the regex is case-sensitive literals,
 * alternations, small character classes and bounded repeats of those
 * ("GET|PUT", "api-(eu|us)[12]", "a\\.b"), up to 256 values. The op says
 * whether they are the values to take (=, =~) or to leave out (!=, !~).
 * Returns the count and sets *out (borrowed until select_free), or returns
 * 0 when the set is not finite or too large (then scan, or see
 * select_matcher_prefix).
 */
size_t select_matcher_literals(const struct select_matcher *m, const struct select_literal **out);

/*
 * For =~ and !~: a literal prefix that every value the regex matches starts
 * with ("/v1/" for "/v1/.*" or "/v1/(a|b)"), so postings can be read from
 * that prefix on rather than from the start. *exact is 1 when the regex
 * matches every value with that prefix and nothing else ("/v1/.*"; ".*"
 * gives an empty prefix), so those postings need no further check. Returns
 * 1 and sets *prefix and *len (borrowed until select_free) when there is a
 * non-empty prefix or *exact is 1; returns 0 otherwise, and for = and !=.
 */
int select_matcher_prefix(const struct select_matcher *m, const char **prefix, size_t *len, int *exact);

#endif
