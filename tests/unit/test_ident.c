/* Identity: rank variables, the stream marker, and the hello parser. */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "collector/collector.h"

Test(ident, parse_uint_is_strict)
{
	long	v = -5;

	cr_assert_eq(ident_parse_uint("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(ident_parse_uint("2147483647", &v), 0);
	cr_assert_eq(v, 2147483647);
	cr_assert_eq(ident_parse_uint("2147483648", &v), -1);
	cr_assert_eq(ident_parse_uint("-1", &v), -1);
	cr_assert_eq(ident_parse_uint(" 3", &v), -1);
	cr_assert_eq(ident_parse_uint("3x", &v), -1);
	cr_assert_eq(ident_parse_uint("", &v), -1);
	cr_assert_eq(ident_parse_uint(NULL, &v), -1);
}

Test(ident, env_lookup_needs_exact_name)
{
	char	*env[] = { "RANKX=9", "RANK=3", "RANK_=1", NULL };

	cr_assert_str_eq(ident_env(env, "RANK"), "3");
	cr_assert_null(ident_env(env, "RAN"));
	cr_assert_null(ident_env(NULL, "RANK"));
}

Test(ident, torchrun_variables)
{
	char			*env[] = { "RANK=5", "LOCAL_RANK=1",
	    "WORLD_SIZE=8", NULL };
	struct ident_rank	 r;

	ident_ranks(env, &r);
	cr_assert_eq(r.rank, 5);
	cr_assert_eq(r.local_rank, 1);
	cr_assert_eq(r.world_size, 8);
	cr_assert_str_eq(r.rank_var, "RANK");
}

Test(ident, meshlog_rank_overrides)
{
	char			*env[] = { "RANK=5", "MESHLOG_RANK=12", NULL };
	struct ident_rank	 r;

	ident_ranks(env, &r);
	cr_assert_eq(r.rank, 12);
	cr_assert_str_eq(r.rank_var, "MESHLOG_RANK");
}

Test(ident, invalid_value_falls_through)
{
	char			*env[] = { "MESHLOG_RANK=abc",
	    "OMPI_COMM_WORLD_RANK=7", "OMPI_COMM_WORLD_LOCAL_RANK=3",
	    "OMPI_COMM_WORLD_SIZE=16", NULL };
	struct ident_rank	 r;

	ident_ranks(env, &r);
	cr_assert_eq(r.rank, 7);
	cr_assert_str_eq(r.rank_var, "OMPI_COMM_WORLD_RANK");
	cr_assert_eq(r.local_rank, 3);
	cr_assert_eq(r.world_size, 16);
}

Test(ident, pmi_pmix_and_slurm)
{
	char			*pmix[] = { "PMIX_RANK=2", "PMI_RANK=9", NULL };
	char			*pmi[] = { "PMI_RANK=9", "PMI_SIZE=10", NULL };
	char			*slurm[] = { "SLURM_PROCID=4",
	    "SLURM_LOCALID=0", "SLURM_NTASKS=6", NULL };
	struct ident_rank	 r;

	ident_ranks(pmix, &r);
	cr_assert_eq(r.rank, 2);
	ident_ranks(pmi, &r);
	cr_assert_eq(r.rank, 9);
	cr_assert_eq(r.world_size, 10);
	ident_ranks(slurm, &r);
	cr_assert_eq(r.rank, 4);
	cr_assert_eq(r.local_rank, 0);
	cr_assert_eq(r.world_size, 6);
	cr_assert_str_eq(r.rank_var, "SLURM_PROCID");
}

Test(ident, no_launcher_means_null_rank)
{
	char			*env[] = { "HOME=/root", NULL };
	struct ident_rank	 r;

	ident_ranks(env, &r);
	cr_assert_eq(r.rank, -1);
	cr_assert_eq(r.local_rank, -1);
	cr_assert_eq(r.world_size, -1);
	cr_assert_null(r.rank_var);
}

Test(ident, stream_marker_round_trip)
{
	struct ident_streams	st, back;
	char			buf[128];

	memset(&st, 0, sizeof st);
	st.present[0] = st.present[1] = 1;
	st.dev[0] = 14;
	st.ino[0] = 123456789012ULL;
	st.dev[1] = 14;
	st.ino[1] = 42;
	cr_assert_eq(ident_format_streams(&st, buf, sizeof buf), 0);
	cr_assert_str_eq(buf, "14:123456789012,14:42");
	cr_assert_eq(ident_parse_streams(buf, &back), 0);
	cr_assert(memcmp(&st, &back, sizeof st) == 0);
}

Test(ident, stream_marker_with_one_stream)
{
	struct ident_streams	st;

	cr_assert_eq(ident_parse_streams(",14:42", &st), 0);
	cr_assert(!st.present[0] && st.present[1]);
	cr_assert_eq(st.ino[1], 42);
	cr_assert_eq(ident_parse_streams("14:42,", &st), 0);
	cr_assert(st.present[0] && !st.present[1]);
}

Test(ident, stream_marker_rejects_garbage)
{
	struct ident_streams	st;
	const char		*bad[] = { "", ",", "14:42", "14:,1:2", "a:b,c:d",
	    "14:42,15:43,16:44", "14:42,15:43x", "14-42,15:43", NULL };
	int			i;

	for (i = 0; bad[i] != NULL; i++)
		cr_expect_eq(ident_parse_streams(bad[i], &st), -1,
		    "accepted '%s'", bad[i]);
	cr_assert_eq(ident_parse_streams(NULL, &st), -1);
}

Test(ident, owner_marker)
{
	long	pid, bits, tty[2] = { -1, -1 };

	cr_assert_eq(ident_parse_owner("1234:3", &pid, &bits, tty), 0);
	cr_assert_eq(pid, 1234);
	cr_assert_eq(bits, 3);
	cr_assert_eq(ident_parse_owner("1234:15", &pid, &bits, NULL), 0);
	cr_assert_eq(bits, 15);
	cr_assert_eq(ident_parse_owner("1234:63", &pid, &bits, NULL), 0);
	cr_assert_eq(bits, 63);
	cr_assert_eq(ident_parse_owner("1234:64", &pid, &bits, NULL), -1);
	cr_assert_eq(ident_parse_owner("0:1", &pid, &bits, NULL), -1);
	cr_assert_eq(ident_parse_owner("1234", &pid, &bits, NULL), -1);
	cr_assert_eq(ident_parse_owner("x:1", &pid, &bits, NULL), -1);
	cr_assert_eq(tty[0], 0);
	cr_assert_eq(ident_parse_owner("1234:1:34819:0", &pid, &bits, tty),
	    0);
	cr_assert_eq(tty[0], 34819);
	cr_assert_eq(tty[1], 0);
	cr_assert_eq(ident_parse_owner("1234:1:34819", &pid, &bits, tty), -1);
	cr_assert_eq(ident_parse_owner("1234:1:1:2:3", &pid, &bits, tty), -1);
	cr_assert_eq(ident_parse_owner("1234:1:x:2", &pid, &bits, tty), -1);
	cr_assert_eq(ident_parse_owner("1234:1::2", &pid, &bits, tty), -1);
}

/* A hello as the shim writes it. */
static const char good_hello[] = "{\"type\":\"hello\",\"proto\":2,"
    "\"pid\":42,\"ppid\":1,\"uid\":1000,\"host\":\"node7\","
    "\"start_us\":1767323045000000,\"argv\":[\"python\",\"train.py\"],"
    "\"rank\":3,\"local_rank\":3,\"world_size\":8,\"rank_var\":\"RANK\","
    "\"nested\":true,\"buffering\":\"keep\",\"streams\":[{\"name\":"
    "\"stdout\",\"tty\":true},{\"name\":\"stderr\",\"tty\":false}]}";

Test(hello, parses_what_the_shim_sends)
{
	struct hello	 h;
	char		*cause = NULL;

	cr_assert_eq(hello_parse(good_hello, strlen(good_hello), &h, &cause),
	    0, "%s", cause);
	cr_assert_eq(h.pid, 42);
	cr_assert_eq(h.rank, 3);
	cr_assert_eq(h.world_size, 8);
	cr_assert_str_eq(h.host, "node7");
	cr_assert_str_eq(h.rank_var, "RANK");
	cr_assert_eq(json_array_size(h.argv), 2);
	cr_assert(h.nested && h.keep_buffering);
	cr_assert_eq(h.nstreams, 2);
	cr_assert_eq(h.which[0], MESHLOG_STDOUT);
	cr_assert_eq(h.which[1], MESHLOG_STDERR);
	cr_assert(h.tty[0] && !h.tty[1]);
	cr_assert(!h.merged);
	hello_clear(&h);
}

/* The hello with one substring replaced. */
static char *
mutate(const char *from, const char *to)
{
	const char	*at = strstr(good_hello, from);
	char		*out;

	cr_assert_not_null(at, "'%s' not in the hello", from);
	out = malloc(sizeof good_hello + strlen(to));
	memcpy(out, good_hello, (size_t)(at - good_hello));
	strcpy(out + (at - good_hello), to);
	strcat(out, at + strlen(from));
	return (out);
}

Test(hello, refusals_say_why)
{
	static const struct {
		const char	*from, *to, *why;
	} cases[] = {
		{ "{\"type\"", "[\"type\"", "malformed JSON" },
		{ "\"hello\"", "\"status\"", "expected a hello" },
		{ "\"proto\":2", "\"proto\":1", "protocol version 1" },
		{ "\"tty\":false}", "\"tty\":false,\"merged\":true}",
		    "only a lone stdout stream" },
		{ "\"pid\":42", "\"pid\":0", "pid" },
		{ "\"pid\":42", "\"pid\":\"42\"", "pid" },
		{ "\"host\":\"node7\"", "\"host\":\"\"", "host" },
		{ "[\"python\",\"train.py\"]", "[\"python\",7]", "argv" },
		{ "\"rank\":3", "\"rank\":-3", "rank" },
		{ "\"stderr\",\"tty\":false", "\"stdout\",\"tty\":false",
		    "stream named twice" },
		{ "\"stderr\",\"tty\":false", "\"stdin\",\"tty\":false",
		    "bad stream name" },
		{ "\"pid\":42,", "\"pid\":42,\"pid\":43,", "malformed JSON" },
		/* tty_shared: two numbers, for two streams on a terminal. */
		{ "\"streams\"", "\"tty_shared\":[5,-7],\"streams\"",
		    "tty_shared" },
		{ "\"streams\"", "\"tty_shared\":[5],\"streams\"",
		    "tty_shared" },
		{ "\"streams\"", "\"tty_shared\":true,\"streams\"",
		    "tty_shared" },
		{ "\"streams\"", "\"tty_shared\":[5,7],\"streams\"",
		    "tty_shared" },	/* stderr is no terminal */
	};
	struct hello	 h;
	char		*msg, *cause;
	size_t		 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		msg = mutate(cases[i].from, cases[i].to);
		cause = NULL;
		cr_expect_eq(hello_parse(msg, strlen(msg), &h, &cause), -1,
		    "accepted: %s", msg);
		cr_expect(cause != NULL && strstr(cause, cases[i].why) != NULL,
		    "case %zu: reason '%s' lacks '%s'", i, cause, cases[i].why);
		free(cause);
		free(msg);
	}
}

Test(hello, null_rank_and_missing_streams)
{
	struct hello	 h;
	char		*cause = NULL, *msg;

	msg = mutate("\"rank\":3", "\"rank\":null");
	cr_assert_eq(hello_parse(msg, strlen(msg), &h, &cause), 0);
	cr_assert_eq(h.rank, -1);
	hello_clear(&h);
	free(msg);
	msg = mutate("\"streams\":[", "\"streamz\":[");
	cr_assert_eq(hello_parse(msg, strlen(msg), &h, &cause), -1);
	cr_assert(strstr(cause, "streams") != NULL);
	free(cause);
	free(msg);
}

Test(hello, merged_stdout_carries_stderr)
{
	struct hello	 h;
	char		*cause = NULL, *msg;

	msg = mutate("\"tty\":true},{\"name\":\"stderr\",\"tty\":false}]",
	    "\"tty\":false,\"merged\":true}]");
	cr_assert_eq(hello_parse(msg, strlen(msg), &h, &cause), 0, "%s",
	    cause);
	cr_assert_eq(h.nstreams, 1);
	cr_assert(h.merged);
	hello_clear(&h);
	free(msg);
}

Test(hello, stdout_and_stderr_on_one_terminal)
{
	struct hello	 h;
	char		*cause = NULL, *msg;

	msg = mutate("\"stderr\",\"tty\":false}]",
	    "\"stderr\",\"tty\":true}],\"tty_shared\":[64768,9000000000]");
	cr_assert_eq(hello_parse(msg, strlen(msg), &h, &cause), 0, "%s",
	    cause);
	cr_assert(h.tty_shared && !h.merged);
	cr_assert_eq(h.nstreams, 2);
	cr_assert_eq(h.tty_at[0], 64768);
	cr_assert_eq(h.tty_at[1], 9000000000LL);
	hello_clear(&h);
	free(msg);
}

/* The hash tables answer as dlsym does, and leave dlerror alone. */
Test(ident, loaded_symbols_as_dlsym_finds_them)
{
	static const char *const names[] = { "malloc", "printf", "strlen",
	    "dlopen", "dl_iterate_phdr", "__libc_start_main", "environ",
	    "json_loads", "event_base_new", "criterion_run_all_tests",
	    "Py_Initialize", "napi_module_register", "no_such_symbol_here",
	    "mallo", "mallocx", "", "a", "_", NULL };
	char	name[32];
	int	i, n;

	(void)dlerror();
	for (i = 0; names[i] != NULL; i++) {
		n = dlsym(RTLD_DEFAULT, names[i]) != NULL;
		(void)dlerror();
		cr_assert_eq(elfsym_loaded(names[i]), n, "%s: dlsym says %d",
		    names[i], n);
		cr_assert_null(dlerror(), "%s", names[i]);
	}
	cr_assert(elfsym_loaded("malloc"));
	cr_assert_not(elfsym_loaded("Py_Initialize"));
	/* The vDSO too (dlsym does not look there): its dynamic section is
	 * read-only, its entries not moved by the loader. */
	cr_assert(elfsym_loaded("__vdso_clock_gettime"));
	/* Names that are not there, each in some bucket. */
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "meshlog_absent_%d", i);
		cr_assert_not(elfsym_loaded(name), "%s", name);
	}
	cr_assert_null(dlerror());
}
