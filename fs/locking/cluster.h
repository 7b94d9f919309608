/* cluster.h - leases that every mailbagfs daemon on the share honours.
 *
 * Several daemons may serve one backing share (nodes of a cluster over
 * GlusterFS, CephFS, GPFS or NFSv4, or two mounts on one host). A lease
 * held through one daemon must hold against the others, and the only lock
 * manager they all share is the backing filesystem's own. So each lease is
 * also an open file description (OFD) lock in the postoffice's lease file,
 * `.mailbagfs-leases` in the postoffice folder, on a byte range that stands
 * for the resource. OFD locks belong to the daemon's descriptor, conflict
 * across mounts and nodes through the filesystem, and vanish when the
 * daemon dies (the kernel or the cluster filesystem drops them), so a dead
 * node's leases free themselves.
 *
 * The lease protocol, version 1 (docs/cluster.md):
 * - The file starts with a line of text naming the protocol; the bytes of
 *   the ranges below hold nothing.
 * - Version ranges: a daemon holds a read lock on byte VERSION_BASE + V,
 *   V its protocol version, for as long as it serves the postoffice, and
 *   refuses to serve it while any other byte of the 256-byte window is
 *   locked (a daemon of another version is serving it).
 * - Resource ranges: resource (kind, name) is byte
 *   ((kind + 1) << 56) + 2 * (FNV-1a-64(name) mod 2^48); kind 0 session,
 *   1 key-write, 2 exclusive; name the upper-case mailbag name or path in
 *   the postoffice ("INQUEUE3", "GLB/CONTROL.GLB"). Its holder holds a
 *   write lock there. Two names that share a byte only wait for each
 *   other: never less exclusion than asked.
 * - Intent ranges: the next byte. A daemon with local requests waiting for
 *   a resource held elsewhere holds a read lock there; a daemon ending its
 *   hold while another declares intent lets the resource go for a moment
 *   before its own next waiter takes it, so nodes take turns. (A daemon
 *   looks at intent bytes only while it has seen another daemon's version
 *   byte within CLUSTER_CHECK_MS: turns are fairness, not exclusion, and a
 *   daemon alone spares the look.)
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "backing.h"
#include "lease.h"
#include "lockfiles.h"
#include "profile.h"
#include "status-line.h"

#define CLUSTER_FILE PO_STATUS_LEASE_FILE
#define CLUSTER_PROTOCOL 1

typedef struct Cluster Cluster;

/* Opens (creating it if need be) the lease file in postoffice folder
 * @po_dirfd and joins the protocol. NULL with @error when the file cannot be
 * opened or a daemon of another protocol version serves the postoffice. */
Cluster *cluster_open(int po_dirfd, const char *po_path, GError **error);
/* Closes the file: every lock this daemon held there goes. Every call
 * stays safe afterwards: takes answer -EAGAIN, questions false, the rest
 * does nothing (a postoffice whose folder was removed). Idempotent. */
void cluster_close(Cluster *locks);
/* cluster_close(), and frees. */
void cluster_free(Cluster *locks);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Cluster, cluster_free)

/* How often a request for a resource another daemon holds asks again. */
#define CLUSTER_RETRY_MS 10
/* How long a resource that becomes free here waits for another daemon's
 * waiter to take it (the intent ranges above), before a local one may. */
#define CLUSTER_YIELD_MS 50

/* How often a daemon looks whether the lease file's name still leads to
 * the file it holds its locks in (someone with access to the backing
 * store may remove it): at a take, and while it holds any lease. */
#define CLUSTER_CHECK_MS 200
/* A daemon that has to make the lease file again while others serve the
 * postoffice (they hold its folder flocked) grants nothing through it for
 * this long: the others find the new file within CLUSTER_CHECK_MS and
 * take their held leases there first. */
#define CLUSTER_REJOIN_GRACE_MS 1000

/* For the lease manager's watch thread: while this daemon holds a lease,
 * looks at the lease file's name when due (and joins a new file, see
 * above); returns when to call again (monotonic us; G_MAXINT64: when
 * something is held, after a take). */
gint64 cluster_keep_joined(Cluster *locks);

#define CLUSTER_TAKEN 0
#define CLUSTER_TAKEN_FROM_DEAD_NODE 1

/* The dead-node rule, decided here alone. A -V20 lock file holds its
 * session until it is unlinked, so a daemon's session hold never ends
 * while its lock files remain, unless that daemon died. A session taken
 * while its mark is set (the last holder had lock files and did not clear
 * the mark), or taken after waiting for another daemon (@after_waiting:
 * whatever that daemon held ended, perhaps with its death, even when its
 * mark has not reached us, as a cluster filesystem may cache the file's
 * data for a while), may therefore have lock files of a dead node left:
 * take answers CLUSTER_TAKEN_FROM_DEAD_NODE, and the caller sweeps them
 * with cluster_sweep_dead_lockfiles() once it may call out.
 *
 * Never blocks. CLUSTER_TAKEN or CLUSTER_TAKEN_FROM_DEAD_NODE when this
 * daemon now holds the resource, -EAGAIN when another daemon does. A
 * filesystem that refuses locks altogether is reported once and leaves
 * leases local (always taken). */
int cluster_take(Cluster *locks, LeaseKind kind, const char *name, bool after_waiting);
/* Ends this daemon's hold. A session's mark set here is cleared first: the
 * hold ends only once its lock files are gone. */
void cluster_drop(Cluster *locks, LeaseKind kind, const char *name);

/* Removes the lock files of session @session in the lock folder of the
 * postoffice at @po_path (relative to @backing) that @known does not
 * record: the dead node's (see cluster_take). Clears the session's mark
 * first: lock files this daemon makes will set it again. Logs each
 * removal. */
void cluster_sweep_dead_lockfiles(Cluster *locks, const Backing *backing,
                                  const PoProfile *profile, const char *po_path,
                                  LockFiles *known, const char *session);
/* Lock-file marks: a daemon whose session hold includes -V20 lock files
 * sets the session's mark byte (at MARKS_BASE + FNV-1a-64(name) mod 2^20,
 * written, not locked) and clears it when the hold ends. A daemon taking a
 * session whose mark is set knows the last holder died with lock files
 * left (a mark shared by two names only costs a look). */
void cluster_mark(Cluster *locks, const char *session, bool marked);
/* Whether this daemon set @session's mark and has not cleared it: all a
 * hold's end needs to know, without reading the file. */
bool cluster_marked_here(Cluster *locks, const char *session);
bool cluster_marked(Cluster *locks, const char *session);

/* Declares or withdraws this daemon's wish for a resource held elsewhere. */
void cluster_want(Cluster *locks, LeaseKind kind, const char *name, bool want);
/* Whether another daemon has declared a wish for the resource; false
 * without a look at it while no other daemon was seen serving the
 * postoffice within CLUSTER_CHECK_MS. */
bool cluster_wanted_elsewhere(Cluster *locks, LeaseKind kind, const char *name);
/* Whether another daemon serves the postoffice (holds a version byte). */
bool cluster_served_elsewhere(Cluster *locks);

/* Whether another daemon holds the resource now. */
bool cluster_held_elsewhere(Cluster *locks, LeaseKind kind, const char *name);

/* The byte of resource (kind, name): for tests and docs/cluster.md. */
gint64 cluster_offset(LeaseKind kind, const char *name);
