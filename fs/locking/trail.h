/* trail.h - each postoffice's trail: who created, opened, renamed and
 * removed its guarded and message files, kept on the share.
 *
 * A postmaster's question about a duplicate or an [021] is "which program,
 * on which machine, read and removed that message's files?". The daemon
 * sees every client layer, so it writes one line per event to a stream of
 * its own in the postoffice's trail folder (PO_STATUS_TRAIL_DIR, hidden
 * through the mount), one stream per node, so daemons on a cluster never
 * share a file; po-trail merges them when read. A stream is bounded: past
 * half the configured size it is renamed to NODE.log.1 (replacing the
 * older one) and started again, so a node keeps at most the size given.
 * It survives the daemon: a restart appends to it. The line format is in
 * formats/status-line.h.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct {
        char *node;        /* this node's stream name, [A-Za-z0-9._-] */
        guint64 max_bytes; /* both files of a stream together; 0: no trail */
} TrailConfig;

typedef struct Trail Trail;

/* Opens this node's stream in the postoffice folder @dir_fd (@shown names
 * it in logs), making the trail folder and the stream if need be; both
 * must be the daemon's own. NULL, logged, when it cannot be had (the
 * postoffice is protected all the same), and when the trail is off. */
Trail *trail_open(int dir_fd, const char *shown, const TrailConfig *config);
void trail_free(Trail *trail);

/* The postoffice is gone: the stream's descriptors are closed now, later
 * events are dropped; trail_free() still follows. NULL is a no-op. */
void trail_close(Trail *trail);

/* One event, as the daemon saw it. */
typedef struct {
        const char *op;   /* "create", "open", "rename", "unlink" */
        const char *file; /* inside the postoffice: "P1/0000002A.P1" */
        const char *to;   /* a rename's new name inside the postoffice, else NULL */
        int flags;        /* open and create: the open's flags */
        pid_t pid;
        const char *program;
        uid_t uid;
        const char *protocol; /* the lease's protocol, NULL: none */
        const char *outcome;  /* none, granted, waited, refused, overlapped, deferred */
        gint64 waited_ms;     /* < 0: did not wait */
        int result;           /* 0 or -errno */
        const char *client;   /* NULL: not a network or emulator layer */
} TrailEvent;

/* Appends @event to @trail (NULL: nothing). Never fails the request: a
 * write that fails is logged once per stream. */
void trail_append(Trail *trail, const TrailEvent *event);

/* This host's node name for the trail: the host name, with anything but
 * [A-Za-z0-9._-] written '_'. */
char *trail_node_name(void);

/* Removes the trail folder of the postoffice folder @dir_fd and the
 * streams in it (the folder itself is being removed): 0 or -errno
 * (-ENOTEMPTY when it holds anything but files). */
int trail_remove(int dir_fd);
