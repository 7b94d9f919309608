/* mountinfo.h - the lines of /proc/PID/mountinfo (proc(5)).
 *
 * Pure: the caller reads the file. Used by the daemon (what is mounted at
 * its mountpoint, what filesystem its backing directory is on) and by
 * po-check (which mounts a Samba share reaches).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct {
        int id;              /* the mount's id (statx STATX_MNT_ID) */
        dev_t dev;           /* MAJ:MIN, the st_dev of its files */
        char *root;          /* unescaped: the folder of the filesystem mounted here */
        char *mount_point;   /* unescaped, as the kernel resolved it */
        char *fstype;        /* "ext4", "fuse.glusterfs", "fuse.mailbagfs" */
        char *source;        /* unescaped; a FUSE daemon's fsname */
        char *super_options; /* comma-separated, as written */
} PoMount;

void po_mount_free(PoMount *mount);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoMount, po_mount_free)

/* Parses mountinfo @text into PoMount, in the kernel's order, so a later
 * mount on the same point is the one on top. NULL with @error set
 * (PO_FORMAT_ERROR_CORRUPT, "line N: expected ...") on a line without
 * its fields. */
GPtrArray *po_mounts_parse(const char *text, GError **error);

/* The mount of @mounts with @id, or NULL. */
const PoMount *po_mounts_find_id(const GPtrArray *mounts, int id);

/* Whether the absolute @path is @dir or lies below it. */
bool po_mounts_path_within(const char *path, const char *dir);

/* The mount that the absolute, resolved @path is on: of the mounts whose
 * mount point holds it, the deepest, and of those on one point the last
 * (the one on top). NULL when none does. */
const PoMount *po_mounts_of_path(const GPtrArray *mounts, const char *path);

G_END_DECLS
