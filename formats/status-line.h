/* status-line.h - the one format of the daemon's status attributes.
 *
 * A status line: space-separated positional words, then key=value fields,
 * ended by '\n'. Words and values are percent-encoded (%XX, upper-case hex)
 * for every byte that is not printable ASCII, and for ' ', '%' and '='; a
 * key is [a-z0-9_]+. So any program name or path survives in one line. An
 * empty word is written "%00" (a NUL cannot be inside a C string, so the
 * escape is free); an empty value is written as nothing ("key="). Blank
 * lines are skipped by the parser. The daemon writes these lines and the
 * tools read them with po_status_parse(), nothing else.
 *
 * What the daemon writes (readers ignore unknown fields and tolerate
 * missing optional ones, so fields can be added without breaking them):
 *
 * Lease lines: PO_STATUS_ATTR_LOCK of a mailbag's KEY, MBG or lock file or
 * of an exclusive file (the leases that file stands for), and
 * PO_STATUS_ATTR_LOCKS of a postoffice folder or of the mount root (every
 * held or awaited lease under it):
 *   KIND NAME free postoffice=PATH
 *   KIND NAME held postoffice=PATH pid=N program=P protocol=P since=ISO8601
 *        refs=N waiters=N [waiting=PID,PID,...] [holder=unknown]
 * KIND is session, key-write or exclusive; NAME a mailbag ("INQUEUE3"), or
 * for exclusive a path inside the postoffice ("GLB/CONTROL.GLB"). PATH is
 * the postoffice folder relative to the mount root, "." for the mount root
 * itself. holder=unknown (with pid=0) marks a lock file found on the share
 * at start whose creator is unknown.
 *
 * Postoffice lines: PO_STATUS_ATTR_POSTOFFICES, on the mount root only:
 *   postoffice PATH queues=INQUEUE3,INQUEUE,SYSTEM
 *
 * Stats lines: PO_STATUS_ATTR_STATS; on the mount root one line per
 * postoffice and then "stats * ..." with the sums, on a postoffice folder
 * its own line:
 *   stats PATH acquisitions=N waits=N refused=N waited_granted=N timeouts=N
 *         deadlocks=N stale_reclaimed=N breaks=N cancellations=N
 *         mixed_protocol=N overlaps=N wait_granted_ms=H wait_granted_sum_ms=N
 *         wait_timeout_ms=H wait_timeout_sum_ms=N
 * refused counts requests answered "busy" at once (they may not wait),
 * waited_granted those granted after waiting in line, timeouts those that
 * waited in line until their time ran out (before refused existed,
 * timeouts counted both). H is a histogram of wait times in milliseconds,
 * cumulative as Prometheus's: "1:N,10:N,...,inf:N", N the waits that took
 * at most that long. overlaps counts the opens that, in observe mode,
 * met a hold enforcing would have made them wait for or refused them;
 * after each postoffice's stats line, one line per mailbag and pair of
 * protocols that overlapped:
 *   overlap PATH kind=KIND name=NAME protocol=P other=P count=N
 * protocol is the opener's, other the holder's ("?" for a hold of
 * another daemon).
 *
 * Mode: PO_STATUS_ATTR_MODE of the mount root: "enforce" or "observe"
 * and '\n'; root may set it to either word to switch (logged).
 *
 * Trail lines: in each postoffice folder on the share, hidden through the
 * mount, PO_STATUS_TRAIL_DIR holds one stream per node, NODE.log and the
 * older NODE.log.1 (rotated by size); one line per event on a guarded or
 * message file:
 *   event UNIX_US op=OP file=RELPATH [to=RELPATH] pid=N program=P uid=N
 *         [protocol=P] outcome=O [waited_ms=N] result=R [client=C] node=NODE
 * UNIX_US the time in microseconds since 1970 (UTC); OP create, open,
 * rename or unlink; RELPATH inside the postoffice ("P1/0000002A.P1"); O
 * is "none" (no lease needed), granted, waited (granted after waiting
 * waited_ms), refused, overlapped (observe mode) or deferred (a create
 * answered before its lease); R "ok" or an errno name ("EBUSY"); C, for
 * smbd, "smb ADDRESS:PORT user=NAME", for wineserver "wine PREFIX".
 *
 * Records lines: PO_STATUS_ATTR_RECORDS of a mailbag's KEY, MBG or lock
 * file:
 *   records NAME postoffice=PATH live=N free=N total=N limit=N percent=N
 *   records NAME corrupt postoffice=PATH message=TEXT
 *
 * Byte-range lock lines: PO_STATUS_ATTR_RANGES of any file (the locks on
 * it) or of the mount root (every lock taken through this mount), one line
 * per held range or awaited request:
 *   range START LEN type=read|write kind=posix|flock state=held|waiting
 *         owner=N pid=N program=P path=PATH
 * START and LEN in bytes, LEN 0 to the end of the file however long it
 * grows (as fcntl spells it); a flock covers the whole file and is written
 * "range 0 0". kind=posix is an fcntl lock, per process (F_SETLK) or per
 * open file (F_OFD_SETLK): the mount cannot tell them apart. owner=N names
 * one lock owner of this daemon (a process, or for flock and OFD locks an
 * open file): lines with the same N belong together. pid and program are
 * of the process that first locked (0 and "?" when unknown or not to be
 * shown to the caller); path is the file's path relative to the mount
 * root when it was first locked ("?" when not shown). Locks of other
 * daemons and of processes on the backing store are not listed.
 *
 * Freeze lines: PO_STATUS_ATTR_FREEZE of a postoffice folder, one line per
 * operator's freeze held (po-freeze), then the last refusal of one:
 *   frozen pid=N since=ISO8601 leases=N
 *   refused KIND NAME postoffice=PATH error=TEXT waited_ms=N
 *        [pid=N program=P protocol=P] [holder=other-daemon]
 * A freeze is asked for with PO_FREEZE_IOCTL on the folder, opened
 * through the mount by root: its argument is how long to wait in
 * milliseconds (0: let go); it returns once everything is held (0) or
 * nothing is (EBUSY and the like, the refused line says why).
 *
 * Daemons before postoffices were named wrote lease lines without
 * postoffice=, a stats value of fields alone ("acquisitions=N ...") and
 * records lines without the leading "records"; po_status_line_as_lease()
 * reads both, the tools handle the other two.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* The attributes (on a mailbagfs mount; never stored on the share). */
