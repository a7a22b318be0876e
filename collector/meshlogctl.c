/*
 * meshlogctl: drives a running collector. The control requests (flush,
 * set-mode, status) arrive with the control-plane work; until then this
 * program says so honestly instead of pretending.
 */

#include <stdio.h>
#include <string.h>

static const char usage_text[] =
"usage: meshlogctl [-s PATH] flush [--timeout SEC]\n"
"       meshlogctl [-s PATH] set-mode [--stream on|off] [--aggregate SECONDS|off]\n"
"                                     [--level LEVEL]\n"
"       meshlogctl [-s PATH] status\n"
"\n"
"Not implemented in this version: the collector does not answer control\n"
"requests yet. Every command exits with status 2.\n";

int
main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		fputs(usage_text, stdout);
		return (0);
	}
	if (argc > 1 && (strcmp(argv[1], "-V") == 0 ||
	    strcmp(argv[1], "--version") == 0)) {
		printf("meshlogctl %s\n", PACKAGE_VERSION);
		return (0);
	}
	fputs("meshlogctl: control requests are not implemented in this "
	    "version\n", stderr);
	fputs(usage_text, stderr);
	return (2);
}
