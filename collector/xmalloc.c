/* Allocation that never returns NULL: the collector stops instead. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"

void *
xmalloc(size_t n)
{
	void	*p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		fatal("malloc %zu bytes", n);
	return (p);
}

void *
xcalloc(size_t nmemb, size_t n)
{
	void	*p = calloc(nmemb == 0 ? 1 : nmemb, n == 0 ? 1 : n);

	if (p == NULL)
		fatal("calloc %zu x %zu bytes", nmemb, n);
	return (p);
}

void *
xrealloc(void *p, size_t n)
{
	void	*q = realloc(p, n == 0 ? 1 : n);

	if (q == NULL)
		fatal("realloc %zu bytes", n);
	return (q);
}

char *
xstrdup(const char *s)
{
	return (xstrndup(s, strlen(s)));
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return (p);
}

int
xasprintf(char **out, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(out, fmt, ap);
	va_end(ap);
	if (n == -1)
		fatal("vasprintf");
	return (n);
}
