/*
 * Descriptors held back so that a message carrying descriptors is always
 * received whole (fdreserve.c).
 */
#ifndef MESHLOG_FDRESERVE_H
#define MESHLOG_FDRESERVE_H

/* Open the reserve; a collector that cannot is short from the start. */
void	fdreserve_init(void);
/*
 * Free n of the reserve for one receive of up to n descriptors (never
 * the one kept for an accept).
 */
void	fdreserve_release(int n);
/*
 * Take the reserve back after it: 0 when it is whole, -1 when the
 * collector is short of descriptors (it then takes no new process).
 */
int	fdreserve_refill(void);
/* The same, keeping errno. */
void	fdreserve_refill_errno(void);
/*
 * Whether a forked child's message, with up to need descriptors, may be
 * read now: the reserve holds that many, or has not for a second.
 */
int	fdreserve_room(int need);
/* Whether the reserve could not be made whole (fdreserve_refill). */
int	fdreserve_short(void);

/* Refuse connection c at once: no descriptors to spare. */
void	fdreserve_refuse(int c);
/*
 * Accepting failed for want of descriptors: accept one connection with
 * the reserve's and refuse it at once, so that its shim runs uncaptured
 * now, not after its registration timeout. 0 when one was refused, -1
 * (errno kept) when none could be.
 */
int	fdreserve_accept_refuse(int listen_fd);

#endif
