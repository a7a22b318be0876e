/*
 * A program's bytes made safe to show on a terminal (the console view,
 * meshlogctl logs). meshlogctl does not include collector.h.
 */
#ifndef MESHLOG_VISIBLE_H
#define MESHLOG_VISIBLE_H

#include <stddef.h>

/* Bytes visible_text() may write for n. */
#define VISIBLE_MAX(n)	((n) * 4 + 1)

/*
 * Write n bytes of src into dst (VISIBLE_MAX(n)): UTF-8 kept (a byte that
 * is none as U+FFFD), colours kept (with colour), what redraws a bar in
 * place (an erased line, the cursor moved, hidden or shown) left out, the
 * rest made visible ("\x07", "\x1b[2J"). Returns the length.
 */
size_t	visible_text(char *dst, const char *src, size_t n, int colour);
/*
 * Length of what redraws a bar in place at s (ESC [ K, ESC [ 0-2 K: the
 * line erased; ESC [ n A to G: the cursor moved, as tqdm's nested bars
 * and multi-line displays move it between their lines; ESC [ ? 25 h or
 * l: the cursor shown or hidden), or 0.
 */
size_t	visible_redraw(const unsigned char *s, size_t n);
/* Length of an SGR colour sequence (ESC [ digits/; m) at s, or 0. */
size_t	visible_sgr(const unsigned char *s, size_t n);

#endif
