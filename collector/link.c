/*
 * Relays connected to this collector (--listen-tcp). A connection proves
 * the shared token before anything else is read; then it carries the
 * relay's sources, records and barrier answers, each sequenced frame once:
 * a relay that reconnects resends what was not acknowledged and frames at
 * or below the last one taken are skipped. A relay is known by the id it
 * chose at start, so its sources and barriers survive a lost link.
 */

#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <sodium.h>

#include "collector.h"

enum conn_state { CONN_HELLO, CONN_PROOF, CONN_RUN };

struct relay;

struct conn {
	struct bufferevent	*bev;
	enum conn_state		 state;
	char			 nonce_r[AUTH_HEX];
	char			 nonce_s[AUTH_HEX];
	char			 addr[80];
	struct relay		*relay;
	struct event		*timer;
	long long		 last_rx;
	int			 timeout_ms;
	uint64_t		 acked;
	TAILQ_ENTRY(conn)	 entry;
};

struct relay {
	uint64_t		 id;		/* its sources' link */
	struct flush_part	 part;
	char			 name[AUTH_HEX];
	char			*host;
	long			 pid;
	char			 addr[80];
	uint64_t		 last_seq;
	uint64_t		 frames;
	uint64_t		 records;
	uint64_t		 duplicates;
	int			 gone;		/* said bye */
	int			 lost;		/* away past its timeout */
	int			 timeout_ms;	/* the link timeout it asked */
	struct event		*lost_timer;
	struct conn		*conn;
	time_t			 since;
	TAILQ_ENTRY(relay)	 entry;
};

static TAILQ_HEAD(, conn)	 conns = TAILQ_HEAD_INITIALIZER(conns);
static TAILQ_HEAD(, relay)	 relays = TAILQ_HEAD_INITIALIZER(relays);
static struct evconnlistener	*listeners[8];
static int			 nlisteners;
static uint64_t			 next_relay;
static json_t			*sticky;	/* for relays to come */

static void	conn_timer_cb(int, short, void *);
static void	relay_lost_cb(int, short, void *);
static void	conn_send(struct conn *, int, json_t *);
static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);

/* Text form of a socket address, "[::1]:7000" or "10.0.0.1:7000". */
static void
link_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char	h[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof h);
		snprintf(buf, len, "[%s]:%u", h, ntohs(s6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, h, sizeof h);
		snprintf(buf, len, "%s:%u", h, ntohs(s4->sin_port));
	} else
		snprintf(buf, len, "?");
}

/*
 * A relay's link is down: if it is not back within its link timeout, it
 * is lost. The time counts from here, when the root knows it is gone.
 */
static void
relay_away(struct relay *r)
{
	struct timeval	tv;

	if (r->gone || r->lost)
		return;
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	evtimer_add(r->lost_timer, &tv);
}

/*
 * A relay away past its link timeout: it holds back no flush and its
 * sources are closed here; if it comes back, they are opened again.
 */
static void
relay_lost_cb(int fd, short what, void *arg)
{
	struct relay	*r = arg;

	if (r->conn != NULL || r->gone)
		return;
	r->lost = 1;
	log_warn("relay %s (host %s) lost: no link for %d ms; its %d sources "
	    "are closed", r->name, r->host, r->timeout_ms,
	    source_count_link(r->id));
	flush_leave(&r->part);
	source_remote_lost(r->id);
}

/* A relay drains its host's sources when asked; it answers in-band. */
static int
relay_drain(struct flush_part *p, uint64_t version, int timeout_ms)
{
	struct relay	*r = p->arg;
	json_t		*m;

	/* One away is asked when it is back (flush_rejoin). */
	if (r->conn == NULL || r->conn->state != CONN_RUN)
		return (1);
	m = json_pack("{s:s, s:I, s:i}", "type", "flush", "version",
	    (json_int_t)version, "timeout_ms", timeout_ms);
	conn_send(r->conn, WIRE_CONTROL, m);
	json_decref(m);
	return (1);
}