/* The daemon's own file in each postoffice folder (fs/locking/cluster.h):
 * hidden through the mount, and no postoffice file to the tools. */
#define PO_STATUS_LEASE_FILE ".mailbagfs-leases"
/* The daemon's trail folder in each postoffice folder (see the trail
 * lines below): hidden through the mount too. */
#define PO_STATUS_TRAIL_DIR ".mailbagfs-trail"
#define PO_STATUS_WORD_EVENT "event"

#define PO_STATUS_ATTR_LOCK "user.mailbag.lock"
#define PO_STATUS_ATTR_LOCKS "user.mailbag.locks"
#define PO_STATUS_ATTR_POSTOFFICES "user.mailbag.postoffices"
#define PO_STATUS_ATTR_STATS "user.mailbag.stats"
#define PO_STATUS_ATTR_RECORDS "user.mailbag.records"
#define PO_STATUS_ATTR_BREAK "user.mailbag.break"
#define PO_STATUS_ATTR_RANGES "user.mailbag.ranges"
#define PO_STATUS_ATTR_FREEZE "user.mailbag.freeze"
#define PO_STATUS_ATTR_MODE "user.mailbag.mode"
#define PO_STATUS_MODE_ENFORCE "enforce"
#define PO_STATUS_MODE_OBSERVE "observe"
/* _IOW('M', 1, uint32_t): see the freeze lines below. */
#define PO_FREEZE_IOCTL _IOW('M', 1, uint32_t)

/* A value longer than PO_STATUS_PAGE_MAX bytes (a mount with thousands of
 * postoffices or locks) is served in pages under the kernel's 64 KiB limit
 * for an attribute: NAME, then NAME.2, NAME.3, ...; every page but the
 * last ends with the line "more NAME.N" naming the next. Pages hold whole
 * lines. Each page is rendered when read, so pages read one after another
 * may disagree where the state changed in between. */
#define PO_STATUS_PAGE_MAX 60000
#define PO_STATUS_MORE_WORD "more"

/* @text with every control character written as \xNN (caller frees): a
 * name from the share, or a process name, printed in a log or a report
 * cannot end a line or write one of its own. */
char *po_status_escape_controls(const char *text);

/* First words. */
#define PO_STATUS_KIND_SESSION "session"
#define PO_STATUS_KIND_KEY_WRITE "key-write"
#define PO_STATUS_KIND_EXCLUSIVE "exclusive"
#define PO_STATUS_WORD_POSTOFFICE "postoffice"
#define PO_STATUS_WORD_STATS "stats"
#define PO_STATUS_WORD_RECORDS "records"
#define PO_STATUS_WORD_RANGE "range"
#define PO_STATUS_WORD_OVERLAP "overlap"

/* Third word of a lease line; third word of a corrupt records line. */
#define PO_STATUS_STATE_FREE "free"
#define PO_STATUS_STATE_HELD "held"
#define PO_STATUS_STATE_CORRUPT "corrupt"

