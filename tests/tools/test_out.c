/* The command's value formatting against Go's strconv.FormatFloat as
 * Prometheus' API uses it (jsonutil.MarshalValue). */
#include <criterion/criterion.h>
#include <math.h>

#include "out.h"

static void check(double v, const char *want)
{
	char got[FLOAT_TEXT_MAX];

	fmt_float(got, v);
	cr_expect_str_eq(got, want, "%.17g: got %s, want %s", v, got, want);
}

Test(fmt_float, fixed_notation_like_go_f_minus_one)
{
	check(0, "0");
	check(-0.0, "-0");
	check(1, "1");
	check(100, "100");
	check(0.1, "0.1");
	check(1.0 / 3, "0.3333333333333333");
	check(123.456, "123.456");
	check(-2.5, "-2.5");
	check(1e20, "100000000000000000000");
	check(0.000001, "0.000001");           /* exactly 1e-6 stays 'f' */
	check(9007199254740993.0, "9007199254740992");
}

Test(fmt_float, exponent_below_1e_minus_6_and_from_1e21)
{
	check(1e-8, "1e-08");
	check(2.5e-7, "2.5e-07");
	check(-3e-9, "-3e-09");
	check(1e21, "1e+21");
	check(1.2345e22, "1.2345e+22");
	check(5e-324, "5e-324");
	check(1.7976931348623157e308, "1.7976931348623157e+308");
}

Test(fmt_float, specials)
{
	check(NAN, "NaN");
	check(INFINITY, "+Inf");
	check(-INFINITY, "-Inf");
}
