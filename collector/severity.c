/*
 * Severity detection for lines from processes the runtime cannot adjust.
 * Recognised, in the first 96 bytes of a line:
 *   Python logging and most loggers: a level word standing alone
 *     ("INFO:root:...", "... - WARNING - ...", "[ERROR] ...", "| DEBUG |");
 *   key=value loggers: "level=info", "lvl=warn";
 *   glog / absl: "I1123 20:14:05.123456 ..." (I, W, E, F);
 *   NCCL: "NCCL INFO", "NCCL WARN".
 * Returns a Python level (10 DEBUG .. 50 CRITICAL) or 0 when nothing is
 * recognised; such lines are never filtered.
 */

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "collector.h"

/* How far into a line a level word is looked for. */
#define SEVERITY_SCAN	96

static const struct {
	const char	*word;
	int		 level;
} severity_words[] = {
	{ "DEBUG", 10 }, { "INFO", 20 }, { "WARNING", 30 }, { "WARN", 30 },
	{ "ERROR", 40 }, { "CRITICAL", 50 }, { "FATAL", 50 },
	{ NULL, 0 }
};

/* The level of word w (n bytes); lower case only after "level=". */
static int
severity_word(const char *w, size_t n, int any_case)
{
	int	i;

	for (i = 0; severity_words[i].word != NULL; i++) {
		if (strlen(severity_words[i].word) != n)
			continue;
		if (any_case ? strncasecmp(w, severity_words[i].word, n) == 0 :
		    strncmp(w, severity_words[i].word, n) == 0)
			return (severity_words[i].level);
	}
	return (0);
}

/* glog's "Lmmdd hh:mm:ss" prefix. */
static int
severity_glog(const char *s, size_t n)
{
	static const char	levels[] = "IWEF";
	static const int	value[] = { 20, 30, 40, 50 };
	const char		*p;
	size_t			 i;

	if (n < 15 || (p = strchr(levels, s[0])) == NULL || s[0] == '\0')
		return (0);
	for (i = 1; i <= 4; i++) {
		if (!isdigit((unsigned char)s[i]))
			return (0);
	}
	if (s[5] != ' ' || !isdigit((unsigned char)s[6]) || s[8] != ':' ||
	    s[11] != ':')
		return (0);
	return (value[p - levels]);
}

int
severity_detect(const char *s, size_t n)
{
	size_t	i = 0, start, end = n < SEVERITY_SCAN ? n : SEVERITY_SCAN;
	int	lv, keyed;

	if ((lv = severity_glog(s, n)) != 0)
		return (lv);
	while (i < end) {
		while (i < end && !isalpha((unsigned char)s[i]))
			i++;
		start = i;
		while (i < end && isalpha((unsigned char)s[i]))
			i++;
		if (i == start)
			break;
		/* A word cut by the scan limit is not a word. */
		if (i == end && end < n && isalpha((unsigned char)s[i]))
			break;
		/* Part of an identifier (ERROR_CODE, INFO2): not a level. */
		if ((i < n && (s[i] == '_' || isdigit((unsigned char)s[i]))) ||
		    (start > 0 && (s[start - 1] == '_' ||
		    isdigit((unsigned char)s[start - 1]))))
			continue;
		keyed = (start >= 6 &&
		    strncasecmp(s + start - 6, "level=", 6) == 0) ||
		    (start >= 4 && strncasecmp(s + start - 4, "lvl=", 4) == 0);
		if ((lv = severity_word(s + start, i - start, keyed)) != 0)
			return (lv);
	}
	return (0);
}
