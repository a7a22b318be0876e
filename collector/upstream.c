/*
 * The link to an upstream collector (--upstream tcp://HOST:PORT). Records
 * and source events are framed, numbered and kept in a spool (spool.c) until
 * the upstream acknowledges them: in memory up to a bound, then in a file up
 * to another, and past both the newest records are dropped and counted in a
 * "dropped" record. A lost link is retried with exponential backoff and
 * jitter; on return the upstream says the last frame it took and the rest
 * is sent again, so nothing arrives twice. Nothing here blocks the loop:
 * the connection, name lookups and writes are all non-blocking.
 */

#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include <sodium.h>

#include "collector.h"

/* Bytes handed to the socket ahead of what it has written. */
#define UP_WINDOW	(1024 * 1024)
/* First and default longest wait between reconnects, in ms. */
#define UP_BACKOFF_MIN	100

enum up_state { UP_OFF, UP_DOWN, UP_CONNECTING, UP_CHALLENGE, UP_ACCEPT,
    UP_RUN };

static const char *const up_state_names[] = { "off", "disconnected",
    "connecting", "authenticating", "authenticating", "connected" };

static struct {
	enum up_state		 state;
	dispatch_fn		 dispatch;
	char			*url;
	char			*host;
	char			*port;
	struct bufferevent	*bev;
	struct evdns_base	*dns;
	char			 id[AUTH_HEX];
	char			 nonce[AUTH_HEX];
	char			 nonce_s[AUTH_HEX];	/* the root's */
	struct event		*retry;
	struct event		*timer;
	int			 backoff_ms;
	long long		 last_rx;
	long long		 attempt_ms;
	time_t			 since;
	time_t			 down_since;
	struct spool		 spool;
	uint64_t		 dropped;
	uint64_t		 dropped_unreported;
	uint64_t		 records;
	uint64_t		 reconnects;
	int			 said_down;
} up = { .state = UP_OFF };

static void	up_connect(void);
static void	up_down(const char *why);
static void	up_report_drops(void);
static void	up_read_cb(struct bufferevent *, void *);
static void	up_write_cb(struct bufferevent *, void *);
static void	up_event_cb(struct bufferevent *, short, void *);

int
upstream_active(void)
{
	return (up.state != UP_OFF);
}

/* Hand the socket what it can take of the chunks not yet sent. */
static void
up_push(void)
{
	if (up.state == UP_RUN)
		(void)spool_send(&up.spool, bufferevent_get_output(up.bev),
		    UP_WINDOW);
}

/* Seal the open chunk and start sending it. */
static void
up_seal(void)
{
	if (spool_seal(&up.spool))
		up_push();
}

/* The upstream has taken every frame up to seq: free what it covers. */
static void
up_ack(uint64_t seq)
{
	spool_ack(&up.spool, seq);
	/* Room again: say what was lost, in order, before what follows. */
	if (up.dropped_unreported > 0 &&
	    spool_admit(&up.spool, WIRE_CONTROL_MAX))
		up_report_drops();
}

/* Report records the spool could not take, once it takes some again. */
static void
up_report_drops(void)
{
	struct timespec	 now;
	char		 ts[TS_LEN];
	json_t		*o;

	if (up.dropped_unreported == 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	record_ts(ts, &now);
	o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "ts", ts, "host", cfg.host,
	    "event", "dropped", "lines", (json_int_t)up.dropped_unreported,
	    "reason", "relay spool full (memory and disk bounds reached while "
	    "the upstream was unreachable)");
	up.dropped_unreported = 0;
	upstream_event(o);
	jsonlog_event(o);
	json_decref(o);
}

void
upstream_record(uint64_t source, int which, int flags, uint64_t seq,
    uint64_t ts_us, const char *line, size_t len)
{
	struct wire_rec	r;

	if (!spool_admit(&up.spool, WIRE_REC_HDR + len + WIRE_HDR)) {
		if (up.dropped_unreported++ == 0)
			log_warn("relay spool full (%zu bytes in memory, %zu "
			    "on disk): dropping records until the upstream "
			    "takes some", up.spool.mem_bytes,
			    up.spool.disk_bytes);
		up.dropped++;
		return;
	}
	if (up.dropped_unreported > 0)
		up_report_drops();
	r.source = source;
	r.which = which;
	r.flags = flags;
	r.seq = seq;
	r.ts_us = ts_us;
	r.line = line;
	r.len = len;
	up.records++;
	if (spool_record(&up.spool, &r) >= SPOOL_CHUNK)
		up_seal();
}

void
upstream_event(json_t *o)
{
	char	*s = json_dumps(o, JSON_COMPACT);

	if (s == NULL)
		return;
	upstream_event_text(s, strlen(s));
	free(s);
}

