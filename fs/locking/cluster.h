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
 * The lease protocol, version 1 (the README's cluster section):
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
 *   before its own next waiter takes it, so nodes take turns.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "lease.h"
#include "status-line.h"

#define CLUSTER_FILE PO_STATUS_LEASE_FILE
#define CLUSTER_PROTOCOL 1

typedef struct Cluster Cluster;

/* Opens (creating it if need be) the lease file in postoffice folder
 * @po_dirfd and joins the protocol. NULL with @error when the file cannot be
 * opened or a daemon of another protocol version serves the postoffice. */
Cluster *cluster_open(int po_dirfd, const char *po_path, GError **error);
/* Closes the file: every lock this daemon held there goes. */
void cluster_free(Cluster *locks);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Cluster, cluster_free)

/* Never block. take: 0 when this daemon now holds the resource, -EAGAIN
 * when another daemon does. A filesystem that refuses locks altogether is
 * reported once and leaves leases local (take answers 0). */
int cluster_take(Cluster *locks, LeaseKind kind, const char *name);
void cluster_drop(Cluster *locks, LeaseKind kind, const char *name);
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
/* Whether another daemon has declared a wish for the resource. */
bool cluster_wanted_elsewhere(Cluster *locks, LeaseKind kind, const char *name);
/* Whether another daemon serves the postoffice (holds a version byte). */
bool cluster_served_elsewhere(Cluster *locks);

/* Whether another daemon holds the resource now. */
bool cluster_held_elsewhere(Cluster *locks, LeaseKind kind, const char *name);

/* The byte of resource (kind, name): for tests and the README. */
gint64 cluster_offset(LeaseKind kind, const char *name);