/* A relay's identity and state (new reference). */
static json_t *
relay_describe(struct relay *r)
{
	return (json_pack("{s:s, s:s, s:I, s:s, s:b}", "relay", r->name,
	    "host", r->host, "pid", (json_int_t)r->pid, "address", r->addr,
	    "connected", r->conn != NULL));
}

/* relay_describe as a flush participant. */
static json_t *
relay_part_describe(struct flush_part *p)
{
	return (relay_describe(p->arg));
}

static const struct flush_ops relay_flush_ops = {
	relay_drain, relay_part_describe
};

/* A time of day as the JSON log writes it (new reference). */
static json_t *
link_ts(time_t t)
{
	struct timespec	ts = { t, 0 };
	char		buf[TS_LEN];

	record_ts(buf, &ts);
	return (json_string(buf));
}

/* Links any network peer can make and break: rate-limited warnings. */
static struct log_limit	link_closes = { .what = "closed relay links" };

/* Close a connection; its relay stays known for a reconnect. */
static void
conn_free(struct conn *c, const char *why)
{
	if (why != NULL)
		log_warn_limit(&link_closes, "relay link %s closed: %s",
		    c->addr, why);
	if (c->relay != NULL && c->relay->conn == c) {
		c->relay->conn = NULL;
		relay_away(c->relay);
	}
	bufferevent_free(c->bev);
	event_free(c->timer);
	TAILQ_REMOVE(&conns, c, entry);
	free(c);
}

/* Queue one JSON frame for a connection. */
static void
conn_send(struct conn *c, int type, json_t *msg)
{
	wire_send_json(bufferevent_get_output(c->bev), type, 0, msg);
}

/* Tell the relay what was taken, so it can free its spool. */
static void
conn_ack(struct conn *c)
{
	json_t	*m;

	if (c->state != CONN_RUN || c->relay->last_seq == c->acked)
		return;
	c->acked = c->relay->last_seq;
	m = json_pack("{s:s, s:I}", "type", "ack", "seq",
	    (json_int_t)c->acked);
	conn_send(c, WIRE_CONTROL, m);
	json_decref(m);
}

/* The relay with this instance name, created when new. */
static struct relay *
relay_get(const char *name)
{
	struct relay	*r;

	TAILQ_FOREACH(r, &relays, entry) {
		if (strcmp(r->name, name) == 0)
			return (r);
	}
	r = xcalloc(1, sizeof *r);
	r->id = ++next_relay;
	strlcpy(r->name, name, sizeof r->name);
	r->host = xstrdup("?");
	if ((r->lost_timer = evtimer_new(base, relay_lost_cb, r)) == NULL)
		fatalx("out of memory for a relay");
	flush_join(&r->part, FLUSH_RELAY, &relay_flush_ops, r);
	TAILQ_INSERT_TAIL(&relays, r, entry);
	return (r);
}

/* The first message: the relay's nonce. Answer with ours and our proof. */
static int
conn_hello(struct conn *c, json_t *o)
{
	const char	*type = json_string_value(json_object_get(o, "type"));
	const char	*nonce = json_string_value(json_object_get(o, "nonce"));
	char		 proof[AUTH_HEX];
	json_t		*m;

	if (type == NULL || strcmp(type, "relay_hello") != 0 ||
	    json_integer_value(json_object_get(o, "proto")) != WIRE_PROTO ||
	    !auth_valid_nonce(nonce)) {
		conn_free(c, "not a meshlog relay hello (or another protocol "
		    "version)");
		return (-1);
	}
	strlcpy(c->nonce_r, nonce, sizeof c->nonce_r);
	auth_nonce(c->nonce_s);
	auth_proof(proof, "root", c->nonce_r, c->nonce_s);
	m = json_pack("{s:s, s:s, s:s}", "type", "challenge", "nonce",
	    c->nonce_s, "proof", proof);
	conn_send(c, WIRE_HELLO, m);
	json_decref(m);
	c->state = CONN_PROOF;
	return (0);
}