void
upstream_event_text(const char *s, size_t n)
{
	/* Events are few and small: they are always kept. */
	spool_event(&up.spool, s, n);
}

void
upstream_flush_pending(void)
{
	if (up.state != UP_OFF)
		up_seal();
}

/* Send one unsequenced control message on a running link. */
static void
up_control(json_t *m)
{
	if (up.bev != NULL)
		wire_send_json(bufferevent_get_output(up.bev), WIRE_CONTROL,
		    0, m);
}

/* A barrier the upstream asked for is done: answer in-band. */
static void
up_flushed_cb(json_t *reply, void *arg)
{
	json_t	*o;

	o = json_pack("{s:s, s:I, s:O}", "type", "flushed", "version",
	    (json_int_t)(uintptr_t)arg, "incomplete",
	    json_object_get(reply, "incomplete"));
	upstream_event(o);
	json_decref(o);
	up_seal();
}

/* A control message from the upstream. */
static void
up_dispatch(json_t *o)
{
	const char	*type = json_string_value(json_object_get(o, "type"));
	json_int_t	 t;
	json_t		*r, *req;

	if (type == NULL)
		return;
	if (strcmp(type, "ack") == 0)
		up_ack((uint64_t)json_integer_value(json_object_get(o, "seq")));
	else if (strcmp(type, "flush") == 0) {
		t = json_integer_value(json_object_get(o, "timeout_ms"));
		if (t > FLUSH_TIMEOUT_MAX_MS)
			t = FLUSH_TIMEOUT_MAX_MS;
		/* Answer before the upstream gives up on us. */
		req = json_pack("{s:s, s:I}", "type", "flush", "timeout_ms",
		    (json_int_t)(t > 200 ? t - 100 : 100));
		r = up.dispatch(req, up_flushed_cb, (void *)(uintptr_t)
		    json_integer_value(json_object_get(o, "version")));
		json_decref(req);
		json_decref(r);
	} else if (strcmp(type, "set_level") == 0) {
		r = up.dispatch(o, NULL, NULL);
		json_decref(r);
	}
}

/* The upstream's challenge: check its proof, send ours. */
static int
up_challenge(json_t *o)
{
	const char	*nonce = json_string_value(json_object_get(o, "nonce"));
	const char	*type = json_string_value(json_object_get(o, "type"));
	char		 proof[AUTH_HEX];
	json_t		*m;

	if (type == NULL || strcmp(type, "challenge") != 0 ||
	    !auth_valid_nonce(nonce) ||
	    auth_check(json_string_value(json_object_get(o, "proof")), "root",
	    up.nonce, nonce) != 0) {
		up_down("the upstream did not prove the token (wrong token, "
		    "or not a meshlog collector)");
		return (-1);
	}
	strlcpy(up.nonce_s, nonce, sizeof up.nonce_s);
	auth_proof(proof, "relay", nonce, up.nonce);
	m = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i}", "type", "auth",
	    "proof", proof, "relay", up.id, "host", cfg.host, "pid",
	    (json_int_t)getpid(), "link_timeout_ms", cfg.link_timeout_ms);
	wire_send_json(bufferevent_get_output(up.bev), WIRE_HELLO, 0, m);
	json_decref(m);
	up.state = UP_ACCEPT;
	return (0);
}

/*
 * From now on the link is sealed with keys of this session. The link's
 * own output is held at UP_WINDOW, so that the spool still sees how much
 * is in flight.
 */
static void
up_seal_link(void)
{
	unsigned char	out[SEAL_KEY], in[SEAL_KEY];

	auth_session_key(out, "link to root", up.nonce, up.nonce_s);
	auth_session_key(in, "link to relay", up.nonce, up.nonce_s);
	bufferevent_setwatermark(up.bev, EV_WRITE, 0, UP_WINDOW);
	up.bev = seal_wrap(up.bev, out, in);
	sodium_memzero(out, sizeof out);
	sodium_memzero(in, sizeof in);
	bufferevent_setcb(up.bev, up_read_cb, up_write_cb, up_event_cb, NULL);
	bufferevent_setwatermark(up.bev, EV_WRITE, UP_WINDOW / 2, 0);
	bufferevent_enable(up.bev, EV_READ | EV_WRITE);
}

/* Bytes queued for the upstream, sealed or not yet. */
static size_t
up_unsent(void)
{
	struct bufferevent	*under = bufferevent_get_underlying(up.bev);

	return (evbuffer_get_length(bufferevent_get_output(up.bev)) +
	    (under != NULL ? evbuffer_get_length(bufferevent_get_output(under)) :
	    0));
}