/* PATH of the mount root itself; PATH of the sums in a stats line. */
#define PO_STATUS_PATH_ROOT "."
#define PO_STATUS_PATH_ALL "*"

/* Fields. */
#define PO_STATUS_FIELD_POSTOFFICE "postoffice"
#define PO_STATUS_FIELD_PID "pid"
#define PO_STATUS_FIELD_PROGRAM "program"
#define PO_STATUS_FIELD_PROTOCOL "protocol"
#define PO_STATUS_FIELD_SINCE "since"
#define PO_STATUS_FIELD_REFS "refs"
#define PO_STATUS_FIELD_WAITERS "waiters"
#define PO_STATUS_FIELD_WAITING "waiting" /* PIDs, ',' separated, FIFO order */
#define PO_STATUS_FIELD_HOLDER "holder"   /* optional; only value: "unknown" */
#define PO_STATUS_HOLDER_UNKNOWN "unknown"
#define PO_STATUS_FIELD_QUEUES "queues"   /* mailbag names, ',' separated */
#define PO_STATUS_FIELD_ACQUISITIONS "acquisitions"
#define PO_STATUS_FIELD_WAITS "waits"
#define PO_STATUS_FIELD_TIMEOUTS "timeouts"
#define PO_STATUS_FIELD_REFUSED "refused"
#define PO_STATUS_FIELD_WAITED_GRANTED "waited_granted"
/* Wait-time histograms (po_status_histogram_*): of the waits that ended in
 * a grant and of those that ran out; each with a _sum_ms field. */
#define PO_STATUS_FIELD_WAIT_GRANTED_MS "wait_granted_ms"
#define PO_STATUS_FIELD_WAIT_GRANTED_SUM_MS "wait_granted_sum_ms"
#define PO_STATUS_FIELD_WAIT_TIMEOUT_MS "wait_timeout_ms"
#define PO_STATUS_FIELD_WAIT_TIMEOUT_SUM_MS "wait_timeout_sum_ms"
#define PO_STATUS_FIELD_DEADLOCKS "deadlocks"
#define PO_STATUS_FIELD_STALE_RECLAIMED "stale_reclaimed"
#define PO_STATUS_FIELD_BREAKS "breaks"
#define PO_STATUS_FIELD_CANCELLATIONS "cancellations"
#define PO_STATUS_FIELD_MIXED_PROTOCOL "mixed_protocol"
#define PO_STATUS_FIELD_OVERLAPS "overlaps"
#define PO_STATUS_FIELD_NAME "name"   /* overlap lines */
#define PO_STATUS_FIELD_OTHER "other" /* overlap lines: the holder's protocol */
#define PO_STATUS_FIELD_COUNT "count" /* overlap lines */
#define PO_STATUS_FIELD_LIVE "live"
#define PO_STATUS_FIELD_FREE "free"
#define PO_STATUS_FIELD_TOTAL "total"
#define PO_STATUS_FIELD_LIMIT "limit"
#define PO_STATUS_FIELD_PERCENT "percent"
#define PO_STATUS_FIELD_MESSAGE "message"
#define PO_STATUS_FIELD_TYPE "type"   /* range lines: read or write */
#define PO_STATUS_FIELD_KIND "kind"   /* range lines: posix or flock */
#define PO_STATUS_FIELD_STATE "state" /* range lines: held or waiting */
#define PO_STATUS_FIELD_OWNER "owner"
#define PO_STATUS_FIELD_PATH "path"
#define PO_STATUS_RANGE_READ "read"
#define PO_STATUS_RANGE_WRITE "write"
#define PO_STATUS_RANGE_POSIX "posix"
#define PO_STATUS_RANGE_FLOCK "flock"
#define PO_STATUS_RANGE_WAITING "waiting"

/* The stats fields in the order the daemon writes them. */
#define PO_STATUS_STATS_FIELDS                                                        \
        PO_STATUS_FIELD_ACQUISITIONS, PO_STATUS_FIELD_WAITS, PO_STATUS_FIELD_TIMEOUTS, \
        PO_STATUS_FIELD_DEADLOCKS, PO_STATUS_FIELD_STALE_RECLAIMED,                    \
        PO_STATUS_FIELD_BREAKS, PO_STATUS_FIELD_CANCELLATIONS,                         \
        PO_STATUS_FIELD_MIXED_PROTOCOL, PO_STATUS_FIELD_OVERLAPS

/* The longest line po_status_parse() accepts, '\n' not counted. An
 * attribute value is at most 64 KiB on Linux anyway (XATTR_SIZE_MAX). */
#define PO_STATUS_LINE_MAX (64 * 1024)

typedef struct PoStatusLine PoStatusLine;

