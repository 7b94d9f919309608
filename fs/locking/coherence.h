/* coherence.h - whether the filesystem under the backing directory shows
 * each node what the other nodes wrote.
 *
 * Several daemons serving one share agree through the backing
 * filesystem's locks (cluster.h); that is safe only if, once a daemon holds
 * a lease, the files it reads and appends to are the ones the last holder
 * left. A cluster filesystem client that caches attributes, names or data
 * breaks that: an append lands at a cached size over another node's record,
 * a read returns an old copy. The daemon cannot turn such caches off, so it
 * refuses to serve a backing directory on a client it knows to cache, and
 * says which setting to change.
 *
 * Recognised: the GlusterFS FUSE client (fstype fuse.glusterfs), whose
 * settings are read from its .meta folder at the volume's root: the
 * command line (the kernel cache timeouts) and the active graph (the
 * performance translators). Other filesystems are not judged.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What is wrong with a GlusterFS client whose .meta/cmdline reads
 * @cmdline and whose active graph holds translators of @types (NULL-ended,
 * "performance/write-behind"...): NULL when nothing, otherwise the
 * settings to change, in one sentence. Pure. */
char *coherence_gluster_problems(const char *cmdline, const char *const *types);

/* NULL when the filesystem under the directory @backing_fd is not one
 * known to cache, or is set up not to; otherwise why the daemon must not
 * serve it, naming the settings to change (caller frees). */
char *coherence_check(int backing_fd);

G_END_DECLS