/* Accepted: resume after the last frame the upstream has. */
static void
up_accepted(json_t *o)
{
	uint64_t	last = (uint64_t)json_integer_value(json_object_get(o,
			    "last_seq"));
	long long	down_ms;

	up_seal_link();
	up_ack(last);
	spool_rewind(&up.spool);
	up.state = UP_RUN;
	up.since = time(NULL);
	up.backoff_ms = UP_BACKOFF_MIN;
	if (up.said_down) {
		down_ms = (long long)(time(NULL) - up.down_since) * 1000;
		log_info("upstream %s is back after about %lld s; resending "
		    "%zu chunks after frame %llu", up.url, down_ms / 1000,
		    up.spool.nchunks, (unsigned long long)last);
		up.said_down = 0;
	} else
		log_info("connected to upstream %s (%s)", up.url,
		    json_string_value(json_object_get(o, "host")));
	up_push();
}

/* Messages from the upstream: the challenge, acks, flushes, modes. */
static void
up_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct wire_frame	 f;
	const char		*cause = NULL;
	json_t			*o;
	int			 rc;

	up.last_rx = clock_now_ms();
	while ((rc = wire_next(in, up.state == UP_RUN ? WIRE_CONTROL_MAX :
	    WIRE_PRE_AUTH_MAX, &f, &cause)) == 1) {
		o = wire_json(&f);
		wire_done(in, &f);
		if (o == NULL) {
			up_down("malformed message from the upstream");
			return;
		}
		if (up.state == UP_RUN && f.type == WIRE_CONTROL)
			up_dispatch(o);
		else if (up.state == UP_CHALLENGE && f.type == WIRE_HELLO) {
			if (up_challenge(o) != 0) {
				json_decref(o);
				return;
			}
		} else if (up.state == UP_ACCEPT && f.type == WIRE_HELLO) {
			up_accepted(o);
			/* Sealed now: the rest is read through the seal. */
			json_decref(o);
			return;
		} else {
			json_decref(o);
			up_down("unexpected message from the upstream");
			return;
		}
		json_decref(o);
	}
	if (rc == -1)
		up_down(cause);
}

/* The link took what was queued: send the next spooled chunks. */
static void
up_write_cb(struct bufferevent *bev, void *arg)
{
	up_push();
}

