/*
 * A relay's sources by (relay, id there): the table must find every
 * source added and not removed, and none other, through any mix of adds
 * and removals (removal moves entries back in the probe sequence). The
 * file is included, so its static pieces are what is tested.
 */

#include <stdlib.h>

#include <criterion/criterion.h>

#include "collector/remote.c"

struct config		 cfg;
struct event_base	*base;

#define KEYS	3000

Test(remote, finds_what_was_added_and_not_removed)
{
	static struct source	src[KEYS];
	static int		in[KEYS];
	unsigned		seed = 7;
	int			r, k, i;

	/* Few relays, clustered ids: keys that share homes. */
	for (k = 0; k < KEYS; k++) {
		src[k].link = 1 + (uint64_t)(k % 5);
		src[k].rid = (uint64_t)(k / 5);
	}
	for (r = 0; r < 200000; r++) {
		k = rand_r(&seed) % KEYS;
		if (!in[k]) {
			cr_assert_null(remote_find(src[k].link, src[k].rid));
			remote_hash_add(&src[k]);
			nrelayed++;
			in[k] = 1;
		} else if (rand_r(&seed) % 3 == 0) {
			remote_hash_remove(&src[k]);
			if (remote_last == &src[k])
				remote_last = NULL;
			nrelayed--;
			in[k] = 0;
		}
		if (r % 20000 == 0) {
			for (i = 0; i < KEYS; i++)
				cr_assert_eq(remote_find(src[i].link,
				    src[i].rid), in[i] ? &src[i] : NULL,
				    "round %d, key %d", r, i);
		}
		cr_assert_eq(remote_find(src[k].link, src[k].rid),
		    in[k] ? &src[k] : NULL, "round %d, key %d", r, k);
	}
	for (i = 0; i < KEYS; i++)
		cr_assert_eq(remote_find(src[i].link, src[i].rid),
		    in[i] ? &src[i] : NULL, "key %d", i);
}