/* From now on the link is sealed with keys of this session. */
static void
conn_seal(struct conn *c)
{
	unsigned char	out[SEAL_KEY], in[SEAL_KEY];

	auth_session_key(out, "link to relay", c->nonce_r, c->nonce_s);
	auth_session_key(in, "link to root", c->nonce_r, c->nonce_s);
	c->bev = seal_wrap(c->bev, out, in);
	sodium_memzero(out, sizeof out);
	sodium_memzero(in, sizeof in);
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* The relay's proof; on success the link runs. */
static int
conn_proof(struct conn *c, json_t *o)
{
	const char	*type = json_string_value(json_object_get(o, "type"));
	const char	*name = json_string_value(json_object_get(o, "relay"));
	const char	*host = json_string_value(json_object_get(o, "host"));
	json_int_t	 t = json_integer_value(json_object_get(o,
			    "link_timeout_ms"));
	struct relay	*r;
	struct timeval	 tv;
	json_t		*m;

	if (type == NULL || strcmp(type, "auth") != 0 ||
	    auth_check(json_string_value(json_object_get(o, "proof")),
	    "relay", c->nonce_s, c->nonce_r) != 0) {
		conn_free(c, "authentication failed (wrong or missing token)");
		return (-1);
	}
	if (!auth_valid_nonce(name)) {
		conn_free(c, "relay id missing");
		return (-1);
	}
	r = relay_get(name);
	if (r->conn != NULL)
		conn_free(r->conn, "replaced by a new connection of the relay");
	r->conn = c;
	evtimer_del(r->lost_timer);
	r->since = time(NULL);
	r->pid = (long)json_integer_value(json_object_get(o, "pid"));
	if (host != NULL) {
		free(r->host);
		r->host = xstrdup(host);
	}
	strlcpy(r->addr, c->addr, sizeof r->addr);
	c->relay = r;
	c->state = CONN_RUN;
	c->acked = r->last_seq;
	c->timeout_ms = t >= 300 && t <= 3600000 ? (int)t : 15000;
	r->timeout_ms = c->timeout_ms;
	m = json_pack("{s:s, s:I, s:s}", "type", "accepted", "last_seq",
	    (json_int_t)r->last_seq, "host", cfg.host);
	conn_send(c, WIRE_HELLO, m);
	json_decref(m);
	/* Everything after "accepted" is sealed, both ways. */
	conn_seal(c);
	log_info("relay %s (host %s, pid %ld) connected from %s, resuming "
	    "after frame %llu", r->name, r->host, r->pid, c->addr,
	    (unsigned long long)r->last_seq);
	/* Levels set before it came reach its processes too. */
	if (sticky != NULL)
		conn_send(c, WIRE_CONTROL, sticky);
	if (r->gone || r->lost) {
		/* Its resent frames close what closed while it was away. */
		if (r->lost)
			source_remote_resume(r->id);
		r->gone = r->lost = 0;
		flush_join(&r->part, FLUSH_RELAY, &relay_flush_ops, r);
	} else
		flush_rejoin(&r->part);
	evtimer_del(c->timer);
	tv.tv_sec = c->timeout_ms / 3 / 1000;
	tv.tv_usec = (c->timeout_ms / 3 % 1000) * 1000;
	event_free(c->timer);
	c->timer = event_new(base, -1, EV_PERSIST, conn_timer_cb, c);
	event_add(c->timer, &tv);
	return (0);
}

/* A record batch from a running link. */
static int
conn_records(struct conn *c, const struct wire_frame *f)
{
	struct wire_rec	 rec;
	const char	*p = f->body;
	size_t		 left = f->len;
	int		 rc;

	while ((rc = wire_record_next(&p, &left, &rec)) == 1) {
		source_remote_record(c->relay->id, &rec);
		c->relay->records++;
	}
	if (rc == -1) {
		conn_free(c, "malformed record batch");
		return (-1);
	}
	return (0);
}

/* A sequenced JSON frame: a source event or a barrier answer. */
static int
conn_event(struct conn *c, const struct wire_frame *f)
{
	json_t		*o = wire_json(f);
	const char	*type;

	if (o == NULL) {
		conn_free(c, "malformed event");
		return (-1);
	}
	type = json_string_value(json_object_get(o, "type"));
	if (type != NULL && strcmp(type, "flushed") == 0)
		flush_ack(&c->relay->part, (uint64_t)json_integer_value(
		    json_object_get(o, "version")));
	else if (json_object_get(o, "event") != NULL)
		source_remote_event(c->relay->id, o);
	json_decref(o);
	return (0);
}

/* An unsequenced control frame from a relay. */
static void
conn_control(struct conn *c, const struct wire_frame *f)
{
	json_t		*o = wire_json(f);
	const char	*type = json_string_value(json_object_get(o, "type"));

	if (type != NULL && strcmp(type, "bye") == 0) {
		log_info("relay %s (host %s) is done", c->relay->name,
		    c->relay->host);
		c->relay->gone = 1;
		flush_leave(&c->relay->part);
	}
	json_decref(o);
}

/* Handle one frame; -1 when the connection is gone. */
static int
conn_frame(struct conn *c, const struct wire_frame *f)
{
	json_t	*o;
	int	 rc;

	if (c->state != CONN_RUN) {
		if (f->type != WIRE_HELLO || (o = wire_json(f)) == NULL) {
			conn_free(c, "garbage before authentication");
			return (-1);
		}
		rc = c->state == CONN_HELLO ? conn_hello(c, o) :
		    conn_proof(c, o);
		json_decref(o);
		return (rc);
	}
	switch (f->type) {
	case WIRE_CONTROL:
		conn_control(c, f);
		return (0);
	case WIRE_EVENT:
	case WIRE_RECORDS:
		if (f->seq <= c->relay->last_seq) {
			c->relay->duplicates++;
			return (0);
		}
		if (f->seq != c->relay->last_seq + 1)
			log_warn("relay %s: frames %llu to %llu missing",
			    c->relay->name,
			    (unsigned long long)c->relay->last_seq + 1,
			    (unsigned long long)f->seq - 1);
		rc = f->type == WIRE_EVENT ? conn_event(c, f) :
		    conn_records(c, f);
		if (rc == 0) {
			c->relay->last_seq = f->seq;
			c->relay->frames++;
		}
		return (rc);
	default:
		conn_free(c, "handshake message on a running link");
		return (-1);
	}
}

/* Frames from a relay: the handshake, then events, records and control. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct wire_frame	 f;
	const char		*cause = NULL;
	int			 rc;

	c->last_rx = clock_now_ms();
	for (;;) {
		rc = wire_next(in, c->state == CONN_RUN ? WIRE_FRAME_MAX :
		    WIRE_PRE_AUTH_MAX, &f, &cause);
		if (rc == 0)
			break;
		if (rc == -1) {
			conn_free(c, cause);
			return;
		}
		if (conn_frame(c, &f) != 0)
			return;
		wire_done(in, &f);
		/* Sealed now: the rest is read through the seal. */
		if (c->bev != bev)
			return;
	}
	conn_ack(c);
}