PoStatusLine *po_status_line_new(void);
void po_status_line_free(PoStatusLine *line);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoStatusLine, po_status_line_free)

/* Words come before fields: a word added after a field is still written
 * before every field. */
void po_status_line_add_word(PoStatusLine *line, const char *word);
/* @key must match [a-z0-9_]+ (a programming error otherwise: the call is
 * refused with a critical). A key already present gets the new value, so a
 * line never holds one key twice. */
void po_status_line_add_field(PoStatusLine *line, const char *key, const char *value);
void po_status_line_add_field_printf(PoStatusLine *line, const char *key,
                                     const char *format, ...) G_GNUC_PRINTF(3, 4);

/* @key=ISO8601 (UTC, to the second) of @unix_us microseconds since the
 * epoch, "?" when it cannot be written: the form of every since=. */
void po_status_line_add_time(PoStatusLine *line, const char *key, gint64 unix_us);

/* Appends the encoded line and its '\n' to @out. */
void po_status_line_append_to(const PoStatusLine *line, GString *out);

/* The same encoding written straight into @out, for a line made once and
 * never read back (one per request, say): each call appends one word or
 * field, after a space unless @out is empty or ends a line; the caller
 * appends the '\n'. Words first, each key once: nothing here checks it.
 * @key must match [a-z0-9_]+ as above. */
void po_status_write_word(GString *out, const char *word);
void po_status_write_field(GString *out, const char *key, const char *value);
/* A number in decimal, as a word or a field's value. */
void po_status_write_word_uint64(GString *out, guint64 value);
void po_status_write_field_uint64(GString *out, const char *key, guint64 value);

guint po_status_line_n_words(const PoStatusLine *line);
const char *po_status_line_word(const PoStatusLine *line, guint index); /* NULL when out of range */
guint po_status_line_n_fields(const PoStatusLine *line);
const char *po_status_line_field_key(const PoStatusLine *line, guint index);
const char *po_status_line_field_value(const PoStatusLine *line, guint index);
const char *po_status_line_field(const PoStatusLine *line, const char *key); /* NULL when absent */
/* The field as a decimal number; false when absent or not a number. */
bool po_status_line_field_uint64(const PoStatusLine *line, const char *key, guint64 *out);
/* Same words and same fields in the same order. */
bool po_status_line_equal(const PoStatusLine *a, const PoStatusLine *b);

/* "B1:N1,B2:N2,...,inf:N" from per-bucket counts (@counts, @n entries;
 * the last one unbounded) and the upper bounds of all but the last
 * (@bounds, @n - 1 entries): each N is cumulative. */
char *po_status_histogram_format(const guint64 *bounds, const guint64 *counts, guint n);
/* The reverse: upper bounds (G_MAXUINT64 for inf) and cumulative counts,
 * in two arrays of guint64 of equal length; false when @value is not a
 * histogram (counts must not fall, the last bound must be inf). */
bool po_status_histogram_parse(const char *value, GArray *bounds, GArray *cumulative);

/* A histogram field @key and its sum field @sum_key, written from
 * per-bucket counts (po_status_histogram_format), and read back: false
 * when @key is absent or no histogram; *@sum_ms 0 when @sum_key is. */
void po_status_line_add_histogram(PoStatusLine *line, const char *key, const char *sum_key,
                                  const guint64 *bounds, const guint64 *counts, guint n,
                                  guint64 sum_ms);
bool po_status_line_histogram(const PoStatusLine *line, const char *key, const char *sum_key,
                              GArray *bounds, GArray *cumulative, guint64 *sum_ms);

/* Parses @len bytes of zero or more lines (the last '\n' may be missing)
 * into a GPtrArray of PoStatusLine* that frees them. Bad input (a word after
 * a field, an empty key, bad percent escape, a NUL byte, an overlong line >
 * 64 KiB) gives NULL and @error "ORIGIN: line N: reason"
 * (PO_FORMAT_ERROR_CORRUPT). Also refused: a key outside [a-z0-9_], a key
 * twice in a line, an unencoded byte that must be encoded, two spaces in a
 * row or a space at either end of a line. */
GPtrArray *po_status_parse(const char *text, gsize len, const char *origin, GError **error);

/* A lease line, read; the strings point into the line. */
typedef struct {
        const char *kind;       /* "session", "key-write", "exclusive", or a newer kind */
        const char *name;
        bool held;
        const char *postoffice; /* PO_STATUS_PATH_ROOT when the line has none */
} PoStatusLease;

/* Whether @line has the shape of a lease line (at least three words, the
 * third free or held); fills @out if so. */
bool po_status_line_as_lease(const PoStatusLine *line, PoStatusLease *out);

G_END_DECLS
