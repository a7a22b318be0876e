/*
 * libFuzzer target: control requests as a client sends them (one JSON
 * object), answered by the collector's own dispatcher with every module
 * linked: numbers out of range, wrong types, huge lists and unknown
 * fields must give an error reply, never a crash, a leak or a hang.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "collector/collector.h"
#include "whole.h"


static void
answer_cb(json_t *reply, void *arg)
{
	(void)reply;
	(void)arg;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_whole_init();
	control_init();
	console_open();
	return (0);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	json_t	*req, *reply;

	if ((req = json_loadb((const char *)data, size, 0, NULL)) == NULL)
		return (0);
	reply = control_dispatch(req, answer_cb, NULL);
	/* A flush answers from the loop: let it. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	json_decref(reply);
	json_decref(req);
	return (0);
}