/* The relay closed the connection, or it failed: the link is down. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & BEV_EVENT_EOF)
		conn_free(c, c->state == CONN_RUN && !c->relay->gone ?
		    "the relay closed it" : NULL);
	else if (what & BEV_EVENT_ERROR)
		conn_free(c, c->state == CONN_RUN && EVUTIL_SOCKET_ERROR() == 0 ?
		    "a sealed record did not open (changed on the way, or not "
		    "from the relay)" : evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
}

/* Handshake deadline; later, the keepalive and the link timeout. */
static void
conn_timer_cb(int fd, short what, void *arg)
{
	struct conn	*c = arg;
	json_t		*m;

	if (c->state != CONN_RUN) {
		conn_free(c, "no authentication in time");
		return;
	}
	if (clock_now_ms() - c->last_rx > c->timeout_ms) {
		conn_free(c, "nothing heard within the link timeout");
		return;
	}
	conn_ack(c);
	m = json_pack("{s:s}", "type", "ping");
	conn_send(c, WIRE_CONTROL, m);
	json_decref(m);
}

/* A relay connects: it has hello_timeout to prove the token. */
static void
link_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	link_adopt(fd, sa);
}

void
link_adopt(int fd, const struct sockaddr *sa)
{
	struct conn	*c;
	struct timeval	 tv = { cfg.hello_timeout, 0 };
	int		 one = 1;

	c = xcalloc(1, sizeof *c);
	link_format_addr(sa, c->addr, sizeof c->addr);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(base, conn_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL)
		fatalx("out of memory for a relay link");
	c->last_rx = clock_now_ms();
	TAILQ_INSERT_TAIL(&conns, c, entry);
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	evtimer_add(c->timer, &tv);
	log_debug("relay link from %s", c->addr);
}

