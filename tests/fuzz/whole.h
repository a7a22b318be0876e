/*
 * What the targets built with the whole collector (fuzz_control.c,
 * fuzz_link.c) set up alike: the settings main.c would take from the
 * command line, and the event loop.
 */
#ifndef MESHLOG_FUZZ_WHOLE_H
#define MESHLOG_FUZZ_WHOLE_H

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "collector/collector.h"

struct config		 cfg;
struct event_base	*base;

static inline void
fuzz_whole_init(void)
{
	cfg.line_max = 4096;
	cfg.hello_timeout = 5;
	snprintf(cfg.host, sizeof cfg.host, "fuzz");
	if ((base = event_base_new()) == NULL)
		abort();
}

#endif