/* Connected (say hello with our nonce), or closed or failed (down). */
static void
up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	json_t	*m;
	int	 one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
		    TCP_NODELAY, &one, sizeof one);
		auth_nonce(up.nonce);
		m = json_pack("{s:s, s:i, s:s}", "type", "relay_hello",
		    "proto", WIRE_PROTO, "nonce", up.nonce);
		wire_send_json(bufferevent_get_output(bev), WIRE_HELLO, 0, m);
		json_decref(m);
		up.state = UP_CHALLENGE;
		return;
	}
	if (what & BEV_EVENT_EOF)
		up_down("the upstream closed the connection");
	else if (what & BEV_EVENT_ERROR) {
		int dnserr = bufferevent_socket_get_dns_error(bev);

		up_down(dnserr != 0 ? evutil_gai_strerror(dnserr) :
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

/* The link is lost or refused: spool, and try again later. */
static void
up_down(const char *why)
{
	struct timeval	tv;
	int		delay;

	if (up.bev != NULL) {
		bufferevent_free(up.bev);
		up.bev = NULL;
	}
	if (!up.said_down) {
		log_warn("upstream %s: %s; spooling until it is back", up.url,
		    why);
		up.said_down = 1;
		up.down_since = time(NULL);
	} else
		log_debug("upstream %s: %s", up.url, why);
	up.state = UP_DOWN;
	/* Full jitter over the upper half, so relays do not come in step. */
	delay = up.backoff_ms / 2 + (int)randombytes_uniform(
	    (uint32_t)up.backoff_ms / 2 + 1);
	up.backoff_ms = up.backoff_ms * 2 > cfg.reconnect_max_ms ?
	    cfg.reconnect_max_ms : up.backoff_ms * 2;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(up.retry, &tv);
}

/* The backoff after a failure is over: connect again. */
static void
up_retry_cb(int fd, short what, void *arg)
{
	up.reconnects++;
	up_connect();
}

/* Keepalive, link timeout, and the deadline of an attempt. */
static void
up_timer_cb(int fd, short what, void *arg)
{
	long long	now = clock_now_ms();
	json_t		*m;

	switch (up.state) {
	case UP_CONNECTING:
	case UP_CHALLENGE:
	case UP_ACCEPT:
		if (now - up.attempt_ms > cfg.link_timeout_ms)
			up_down("no answer within the link timeout");
		break;
	case UP_RUN:
		if (now - up.last_rx > cfg.link_timeout_ms) {
			up_down("nothing heard within the link timeout");
			break;
		}
		m = json_pack("{s:s}", "type", "ping");
		up_control(m);
		json_decref(m);
		break;
	default:
		break;
	}
}

/* Start connecting to the upstream, resolving its name on the way. */
static void
up_connect(void)
{
	up.bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (up.bev == NULL)
		fatalx("out of memory for the upstream link");
	bufferevent_setcb(up.bev, up_read_cb, up_write_cb, up_event_cb, NULL);
	bufferevent_setwatermark(up.bev, EV_WRITE, UP_WINDOW / 2, 0);
	bufferevent_enable(up.bev, EV_READ | EV_WRITE);
	up.state = UP_CONNECTING;
	up.attempt_ms = up.last_rx = clock_now_ms();
	if (bufferevent_socket_connect_hostname(up.bev, up.dns, AF_UNSPEC,
	    up.host, atoi(up.port)) != 0 && up.state == UP_CONNECTING &&
	    up.bev != NULL)
		up_down("cannot start connecting");
}

int
upstream_parse(const char *url, char **cause)
{
	const char	*hp = url;

	if (strncmp(url, "tcp://", 6) == 0)
		hp = url + 6;
	else if (strstr(url, "://") != NULL) {
		xasprintf(cause, "--upstream %s: only tcp:// is supported",
		    url);
		return (-1);
	}
	if (wire_split_hostport(hp, &up.host, &up.port) != 0 ||
	    *up.host == '\0' || atoi(up.port) == 0) {
		xasprintf(cause, "--upstream takes tcp://HOST:PORT or "
		    "tcp://[IPV6]:PORT, not '%s'", url);
		return (-1);
	}
	up.url = xstrdup(url);
	return (0);
}

void
upstream_start(dispatch_fn dispatch)
{
	struct timeval	tv;

	up.dispatch = dispatch;
	spool_init(&up.spool, cfg.spool_dir, cfg.spool_memory,
	    cfg.spool_disk);
	auth_nonce(up.id);
	up.backoff_ms = UP_BACKOFF_MIN;
	up.dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (up.dns == NULL)
		up.dns = evdns_base_new(base, 0);
	up.retry = evtimer_new(base, up_retry_cb, NULL);
	up.timer = event_new(base, -1, EV_PERSIST, up_timer_cb, NULL);
	if (up.retry == NULL || up.timer == NULL)
		fatalx("cannot create the upstream timers");
	tv.tv_sec = cfg.link_timeout_ms / 3 / 1000;
	tv.tv_usec = (cfg.link_timeout_ms / 3 % 1000) * 1000;
	event_add(up.timer, &tv);
	up_connect();
}

int
upstream_idle(void)
{
	return (up.state == UP_OFF || spool_empty(&up.spool));
}

/* Does nothing: it only keeps upstream_finish's loop turning. */
static void
up_wake_cb(int fd, short what, void *arg)
{
}

void
upstream_finish(int ms)
{
	long long	 deadline = clock_now_ms() + ms;
	struct event	*wake;
	struct timeval	 tv = { 0, 50 * 1000 };
	json_t		*m;

	if (up.state == UP_OFF)
		return;
	up_seal();
	wake = event_new(base, -1, EV_PERSIST, up_wake_cb, NULL);
	event_add(wake, &tv);
	while (!spool_empty(&up.spool) && clock_now_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	if (!spool_empty(&up.spool))
		log_warn("upstream %s did not take %zu chunks (frames %llu to "
		    "%llu) in time; they are lost", up.url, up.spool.nchunks,
		    (unsigned long long)TAILQ_FIRST(&up.spool.chunks)->seq_lo,
		    (unsigned long long)up.spool.next_seq);
	else if (up.state == UP_RUN) {
		m = json_pack("{s:s}", "type", "bye");
		up_control(m);
		json_decref(m);
		while (up.state == UP_RUN && up_unsent() > 0 &&
		    clock_now_ms() < deadline + 500)
			event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(wake);
}

json_t *
upstream_status(void)
{
	struct timespec	since = { up.state == UP_RUN ? up.since :
			    up.down_since, 0 };
	char		ts[TS_LEN];

	if (up.state == UP_OFF)
		return (json_null());
	record_ts(ts, &since);
	return (json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I}", "url", up.url, "relay", up.id, "state",
	    up_state_names[up.state], "since", ts, "records_sent",
	    (json_int_t)up.records,
	    "last_frame", (json_int_t)up.spool.next_seq, "acknowledged",
	    (json_int_t)up.spool.acked, "spool_memory_bytes",
	    (json_int_t)(up.spool.mem_bytes + up.spool.cur_len),
	    "spool_disk_bytes", (json_int_t)up.spool.disk_bytes,
	    "dropped_records",
	    (json_int_t)up.dropped, "reconnects", (json_int_t)up.reconnects));
}