/* Accepting a relay failed (out of descriptors): said; the listener goes on. */
static void
link_error_cb(struct evconnlistener *l, void *arg)
{
	log_warn("accepting relays: %s",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void
link_listen(const char *spec)
{
	struct addrinfo	 hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t	 sl;
	char		*host, *port, buf[80];
	int		 fd, one = 1, rc;

	if (wire_split_hostport(spec, &host, &port) != 0)
		fatalx("--listen-tcp takes ADDR:PORT or [IPV6]:PORT, not '%s'",
		    spec);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(*host == '\0' || strcmp(host, "*") == 0 ? NULL :
	    host, port, &hints, &res);
	if (rc != 0)
		fatalx("--listen-tcp %s: %s", spec, gai_strerror(rc));
	for (ai = res; ai != NULL && nlisteners < 8; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof one);
		if (ai->ai_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, 512) != 0) {
			link_format_addr(ai->ai_addr, buf, sizeof buf);
			log_warn("cannot listen on %s: %s", buf,
			    strerror(errno));
			close(fd);
			continue;
		}
		sl = sizeof ss;
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		link_format_addr((struct sockaddr *)&ss, buf, sizeof buf);
		listeners[nlisteners] = evconnlistener_new(base,
		    link_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (listeners[nlisteners] == NULL)
			fatalx("cannot watch %s", buf);
		evconnlistener_set_error_cb(listeners[nlisteners],
		    link_error_cb);
		nlisteners++;
		log_info("listening for relays on %s", buf);
	}
	freeaddrinfo(res);
	if (nlisteners == 0)
		fatalx("--listen-tcp %s: no address could be used", spec);
	free(host);
	free(port);
}

void
link_close_all(void)
{
	struct relay	*r;
	int		 i;

	for (i = 0; i < nlisteners; i++)
		evconnlistener_free(listeners[i]);
	nlisteners = 0;
	while (!TAILQ_EMPTY(&conns))
		conn_free(TAILQ_FIRST(&conns), NULL);
	while ((r = TAILQ_FIRST(&relays)) != NULL) {
		TAILQ_REMOVE(&relays, r, entry);
		flush_leave(&r->part);
		event_free(r->lost_timer);
		free(r->host);
		free(r);
	}
	json_decref(sticky);
	sticky = NULL;
}

void
link_broadcast(json_t *msg)
{
	struct conn	*c;

	json_decref(sticky);
	sticky = json_incref(msg);
	TAILQ_FOREACH(c, &conns, entry) {
		if (c->state == CONN_RUN)
			conn_send(c, WIRE_CONTROL, msg);
	}
}

unsigned
link_count(void)
{
	struct conn	*c;
	unsigned	 n = 0;

	TAILQ_FOREACH(c, &conns, entry)
		n++;
	return (n);
}

json_t *
link_status_all(void)
{
	struct relay	*r;
	json_t		*all = json_array(), *o;

	TAILQ_FOREACH(r, &relays, entry) {
		o = relay_describe(r);
		json_object_set_new(o, "state", json_string(r->gone ? "done" :
		    r->lost ? "lost" : r->conn != NULL ? "connected" :
		    "disconnected"));
		json_object_set_new(o, "since", link_ts(r->since));
		json_object_set_new(o, "frames", json_integer(
		    (json_int_t)r->frames));
		json_object_set_new(o, "records", json_integer(
		    (json_int_t)r->records));
		json_object_set_new(o, "duplicates_skipped", json_integer(
		    (json_int_t)r->duplicates));
		json_object_set_new(o, "last_seq", json_integer(
		    (json_int_t)r->last_seq));
		json_object_set_new(o, "sources_open", json_integer(
		    source_count_link(r->id)));
		json_array_append_new(all, o);
	}
	return (all);
}
