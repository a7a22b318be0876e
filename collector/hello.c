/* Parsing and checking the hello a shim sends when it registers. */

#include <stdlib.h>
#include <string.h>

#include "collector.h"

/* Integer member name of obj: 0 and *out, or -1. null gives -1 in *out. */
static int
hello_int(json_t *obj, const char *name, int nullable, long long min,
    long long *out)
{
	json_t	*v = json_object_get(obj, name);

	if (v == NULL || json_is_null(v)) {
		if (!nullable)
			return (-1);
		*out = -1;
		return (0);
	}
	if (!json_is_integer(v) || json_integer_value(v) < min)
		return (-1);
	*out = json_integer_value(v);
	return (0);
}

/* Fail with an allocated reason. */
static int
hello_fail(char **cause, const char *why, const char *name)
{
	xasprintf(cause, "%s%s%s", why, name != NULL ? ": " : "",
	    name != NULL ? name : "");
	return (-1);
}

json_t *
hello_load(const char *line, size_t len, char **cause)
{
	json_error_t	 err;
	json_t		*root;

	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		xasprintf(cause, "malformed JSON: %s", err.text);
	return (root);
}

int
hello_parse(const char *line, size_t len, struct hello *h, char **cause)
{
	json_t	*root;
	int	 rc;

	memset(h, 0, sizeof *h);
	if ((root = hello_load(line, len, cause)) == NULL)
		return (-1);
	rc = hello_from_json(root, h, cause);
	json_decref(root);
	return (rc);
}

int
hello_from_json(json_t *root, struct hello *h, char **cause)
{
	json_t		*v, *s;
	long long	 x;
	size_t		 i;
	const char	*name;
	int		 rc = -1, which;

	memset(h, 0, sizeof *h);
	if (!json_is_object(root)) {
		hello_fail(cause, "message is not a JSON object", NULL);
		goto out;
	}
	v = json_object_get(root, "type");
	if (!json_is_string(v) || strcmp(json_string_value(v), "hello") != 0) {
		hello_fail(cause, "expected a hello message", NULL);
		goto out;
	}
	if (hello_int(root, "proto", 0, 1, &x) != 0) {
		hello_fail(cause, "missing or bad field", "proto");
		goto out;
	}
	h->proto = (long)x;
	if (h->proto != MESHLOG_PROTO) {
		xasprintf(cause, "protocol version %ld not supported (this "
		    "collector speaks %d)", h->proto, MESHLOG_PROTO);
		goto out;
	}
#define HELLO_FIELD(field, nullable, min) do {				\
	if (hello_int(root, #field, nullable, min, &x) != 0) {		\
		hello_fail(cause, "missing or bad field", #field);	\
		goto out;						\
	}								\
	h->field = x;							\
} while (0)
	HELLO_FIELD(pid, 0, 1);
	HELLO_FIELD(ppid, 0, 0);
	HELLO_FIELD(uid, 0, 0);
	HELLO_FIELD(start_us, 0, 0);
	HELLO_FIELD(rank, 1, 0);
	HELLO_FIELD(local_rank, 1, 0);
	HELLO_FIELD(world_size, 1, 0);
#undef HELLO_FIELD
	v = json_object_get(root, "host");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > 255) {
		hello_fail(cause, "missing or bad field", "host");
		goto out;
	}
	h->host = xstrdup(json_string_value(v));
	v = json_object_get(root, "argv");
	if (!json_is_array(v)) {
		hello_fail(cause, "missing or bad field", "argv");
		goto out;
	}
	json_array_foreach(v, i, s) {
		if (!json_is_string(s)) {
			hello_fail(cause, "missing or bad field", "argv");
			goto out;
		}
	}
	h->argv = json_incref(v);
	h->argv_truncated = json_is_true(json_object_get(root,
	    "argv_truncated"));
	v = json_object_get(root, "rank_var");
	if (json_is_string(v))
		h->rank_var = xstrdup(json_string_value(v));
	h->nested = json_is_true(json_object_get(root, "nested"));
	v = json_object_get(root, "runtime");
	h->runtime = json_is_string(v);
	v = json_object_get(root, "buffering");
	/* "program": stdout is another program's data unless we say. */
	h->auto_buffering = json_is_string(v) &&
	    strcmp(json_string_value(v), "program") == 0;
	h->keep_buffering = h->auto_buffering || (json_is_string(v) &&
	    strcmp(json_string_value(v), "keep") == 0);
	v = json_object_get(root, "streams");
	if (!json_is_array(v) || json_array_size(v) < 1 ||
	    json_array_size(v) > 2) {
		hello_fail(cause, "missing or bad field", "streams");
		goto out;
	}
	json_array_foreach(v, i, s) {
		name = json_string_value(json_object_get(s, "name"));
		if (name != NULL && strcmp(name, "stdout") == 0)
			which = MESHLOG_STDOUT;
		else if (name != NULL && strcmp(name, "stderr") == 0)
			which = MESHLOG_STDERR;
		else {
			hello_fail(cause, "bad stream name", name);
			goto out;
		}
		if (i == 1 && h->which[0] == which) {
			hello_fail(cause, "stream named twice", name);
			goto out;
		}
		h->which[i] = which;
		h->tty[i] = json_is_true(json_object_get(s, "tty"));
		if (json_is_true(json_object_get(s, "merged")))
			h->merged = 1;
	}
	h->nstreams = (int)json_array_size(v);
	if (h->merged && (h->nstreams != 1 || h->which[0] != MESHLOG_STDOUT)) {
		hello_fail(cause, "only a lone stdout stream can carry stderr",
		    "merged");
		goto out;
	}
	/* Both streams' terminal, which merges them if its order shows. */
	if ((v = json_object_get(root, "tty_shared")) != NULL) {
		if (!json_is_array(v) || json_array_size(v) != 2 ||
		    !json_is_integer(json_array_get(v, 0)) ||
		    !json_is_integer(json_array_get(v, 1)) ||
		    json_integer_value(json_array_get(v, 0)) < 0 ||
		    json_integer_value(json_array_get(v, 1)) < 0 ||
		    h->nstreams != 2 || !h->tty[0] || !h->tty[1]) {
			hello_fail(cause, "missing or bad field",
			    "tty_shared");
			goto out;
		}
		h->tty_shared = 1;
		h->tty_at[0] = json_integer_value(json_array_get(v, 0));
		h->tty_at[1] = json_integer_value(json_array_get(v, 1));
	}
	rc = 0;
out:
	if (rc != 0)
		hello_clear(h);
	return (rc);
}

void
hello_clear(struct hello *h)
{
	free(h->host);
	free(h->rank_var);
	json_decref(h->argv);
	h->host = h->rank_var = NULL;
	h->argv = NULL;
}
