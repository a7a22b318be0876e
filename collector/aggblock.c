/*
 * Blocks of lines the console view takes whole (a Python traceback,
 * "Exception in thread ..."): which lines continue one. Which line opens
 * one is asked of every line, inline (aggregate.h: agg_block_start).
 */

#include <string.h>

#include "aggregate.h"

/*
 * Python: header, indented frames, the exception's line, then a chained
 * traceback may follow ("During handling of ...", "The above exception
 * ..."). Others: a header and indented lines ("\tat"), "Caused by:"
 * continuing.
 */
enum agg_block_state
agg_block_next(enum agg_block_state st, const char *line, size_t len)
{
	int	indented = len > 0 && (line[0] == ' ' || line[0] == '\t');

	switch (st) {
	case BLK_HEAD:
		if (agg_begins(line, len, PY_TRACEBACK))
			return (BLK_FRAMES);
		return (indented ? BLK_INDENTED : BLK_NONE);
	case BLK_FRAMES:
		return (indented ? BLK_FRAMES : BLK_AFTER);
	case BLK_AFTER:
		if (agg_begins(line, len, PY_TRACEBACK))
			return (BLK_FRAMES);
		if (len == 0 || agg_begins(line, len, "During handling of the "
		    "above exception") || agg_begins(line, len, "The above "
		    "exception was the direct cause"))
			return (BLK_AFTER);
		return (BLK_NONE);
	case BLK_INDENTED:
		if (indented || agg_begins(line, len, "Caused by: "))
			return (BLK_INDENTED);
		return (BLK_NONE);
	default:
		return (BLK_NONE);
	}
}
